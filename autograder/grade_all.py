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

MAX_TOTAL = course_config.AUTOGRADED_MAX       # bonus parts are extra credit on top (AUTOGRADED_BONUS)
BONUS = course_config.AUTOGRADED_BONUS
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

    def totals_line(self) -> str:
        return f"total: {reports.points_line(self.rows, MAX_TOTAL, BONUS)}"

    def summary_markdown(self) -> str:
        lines = [f"# {course_config.ASSIGNMENT_ID}: {len(self.rows)} students", "", self.totals_line(), "",
                 "| test | passed |", "| --- | --- |"]
        lines += [f"| {name} | {passed}/{total} ({passed / total:.0%}) |"
                  for name, passed, total in pass_rates(self.graded)]
        flagged = [row for row in self.rows if row.needs_a_look or self.similar_to.get(row.student)]
        if flagged:
            lines += ["", "## For staff to look at", "",
                      "`needs manual grading`: a part whose code torch.export could not capture, or whose exported "
                      "program computes something else than the student's model, scored 0 automatically: a TA "
                      "grades it by hand (results.json `extra_data.needs_manual_grading` says which part and why); "
                      "`tampered`: scored 0 until reviewed; `review`: the static review's findings (results.json "
                      "`extra_data.review`), which never change a score; `similar to N`: the code-similarity "
                      f"check flagged N pairs with this student (`{SIMILARITY_FOLDER}/similarity.md`).", "",
                      "| student | status | review | similarity |", "| --- | --- | --- | --- |"]
            lines += [f"| {row.student} | {row.status} | {row.review_text()} | "
                      f"{_similar(self.similar_to.get(row.student))} |" for row in flagged]
        return "\n".join(lines) + "\n"


SIMILARITY_FOLDER = "similarity"   # grade-all's code-similarity check, in its --out folder


def _similar(count: int | None) -> str:
    return f"similar to {count}" if count else ""


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

        graded.similar_to, line = check_similarity(submitted_root, out_root / SIMILARITY_FOLDER, [], jobs=jobs)
        log.info(line)
    reports.write_class(graded.rows, AutogradedRow, out_root / "gradebook.csv",
                        f"{course_config.ASSIGNMENT_ID}: autograded totals of {len(graded.rows)} students",
                        MAX_TOTAL, BONUS, histogram=out_root / "totals_histogram.png")
    (out_root / "summary.md").write_text(graded.summary_markdown(), encoding="utf-8")
    return graded
