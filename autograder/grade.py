"""Grade one submission: extract its notebooks, review them for staff, export and judge them in sandboxed
children (autograder/runner.py), score predictions.csv.

Writes ``OUT/results.json`` (Gradescope's schema) and ``OUT/feedback.md``. A broken submission still
gets a result (exit 0): only the kit's own problems (no labels, CUDA asked for but absent) are errors.
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from autograder import results, review
from autograder.runner import SandboxPolicy, run_suites
from autograder.submission import GRADED_NOTEBOOKS, extract_modules, find_submission
from course_config import NOTEBOOKS


class GradingError(RuntimeError):
    """A problem on the staff side (not the student's): the message says what to fix."""


def resolve_device(requested: str) -> str:
    """'auto' -> 'cuda' when a GPU is usable, else 'cpu'; 'cuda' without a GPU is an error."""
    import torch

    if requested not in ("auto", "cuda", "cpu"):
        raise GradingError(f"--device must be auto, cuda or cpu, got {requested!r}")
    if requested == "cuda" and not torch.cuda.is_available():
        raise GradingError("--device cuda was asked for but no CUDA GPU is available here; use --device auto or cpu")
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def grade_submission(submission_dir: Path, out_dir: Path, labels, device: str,
                     policy: SandboxPolicy = SandboxPolicy()) -> dict:
    """Grade ``submission_dir`` on ``device`` ('cpu' or 'cuda'); writes and returns results.json's content."""
    started = time.perf_counter()
    submission = find_submission(submission_dir)
    with tempfile.TemporaryDirectory(prefix="hw2-student-") as student_dir:
        extract_modules(submission, Path(student_dir))
        findings = review.review_modules(Path(student_dir), {key: NOTEBOOKS[key] for key in GRADED_NOTEBOOKS})
        run = run_suites(Path(student_dir), device, policy)
    tests = results.suite_tests(run.tests, run.part_errors) + [results.predictions_test(submission.predictions, labels)]
    result = results.results_json(tests, seconds=time.perf_counter() - started, run=run,
                                  problems=submission.problems + run.problems,
                                  review=[finding.line() for finding in findings])
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (out_dir / "feedback.md").write_text(results.feedback_markdown(result), encoding="utf-8")
    return result
