"""The grading profile (autograder/profile.py): stage seconds from a child's report, read as hostile data."""
from __future__ import annotations

import math

from autograder import profile


def _report(**changes) -> dict:
    report = {"clock": {"plugin": 101.0, "collected": 104.0, "finished": 110.0},
              "timings": {"collection": 2.5, "load simplenn": 0.75, "load resnet": 0.25, "wait": 1.5,
                          "program ResNet20": 0.5},
              "tests": [{"nodeid": "export_resnet20.py::test_ResNet20[ResNet20]", "case": "ResNet20", "seconds": 2.0},
                        {"nodeid": "export_simplenn.py::test_SimpleNN[SimpleNN]", "case": "SimpleNN", "seconds": 0.5}]}
    report.update(changes)
    return report


def test_the_student_process_stages_come_from_its_clock_and_the_parents():
    stages = profile.child_stages("export", _report(), started=100.0, ended=110.25)
    assert stages == {"student: sandbox + Python + pytest start": 1.0, "student: torch + kit imports": 2.5,
                      "student: notebook loading": 1.0, "student: exports": 2.5, "student: exit": 0.25}


def test_the_judge_stages_come_from_its_report():
    stages = profile.child_stages("judge", _report(), started=100.5, ended=111.0)
    assert stages == {"judge: fork + pytest start": 0.5, "judge: imports + collection": 2.5,
                      "judge: waits for the export": 1.5, "judge: program loading": 0.5, "judge: checks": 2.5,
                      "judge: exit": 1.0}


def test_hostile_numbers_and_names_are_dropped_never_trusted():
    hostile = _report(clock={"plugin": "soon", "collected": True, "finished": -1e300},
                      timings={"collection": math.nan, "load simplenn": 1e9, "load ../../etc": 5.0, "wait": -3.0,
                               "program not-a-program": 4.0, "program ResNet20": [1]},
                      tests=[{"case": "ResNet20", "seconds": math.inf}, {"case": "invented", "seconds": 7.0}, "x"])
    stages = profile.child_stages("export", hostile, started=100.0, ended=110.0)
    assert stages == {"student: notebook loading": 0.0, "student: exports": 0.0}
    assert profile.child_stages("judge", {"clock": []}, 0.0, 1.0) == {}
    assert profile.child_stages("judge", None, 0.0, 1.0) == {}


def test_runs_add_up_and_the_table_shows_medians_in_the_grading_order():
    total: dict[str, float] = {}
    profile.add(total, {"student: exports": 1.0})
    profile.add(total, {"student: exports": 2.0, "judge: checks": 1.0})
    assert total == {"student: exports": 3.0, "judge: checks": 1.0}
    text = profile.table([{"student: exports": 3.0, profile.TOTAL: 6.0}, {"student: exports": 1.0, profile.TOTAL: 4.0},
                          {"student: exports": 2.0, profile.TOTAL: 5.0}])
    lines = text.splitlines()
    assert "over 3 gradings" in lines[0]
    assert lines[1].split() == ["student:", "exports", "2.00", "40%"]
    assert lines[-1].split()[-2:] == ["5.00", "100%"]
    assert profile.table([]) == "no timings"
