"""What a reference run leaves behind: the checkpoint, predictions.csv, the curves PNG and a JSON summary.

The checkpoint has the layout Lab 3 saves and ``save_test_predictions.ipynb`` reads
(``{"state_dict", "epoch", "lr", "val_acc"}``, plus the recipe), with plain CPU tensors whose keys are
those of the notebook's ``ResNet20`` (never a compiled wrapper's ``_orig_mod.``), so the notebook, the
autograder's extraction or ``torch.load(..., weights_only=True)`` all take it as it is.
"""
from __future__ import annotations

import csv
import json
from dataclasses import asdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import course_config  # noqa: E402
from solutions.engine import TrainResult  # noqa: E402
from solutions.recipes import Recipe  # noqa: E402

CHECKPOINT_NAME = "resnet20.pth"       # the name save_test_predictions.ipynb expects under saved_model/
CURVES_NAME = "curves.png"
SUMMARY_NAME = "summary.json"


def save_checkpoint(result: TrainResult, recipe: Recipe, path: Path) -> None:
    best = result.best
    torch.save({"state_dict": result.best_state, "epoch": best.epoch, "lr": best.lr, "val_acc": best.val_acc,
                "recipe": asdict(recipe)}, path)


def write_predictions(labels: np.ndarray, path: Path) -> None:
    """``Id,Label`` with one row per test image; the Id of an image is its row in the test set."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["Id", "Label"])
        writer.writerows((i, int(label)) for i, label in enumerate(labels))


def plot_curves(result: TrainResult, title: str, path: Path) -> None:
    epochs = [r.epoch for r in result.history]
    fig, (ax_loss, ax_acc, ax_lr) = plt.subplots(1, 3, figsize=(15, 4))
    ax_loss.plot(epochs, [r.train_loss for r in result.history], marker="o", markersize=2, label="train")
    ax_loss.plot(epochs, [r.val_loss for r in result.history], marker="o", markersize=2, label="validation")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss (train includes label smoothing, if any)")
    ax_acc.plot(epochs, [r.train_acc for r in result.history], marker="o", markersize=2, label="train (augmented)")
    ax_acc.plot(epochs, [r.val_acc for r in result.history], marker="o", markersize=2, label="validation")
    target = 1 - 0.0875
    ax_acc.axhline(target, color="gray", linestyle=":", label=f"He et al.: {target:.2%}")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title=f"accuracy (best val {result.best.val_acc:.2%})")
    ax_lr.plot(epochs, [r.lr for r in result.history], marker="o", markersize=2)
    ax_lr.set(xlabel="epoch", ylabel="learning rate", title="learning rate at the start of each epoch")
    for ax in (ax_loss, ax_acc, ax_lr):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax_loss.legend()
    ax_acc.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_summary(result: TrainResult, recipe: Recipe, runtime_text: str, path: Path) -> None:
    path.write_text(json.dumps({
        "recipe": asdict(recipe), "runtime": runtime_text, "term": course_config.TERM,
        "images_per_epoch": result.images_per_epoch, "steps_per_epoch": result.steps_per_epoch,
        "best_epoch": result.best.epoch, "best_val_acc": result.best.val_acc,
        "history": [asdict(record) for record in result.history],
    }, indent=1) + "\n", encoding="utf-8")
