"""pytest plugin (loaded in every grading child with ``-p``): reports every test's outcome to $HW2_REPORT_PATH.

The report is rewritten (atomically) whenever a test starts or ends, so the parent can watch progress and,
if the child dies or is stopped, knows which test or which notebook's code was running (the report's shape is
in ``protocol``).

Test names are ``<part id>: <docstring's first line>`` (plus the parameter id of a parametrized test). What
a failed check costs is not the report's business: the parent reads it from the suites (autograder/rubric.py).
The nonce comes from a pipe ($HW2_NONCE_FD) read when this plugin loads, before any student code exists;
a report without it is a forgery. When the session is over the process ends with ``os._exit``: student
``atexit`` handlers and stray threads never run after the report.

For the staff's profile (``grade -v``, ``make bench-grading``) the report also carries a clock: when this plugin
loaded, when collection ended and when the session finished (``time.monotonic()``, the parent's clock too), each
test's ``seconds`` and the seconds of the ``timed`` sections (a module's loading, a program's, the judge's wait
for the export), each left out of the test or section it ran inside. The parent only ever prints these numbers.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path

import pytest

from autograder.student_side import protocol
from autograder.student_side.protocol import check_name, part_of


def _read_nonce() -> str | None:
    fd = os.environ.pop(protocol.NONCE_FD, None)
    if fd is None:
        return None
    with os.fdopen(int(fd), "rb") as pipe:
        return pipe.read(256).decode("ascii", "replace")


_MAX_CHARS, _MAX_PROBLEMS = 1000, 50   # the parent shows at most 300 characters of a line and 20 lines a module
_NONCE = _read_nonce()
_REPORT_PATH = os.environ.get(protocol.REPORT_PATH)
_items: dict[str, dict] = {}
_outcomes: dict[str, dict] = {}
_state = {"finished": False, "exit_status": None, "current": None, "loading": None, "statement": None,
          "program": None, "problems": {}, "clock": {"plugin": time.monotonic()}, "timings": {}}
_sections: list[list] = []   # the timed sections and the test now running: [label or None, start, inner seconds]
_outermost = [0.0]           # seconds of the sections that ran inside no other


def _write() -> None:
    if not _REPORT_PATH:
        return
    tests = [dict(_items[nodeid], nodeid=nodeid, **_outcomes[nodeid]) for nodeid in _items if nodeid in _outcomes]
    report = {"nonce": _NONCE, "device": os.environ.get(protocol.GRADING_DEVICE, "cpu"), **_state, "tests": tests}
    partial = Path(_REPORT_PATH + ".partial")
    partial.write_text(json.dumps(report), encoding="utf-8")
    os.replace(partial, _REPORT_PATH)


def _begin(label: str | None) -> None:
    _sections.append([label, time.monotonic(), 0.0])


def _end() -> float:
    """Ends the innermost section; its seconds, without those of the sections inside it."""
    _, start, inner = _sections.pop()
    elapsed = time.monotonic() - start
    if _sections:
        _sections[-1][2] += elapsed
    else:
        _outermost[0] += elapsed
    return elapsed - inner


@contextlib.contextmanager
def timed(label: str):
    """Adds the seconds of the block to ``timings[label]`` (and leaves them out of the enclosing test's)."""
    _begin(label)
    try:
        yield
    finally:
        seconds = _end()
        _state["timings"][label] = _state["timings"].get(label, 0.0) + seconds


def mark_loading(key: str | None, statement: str | None = None) -> None:
    """Called by the suites' conftest around loading a student module and before each of its statements (a
    hang or a crash there is that statement's fault)."""
    _state["loading"], _state["statement"] = key, statement
    _write()


def mark_program(program_id: str | None) -> None:
    """Called by the judge around loading a program (a hang there is that program's fault, not the kit's)."""
    _state["program"] = program_id
    _write()


def add_problems(key: str, problems: list[str]) -> None:
    """The statements of module ``key`` that were skipped, for the student's feedback (a few, each short: the
    parent reads at most ``protocol.REPORT_MAX_BYTES`` and shows one short line of each)."""
    _state["problems"][key] = [_short(problem) for problem in problems[:_MAX_PROBLEMS]]
    _write()


def _short(text: str) -> str:
    """Student text (an exception's message) cut so that no report of an honest run nears the parent's cap."""
    return text if len(text) <= _MAX_CHARS else text[:_MAX_CHARS - 3] + "..."


def _describe(item) -> dict:
    """A test's part, its check (every parametrized case of one test function is one check) and its name (the
    check plus the case's id)."""
    part = part_of(str(item.fspath))
    check = check_name(part, item.function.__doc__, item.function.__name__)
    callspec = getattr(item, "callspec", None)
    return {"part": part, "check": check, "name": f"{check} [{callspec.id}]" if callspec is not None else check,
            "case": callspec.id if callspec is not None else None}


def pytest_collection_modifyitems(session, config, items):
    for item in items:
        _items[item.nodeid] = _describe(item)
    _write()


def pytest_collection_finish(session):
    """The collection's seconds since this plugin loaded (imports, conftests), without the timed sections that
    ran meanwhile (the judge waits for the export there, and loads the programs already written)."""
    _state["clock"]["collected"] = time.monotonic()
    _state["timings"]["collection"] = _state["clock"]["collected"] - _state["clock"]["plugin"] - _outermost[0]


def _message(report) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    text = text.removeprefix("Failed: ").removeprefix("AssertionError: ").strip()
    return _short(text.splitlines()[0]) if text else "failed"


def pytest_runtest_logstart(nodeid, location):
    _state["current"] = nodeid
    _begin(None)
    _write()


def pytest_runtest_logreport(report):
    if report.nodeid not in _items:
        return
    outcome = _outcomes.setdefault(report.nodeid, {"passed": True, "message": ""})
    if report.failed and outcome["passed"]:
        outcome.update(passed=False, message=_message(report))
    elif report.skipped and report.when in ("setup", "call") and outcome["passed"]:
        outcome.update(passed=False, message=_message(report))


def pytest_runtest_logfinish(nodeid, location):
    _state["current"] = None
    seconds = _end()
    if nodeid in _outcomes:
        _outcomes[nodeid]["seconds"] = seconds
    _write()


def pytest_sessionfinish(session, exitstatus):
    _state["clock"]["finished"] = time.monotonic()
    _state["exit_status"] = int(exitstatus)
    _state["finished"] = int(exitstatus) in (0, 1, 5) and all(nodeid in _outcomes for nodeid in _items)  # 5: no test
    _write()


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    if _REPORT_PATH and _state["exit_status"] is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_state["exit_status"])
