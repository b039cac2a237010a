"""The report protocol, parent side: what a child of a grading wrote, read as hostile data. A child's pytest
rewrites its report as tests start and end (``student_side/report_plugin.py``); the parent reads it with a size
cap, never through a link, and any decoding error or shape it does not expect is a ``Forgery``. ``Watch``
polls it while the child runs (what is running, for how long, how much the child wrote); ``check_genuine``
decides whether a finished run looks exactly like a genuine one.
"""
from __future__ import annotations

import json
import os
import stat
import time
from dataclasses import dataclass
from typing import Callable
from pathlib import Path

import course_config
from course_config import GRADED_NOTEBOOKS
from autograder import rubric, sandbox
from autograder.stages import EXPORT, JUDGE, Stage
from autograder.student_side import protocol
from autograder.student_side.probes import PROGRAM_IDS, PROGRAMS
from autograder.student_side.protocol import part_of

# What the student process may write into the grader's folders (programs, report; its home without bwrap),
# all together and counted recursively: a ResNet-20 program is 1.4 MB, all 14 programs about 4 MB.
STUDENT_WRITE_BYTES, STUDENT_WRITE_ENTRIES = 64 * 2**20, 256
_REPORT_POLL_S = 0.2


class Forgery(Exception):
    """The child's report or exit status cannot come from a genuine run; the message says what was wrong."""


def read_report(path: Path, nonce: str) -> dict | None:
    """The child's report, None when there is none yet; Forgery when it is not one the plugin wrote. Read as
    hostile data: one regular file (never through a link, never blocking on a FIFO) of at most
    ``REPORT_MAX_BYTES``, and any decoding problem is a forgery, never a crash."""
    try:
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK), "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise Forgery("the grading report is not a regular file")
            data = handle.read(protocol.REPORT_MAX_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise Forgery(f"the grading report cannot be read as a regular file ({type(error).__name__})") from None
    if len(data) > protocol.REPORT_MAX_BYTES:
        raise Forgery(f"the grading report is over {protocol.REPORT_MAX_BYTES // 2**20} MB")
    try:
        report = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError, MemoryError) as error:
        raise Forgery(f"the grading report is not valid JSON ({type(error).__name__})") from None
    if not isinstance(report, dict) or report.get("nonce") != nonce:
        raise Forgery("the grading report does not carry this run's nonce (it was written by student code)")
    if not isinstance(report.get("tests"), list) or not all(
            isinstance(t, dict) and {"nodeid", "part", "check", "name", "passed", "message"} <= t.keys()
            and isinstance(t["passed"], bool) and isinstance(t["message"], str)
            and all(isinstance(t[key], str) for key in ("nodeid", "part", "check", "name"))
            and (t.get("case") is None or isinstance(t["case"], str)) for t in report["tests"]):
        raise Forgery("the grading report has the wrong shape")
    problems = report.get("problems", {})
    if not isinstance(problems, dict) or not all(
            isinstance(lines, list) and all(isinstance(line, str) for line in lines) for lines in problems.values()):
        raise Forgery("the grading report's problems have the wrong shape")
    if not all(report.get(key) is None or isinstance(report[key], str)
               for key in ("current", "loading", "statement", "program", "device")):
        raise Forgery("the grading report's progress fields have the wrong shape")
    return report


class Watch:
    """``should_stop`` for sandbox.run_watched: a part (or a module or program loading) that runs past its time
    limit, the submission's overall deadline, or the child's writable host folders past their budget (counted
    recursively). Also remembers what the child was doing last."""

    def __init__(self, report: Path, nonce: str, policy, deadline: float, writable: list[Path],   # runner.SandboxPolicy
                 waiting: Callable[[], bool] | None = None):
        self.report, self.nonce, self.policy, self.deadline, self.writable = report, nonce, policy, deadline, writable
        self.waiting = waiting
        self.activity: tuple = ("startup",)
        self.since = self.last_read = time.monotonic()

    def __call__(self) -> sandbox.Stop | None:
        now = time.monotonic()
        if now >= self.deadline:
            return sandbox.Stop("timeout", f"the submission's grading time ({self.policy.total_timeout_s:g} s) ran out")
        if self.writable:
            size, entries = sandbox.folder_usage(self.writable, STUDENT_WRITE_ENTRIES)
            if size > STUDENT_WRITE_BYTES or entries > STUDENT_WRITE_ENTRIES:
                return sandbox.Stop("disk", f"wrote more than {STUDENT_WRITE_BYTES // 2**20} MB or "
                                            f"{STUDENT_WRITE_ENTRIES} files into the grader's folders")
        if self.waiting is not None and self.waiting():   # the judge waits for the export: not its own time
            self.since = now
            return None
        if now - self.last_read >= _REPORT_POLL_S:
            self.last_read = now
            try:
                report = read_report(self.report, self.nonce)
            except Forgery:
                report = None   # judged once the run is over
            if report is not None:
                activity = (("loading", report["loading"]) if report.get("loading")
                            else ("program", report["program"]) if report.get("program")
                            else ("part", part_of(report["current"])) if report.get("current") else ("between",))
                if activity != self.activity:
                    self.activity, self.since = activity, now
        if self.activity != ("between",) and now - self.since > self.policy.part_timeout_s:
            return sandbox.Stop("timeout", f"ran for more than {self.policy.part_timeout_s:g} s "
                                           "(an endless loop or very slow code?)")
        return None


@dataclass
class Attempt:
    finished: sandbox.Finished
    report: dict | None
    forgery: str | None
    started: float = 0.0   # time.monotonic() when the child was started, and when it was over
    ended: float = 0.0


def attempt_of(finished: sandbox.Finished, report: Path, nonce: str, started: float) -> Attempt:
    """A finished run and its report (host path), read as hostile data: a forgery is said, never raised."""
    ended = time.monotonic()
    try:
        return Attempt(finished, read_report(report, nonce), None, started, ended)
    except Forgery as forgery:
        return Attempt(finished, None, str(forgery), started, ended)


def check_genuine(stage: Stage, judged: list[str] | None, attempt: Attempt, parts: list[str]) -> None:
    """Raise Forgery unless a finished run looks exactly like a genuine one: pytest exited 0 or 1, and the parts
    report exactly what they should: the rubric's checks, or for the export stage, each of its parts' programs
    (``probes.PROGRAMS``) once."""
    tests = attempt.report["tests"]
    if stage is JUDGE:
        parts = [part for part in parts if part in (judged or ())]
    if attempt.finished.exit_code not in ((0, 1) if parts else (0, 1, 5)):  # 5: no test
        raise Forgery(f"pytest exited with status {attempt.finished.exit_code} after a finished run")
    if stage is EXPORT:
        reported = [(t["part"], t.get("case")) for t in tests]
        expected = {(part, program_id) for part in parts for program_id in PROGRAMS.get(part, ())}
        if len(reported) != len(set(reported)) or set(reported) != expected:
            raise Forgery("the export report's programs are not those of the export tests")
        return
    reported = {(t["part"], t["check"]) for t in tests}
    expected = {(part, check.name) for part in parts for check in rubric.checks(part)}
    if reported != expected:
        odd = sorted(name for _, name in reported ^ expected)[:3]
        raise Forgery(f"the grading report's checks are not those of the hidden suites ({', '.join(odd)})")


def notebook_name(key) -> str:
    return course_config.NOTEBOOKS[key] if key in GRADED_NOTEBOOKS else "a notebook"


def what_was_running(report: dict | None) -> str:
    if report and report.get("loading"):
        statement = report.get("statement")
        return f"while {statement if isinstance(statement, str) else 'the code'} of {notebook_name(report['loading'])} loaded"
    if report and report.get("program") in PROGRAM_IDS:
        return f"while the judge loaded the program {report['program']}"
    if report and report.get("current"):
        return f"in {report['current'].split('::')[-1]}"
    return "before any test started"
