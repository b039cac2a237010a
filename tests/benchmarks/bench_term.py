"""Benchmark a term's grading steps for a class: grade-all, import-nbgrader, final-grades, generate_feedback.

    .venv/bin/python tests/benchmarks/bench_term.py [--students 100] [--jobs 2]

Builds an nbgrader course in build/bench-term/ (rebuilt on every run): the release generated from source/,
and ``submitted/`` with N students cycling through an honest submission (perfect predictions.csv), one with a
SimpleNN mistake, and one missing its Lab 3 notebook and predictions. Then times, one after the other, each
step an instructor runs after collecting, and prints a table of wall seconds (and per student).
Not collected by pytest (the name does not start with test_).
"""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import course_config  # noqa: E402
from common import cli  # noqa: E402
from course_data.build import build  # noqa: E402
from fixtures import corpus  # noqa: E402
from fixtures.synthetic_cifar10 import write_archive  # noqa: E402
from publishing.release import generate  # noqa: E402

HW2 = course_config.ASSIGNMENT_ID
BENCH = REPO / "build" / "bench-term"


def _course(students: int) -> tuple[Path, Path]:
    shutil.rmtree(BENCH, ignore_errors=True)
    archive = write_archive(BENCH / "cifar-10-python.tar.gz", train_per_class=20, test_per_class=1000)
    labels = BENCH / "private" / "test_labels.csv"
    build(archive, BENCH / "published", labels, course_config.DEMO_SECRET, allow_unofficial=True,
          base_url=str(BENCH / "published"))
    course = BENCH / "course"
    shutil.copytree(REPO / "source", course / "source", ignore=shutil.ignore_patterns("__pycache__"))
    generate(course_root=course, db_dir=course)
    templates = BENCH / "templates"
    corpus.build_submission(templates / "honest", predictions=labels)
    mutant = next(m for m in corpus.MUTANTS if m.id == "simplenn-fc1-100")
    corpus.build_case(mutant, templates / "buggy", labels)
    corpus.build_submission(templates / "missing", omit={"resnet"})
    kinds = ("honest", "buggy", "missing")
    for i in range(students):
        shutil.copytree(templates / kinds[i % 3], course / "submitted" / f"student{i:03d}" / HW2)
    return course, labels


def _timed(label: str, args: list[str], cwd: Path) -> tuple[str, float]:
    started = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise cli.StaffError(f"{label} failed: {(done.stderr or done.stdout).strip()[-500:]}")
    return label, seconds


def main(argv: list[str] | None = None) -> int:
    parser = cli.Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    course, labels = _course(args.students)
    db = f"sqlite:///{course / 'gradebook.db'}"
    results, final = course / "results", course / "final"
    py = [sys.executable, "-m"]
    env_path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    os.environ["PATH"] = env_path
    steps = [
        _timed(f"grade-all --jobs {args.jobs}", [*py, "autograder", "grade-all", str(course / "submitted"), "--out",
               str(results), "--labels", str(labels), "--jobs", str(args.jobs), "--device", "cpu", "-q"], REPO),
        _timed("import-nbgrader (first run)", [*py, "term", "import-nbgrader", str(course), "--results",
               str(results), "--db-url", db], REPO),
        _timed("import-nbgrader (rerun)", [*py, "term", "import-nbgrader", str(course), "--results",
               str(results), "--db-url", db], REPO),
        _timed("final-grades", [*py, "term", "final-grades", str(course), "--results", str(results),
               "--db-url", db, "--out", str(final)], REPO),
        _timed("nbgrader generate_feedback", [*py, "nbgrader", "generate_feedback", HW2,
               f"--CourseDirectory.root={course}", f"--CourseDirectory.db_url={db}", "--log-level=WARN"], course),
    ]
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.machine())
    print(f"\n{args.students} students on {cpu}, "
          f"{os.cpu_count()} cores, torch CPU, jobs {args.jobs}")
    print(f"{'step':<32} {'wall s':>8} {'s/student':>10}")
    for label, seconds in steps:
        print(f"{label:<32} {seconds:>8.1f} {seconds / args.students:>10.2f}")
    return cli.EXIT_DONE


if __name__ == "__main__":
    cli.run(main)
