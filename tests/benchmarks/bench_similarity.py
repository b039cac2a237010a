"""Time the code-similarity check on 50, 100 and 200 students and a 50-file reference folder (issue: all pairs
of 200 students in 60 s on 2 cores; the time should grow no faster than the number of pairs).

Each size runs with ``--jobs 1`` and ``--jobs 2`` side by side. Each student is the reference solution with one random corpus variant (or none) planted in each notebook, so
the students who drew the same variant hold the same code and are flagged; each reference file is a variant's
code with its attributes renamed. Run: ``make bench-similarity`` (``tests/benchmarks/bench_similarity.py [--sizes 50,100,200]``).
"""
from __future__ import annotations

import argparse
import csv
import os
import platform
import random
import shutil
import sys
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import course_config  # noqa: E402
from autograder.similarity.check import run  # noqa: E402
from fixtures import corpus  # noqa: E402

HW2 = course_config.ASSIGNMENT_ID


def build_class(root: Path, students: int, seed: int = 0) -> Path:
    """``students`` submissions, each with one random variant per notebook (or none)."""
    rng = random.Random(seed)
    by_notebook: dict[str, list] = {}
    for variant in corpus.VARIANTS:
        by_notebook.setdefault(variant.notebook, []).append(variant)
    submitted = root / "submitted"
    for index in range(students):
        chosen = [rng.choice([None, *variants]) for variants in by_notebook.values()]

        def edit(key, nb, chosen=chosen):
            for variant in chosen:
                if variant is not None and variant.notebook == key:
                    variant.apply(nb)
        corpus.build_submission(submitted / f"student{index:03d}" / HW2, edit=edit)
    return submitted


def build_references(folder: Path, files: int, seed: int = 1) -> Path:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(files):
        variant = rng.choice(corpus.VARIANTS)
        code = textwrap.dedent(variant.code).replace("self.", f"self.r{index}_")
        (folder / f"public_{index:02d}.py").write_text(f"# public file {index}\nimport torch\n{code}", encoding="utf-8")
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=course_config.REPO_ROOT / "build" / "bench-similarity")
    parser.add_argument("--sizes", default="50,100,200")
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    sizes = [int(size) for size in args.sizes.split(",")]
    submitted = build_class(args.out / "class", max(sizes))
    references = build_references(args.out / "reference", 50)
    rows = []
    for size in sizes:
        subset = args.out / f"class-{size}" / "submitted"
        subset.mkdir(parents=True)
        for folder in sorted(submitted.iterdir())[:size]:
            shutil.copytree(folder, subset / folder.name, copy_function=os.link)   # hard links: no copies
        seconds = []
        for jobs in (1, 2):
            started = time.perf_counter()
            run(subset, args.out / f"out-{size}", [references], jobs=jobs)
            seconds.append(time.perf_counter() - started)
        pairs = size * (size - 1) // 2
        with open(args.out / f"out-{size}" / "similarity.csv", newline="", encoding="utf-8") as handle:
            flagged = sum(1 for row in csv.DictReader(handle) if row["flagged"])
        rows.append((size, pairs, seconds, flagged))
    print(f"\nmachine: {platform.processor() or platform.machine()}, {platform.node()}")
    print("| students | pairs of students | seconds, --jobs 1 | seconds, --jobs 2 | ms per pair (--jobs 2) | flagged pairs (parts) |\n"
          "| --- | --- | --- | --- | --- | --- |")
    for size, pairs, (one, two), flagged in rows:
        print(f"| {size} | {pairs:,} | {one:.1f} | {two:.1f} | {1000 * two / pairs:.2f} | {flagged} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
