"""pytest plugin (loaded in the grading child with ``-p``): writes every test's outcome to $HW2_REPORT_PATH.

The report is a JSON object ``{"device": ..., "tests": [{"part", "name", "weight", "passed", "message"}]}``.
Test names are ``<part id>: <docstring's first line>`` (plus the parameter id of a parametrized test).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

_items: dict[str, dict] = {}
_outcomes: dict[str, dict] = {}


def _describe(item) -> dict:
    part = Path(str(item.fspath)).stem.removeprefix("test_")
    doc = (item.function.__doc__ or item.function.__name__).strip().splitlines()[0].rstrip(".")
    callspec = getattr(item, "callspec", None)
    if callspec is not None:
        doc = f"{doc} [{callspec.id}]"
    marker = item.get_closest_marker("points")
    return {"part": part, "name": f"{part}: {doc}", "weight": float(marker.args[0]) if marker else 1.0}


def pytest_collection_modifyitems(session, config, items):
    for item in items:
        _items[item.nodeid] = _describe(item)


def _message(report) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    text = text.removeprefix("Failed: ").strip()
    return text.splitlines()[0] if text else "failed"


def pytest_runtest_logreport(report):
    if report.nodeid not in _items:
        return
    outcome = _outcomes.setdefault(report.nodeid, {"passed": True, "message": ""})
    if report.failed and outcome["passed"]:
        outcome.update(passed=False, message=_message(report))
    elif report.skipped and report.when in ("setup", "call") and outcome["passed"]:
        outcome.update(passed=False, message=_message(report))


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("HW2_REPORT_PATH")
    if not path:
        return
    tests = [dict(_items[nodeid], **_outcomes.get(nodeid, {"passed": False, "message": "did not run"}))
             for nodeid in _items]
    report = {"device": os.environ.get("HW2_GRADING_DEVICE", "cpu"), "tests": tests}
    Path(path).write_text(json.dumps(report), encoding="utf-8")
