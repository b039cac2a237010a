"""Grade one submission: extract its notebooks, review them for staff, export and judge them in sandboxed
children (autograder/runner.py), score predictions.csv.

Writes ``OUT/results.json`` (Gradescope's schema) and ``OUT/feedback.md``. A broken submission still
gets a result (exit 0): only the kit's own problems (no labels, CUDA asked for but absent) are errors.
"""
from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path

from autograder import profile, results, review
from common.cli import StaffError
from autograder.runner import SandboxPolicy, run_suites
from autograder.submission import GRADED_NOTEBOOKS, extract_modules, find_submission
from course_config import NOTEBOOKS

log = logging.getLogger(__name__)


class GradingError(StaffError):
    """A problem on the staff side (not the student's): the message says what to fix."""


def grade_submission(submission_dir: Path, out_dir: Path, labels, device: str,
                     policy: SandboxPolicy = SandboxPolicy()) -> results.Results:
    """Grade ``submission_dir`` on ``device`` ('cpu' or 'cuda'); writes results.json and feedback.md to
    ``out_dir`` and returns the results."""
    started = time.perf_counter()
    submission = find_submission(submission_dir)
    log.info("%s: notebooks %s, predictions %s", submission_dir, sorted(submission.notebooks) or "none",
             "found" if submission.predictions else "missing")
    with tempfile.TemporaryDirectory(prefix="hw2-student-") as student_dir:
        extract_modules(submission, Path(student_dir))
        findings = review.review_modules(Path(student_dir), {key: NOTEBOOKS[key] for key in GRADED_NOTEBOOKS})
        for finding in findings:
            log.info("%s: review finding: %s", submission_dir, finding.line())
        extracted = time.perf_counter()
        run = run_suites(Path(student_dir), device, policy)
    suites_over = time.perf_counter()
    tests = results.suite_tests(run.tests, run.part_errors) + [results.predictions_test(submission.predictions, labels)]
    result = results.Results(tests, device=run.device, status=run.status, staff_message=run.staff_message,
                             sandbox=run.sandbox, runs=run.runs, problems=submission.problems + run.problems,
                             needs_manual=run.needs_manual,
                             review=[finding.line() for finding in findings] + run.review,
                             timings={"grader: extract + review": round(extracted - started, 3), **run.timings})
    if run.staff_message:
        log.warning("%s: %s", submission_dir, run.staff_message)
    out_dir.mkdir(parents=True, exist_ok=True)
    result.seconds = time.perf_counter() - started   # writing the two files below is not counted (milliseconds)
    result.timings["grader: predictions + results"] = round(result.seconds - (suites_over - started), 3)
    result.timings[profile.TOTAL] = round(result.seconds, 3)
    log.info("%s: %s (status %s, %d runs, %.1f s)", submission_dir, result.summary_line(), result.status,
             result.runs, result.seconds)
    (out_dir / "results.json").write_text(json.dumps(result.to_gradescope(), indent=2) + "\n", encoding="utf-8")
    (out_dir / "feedback.md").write_text(result.feedback_markdown(), encoding="utf-8")
    log.info("%s: where the time went:\n%s", submission_dir, profile.table([result.timings]))
    return result
