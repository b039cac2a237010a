"""Helpers shipped with HW2: the course data set (tools.dataset.CIFAR10)."""
