"""Where a grading's time goes: seconds per stage, for staff (``grade -v`` prints the table, ``make
bench-grading`` the median over its submissions, results.json ``extra_data.timings`` keeps them).

The grading parent measures its own stages and when it started each child; the children's reports add what
happened inside (``report_plugin``'s clock, test seconds and timed sections). A report is hostile data: only the
stages named here are read, each a number between 0 and ``MAX_SECONDS``, and nothing decides a verdict.
Child stages overlap (the judge starts beside the export), so the rows add up to more than the wall time.
"""
from __future__ import annotations

import math
import statistics

from course_config import GRADED_NOTEBOOKS
from autograder.student_side.probes import PROGRAM_IDS

MAX_SECONDS = 3600.0
TOTAL = "total (wall)"
# Rows in the order a grading goes through them; per-program and per-part rows are summed into these.
ORDER = ("grader: extract + review", "grader: judge start (none warm)", "student: sandbox + Python + pytest start",
         "student: torch + kit imports", "student: notebook loading", "student: exports", "student: exit", "judge: fork + pytest start",
         "judge: imports + collection", "judge: waits for the export", "judge: program loading", "judge: checks",
         "judge: exit", "grader: predictions + results", TOTAL)


def _seconds(value) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
            and 0.0 <= value <= MAX_SECONDS:
        return float(value)
    return None


def _gap(clock: dict, later: str, earlier: str | float) -> float | None:
    end = clock.get(later)
    start = clock.get(earlier) if isinstance(earlier, str) else earlier
    if not all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in (start, end)):
        return None
    return _seconds(end - start)


def child_stages(stage: str, report: dict | None, started: float, ended: float) -> dict[str, float]:
    """The stages of one finished child run ('export' or 'judge'), from its report and the parent's clock."""
    if not isinstance(report, dict) or not isinstance(report.get("clock"), dict):
        return {}
    clock, timings = report["clock"], report.get("timings")
    timings = timings if isinstance(timings, dict) else {}
    found: dict[str, float | None] = {}
    if stage == "export":
        found["student: sandbox + Python + pytest start"] = _gap(clock, "plugin", started)
        found["student: torch + kit imports"] = _seconds(timings.get("collection"))
        found["student: notebook loading"] = sum(
            _seconds(timings.get(f"load {key}")) or 0.0 for key in GRADED_NOTEBOOKS)
        found["student: exports"] = sum(_seconds(test.get("seconds")) or 0.0 for test in report.get("tests", ())
                                        if isinstance(test, dict) and test.get("case") in PROGRAM_IDS)
    else:
        found["judge: fork + pytest start"] = _gap(clock, "plugin", started)
        found["judge: imports + collection"] = _seconds(timings.get("collection"))
        found["judge: waits for the export"] = _seconds(timings.get("wait")) or 0.0
        found["judge: program loading"] = sum(
            _seconds(timings.get(f"program {program_id}")) or 0.0 for program_id in PROGRAM_IDS)
        found["judge: checks"] = sum(_seconds(test.get("seconds")) or 0.0 for test in report.get("tests", ())
                                     if isinstance(test, dict))
    found[f"{'student' if stage == 'export' else 'judge'}: exit"] = _gap({**clock, "ended": ended}, "ended", "finished")
    return {name: round(value, 3) for name, value in found.items() if value is not None}


def add(into: dict[str, float], stages: dict[str, float]) -> None:
    """Sum ``stages`` into ``into`` (a stage run twice, as in a rerun, counts twice)."""
    for name, value in stages.items():
        into[name] = round(into.get(name, 0.0) + value, 3)


def table(timings: list[dict[str, float]]) -> str:
    """A plain-text table: the median seconds of each stage over ``timings`` (one dict per grading) and its
    share of the median total."""
    rows = [name for name in ORDER if any(name in t for t in timings)]
    if not rows:
        return "no timings"
    medians = {name: statistics.median(t.get(name, 0.0) for t in timings) for name in rows}
    total = medians.get(TOTAL) or 1.0
    width = max(map(len, rows))
    lines = [f"{'stage':<{width}}  median s  share   (over {len(timings)} grading{'s' * (len(timings) != 1)})"]
    lines += [f"{name:<{width}}  {medians[name]:8.2f}  {medians[name] / total:5.0%}" for name in rows]
    return "\n".join(lines)
