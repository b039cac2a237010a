"""Grade a whole class: nbgrader's ``submitted/<student>/hw2/`` tree -> per-student results and a gradebook.

Each student's results go to ``OUT/<student>/hw2/results.json`` and ``feedback.md``; a student whose
results are newer than every file of their submission is skipped (delete the results to regrade).
``OUT/gradebook.csv`` has one row per student (points per part, total, status), ``OUT/summary.md`` the
pass rate of every test, ``OUT/totals_histogram.png`` the distribution of totals.
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

import course_config
from common import reports
from common.reports import AutogradedRow
from autograder import results
from autograder.grade import grade_submission
from autograder.runner import SandboxPolicy

log = logging.getLogger(__name__)


def students(submitted_root: Path) -> list[tuple[str, Path]]:
    """(student, submission folder) for every student folder of nbgrader's submitted/ tree."""
    return [(folder.name, folder / course_config.ASSIGNMENT_ID) for folder in sorted(submitted_root.iterdir())
            if folder.is_dir() and not folder.is_symlink() and not folder.name.startswith(".")]


def _newest_mtime(folder: Path) -> float:
    return max((p.stat().st_mtime for p in folder.rglob("*") if p.is_file()), default=0.0)


def _is_up_to_date(submission: Path, result_file: Path) -> bool:
    return result_file.is_file() and result_file.stat().st_mtime >= _newest_mtime(submission)


def _grade_one(student: str, submission: Path, out_root: Path, labels, device: str,
               policy: SandboxPolicy) -> tuple[str, results.Results | None, str]:
    out = out_root / student / course_config.ASSIGNMENT_ID
    if _is_up_to_date(submission, out / "results.json"):
        try:
            return student, results.Results.load(out / "results.json"), "unchanged"
        except (OSError, ValueError) as error:
            log.warning("%s: stored results unreadable (%s): grading again", student, type(error).__name__)
    if not submission.is_dir():
        return student, None, f"no {course_config.ASSIGNMENT_ID}/ folder in the submission"
    try:
        return student, grade_submission(submission, out, labels, device, policy), "graded"
    except Exception as error:  # a grader bug must not stop the class; the row says so
        log.exception("%s: grader error", student)
        return student, None, f"grader error ({type(error).__name__}: {error}); tell the instructor"


def pass_rates(graded: list[results.Results]) -> list[tuple[str, int, int]]:
    """(test name, passed, graded) for every test that appears in the results, in report order."""
    rates: dict[str, list[int]] = {}
    for result in graded:
        for test in result.tests:
            counts = rates.setdefault(test.name, [0, 0])
            counts[0] += test.passed
            counts[1] += 1
    return [(name, passed, total) for name, (passed, total) in rates.items()]


@dataclass
class ClassResults:
    """A graded class: one gradebook row per student, the results of those who have any, and how many others
    the similarity check ties each student to (a flag for staff, never a score)."""
    rows: list[AutogradedRow]
    graded: list[results.Results]
    similar_to: dict[str, int] = field(default_factory=dict)


def grade_all(submitted_root: Path, out_root: Path, labels, device: str, jobs: int = 1,
              policy: SandboxPolicy = SandboxPolicy(), similarity: bool = True) -> ClassResults:
    out_root.mkdir(parents=True, exist_ok=True)
    found = students(submitted_root)
    log.info("grading %d students from %s with %d jobs on %s", len(found), submitted_root, jobs, device)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:   # the work happens in child processes
        futures = [pool.submit(_grade_one, student, folder, out_root, labels, device, policy) for student, folder in found]
        outcomes = [future.result() for future in tqdm(futures, desc="grading", unit="student")]
    graded = ClassResults(
        rows=[result.gradebook_row(student, how) if result else AutogradedRow.nothing_graded(student, how)
              for student, result, how in outcomes],
        graded=[result for _, result, _ in outcomes if result])
    if similarity:   # read as text, never run: seconds for a class (python -m term similarity adds references)
        from autograder.similarity.check import run as check_similarity

        graded.similar_to, line = check_similarity(submitted_root, out_root / course_config.SIMILARITY_FOLDER, [],
                                                   jobs=jobs)
        log.info(line)
    reports.write_class(graded.rows, AutogradedRow, out_root / "gradebook.csv",
                        f"{course_config.ASSIGNMENT_ID}: autograded totals of {len(graded.rows)} students",
                        course_config.AUTOGRADED_MAX, course_config.AUTOGRADED_BONUS,
                        histogram=out_root / "totals_histogram.png")
    summary = reports.autograded_summary(graded.rows, pass_rates(graded.graded), graded.similar_to)
    (out_root / "summary.md").write_text(summary, encoding="utf-8")
    return graded
