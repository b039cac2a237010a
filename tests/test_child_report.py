"""child_report.read_report: a report with this run's nonce is still hostile data (student code shares the export
process with the plugin and can learn the nonce): every field the grader uses must have the shape it expects."""
from __future__ import annotations

import json

import pytest

from autograder import profile
from autograder.child_report import Forgery, read_report

NONCE = "n0nce"


def _report(path, **test_fields) -> None:
    test = {"nodeid": "export_simplenn.py::test_export[SimpleNN]", "part": "simplenn", "check": "test_export",
            "name": "test_export[SimpleNN]", "passed": True, "message": "", **test_fields}
    path.write_text(json.dumps({"nonce": NONCE, "finished": True, "clock": {}, "tests": [test]}), encoding="utf-8")


def test_a_genuine_shape_is_read(tmp_path):
    _report(tmp_path / "report.json", case="SimpleNN")
    report = read_report(tmp_path / "report.json", NONCE)
    assert report["tests"][0]["case"] == "SimpleNN"
    profile.child_stages("export", report, 0.0, 1.0)   # what the rerun loop does with every report
    _report(tmp_path / "report.json")   # a test without parametrized cases
    assert read_report(tmp_path / "report.json", NONCE)["tests"][0].get("case") is None


@pytest.mark.parametrize("case", [["SimpleNN"], {"a": 1}, 3, True])
def test_a_case_that_is_not_a_string_is_a_forgery_not_a_crash(tmp_path, case):
    """A list as a program id once raised TypeError (unhashable) in the profile and the export check: the grading
    crashed instead of flagging the submission."""
    _report(tmp_path / "report.json", case=case)
    with pytest.raises(Forgery, match="wrong shape"):
        read_report(tmp_path / "report.json", NONCE)
