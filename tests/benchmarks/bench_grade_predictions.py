"""Benchmark grade_predictions: 1,000 predictions.csv files of 10,000 rows, graded in one process.

    .venv/bin/python tests/benchmarks/bench_grade_predictions.py [--files 1000] [--rows 10000]

Times the importable API (load_labels + grade_file per file) and the batch CLI (a fresh process:
imports, tqdm, gradebook CSV and histogram PNG included). The target is under 10 s for the API.
Not collected by pytest (the name does not start with test_).
"""
from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import grade_predictions as gp  # noqa: E402
from common.cli import Parser  # noqa: E402


def write_files(folder: Path, files: int, rows: int) -> Path:
    """The labels CSV and ``files`` shuffled predictions of about 80 % accuracy; returns the labels path."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, rows)
    labels_path = folder / "labels.csv"
    labels_path.write_text("Id,Label\n" + "".join(f"{i},{v}\n" for i, v in enumerate(labels)))
    submissions = folder / "submissions"
    submissions.mkdir()
    for k in range(files):
        pred = np.where(rng.random(rows) < 0.8, labels, rng.integers(0, 10, rows))
        order = rng.permutation(rows)
        body = "\n".join(f"{i},{v}" for i, v in zip(order.tolist(), pred[order].tolist()))
        (submissions / f"student{k:04d}.csv").write_text("Id,Label\n" + body + "\n")
    return labels_path


def main() -> None:
    parser = Parser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    if args.files < 1 or args.rows < 1:
        parser.error("--files and --rows must be at least 1")
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}, numpy {np.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        labels_path = write_files(folder, args.files, args.rows)
        print(f"generated {args.files} files of {args.rows} rows in {time.perf_counter() - start:.1f} s")
        paths = sorted((folder / "submissions").iterdir())

        start = time.perf_counter()
        labels = gp.load_labels(labels_path)
        results = [gp.grade_file(path, labels) for path in paths]
        api_s = time.perf_counter() - start
        assert all(result.status == "scored" for result in results)
        print(f"API:       {len(paths)} files in {api_s:.2f} s = {len(paths) / api_s:,.0f} files/s "
              f"({1000 * api_s / len(paths):.2f} ms per file)")

        start = time.perf_counter()
        subprocess.run([sys.executable, str(REPO / "grade_predictions.py"), "--batch",
                        str(folder / "submissions"), "--labels", str(labels_path),
                        "--out", str(folder / "gradebook.csv")],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cli_s = time.perf_counter() - start
        print(f"batch CLI: {len(paths)} files in {cli_s:.2f} s = {len(paths) / cli_s:,.0f} files/s "
              "(whole process: imports, gradebook CSV and histogram PNG included)")


if __name__ == "__main__":
    main()
