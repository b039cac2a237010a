"""``make demo`` (``python -m demo``): the kit's main job end to end on a small synthetic CIFAR-10."""
