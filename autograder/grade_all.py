"""Grade a whole class: nbgrader's ``submitted/<student>/hw2/`` tree -> per-student results and a gradebook.

Each student's results go to ``OUT/<student>/hw2/results.json`` and ``feedback.md``; a student whose
results are newer than every file of their submission is skipped (delete the results to regrade).
``OUT/gradebook.csv`` has one row per student (points per part, total, status), ``OUT/summary.md`` the
pass rate of every test, ``OUT/totals_histogram.png`` the distribution of totals.
"""
from __future__ import annotations

import csv
import json
import statistics
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm import tqdm

import course_config
import grade_predictions
from autograder import results
from autograder.grade import grade_submission
from autograder.runner import SandboxPolicy

PARTS = (*results.SUITE_PARTS, "predictions")
MAX_TOTAL = float(sum(course_config.AUTOGRADED_POINTS.values()))


def students(submitted_root: Path) -> list[tuple[str, Path]]:
    """(student, submission folder) for every student folder of nbgrader's submitted/ tree."""
    return [(folder.name, folder / course_config.ASSIGNMENT_ID) for folder in sorted(submitted_root.iterdir())
            if folder.is_dir() and not folder.is_symlink() and not folder.name.startswith(".")]


def _newest_mtime(folder: Path) -> float:
    return max((p.stat().st_mtime for p in folder.rglob("*") if p.is_file()), default=0.0)


def _is_up_to_date(submission: Path, result_file: Path) -> bool:
    return result_file.is_file() and result_file.stat().st_mtime >= _newest_mtime(submission)


def _grade_one(student: str, submission: Path, out_root: Path, labels, device: str,
               policy: SandboxPolicy) -> tuple[str, dict | None, str]:
    out = out_root / student / course_config.ASSIGNMENT_ID
    if _is_up_to_date(submission, out / "results.json"):
        return student, json.loads((out / "results.json").read_text(encoding="utf-8")), "unchanged"
    if not submission.is_dir():
        return student, None, f"no {course_config.ASSIGNMENT_ID}/ folder in the submission"
    try:
        return student, grade_submission(submission, out, labels, device, policy), "graded"
    except Exception as error:  # a grader bug must not stop the class; the row says so
        return student, None, f"grader error ({type(error).__name__}: {error}); tell the instructor"


def _row(student: str, result: dict | None, status: str) -> dict:
    """A gradebook row; its status is 'graded', 'unchanged', the grading's verdict ('unverified', 'timeout',
    'memory', 'processes', 'disk', 'exited', 'error', 'tampered') or why there is no result; ``review`` counts
    the static review's findings (staff only)."""
    points = results.part_points(result) if result else {part: 0.0 for part in PARTS}
    verdict = result["extra_data"].get("status", "ok") if result else "ok"
    if status == "graded" and verdict != "ok":
        status = verdict
    findings = len(result["extra_data"].get("review", [])) if result else 0
    return {"student": student, **points, "total": result["score"] if result else 0.0, "status": status,
            "review": f"{findings} finding{'s' * (findings != 1)}" if findings else ""}


def write_gradebook(rows: list[dict], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["student", *PARTS, "total", "status", "review"])
        writer.writeheader()
        writer.writerows(rows)


def pass_rates(graded: list[dict]) -> list[tuple[str, int, int]]:
    """(test name, passed, graded) for every test that appears in the results, in report order."""
    rates: dict[str, list[int]] = {}
    for result in graded:
        for test in result["tests"]:
            counts = rates.setdefault(test["name"], [0, 0])
            counts[0] += test["status"] == "passed"
            counts[1] += 1
    return [(name, passed, total) for name, (passed, total) in rates.items()]


def summary_markdown(rows: list[dict], graded: list[dict]) -> str:
    totals = [row["total"] for row in rows] or [0.0]
    lines = [f"# {course_config.ASSIGNMENT_ID}: {len(rows)} students", "",
             f"total: mean {statistics.mean(totals):.2f}, median {statistics.median(totals):.2f} of {MAX_TOTAL:g}", "",
             "| test | passed |", "| --- | --- |"]
    lines += [f"| {name} | {passed}/{total} ({passed / total:.0%}) |" for name, passed, total in pass_rates(graded)]
    flagged = [row for row in rows if row["status"] not in ("graded", "unchanged") or row["review"]]
    if flagged:
        lines += ["", "## For staff to look at", "",
                  "`unverified`: a part ran in the student's own process (its code could not be exported), so its "
                  "verdicts could be forged; `tampered`: scored 0 until reviewed; `review`: the static review's "
                  "findings (results.json `extra_data.review`), which never change a score.", "",
                  "| student | status | review |", "| --- | --- | --- |"]
        lines += [f"| {row['student']} | {row['status']} | {row['review']} |" for row in flagged]
    return "\n".join(lines) + "\n"


def grade_all(submitted_root: Path, out_root: Path, labels, device: str, jobs: int = 1,
              policy: SandboxPolicy = SandboxPolicy()) -> list[dict]:
    out_root.mkdir(parents=True, exist_ok=True)
    found = students(submitted_root)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:   # the work happens in child processes
        futures = [pool.submit(_grade_one, student, folder, out_root, labels, device, policy) for student, folder in found]
        outcomes = [future.result() for future in tqdm(futures, desc="grading", unit="student")]
    rows = [_row(student, result, status) for student, result, status in outcomes]
    graded = [result for _, result, _ in outcomes if result]
    write_gradebook(rows, out_root / "gradebook.csv")
    (out_root / "summary.md").write_text(summary_markdown(rows, graded), encoding="utf-8")
    grade_predictions.plot_histogram([row["total"] for row in rows], MAX_TOTAL,
                                     f"{course_config.ASSIGNMENT_ID}: autograded totals of {len(rows)} students",
                                     out_root / "totals_histogram.png")
    return rows
