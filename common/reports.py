"""Every class report the kit writes, from typed rows: the predictions gradebook, grade-all's gradebook, the final
grades and the LMS upload, and the summary a person reads of each. Each row type knows its columns and how its
values look in a CSV; ``write_class`` writes any of them as a gradebook CSV and a histogram of its totals, and
every summary says the class's points with the same ``points_line``.

The rows are plain values built by the trusted grader from what it computed or parsed with bounds; the only
text a student's file reaches them through is a predictions message, which quotes it ASCII-escaped and
shortened (``predictions._show``) after fixed words (``line N: ...``), so no cell a student shapes starts a
spreadsheet formula.
"""
from __future__ import annotations

import csv
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Iterable, Protocol, Sequence

import numpy as np

import course_config

PARTS = tuple(course_config.AUTOGRADED_PARTS)
ITEMS = tuple(course_config.HANDOUT_ITEMS)


class Row(Protocol):
    """What every report row has: the student, its points (``total``), and its cells in ``COLUMNS`` order."""
    COLUMNS: ClassVar[tuple[str, ...]]
    student: str

    @property
    def total(self) -> float: ...

    def cells(self) -> dict[str, object]: ...


@dataclass(frozen=True)
class PredictionsRow:
    """One student's predictions.csv: ``accuracy`` is None unless it was scored; ``status`` is one of
    scored, invalid, missing, error, and ``message`` says why it was not scored."""
    COLUMNS: ClassVar = ("student", "accuracy", "points", "status", "message")
    student: str
    accuracy: float | None
    points: float
    status: str
    message: str

    @property
    def total(self) -> float:
        return self.points

    def cells(self) -> dict[str, object]:
        return {"student": self.student, "accuracy": "" if self.accuracy is None else round(self.accuracy, 6),
                "points": round(self.points, 4), "status": self.status, "message": self.message}


@dataclass(frozen=True)
class AutogradedRow:
    """One student of grade-all: the points of every autograded part, their total, the grading's status
    ('graded', 'unchanged', a verdict such as 'timeout' or 'tampered', or why nothing was graded) and how many
    findings the static review has for staff (never a score)."""
    COLUMNS: ClassVar = ("student", *PARTS, "total", "status", "review")
    student: str
    parts: dict[str, float]
    total: float
    status: str
    review: int = 0

    @classmethod
    def nothing_graded(cls, student: str, why: str) -> "AutogradedRow":
        """A student without results (no submission folder, a grader error): every part 0, ``why`` as status."""
        return cls(student, dict.fromkeys(PARTS, 0.0), 0.0, why)

    @property
    def needs_a_look(self) -> bool:
        """Not an ordinary grading: a verdict, an error, or review findings."""
        return self.status not in ("graded", "unchanged") or bool(self.review)

    def review_text(self) -> str:
        return f"{self.review} finding{'s' * (self.review != 1)}" if self.review else ""

    def cells(self) -> dict[str, object]:
        return {"student": self.student, **{part: self.parts[part] for part in PARTS}, "total": self.total,
                "status": self.status, "review": self.review_text()}


@dataclass(frozen=True)
class FinalRow:
    """One student's final grade: the points of every handout item, the autograded, manual and bonus points,
    the total (bonus on top), how many answer cells still wait for a TA, and flags for staff."""
    COLUMNS: ClassVar = ("student", *ITEMS, "autograded", "manual", "bonus", "total", "ungraded", "flags")
    student: str
    items: dict[str, float]
    autograded: float
    manual: float
    bonus: float
    ungraded: int
    flags: tuple[str, ...] = field(default=())

    @property
    def total(self) -> float:
        return self.autograded + self.manual + self.bonus

    def flags_text(self) -> str:
        return "; ".join(self.flags)

    def cells(self) -> dict[str, object]:
        return {"student": self.student, **{item: round(self.items[item], 2) for item in ITEMS},
                "autograded": round(self.autograded, 2), "manual": round(self.manual, 2),
                "bonus": round(self.bonus, 2), "total": round(self.total, 2), "ungraded": self.ungraded,
                "flags": self.flags_text()}


@dataclass(frozen=True)
class LmsRow:
    """The two columns an LMS import (Canvas, a Gradescope roster) maps to a login and an assignment."""
    COLUMNS: ClassVar = ("student", course_config.ASSIGNMENT_ID)
    student: str
    total: float

    def cells(self) -> dict[str, object]:
        return {"student": self.student, course_config.ASSIGNMENT_ID: round(self.total, 2)}


def histogram_path(gradebook) -> Path:
    gradebook = Path(gradebook)
    return gradebook.with_name(gradebook.stem + "_histogram.png")


def write_gradebook(rows: Sequence[Row], out: Path, row_type: type) -> None:
    """A gradebook CSV: a header of ``row_type.COLUMNS`` (also when there are no rows), one row per student."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=row_type.COLUMNS)
        writer.writeheader()
        writer.writerows(row.cells() for row in rows)


def write_class(rows: Sequence[Row], row_type: type, gradebook: Path, title: str, max_points: float,
                bonus: float = 0.0, histogram: Path | None = None) -> None:
    """A class report: the gradebook CSV and the histogram of the rows' totals (``histogram_path`` of the
    gradebook unless ``histogram`` names another file)."""
    write_gradebook(rows, gradebook, row_type)
    plot_histogram([row.total for row in rows], max_points, title, histogram or histogram_path(gradebook), bonus)


def plot_histogram(points: list[float], max_points: float, title: str, png: Path, bonus: float = 0.0) -> None:
    """Points histogram; a bare Agg Figure (no pyplot), so no global backend changes in the caller. ``bonus``
    widens the axis past the maximum (extra credit), which a dashed line marks. An empty class is one 0."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(7, 4), layout="tight")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.hist(points or [0.0], bins=np.linspace(0, max_points + bonus, 25), edgecolor="black")
    ax.set_xlabel(f"points (of {max_points:g}" + (f", + {bonus:g} bonus)" if bonus else ")"))
    if bonus:
        ax.axvline(max_points, color="gray", linestyle="--", linewidth=1)
    ax.set_ylabel("students")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title)
    fig.savefig(png, dpi=100)


def points_line(rows: Sequence[Row], max_points: float, bonus: float = 0.0) -> str:
    """``mean M, median D of MAX`` (``(+ B bonus)`` when there is a bonus) of the rows' totals; an empty class
    counts as one 0."""
    points = [row.total for row in rows] or [0.0]
    return (f"mean {statistics.mean(points):.2f}, median {statistics.median(points):.2f} of {max_points:g}"
            + (f" (+ {bonus:g} bonus)" if bonus else ""))


# --------------------------------------------------------------------------------------------------
# The summaries a person reads at a glance
# --------------------------------------------------------------------------------------------------
def _students(rows: Sequence[Row]) -> str:
    return f"{len(rows)} student{'s' * (len(rows) != 1)}"


def predictions_summary(rows: Sequence[PredictionsRow]) -> str:
    """grade_predictions.py --batch: how many files were scored or not, and the class's accuracy and points;
    unscored students count as 0 in the means and medians."""
    counts = {status: sum(row.status == status for row in rows)
              for status in ("scored", "invalid", "missing", "error")}
    accuracy = [row.accuracy or 0.0 for row in rows] or [0.0]
    tally = ", ".join(f"{n} {status}" for status, n in counts.items() if n or status != "error")
    return "\n".join([
        f"{_students(rows)}: {tally}",
        f"accuracy: mean {statistics.mean(accuracy):.2%}, median {statistics.median(accuracy):.2%}"
        " (unscored count as 0)",
        f"points:   {points_line(rows, course_config.AUTOGRADED_POINTS['predictions'])}",
    ])


def autograded_totals_line(rows: Sequence[AutogradedRow]) -> str:
    return f"total: {points_line(rows, course_config.AUTOGRADED_MAX, course_config.AUTOGRADED_BONUS)}"


def _similar(count: int | None) -> str:
    return f"similar to {count}" if count else ""


def autograded_summary(rows: Sequence[AutogradedRow], pass_rates: Iterable[tuple[str, int, int]],
                       similar_to: dict[str, int]) -> str:
    """grade-all's summary.md: the class's totals, the pass rate of every test (name, passed, graded), and the
    students staff should look at (a verdict, review findings, or pairs the similarity check flagged)."""
    lines = [f"# {course_config.ASSIGNMENT_ID}: {_students(rows)}", "", autograded_totals_line(rows), "",
             "| test | passed |", "| --- | --- |"]
    lines += [f"| {name} | {passed}/{total} ({passed / total:.0%}) |" for name, passed, total in pass_rates]
    flagged = [row for row in rows if row.needs_a_look or similar_to.get(row.student)]
    if flagged:
        lines += ["", "## For staff to look at", "",
                  "`needs manual grading`: a part whose code torch.export could not capture, or whose exported "
                  "program computes something else than the student's model, scored 0 automatically: a TA "
                  "grades it by hand (results.json `extra_data.needs_manual_grading` says which part and why); "
                  "`tampered`: scored 0 until reviewed; `review`: the static review's findings (results.json "
                  "`extra_data.review`), which never change a score; `similar to N`: the code-similarity "
                  f"check flagged N pairs with this student (`{course_config.SIMILARITY_FOLDER}/similarity.md`).", "",
                  "| student | status | review | similarity |", "| --- | --- | --- | --- |"]
        lines += [f"| {row.student} | {row.status} | {row.review_text()} | {_similar(similar_to.get(row.student))} |"
                  for row in flagged]
    return "\n".join(lines) + "\n"


def final_summary(rows: Sequence[FinalRow]) -> str:
    """final-grades: how many students, their totals, who still needs a TA or a look."""
    waiting = [row.student for row in rows if row.ungraded]
    flagged = [f"{row.student} ({row.flags_text()})" for row in rows if row.flags]
    lines = [f"{_students(rows)}: total "
             + points_line(rows, course_config.COURSE_MAX, course_config.COURSE_BONUS)]
    if waiting:
        lines.append(f"answer cells still to grade in formgrader: {', '.join(waiting)}")
    if flagged:
        lines.append(f"flagged: {'; '.join(flagged)}")
    return "\n".join(lines)
