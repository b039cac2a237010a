"""One grade per student after hand grading: the gradebook's points per handout item, out of 100 plus bonus.

    python -m term final-grades COURSE --results AUTOGRADED_ROOT --out DIR [--db-url URL]

Reads nbgrader's gradebook (after ``import-nbgrader`` and the TAs' work in formgrader) and the grader's
results.json files, and writes to DIR:
  * ``final_grades.csv``: per student the points of every handout item (course_config.HANDOUT_ITEMS), then
    ``autograded``, ``manual``, ``bonus`` (every extra credit: bonus items and any a TA gave) and ``total``
    (of ``course_config.COURSE_MAX``; bonus on top), ``ungraded`` (answer cells still waiting for a TA) and
    ``flags`` (``tampered``, ``needs manual grading``, ``review``, ``similar to N`` from grade-all's similarity
    check in ``AUTOGRADED_ROOT/similarity/``, ``no autograder results``, missing files, notebooks nbgrader could
    not read and formgrader therefore lacks);
  * ``lms_grades.csv``: ``student,<assignment>`` with the total, the two columns an LMS import (Canvas,
    a Gradescope roster) maps to a login and an assignment;
  * ``final_grades_histogram.png``: the totals.
An item's points are the score of each of its cells: a TA's manual score when there is one, else the
automatic one, plus any extra credit (also on a cell nobody has scored yet).
"""
from __future__ import annotations

from pathlib import Path

import course_config
from common import reports
from common.reports import FinalRow, LmsRow
from term.nbgrader_import import ASSIGNMENT, load_results, test_cells
from autograder.similarity.report import read_similar_to

SUBMITTED_FILES = (*(course_config.NOTEBOOKS[key] for key in course_config.NOTEBOOKS if key != "save_predictions"),
                   course_config.PREDICTIONS_FILENAME)


def _cells_of_items() -> dict[str, list[tuple[str, str]]]:
    """item -> [(grade_id, notebook name without .ipynb)] of every cell whose points count towards it."""
    parts = test_cells()
    cells = {}
    for item, spec in course_config.HANDOUT_ITEMS.items():
        notebook = Path(course_config.NOTEBOOKS[spec["notebook"]]).stem
        cells[item] = [(cell, notebook) for cell in spec.get("cells", {})]
        cells[item] += [(parts[part][0], parts[part][1]) for part in spec.get("parts", ())]
    return cells


ITEM_CELLS = _cells_of_items()


def _flags(course: Path, student: str, results, similar_to: dict[str, int]) -> list[str]:
    """The student's flags from their results (None when there are none), the similarity check's counts
    (read once for the class) and their folders."""
    flags = []
    if results is None:
        flags.append("no autograder results")
    else:
        if results.status not in ("ok", "needs manual grading"):
            flags.append(results.status)
        if results.needs_manual:
            flags.append(f"needs manual grading: {' '.join(sorted(results.needs_manual))}")
        if results.review:
            flags.append(f"review: {len(results.review)}")
    similar = similar_to.get(student)
    if similar:
        flags.append(f"similar to {similar}")
    folder = course / "submitted" / student / ASSIGNMENT
    missing = [name for name in SUBMITTED_FILES if not (folder / name).is_file()]
    if missing:
        flags.append(f"missing: {' '.join(missing)}")
    imported = course / "autograded" / student / ASSIGNMENT
    unread = [name for name in SUBMITTED_FILES if name.endswith(".ipynb") and name not in missing
              and not (imported / name).is_file()]
    if unread:
        flags.append(f"not in formgrader: {' '.join(unread)}")
    return flags


def _row(student: str, scores: dict, ungraded: int, flags: list[str]) -> FinalRow:
    """One student's row from each cell's (score, extra credit), keyed by (grade_id, notebook)."""
    items = {}
    autograded = manual = bonus = 0.0
    for item, cells in ITEM_CELLS.items():
        points = 0.0
        for cell in cells:
            base, extra = scores.get(cell, (0.0, 0.0))
            points += base + extra
            bonus += extra
            if course_config.HANDOUT_ITEMS[item].get("bonus"):
                bonus += base   # a bonus cell's own score (normally 0: its max is 0)
            elif cell[0] in course_config.MANUAL_CELLS:
                manual += base
            else:
                autograded += base
        items[item] = points
    return FinalRow(student, items, autograded, manual, bonus, ungraded, tuple(flags))


def _outside_gradebook(course: Path, results_root: Path, student: str, similar_to: dict[str, int]) -> FinalRow:
    """A student nbgrader never recorded: the grader's points, every answer cell still to grade by hand."""
    results = load_results(results_root, student)
    earned = results.part_points() if results else {}
    scores = {(grade_id, notebook): (0.0, earned.get(part, 0.0)) if bonus else (earned.get(part, 0.0), 0.0)
              for part, (grade_id, notebook, bonus) in test_cells().items()}
    flags = ["not in nbgrader's gradebook: grade its answers by hand",
             *_flags(course, student, results, similar_to)]
    manual_parts = len(results.needs_manual) if results else 0
    return _row(student, scores, len(course_config.MANUAL_CELLS) + manual_parts, flags)


def student_rows(course: Path, results_root: Path, db_url: str) -> list[FinalRow]:
    """Every student of the gradebook, and every student of submitted/ it lacks, by student id."""
    from nbgrader.api import Gradebook

    rows = {}
    similar_to = read_similar_to(results_root / course_config.SIMILARITY_FOLDER)
    with Gradebook(db_url) as gradebook:
        for submission in gradebook.find_assignment(ASSIGNMENT).submissions:
            student = submission.student.id
            every_grade = [grade for notebook in submission.notebooks for grade in notebook.grades]
            scores = {(grade.name, grade.notebook.name):
                      (grade.manual_score if grade.manual_score is not None else (grade.auto_score or 0.0),
                       grade.extra_credit or 0.0) for grade in every_grade}
            rows[student] = _row(student, scores, sum(1 for grade in every_grade if grade.needs_manual_grade),
                                 _flags(course, student, load_results(results_root, student), similar_to))
    for folder in (course / "submitted").iterdir():
        if folder.is_dir() and not folder.name.startswith(".") and folder.name not in rows:
            rows[folder.name] = _outside_gradebook(course, results_root, folder.name, similar_to)
    return [rows[student] for student in sorted(rows)]


def write_final_grades(course: Path, results_root: Path, out: Path, db_url: str) -> list[FinalRow]:
    rows = student_rows(course, results_root, db_url)
    out.mkdir(parents=True, exist_ok=True)
    reports.write_class(rows, FinalRow, out / "final_grades.csv", f"{ASSIGNMENT}: final totals of {len(rows)} students",
                        course_config.COURSE_MAX, course_config.COURSE_BONUS)
    reports.write_gradebook([LmsRow(row.student, row.total) for row in rows], out / "lms_grades.csv", LmsRow)
    return rows
