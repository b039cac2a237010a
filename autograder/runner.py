"""Run the hidden suites on extracted student modules in the sandbox, and decide which outcomes to trust.

One sandboxed ``pytest`` run grades every part; an honest submission needs exactly one. The child rewrites
a report as tests start and end (``suites/report_plugin.py``), so when a run is stopped (a part ran past
``GRADING_PART_TIMEOUT_S``, the memory or process limit) or dies (``os._exit``, a crash), the parent knows
what was running and grades again without it:

- the stop happened while a statement of a notebook's code was loading (an endless loop in a class body,
  ``os._exit`` in a default argument) -> the next run skips that statement, so only the tests that need
  what it defines fail; after ``MAX_STATEMENT_BLAMES`` such statements, or a stop before any statement ran,
  the whole module is marked broken and its tests fail at once;
- it happened inside a test -> that test's part gets 0 with the reason, and the next run leaves it out.

Only a run that finished is trusted, and only if its report carries the nonce the parent sent through a
pipe, every canary test (``suites/test_canary.py``) failed, and pytest exited with status 1 (a genuine run
always fails the canaries). Anything else that claims success is a forgery: status ``tampered``.
"""
from __future__ import annotations

import json
import os
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import course_config
from autograder import rubric, sandbox
from autograder.results import SUITE_PARTS, one_line
from autograder.submission import GRADED_NOTEBOOKS
from autograder.suites.report_plugin import CANARY_PART, part_of

SUITES_DIR = Path(__file__).resolve().parent / "suites"
KIT_DIR = SUITES_DIR.parent                                                              # the autograder package
STUDENT_PACKAGE_DIR = course_config.REPO_ROOT / "source" / course_config.ASSIGNMENT_ID   # holds tools/
# Statements of one module that may each stop a run (and be skipped in the next) before the whole module is.
MAX_STATEMENT_BLAMES = 2
# The worst a submission can force: one stop per part, per blamed statement and per module, then a clean run.
MAX_RUNS = len(SUITE_PARTS) + len(GRADED_NOTEBOOKS) * (MAX_STATEMENT_BLAMES + 1) + 1
# Skipped statements reported per module, and characters of each line, in the student's feedback.
PROBLEMS_PER_MODULE, PROBLEM_CHARS = 20, 300
# How bad each status is; the submission's status is the worst of its runs.
STATUS_SEVERITY = ("ok", "exited", "timeout", "processes", "memory", "error", "tampered")
_REPORT_POLL_S = 0.2


@dataclass(frozen=True)
class SandboxPolicy:
    """How student code is contained: ``kind`` 'auto' (bwrap when it works here), 'bwrap' or 'subprocess',
    and the limits (defaults from course_config)."""
    kind: str = "auto"
    part_timeout_s: float = course_config.GRADING_PART_TIMEOUT_S
    total_timeout_s: float = course_config.GRADING_TIMEOUT_S
    memory_mb: float = course_config.GRADING_MEMORY_MB
    max_processes: int = course_config.GRADING_MAX_PROCESSES

    def uses_bwrap(self) -> bool:
        if self.kind == "auto":
            return sandbox.bwrap_problem() is None
        if self.kind == "bwrap" and sandbox.bwrap_problem():
            raise sandbox.SandboxUnavailable(f"--sandbox bwrap was asked for but {sandbox.bwrap_problem()}")
        return self.kind == "bwrap"


@dataclass
class _Skips:
    """What the next run leaves out: modules whose loading stopped a run, and statements that did (by notebook
    key, then ``code cell C, line L``); the values are the reasons the child reports."""
    modules: dict[str, str] = field(default_factory=dict)
    statements: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass
class SuiteRun:
    tests: list[dict] = field(default_factory=list)        # {"nodeid", "part", "check", "name", "passed", "message"}
    part_errors: dict[str, str] = field(default_factory=dict)   # part -> why it has no outcomes
    problems: list[str] = field(default_factory=list)      # for the student's feedback, one line each
    status: str = "ok"                                     # the worst of STATUS_SEVERITY seen
    staff_message: str | None = None                       # why a submission was flagged or failed to run
    device: str = "cpu"
    sandbox: str = "subprocess"
    runs: int = 0
    seconds: float = 0.0

    def note(self, status: str, problem: str) -> None:
        self.problems.append(problem)
        if STATUS_SEVERITY.index(status) > STATUS_SEVERITY.index(self.status):
            self.status = status


class Forgery(Exception):
    """The child's report or exit status cannot come from a genuine run; the message says what was wrong."""


@dataclass
class _Layout:
    """Where everything is, as the child sees it (inside bwrap the paths are fixed and short)."""
    argv_suites: Path
    student: Path
    report: Path
    home: Path
    python_path: list[Path]
    mounts: list[sandbox.Mount]


def _layout(private: Path, student_dir: Path, use_bwrap: bool, user: int | None) -> _Layout:
    (private / "report").mkdir()
    (private / "home").mkdir()
    if user is not None:   # the fallback's child runs as another user: let it reach its own folders only
        for folder in (private, private / "report", private / "home"):
            os.chown(folder, user, user)
        student_dir.chmod(0o755)
    if not use_bwrap:
        return _Layout(SUITES_DIR, student_dir, private / "report" / "report.json", private / "home",
                       [course_config.REPO_ROOT, STUDENT_PACKAGE_DIR], [])
    kit, grading = Path("/kit"), Path("/grading")
    mounts = [sandbox.Mount(KIT_DIR, kit / "autograder"),
              sandbox.Mount(STUDENT_PACKAGE_DIR / "tools", kit / "student_package" / "tools"),
              sandbox.Mount(student_dir, grading / "student"),
              sandbox.Mount(private / "report", grading / "report", writable=True)]
    return _Layout(kit / "autograder" / "suites", grading / "student", grading / "report" / "report.json",
                   Path("/tmp"), [kit, kit / "student_package"], mounts)


def _child_env(layout: _Layout, device: str, nonce_fd: int, skips: _Skips) -> dict:
    env = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"]),
        "HOME": str(layout.home), "TMPDIR": str(layout.home),
        "PYTHONPATH": os.pathsep.join(str(p) for p in layout.python_path),
        "PYTHONDONTWRITEBYTECODE": "1", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "MPLBACKEND": "Agg",
        # The suites use tiny batches: one thread is as fast, and parallel gradings do not fight over cores.
        "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "HW2_STUDENT_DIR": str(layout.student), "HW2_REPORT_PATH": str(layout.report),
        "HW2_GRADING_DEVICE": device, "HW2_NONCE_FD": str(nonce_fd),
        "HW2_BROKEN_MODULES": json.dumps(skips.modules), "HW2_SKIPPED_STATEMENTS": json.dumps(skips.statements),
    }
    for name in ("CUDA_VISIBLE_DEVICES", "LANG", "LC_ALL"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def _read_report(path: Path, nonce: str) -> dict | None:
    """The child's report, None when there is none yet; Forgery when it is not one the plugin wrote."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise Forgery(f"the grading report is not valid JSON ({type(error).__name__})") from None
    if not isinstance(report, dict) or report.get("nonce") != nonce:
        raise Forgery("the grading report does not carry this run's nonce (it was written by student code)")
    if not isinstance(report.get("tests"), list) or not all(
            isinstance(t, dict) and {"nodeid", "part", "check", "name", "passed", "message"} <= t.keys()
            for t in report["tests"]):
        raise Forgery("the grading report has the wrong shape")
    problems = report.get("problems", {})
    if not isinstance(problems, dict) or not all(
            isinstance(lines, list) and all(isinstance(line, str) for line in lines) for lines in problems.values()):
        raise Forgery("the grading report's problems have the wrong shape")
    return report


class _Watch:
    """``should_stop`` for sandbox.run_watched: a part (or a module loading) that runs past its time limit,
    or the submission's overall deadline. Also remembers what the child was doing last."""

    def __init__(self, report: Path, nonce: str, policy: SandboxPolicy, deadline: float):
        self.report, self.nonce, self.policy, self.deadline = report, nonce, policy, deadline
        self.activity: tuple = ("startup",)
        self.since = self.last_read = time.monotonic()

    def __call__(self) -> sandbox.Stop | None:
        now = time.monotonic()
        if now >= self.deadline:
            return sandbox.Stop("timeout", f"the submission's grading time ({self.policy.total_timeout_s:g} s) ran out")
        if now - self.last_read >= _REPORT_POLL_S:
            self.last_read = now
            try:
                report = _read_report(self.report, self.nonce)
            except Forgery:
                report = None   # judged once the run is over
            if report is not None:
                activity = (("loading", report["loading"]) if report.get("loading")
                            else ("part", part_of(report["current"])) if report.get("current") else ("between",))
                if activity != self.activity:
                    self.activity, self.since = activity, now
        if self.activity != ("between",) and now - self.since > self.policy.part_timeout_s:
            return sandbox.Stop("timeout", f"ran for more than {self.policy.part_timeout_s:g} s "
                                           "(an endless loop or very slow code?)")
        return None


@dataclass
class _Attempt:
    finished: sandbox.Finished
    report: dict | None
    forgery: str | None


def _run_once(student_dir: Path, device: str, parts: list[str], skips: _Skips,
              policy: SandboxPolicy, deadline: float, use_bwrap: bool, user: int | None) -> _Attempt:
    with tempfile.TemporaryDirectory(prefix="hw2-grading-") as private_name:
        private = Path(private_name)
        layout = _layout(private, student_dir, use_bwrap, user)
        nonce = secrets.token_hex(16)
        read_end, write_end = os.pipe()
        os.write(write_end, nonce.encode("ascii"))
        os.close(write_end)
        suites = [layout.argv_suites / f"test_{part}.py" for part in (*parts, CANARY_PART)]
        argv = [sys.executable, "-m", "pytest", *map(str, suites), "-c", str(layout.argv_suites / "pytest.ini"),
                "--rootdir", str(layout.argv_suites), "-q", "-p", "no:cacheprovider",
                "-p", "autograder.suites.report_plugin"]
        if use_bwrap:
            argv = sandbox.bwrap_command(argv, layout.mounts, gpu=device == "cuda")
        host_report = private / "report" / "report.json"
        try:
            finished = sandbox.run_watched(
                argv, env=_child_env(layout, device, read_end, skips), cwd=private / "home",
                memory_mb=policy.memory_mb, max_processes=policy.max_processes,
                should_stop=_Watch(host_report, nonce, policy, deadline), pass_fds=(read_end,), use_bwrap=use_bwrap,
                user=user)
        finally:
            os.close(read_end)
        try:
            return _Attempt(finished, _read_report(host_report, nonce), None)
        except Forgery as forgery:
            return _Attempt(finished, None, str(forgery))


def _check_genuine(attempt: _Attempt, parts: list[str]) -> None:
    """Raise Forgery unless a finished run looks exactly like a genuine one: every canary failed, pytest exited
    1, and the graded parts report exactly the checks of the rubric, each with a verdict."""
    canaries = [t for t in attempt.report["tests"] if t["part"] == CANARY_PART]
    if not canaries:
        raise Forgery("the canary tests are missing from a finished grading run")
    cheated = [t["name"] for t in canaries if t["passed"]]
    if cheated:
        raise Forgery(f"canary tests that must fail passed ({', '.join(cheated)}): "
                      "student code changed pytest, torch or builtins")
    if attempt.finished.exit_code != 1:
        raise Forgery(f"pytest exited with status {attempt.finished.exit_code} although the canaries failed "
                      "(a genuine run exits 1)")
    graded = [t for t in attempt.report["tests"] if t["part"] != CANARY_PART]
    if not all(isinstance(t["passed"], bool) and isinstance(t["message"], str) for t in graded):
        raise Forgery("the grading report's verdicts have the wrong types")
    reported = {(t["part"], t["check"]) for t in graded}
    expected = {(part, check.name) for part in parts for check in rubric.checks(part)}
    if reported != expected:
        odd = sorted(name for _, name in reported ^ expected)[:3]
        raise Forgery(f"the grading report's checks are not those of the hidden suites ({', '.join(odd)})")


def _notebook(key) -> str:
    return course_config.NOTEBOOKS[key] if key in GRADED_NOTEBOOKS else "a notebook"


def _what_was_running(report: dict | None) -> str:
    if report and report.get("loading"):
        statement = report.get("statement")
        return f"while {statement if isinstance(statement, str) else 'the code'} of {_notebook(report['loading'])} loaded"
    if report and report.get("current"):
        return f"in {report['current'].split('::')[-1]}"
    return "before any test started"


def run_suites(student_dir: Path, device: str, policy: SandboxPolicy = SandboxPolicy()) -> SuiteRun:
    """Run every hidden suite against the modules in ``student_dir`` on ``device`` ('cpu' or 'cuda')."""
    started = time.monotonic()
    deadline = started + policy.total_timeout_s
    use_bwrap = policy.uses_bwrap()
    user = None if use_bwrap else sandbox.fallback_user()
    run = SuiteRun(device=device, sandbox="bwrap" if use_bwrap else
                   "subprocess" + ("" if user is None else f" as uid {user}"))
    skips = _Skips()
    load_problems: dict[str, list[str]] = {}   # notebook key -> skipped statements, from the last run that loaded it
    parts = list(SUITE_PARTS)
    while parts and run.runs < MAX_RUNS:
        run.runs += 1
        attempt = _run_once(student_dir, device, parts, skips, policy, deadline, use_bwrap, user)
        if attempt.report:   # the child's text: kept short before it reaches the student's feedback
            load_problems.update({key: [one_line(line, PROBLEM_CHARS) for line in lines[:PROBLEMS_PER_MODULE]]
                                  for key, lines in attempt.report.get("problems", {}).items()
                                  if key in GRADED_NOTEBOOKS})
        try:
            if attempt.forgery:
                raise Forgery(attempt.forgery)
            if attempt.finished.stop is None and attempt.report and attempt.report["finished"]:
                _check_genuine(attempt, parts)
                run.tests = [t for t in attempt.report["tests"] if t["part"] != CANARY_PART]
                run.device = attempt.report.get("device", device)
                break
        except Forgery as forgery:
            run.tests, run.part_errors = [], {}
            run.staff_message = f"flagged as tampered: {forgery}"
            run.note("tampered", "this submission was flagged for review by the course staff; its score is 0 "
                                 "until they have looked at it")
            break
        stop = attempt.finished.stop
        status = stop.kind if stop else "exited"
        cause = stop.detail if stop else (f"the grading process exited (status {attempt.finished.exit_code}: "
                                          "os._exit, sys.exit outside a test, or a crash)")
        reason = f"{cause} {_what_was_running(attempt.report)}"
        report = attempt.report or {}
        loading, statement = report.get("loading"), report.get("statement")
        if loading in GRADED_NOTEBOOKS and loading not in skips.modules:
            blamed = skips.statements.setdefault(loading, {})
            if (isinstance(statement, str) and len(statement) <= 40 and statement not in blamed
                    and len(blamed) < MAX_STATEMENT_BLAMES):
                blamed[statement] = f"it stopped an earlier grading run: {cause}"
                run.note(status, f"{_notebook(loading)}: {statement} was skipped: {cause}")
            else:
                skips.modules[loading] = reason
                run.note(status, f"{_notebook(loading)}: {reason}")
        elif report.get("current") and part_of(report["current"]) in parts:
            part = part_of(report["current"])
            parts.remove(part)
            run.part_errors[part] = reason
            run.note(status, f"{part}: {reason}")
        else:   # nothing to blame: the kit's own problem, or a crash we cannot place
            if report.get("current") and part_of(report["current"]) == CANARY_PART:
                run.staff_message = f"flagged as tampered: a canary test did not complete ({reason})"
                run.note("tampered", "this submission was flagged for review by the course staff")
                break
            tail = " | ".join(attempt.finished.output.strip().splitlines()[-3:])
            run.staff_message = f"the hidden tests could not run: {reason}; output: {tail or '(none)'}"
            run.note("error", f"the hidden tests could not run ({reason}); the course staff has been told")
            for part in parts:
                run.part_errors[part] = reason
            break
    run.problems = [line for key in GRADED_NOTEBOOKS for line in load_problems.get(key, [])] + run.problems
    run.seconds = time.monotonic() - started
    return run
