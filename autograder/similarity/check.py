"""``python -m term similarity SUBMITTED_ROOT --out DIR [--reference DIR ...] [--jobs N]``: the whole check,
from the class's submissions (nbgrader's ``submitted/<student>/hw2/``, as ``grade-all`` reads it) to the reports.
Reading and fingerprinting the notebooks is most of the time; ``--jobs`` spreads it over processes."""
from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from tqdm import tqdm

import course_config
from autograder.grade_all import students
from autograder.similarity import report
from autograder.similarity.compare import compare
from autograder.similarity.units import Unit, reference_units, release_units, student_units

RELEASE = course_config.REPO_ROOT / "release" / course_config.ASSIGNMENT_ID


def _read(student: str, folder: Path) -> tuple[list[Unit], list[str]]:
    if not folder.is_dir():
        return [], [f"{student}: no {course_config.ASSIGNMENT_ID}/ folder"]
    units, problems = student_units(student, folder)
    return units, problems + ([] if units else [f"{student}: no code found in the notebooks"])


def run(submitted_root: Path, out: Path, references: list[Path], release: Path = RELEASE,
        jobs: int = 1) -> tuple[dict[str, int], str]:
    """Compare the class, write the reports; returns "similar to N" per student and a summary line."""
    started = time.monotonic()
    class_ = students(submitted_root)
    count = sum(folder.is_dir() for _, folder in class_)
    names, folders = [student for student, _ in class_], [folder for _, folder in class_]
    shown = dict(total=len(class_), desc="reading submissions", unit="student", leave=False)
    if jobs > 1 and len(class_) > 1:   # forkserver: grade-all has threads running, a fork could inherit a held lock
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("forkserver")) as pool:
            read = list(tqdm(pool.map(_read, names, folders, chunksize=4), **shown))
    else:
        read = list(tqdm(map(_read, names, folders), **shown))
    units = [unit for theirs, _ in read for unit in theirs]
    problems = [line for _, trouble in read for line in trouble]
    reference, trouble = reference_units(references)
    problems += trouble
    matches = compare(units, reference, release_units(release))
    counts = report.write(matches, out, problems, count, len(reference))
    flagged = sum(match.flagged for match in matches)
    summary = (f"similarity: {count} students, {len(reference)} reference files, {flagged} flagged pairs "
               f"({time.monotonic() - started:.1f} s): {out / 'similarity.md'}")
    return counts, summary
