"""``python -m autograder similarity SUBMITTED_ROOT --out DIR [--reference DIR ...]``: the whole check, from the
class's submissions (nbgrader's ``submitted/<student>/hw2/``, as ``grade-all`` reads it) to the reports."""
from __future__ import annotations

import time
from pathlib import Path

from tqdm import tqdm

import course_config
from autograder.grade_all import students
from autograder.similarity import report
from autograder.similarity.compare import compare
from autograder.similarity.units import reference_units, release_units, student_units

RELEASE = course_config.REPO_ROOT / "release" / course_config.ASSIGNMENT_ID


def run(submitted_root: Path, out: Path, references: list[Path], release: Path = RELEASE) -> tuple[dict[str, int], str]:
    """Compare the class, write the reports; returns "similar to N" per student and a summary line."""
    started = time.monotonic()
    units, problems, count = [], [], 0
    for student, folder in tqdm(students(submitted_root), desc="reading submissions", unit="student", leave=False):
        if not folder.is_dir():
            problems.append(f"{student}: no {course_config.ASSIGNMENT_ID}/ folder")
            continue
        count += 1
        theirs, trouble = student_units(student, folder)
        units += theirs
        problems += trouble
        if not theirs:
            problems.append(f"{student}: no code found in the notebooks")
    reference, trouble = reference_units(references)
    problems += trouble
    matches = compare(units, reference, release_units(release))
    counts = report.write(matches, out, problems, count, len(reference))
    flagged = sum(match.flagged for match in matches)
    summary = (f"similarity: {count} students, {len(reference)} reference files, {flagged} flagged pairs "
               f"({time.monotonic() - started:.1f} s): {out / 'similarity.md'}")
    return counts, summary
