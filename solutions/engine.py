"""The one training loop both pipelines share, and the runtime options it honours.

The loop is the notebook's (SGD, a per-step learning-rate schedule, the best epoch by validation
accuracy kept), written so that it never waits for the GPU inside an epoch: losses and accuracies
are summed on the device and read once per epoch. The runtime adds what only pays on a GPU:
bf16 autocast, channels_last and torch.compile. ``auto`` turns them on for the fast pipeline on CUDA
and off otherwise (on a CPU, bf16 and channels_last convolutions are slower and compiling costs more
than it saves on a short run); ``on`` forces bf16 or compile anywhere, which is how the CPU tests reach
those code paths.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from common import cli
from solutions.kit import load_lab3
from solutions.recipes import Recipe, lr_factor

CHOICES = ("auto", "on", "off")


class RunError(RuntimeError):
    """The run cannot go on (no GPU, diverged); the message says what to change."""


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    bf16: bool
    compile: bool
    channels_last: bool

    def describe(self) -> str:
        name = f"cuda ({torch.cuda.get_device_name(self.device)})" if self.device.type == "cuda" else "cpu"
        flags = ", ".join(f"{key} {'on' if value else 'off'}" for key, value in
                          (("bf16", self.bf16), ("channels_last", self.channels_last), ("compile", self.compile)))
        return f"{name}; {flags}"

    def autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def to_format(self, images: torch.Tensor) -> torch.Tensor:
        return images.contiguous(memory_format=torch.channels_last) if self.channels_last else images


def resolve_runtime(recipe: Recipe, device: str = "auto", compile: str = "auto", bf16: str = "auto") -> Runtime:
    resolved = torch.device(cli.resolve_device(device))
    fast_on_gpu = recipe.pipeline == "fast" and resolved.type == "cuda"
    pick = lambda choice: fast_on_gpu if choice == "auto" else choice == "on"  # noqa: E731
    if resolved.type == "cuda":
        torch.backends.cudnn.benchmark = True
    return Runtime(resolved, bf16=pick(bf16), compile=pick(compile), channels_last=fast_on_gpu)


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work, so that a wall-clock reading means what it says."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class EpochRecord:
    epoch: int
    lr: float
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    train_s: float
    eval_s: float


@dataclass
class TrainResult:
    model: nn.Module            # the extracted ResNet20, holding the best epoch's weights
    runnable: nn.Module         # the same model, compiled when the runtime compiles
    history: list[EpochRecord] = field(default_factory=list)
    best: EpochRecord | None = None
    best_state: dict | None = None   # CPU, contiguous: loadable into a fresh ResNet20
    images_per_epoch: int = 0
    steps_per_epoch: int = 0


def build_model(runtime: Runtime) -> tuple[nn.Module, nn.Module]:
    """(model, runnable): a fresh ResNet20 from the Lab 3 notebook on the device, and its compiled form."""
    model = load_lab3().ResNet20().to(runtime.device)
    if runtime.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model, (torch.compile(model) if runtime.compile else model)


def predict_logits(runnable: nn.Module, pipeline, split: str, runtime: Runtime, flip_tta: bool,
                   show_progress: bool = False):
    """(logits float32 (N, 10), targets or None) of a split in Id order; flip TTA averages image and mirror."""
    runnable.eval()
    outputs, targets = [], []
    with torch.no_grad(), runtime.autocast():
        for images, target, count in tqdm(pipeline.eval_batches(split), desc=f"predicting {split}", unit="batch",
                                          leave=False, disable=not show_progress):
            logits = runnable(runtime.to_format(images))
            if flip_tta:
                logits = (logits + runnable(runtime.to_format(images.flip(3)))) / 2
            outputs.append(logits[:count].float())
            if target is not None:
                targets.append(target)
    return torch.cat(outputs), (torch.cat(targets) if targets else None)


def predict_labels(result: TrainResult, pipeline, runtime: Runtime, recipe: Recipe, split: str = "test",
                   show_progress: bool = False) -> np.ndarray:
    logits, _ = predict_logits(result.runnable, pipeline, split, runtime, recipe.flip_tta, show_progress)
    return logits.argmax(1).cpu().numpy()


def _train_epoch(runnable, pipeline, optimizer, scheduler, criterion, runtime, progress) -> tuple[float, float]:
    runnable.train()
    loss_sum = torch.zeros((), device=runtime.device)
    correct = torch.zeros((), dtype=torch.long, device=runtime.device)
    seen = 0
    for images, targets in progress(pipeline.train_batches()):
        with runtime.autocast():
            logits = runnable(runtime.to_format(images))
            loss = criterion(logits, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        loss_sum += loss.detach().float() * len(targets)
        correct += (logits.argmax(1) == targets).sum()
        seen += len(targets)
    return loss_sum.item() / seen, correct.item() / seen


def train(pipeline, recipe: Recipe, runtime: Runtime, seed: int, show_progress: bool = True) -> TrainResult:
    """Train a fresh ResNet20 for ``recipe.epochs`` epochs; keeps the best epoch by validation accuracy."""
    torch.manual_seed(seed)
    model, runnable = build_model(runtime)
    optimizer = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                                nesterov=recipe.nesterov, weight_decay=recipe.weight_decay)
    steps = pipeline.steps_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(recipe, step, steps))
    criterion = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    result = TrainResult(model, runnable, images_per_epoch=pipeline.images_per_epoch, steps_per_epoch=steps)
    epochs = tqdm(range(1, recipe.epochs + 1), desc=f"{recipe.pipeline} ResNet-20", unit="epoch",
                  disable=not show_progress)
    for epoch in epochs:
        lr = optimizer.param_groups[0]["lr"]
        batches = lambda iterable: tqdm(iterable, total=steps, desc=f"epoch {epoch}", unit="batch",  # noqa: E731
                                        leave=False, disable=not show_progress)
        synchronize(runtime.device)
        start = time.perf_counter()
        train_loss, train_acc = _train_epoch(runnable, pipeline, optimizer, scheduler, criterion, runtime, batches)
        synchronize(runtime.device)
        trained = time.perf_counter()
        if not math.isfinite(train_loss):
            raise RunError(f"training diverged in epoch {epoch} (loss {train_loss}); lower the learning rate")
        logits, targets = predict_logits(runnable, pipeline, "val", runtime, recipe.flip_tta)
        val_loss, val_acc = F.cross_entropy(logits, targets).item(), (logits.argmax(1) == targets).float().mean().item()
        synchronize(runtime.device)
        record = EpochRecord(epoch, lr, train_loss, train_acc, val_loss, val_acc, trained - start,
                             time.perf_counter() - trained)
        result.history.append(record)
        if result.best is None or val_acc >= result.best.val_acc:  # ties go to the later, longer-trained epoch
            result.best = record
            result.best_state = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}
        epochs.set_postfix_str(f"val {val_acc:.2%} (best {result.best.val_acc:.2%})")
        tqdm.write(f"epoch {epoch:3d}/{recipe.epochs}  lr {lr:.4g}  train loss {train_loss:.3f} acc {train_acc:.2%}  "
                   f"val loss {val_loss:.3f} acc {val_acc:.2%}  {record.train_s:.1f} s + {record.eval_s:.1f} s eval")
    model.load_state_dict(result.best_state)
    return result
