"""common/reports.py: every class report's typed rows lay out exactly their columns, and one writer writes them."""
from __future__ import annotations

import csv

import pytest

import course_config
from common import reports
from common.reports import AutogradedRow, FinalRow, LmsRow, PredictionsRow

EXAMPLES = {
    PredictionsRow: PredictionsRow("ana", 0.912345678, 10.94814, "scored", ""),
    AutogradedRow: AutogradedRow("ana", {part: 1.0 for part in reports.PARTS}, 6.0, "graded", 2),
    FinalRow: FinalRow("ana", {item: 1 / 3 for item in reports.ITEMS}, 50.004, 30.0, 2.5, 1,
                       ("review: 2", "similar to 1")),
    LmsRow: LmsRow("ana", 82.504),
}


@pytest.mark.parametrize("row_type", list(EXAMPLES), ids=lambda t: t.__name__)
def test_a_rows_cells_are_its_columns_in_order(row_type, tmp_path):
    row = EXAMPLES[row_type]
    assert list(row.cells()) == list(row_type.COLUMNS)
    out = tmp_path / "gradebook.csv"
    reports.write_class([row, row], row_type, out, "title", 100.0, 10.0)
    with open(out, newline="", encoding="utf-8") as handle:
        lines = list(csv.reader(handle))
    assert lines[0] == list(row_type.COLUMNS) and len(lines) == 3
    assert reports.histogram_path(out).read_bytes().startswith(b"\x89PNG")


def test_cells_are_the_gradebooks_text():
    assert PredictionsRow("bob", None, 0.0, "invalid", "line 2: ...").cells()["accuracy"] == ""
    assert EXAMPLES[PredictionsRow].cells()["accuracy"] == 0.912346
    final = EXAMPLES[FinalRow].cells()
    assert (final["1.1"], final["total"], final["flags"]) == (0.33, 82.5, "review: 2; similar to 1")
    assert EXAMPLES[LmsRow].cells() == {"student": "ana", course_config.ASSIGNMENT_ID: 82.5}
    assert EXAMPLES[AutogradedRow].cells()["review"] == "2 findings"
    assert AutogradedRow("ana", {}, 0.0, "graded", 1).review_text() == "1 finding"


def test_a_student_without_results_is_all_zeros_and_needs_a_look():
    row = AutogradedRow.nothing_graded("cleo", "no hw2/ folder in the submission")
    assert row.cells() == {"student": "cleo", **dict.fromkeys(reports.PARTS, 0.0), "total": 0.0,
                           "status": "no hw2/ folder in the submission", "review": ""}
    assert row.needs_a_look
    assert not AutogradedRow("ana", {}, 1.0, "unchanged").needs_a_look
    assert AutogradedRow("ana", {}, 1.0, "graded", review=1).needs_a_look


def test_an_empty_class_still_gets_a_header_a_histogram_and_a_points_line(tmp_path):
    out = tmp_path / "nested" / "final_grades.csv"
    reports.write_class([], FinalRow, out, "nobody", course_config.COURSE_MAX, course_config.COURSE_BONUS)
    assert out.read_text(encoding="utf-8").splitlines() == [",".join(FinalRow.COLUMNS)]
    assert reports.histogram_path(out).is_file()
    assert reports.points_line([], 100) == "mean 0.00, median 0.00 of 100"


def test_the_points_line_is_of_the_rows_totals():
    rows = [LmsRow("a", 10.0), LmsRow("b", 20.0), LmsRow("c", 90.0)]
    assert reports.points_line(rows, 100, 10) == "mean 40.00, median 20.00 of 100 (+ 10 bonus)"


def test_the_final_summary_names_who_still_waits_for_a_ta_or_a_look():
    done = FinalRow("ana", {}, 20.0, 70.0, 5.0, 0)
    waiting = FinalRow("ben", {}, 20.0, 10.0, 0.0, 4, ("needs manual grading: resnet20",))
    lines = reports.final_summary([done, waiting]).splitlines()
    assert lines == ["2 students: total mean 62.50, median 62.50 of 100 (+ 10 bonus)",
                     "answer cells still to grade in formgrader: ben",
                     "flagged: ben (needs manual grading: resnet20)"]
    assert reports.final_summary([done]) == "1 student: total mean 95.00, median 95.00 of 100 (+ 10 bonus)"
