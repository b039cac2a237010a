"""Benchmark the two ResNet-20 training pipelines side by side, on the same machine, in one run.

    python -m solutions.bench_training [--images N] [--epochs K] [--device auto|cpu|cuda] [--json OUT.json]

Builds (once, cached under build/bench-training/) a synthetic course data set of N training images in
the official format (fixtures/synthetic_cifar10.py, then course_data/build.py: the
real builder and the real tools.dataset), then trains the reference ResNet-20 for 1 + K epochs with
each pipeline. The first epoch is a warm-up and is not counted (torch.compile, cuDNN's autotuning
and the DataLoader's worker start-up happen there); every timing is taken between
torch.cuda.synchronize() calls on a GPU. Prints training images/s and seconds per epoch (validation
excluded, shown apart), the fast/baseline ratio, peak GPU memory and the machine.

Defaults: the full 45,000 images on a GPU; 4,500 on a CPU (an epoch of ResNet-20 takes a few seconds per
thousand images there; the fast recipe then makes only 8 optimizer steps an epoch, too few to learn much,
so read its validation accuracy as a sanity check only on a GPU-sized run). Not collected by pytest.
"""
from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import course_config  # noqa: E402
from common import cli  # noqa: E402
from solutions import course_data, engine, recipes  # noqa: E402
from solutions.kit import REPO  # noqa: E402
from solutions.pipelines import make_pipeline  # noqa: E402

CACHE = REPO / "build" / "bench-training"
GPU_IMAGES, CPU_IMAGES = 45_000, 4_500


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = (f"GPU {torch.cuda.get_device_name()} ({torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB)"
           if torch.cuda.is_available() else "no CUDA GPU")
    return (f"CPU {cpu} ({os.cpu_count()} logical CPUs, torch uses {torch.get_num_threads()} threads), {gpu}; "
            f"torch {torch.__version__}, Python {platform.python_version()}")


def synthetic_course_data(images: int) -> Path:
    """The manifest of a synthetic course build with ``images`` training images (built once, then cached)."""
    per_class = math.ceil(images / (course_config.NUM_CLASSES * (1 - course_config.VAL_FRACTION)))
    folder = CACHE / f"data-{per_class}-per-class"
    manifest = folder / "published" / "manifest.json"
    if not manifest.is_file():
        from course_data.build import build
        from fixtures.synthetic_cifar10 import write_archive

        print(f"building a synthetic course data set ({per_class * 10:,} images) in {folder} ...", flush=True)
        archive = write_archive(folder / "cifar-10-python.tar.gz", train_per_class=per_class, test_per_class=10)
        build(archive, folder / "published", folder / "private" / "test_labels.csv", course_config.DEMO_SECRET,
              allow_unofficial=True, base_url=str(folder / "published"))
    return manifest


def measure(pipeline_name: str, data_root: Path, manifest: Path, images: int, epochs: int, device: str,
            workers: int) -> dict:
    """Train 1 + ``epochs`` epochs with one pipeline; the figures of the timed epochs."""
    recipe = recipes.recipe_for(pipeline_name).with_overrides(epochs=1 + epochs)
    runtime = engine.resolve_runtime(recipe, device)
    data = course_data.load(data_root, manifest, train_subset=images)
    pipeline = make_pipeline(data, recipe, runtime.device, workers)
    if runtime.device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    print(f"\n--- {pipeline_name}: {runtime.describe()}", flush=True)
    result = engine.train(pipeline, recipe, runtime, recipes.DEFAULT_SEED, show_progress=sys.stderr.isatty())
    timed = result.history[1:]
    train_s = sum(r.train_s for r in timed) / len(timed)
    figures = {
        "pipeline": pipeline_name, "runtime": runtime.describe(), "batch_size": recipe.batch_size,
        "images_per_epoch": result.images_per_epoch, "s_per_epoch": train_s,
        "images_per_s": result.images_per_epoch / train_s,
        "eval_s_per_epoch": sum(r.eval_s for r in timed) / len(timed),
        "warmup_epoch_s": result.history[0].train_s,
        "peak_gpu_mib": (torch.cuda.max_memory_allocated() / 2**20 if runtime.device.type == "cuda" else None),
        "final_val_acc": result.history[-1].val_acc,
    }
    del result, pipeline, data
    return figures


def table(rows: list[dict]) -> str:
    header = (f"{'pipeline':<9} {'batch':>5} {'s/epoch':>8} {'images/s':>9} {'val s/epoch':>11} "
              f"{'warm-up s':>9} {'peak GPU MiB':>12} {'val acc':>7}  runtime")
    lines = [header]
    for r in rows:
        peak = "-" if r["peak_gpu_mib"] is None else f"{r['peak_gpu_mib']:,.0f}"
        lines.append(f"{r['pipeline']:<9} {r['batch_size']:>5} {r['s_per_epoch']:>8.2f} {r['images_per_s']:>9,.0f} "
                     f"{r['eval_s_per_epoch']:>11.2f} {r['warmup_epoch_s']:>9.1f} {peak:>12} "
                     f"{r['final_val_acc']:>7.1%}  {r['runtime']}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = cli.Parser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, help=f"training images (default: {GPU_IMAGES:,} on a GPU, "
                                                   f"{CPU_IMAGES:,} on a CPU)")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs after the warm-up (default: %(default)s)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                        help="DataLoader workers of the baseline (default: %(default)s)")
    parser.add_argument("--pipelines", default="baseline,fast", help="comma-separated (default: %(default)s)")
    parser.add_argument("--json", metavar="OUT", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    try:
        device = torch.device(cli.resolve_device(args.device))
    except cli.StaffError as problem:
        return cli.error(str(problem))
    images = args.images or (GPU_IMAGES if device.type == "cuda" else CPU_IMAGES)
    if images < 1 or args.epochs < 1:
        return cli.error("--images and --epochs must be at least 1")
    names = [name.strip() for name in args.pipelines.split(",") if name.strip()]
    unknown = sorted(set(names) - set(recipes.PIPELINES))
    if unknown or not names:
        return cli.error(f"--pipelines: unknown {unknown}; choose from {recipes.PIPELINES}")

    started = time.perf_counter()
    print(f"machine: {machine()}", flush=True)
    manifest = synthetic_course_data(images)
    extracted = manifest.parent.parent / "extracted"
    rows = [measure(name, extracted, manifest, images, args.epochs, str(device), args.workers) for name in names]

    print(f"\nResNet-20 training speed, {images:,} synthetic training images, 1 warm-up + {args.epochs} timed "
          f"epoch{'s' * (args.epochs != 1)} per pipeline, same machine, one run "
          f"({time.perf_counter() - started:.0f} s):")
    print(f"machine: {machine()}")
    print(table(rows))
    by_name = {r["pipeline"]: r for r in rows}
    if {"baseline", "fast"} <= set(by_name):
        fast, base = by_name["fast"], by_name["baseline"]
        print(f"fast / baseline: {fast['images_per_s'] / base['images_per_s']:.2f}x images/s "
              f"({base['s_per_epoch']:.2f} -> {fast['s_per_epoch']:.2f} s per epoch of training)")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "images": images, "timed_epochs": args.epochs,
                                               "rows": rows}, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
