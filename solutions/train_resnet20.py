"""Train the reference ResNet-20 (the Lab 3 notebook's solution) on the course data set.

    python -m solutions.train_resnet20 [--pipeline fast|baseline] [--epochs N] [--device auto|cpu|cuda]
        [--data-source build/course_data/manifest.json] [--train-subset N] [--out DIR] [--seed S]

Writes to --out: ``resnet20.pth`` (the best epoch, in the layout save_test_predictions.ipynb loads),
``predictions.csv`` (Id,Label for every test image, scored by grade_predictions.py), ``curves.png`` and
``summary.json``. ``baseline`` is the handout's recipe (200 epochs, batch 128, PIL DataLoader, step
decay); ``fast`` keeps the data on the GPU and reaches the paper's accuracy in 40 epochs by design
(see recipes.py). Exit status 0 trained, 1 a problem with the arguments, the data or the device.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import cli  # noqa: E402
from solutions import course_data, engine, outputs, recipes  # noqa: E402
from solutions.kit import REPO, ModelSourceError  # noqa: E402
from solutions.pipelines import make_pipeline  # noqa: E402

DEFAULT_OUT = REPO / "build" / "reference"


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


_count.__name__ = "positive integer"  # argparse names the type in its message


def _workers(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


_workers.__name__ = "non-negative integer"


def parse_arguments(argv=None) -> argparse.Namespace:
    parser = cli.Parser(prog="python -m solutions.train_resnet20", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline", choices=recipes.PIPELINES, default="fast",
                        help="baseline: the handout's recipe; fast: data on the device, one-cycle "
                             "(default: %(default)s)")
    parser.add_argument("--epochs", type=_count, help="default: the recipe's (baseline 200, fast 40)")
    parser.add_argument("--batch-size", type=_count,
                        help="default: the recipe's (baseline 128, fast 512); the learning rate scales with it")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--data-source", metavar="MANIFEST",
                        help="manifest.json of a local course-data build (as $HW2_DATA_SOURCE); "
                             "default: the published data")
    parser.add_argument("--data-root", default=str(REPO / "build" / "reference" / "data"),
                        help="where tools.dataset extracts the course zips (default: %(default)s)")
    parser.add_argument("--train-subset", type=_count, metavar="N", help="train on the first N images (quick runs)")
    parser.add_argument("--out", help=f"output folder (default: {DEFAULT_OUT}/<pipeline>)")
    parser.add_argument("--seed", type=int, default=recipes.DEFAULT_SEED)
    parser.add_argument("--workers", type=_workers, default=min(4, os.cpu_count() or 1),
                        help="DataLoader worker processes of the baseline pipeline (default: %(default)s)")
    parser.add_argument("--compile", choices=engine.CHOICES, default="auto",
                        help="torch.compile the model; auto: on for the fast pipeline on CUDA (default: %(default)s)")
    parser.add_argument("--bf16", choices=engine.CHOICES, default="auto",
                        help="bf16 autocast; auto: on for the fast pipeline on CUDA (default: %(default)s)")
    parser.add_argument("--no-tta", action="store_true",
                        help="no flip test-time augmentation (it doubles evaluation time; quick CPU runs)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (log files)")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> str:
    """Train, write the outputs and return the summary text."""
    started = time.perf_counter()
    recipe = recipes.recipe_for(args.pipeline).with_overrides(args.epochs, args.batch_size,
                                                               flip_tta=False if args.no_tta else None)
    runtime = engine.resolve_runtime(recipe, args.device, args.compile, args.bf16)
    out = Path(args.out) if args.out else DEFAULT_OUT / args.pipeline
    out.mkdir(parents=True, exist_ok=True)
    data = course_data.load(args.data_root, args.data_source, args.train_subset)
    print(f"{recipe.pipeline} pipeline on {runtime.describe()}; {data.sizes()}", flush=True)
    pipeline = make_pipeline(data, recipe, runtime.device, args.workers)
    loaded = time.perf_counter()
    result = engine.train(pipeline, recipe, runtime, args.seed, show_progress=not args.no_progress)
    trained = time.perf_counter()
    predicted = engine.predict_labels(result, pipeline, runtime, recipe, show_progress=not args.no_progress)
    predicted_s = time.perf_counter() - trained

    paths = {name: out / name for name in (outputs.CHECKPOINT_NAME, "predictions.csv", outputs.CURVES_NAME,
                                           outputs.SUMMARY_NAME)}
    outputs.save_checkpoint(result, recipe, paths[outputs.CHECKPOINT_NAME])
    outputs.write_predictions(predicted, paths["predictions.csv"])
    outputs.plot_curves(result, f"ResNet-20, {recipe.pipeline} pipeline ({runtime.describe()})",
                        paths[outputs.CURVES_NAME])
    outputs.write_summary(result, recipe, runtime.describe(), paths[outputs.SUMMARY_NAME])

    train_s = sum(r.train_s for r in result.history)
    epochs = len(result.history)
    return "\n".join([
        f"ResNet-20, {recipe.pipeline} pipeline, {epochs} epoch{'s' * (epochs != 1)} x "
        f"{result.images_per_epoch:,} images, batch {recipe.batch_size}, on {runtime.describe()}",
        f"  best validation accuracy {result.best.val_acc:.2%} (epoch {result.best.epoch}); "
        f"final train accuracy {result.history[-1].train_acc:.2%}",
        f"  training {train_s:.1f} s ({train_s / epochs:.2f} s/epoch, "
        f"{result.images_per_epoch * epochs / train_s:,.0f} images/s)",
        f"  whole run {time.perf_counter() - started:.1f} s: start-up and data {loaded - started:.1f} s, "
        f"epochs with validation {trained - loaded:.1f} s, test predictions {predicted_s:.1f} s",
        f"  wrote {', '.join(str(p) for p in paths.values())} ({len(predicted):,} predictions)",
    ])


def main(argv=None) -> int:
    args = parse_arguments(argv)
    try:
        summary = run(args)
    except (course_data.DataError, engine.RunError, ModelSourceError) as problem:
        return cli.error(str(problem))
    print(summary)
    return cli.EXIT_DONE


if __name__ == "__main__":
    cli.run(main)
