"""The two training recipes of the reference ResNet-20: the handout's and a fast one.

``baseline`` is exactly what Lab 3 asks of a student; its numbers are read from the notebook's settings
cell (one home for them). ``fast`` is designed after the fast CIFAR-10 trainers (Myrtle's ResNet-9,
airbench): a larger batch with the learning rate scaled linearly (0.1 at 128 -> 0.4 at 512), a short
linear warm-up then a linear decay to zero (a one-cycle shape), Nesterov momentum, label smoothing 0.1,
weight decay 5e-4 (a short schedule wants more regularisation per step: lr x wd per epoch equals the
common 0.1 x 5e-4 at batch 128) and horizontal-flip test-time augmentation. It is designed to reach the
paper's 91.25 % (8.75 % test error) on real CIFAR-10 in 40 epochs; that target is unverified in this kit
(no real CIFAR-10 and no GPU were available where it was written).

How the data is fed and which hardware tricks apply (bf16, channels_last, torch.compile) is the
pipeline's and the runtime's business (``pipelines.py``, ``engine.py``), not the recipe's.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from solutions.kit import load_lab3

PIPELINES = ("baseline", "fast")
DEFAULT_SEED = 0


@dataclass(frozen=True)
class Recipe:
    pipeline: str                 # "baseline": DataLoader over PIL images; "fast": data resident on the device
    epochs: int
    batch_size: int
    lr: float                     # the peak learning rate
    momentum: float
    nesterov: bool
    weight_decay: float
    label_smoothing: float
    schedule: str                 # "step": /gamma at the milestones; "warmup_linear": one-cycle shape
    milestones: tuple = ()        # "step": LR-drop epochs of a `milestone_epochs`-long run, scaled to `epochs`
    milestone_epochs: int = 200
    gamma: float = 0.1
    warmup_fraction: float = 0.0  # "warmup_linear": share of the steps spent warming up
    eval_batch_size: int = 500
    flip_tta: bool = False        # average the logits of each image and its mirror image at evaluation

    def with_overrides(self, epochs: int | None = None, batch_size: int | None = None,
                       flip_tta: bool | None = None) -> "Recipe":
        """Another length, batch or TTA; a new batch size scales the learning rate linearly (Goyal et al.)."""
        batch = batch_size or self.batch_size
        return replace(self, epochs=epochs or self.epochs, batch_size=batch, lr=self.lr * batch / self.batch_size,
                       flip_tta=self.flip_tta if flip_tta is None else flip_tta)


def baseline_recipe() -> Recipe:
    """The handout's recipe, from the Lab 3 notebook's settings: batch 128, SGD 0.1, /10 at 50 % and 75 %."""
    lab3 = load_lab3()
    return Recipe(pipeline="baseline", epochs=lab3.EPOCHS, batch_size=lab3.TRAIN_BATCH_SIZE, lr=lab3.LEARNING_RATE,
                  momentum=lab3.MOMENTUM, nesterov=False, weight_decay=lab3.WEIGHT_DECAY, label_smoothing=0.0,
                  schedule="step", milestones=tuple(lab3.MILESTONES), milestone_epochs=lab3.EPOCHS,
                  gamma=lab3.GAMMA, eval_batch_size=lab3.VAL_BATCH_SIZE)


FAST = Recipe(pipeline="fast", epochs=40, batch_size=512, lr=0.4, momentum=0.9, nesterov=True, weight_decay=5e-4,
              label_smoothing=0.1, schedule="warmup_linear", warmup_fraction=0.05, eval_batch_size=1000,
              flip_tta=True)


def recipe_for(pipeline: str) -> Recipe:
    if pipeline not in PIPELINES:
        raise ValueError(f"unknown pipeline {pipeline!r}; choose one of {PIPELINES}")
    return baseline_recipe() if pipeline == "baseline" else FAST


def lr_factor(recipe: Recipe, step: int, steps_per_epoch: int) -> float:
    """The learning rate of optimizer step ``step`` (0-based) as a multiple of ``recipe.lr``."""
    total = recipe.epochs * steps_per_epoch
    if recipe.schedule == "step":
        # The notebook steps MultiStepLR once per epoch: epoch e (0-based) runs at gamma ** (milestones <= e).
        milestones = load_lab3().scale_milestones(recipe.milestones, recipe.epochs, recipe.milestone_epochs)
        epoch = step // steps_per_epoch
        return recipe.gamma ** sum(epoch >= m for m in milestones)
    if recipe.schedule == "warmup_linear":
        warmup = max(1, round(recipe.warmup_fraction * total))
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))
    raise ValueError(f"unknown schedule {recipe.schedule!r}")
