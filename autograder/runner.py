"""Grade the extracted student modules in three sandboxed stages, and decide which outcomes to trust.

1. **Export** (the student's process): ``student_side/exports`` loads the student's code and saves every object
   the hidden checks need as a ``torch.export`` program. Its report only says which exports failed and why.
2. **Judge** (a process that never runs student code): the hidden suites (``suites/``) load the programs as
   hostile data (``judge/archive.py``), read their graphs and run them on probes drawn after the export, and
   decide every verdict. Its report is trusted: nothing of the student's ran there.
3. **In-process fallback**, only for parts whose objects run but cannot be exported (control flow on tensor
   values, numpy in ``forward``): ``inprocess_suites`` make the same checks in the student's process. Student
   code can forge those verdicts, so such a part is marked ``unverified`` for staff review, and the report
   must carry the nonce, fail every canary and exit 1, or the submission is flagged ``tampered``.

Each child's pytest rewrites a report as tests start and end (``student_side/report_plugin.py``), so when a
run is stopped (a part ran past ``GRADING_PART_TIMEOUT_S``, the memory, process or disk limit) or dies
(``os._exit``, a crash), the parent knows what was running and runs the stage again without it:

- the stop happened while a statement of a notebook's code was loading (an endless loop in a class body,
  ``os._exit`` in a default argument) -> the next run skips that statement, so only what needs it fails;
  after ``MAX_STATEMENT_BLAMES`` such statements, or a stop before any statement ran, the whole module is
  marked broken;
- it happened inside a test -> that test's part gets 0 with the reason, and the next run leaves it out.
"""
from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import course_config
from course_config import GRADED_NOTEBOOKS, SUITE_PARTS
from autograder import rubric, sandbox, warm_judge
from autograder.results import one_line
from autograder.student_side import protocol
from autograder.student_side.protocol import CANARY_PART, part_of

log = logging.getLogger(__name__)
KIT_DIR = Path(__file__).resolve().parent                                                # the autograder package
STUDENT_PACKAGE_DIR = course_config.REPO_ROOT / "source" / course_config.ASSIGNMENT_ID   # holds tools/
# Statements of one module that may each stop a run (and be skipped in the next) before the whole module is.
MAX_STATEMENT_BLAMES = 2
# The worst a submission can force in one stage: one stop per part, per blamed statement and per module, then
# a clean run.
MAX_RUNS = len(SUITE_PARTS) + len(GRADED_NOTEBOOKS) * (MAX_STATEMENT_BLAMES + 1) + 1
# Skipped statements reported per module, and characters of each line, in the student's feedback.
PROBLEMS_PER_MODULE, PROBLEM_CHARS = 20, 300
# What the student process may write as programs, all together (a ResNet-20 program is 1.4 MB).
PROGRAMS_MAX_BYTES = 64 * 2**20
# How bad each status is; the submission's status is the worst of its runs.
STATUS_SEVERITY = ("ok", "unverified", "exited", "timeout", "processes", "memory", "disk", "error", "tampered")
_REPORT_POLL_S = 0.2
_PROGRAM_ID = re.compile(r"[\w.\-]{1,80}")
REFUSED_PREFIX = "the exported program was refused"


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


@dataclass(frozen=True)
class Stage:
    """One kind of child: which test files it runs (``<prefix><part>.py`` in ``folder``, a package folder of
    the kit), which kit folders it may read, whether student code runs in it and whether canaries guard it."""
    name: str
    folder: str                  # below autograder/
    prefix: str
    kit_mounts: tuple[str, ...]  # below autograder/ (folders or files), mounted read-only; inside bwrap the rest
    #                              of the kit is absent
    student_code: bool
    canaries: bool = False
    programs_writable: bool = False


EXPORT = Stage("export", "student_side/exports", "export_", ("student_side",), True, programs_writable=True)
JUDGE = Stage("judge", "suites", "test_", (), False)   # runs in a warm judge, which mounts autograder/ itself
IN_PROCESS = Stage("in-process", "inprocess_suites", "test_", ("student_side", "inprocess_suites", "expectations.py"),
                   True, canaries=True)


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
    unverified: dict[str, str] = field(default_factory=dict)   # part -> what kept it from being exported
    device: str = "cpu"
    sandbox: str = "subprocess"
    runs: int = 0
    seconds: float = 0.0

    def note(self, status: str, problem: str) -> None:
        self.problems.append(problem)
        if STATUS_SEVERITY.index(status) > STATUS_SEVERITY.index(self.status):
            self.status = status

    def flag(self, status: str, staff_message: str, problem: str) -> None:
        self.staff_message = "; ".join(filter(None, (self.staff_message, staff_message)))
        self.note(status, problem)


class Forgery(Exception):
    """The child's report or exit status cannot come from a genuine run; the message says what was wrong."""


@dataclass
class _Layout:
    """Where everything is, as the child sees it (inside bwrap the paths are fixed and short)."""
    tests: Path
    student: Path
    programs: Path
    report: Path
    home: Path
    python_path: list[Path]
    mounts: list[sandbox.Mount]


def _layout(stage: Stage, private: Path, student_dir: Path, programs: Path, use_bwrap: bool,
            user: int | None) -> _Layout:
    (private / "report").mkdir()
    (private / "home").mkdir()
    if user is not None:   # the fallback's child runs as another user: let it reach its own folders only
        for folder in (private, private / "report", private / "home"):
            os.chown(folder, user, user)
        student_dir.chmod(0o755)
    if not use_bwrap:
        return _Layout(KIT_DIR / stage.folder, student_dir, programs, private / "report" / "report.json",
                       private / "home", [course_config.REPO_ROOT, STUDENT_PACKAGE_DIR], [])
    kit, grading = Path("/kit"), Path("/grading")
    mounts = [sandbox.Mount(KIT_DIR / "__init__.py", kit / "autograder" / "__init__.py")]
    mounts += [sandbox.Mount(KIT_DIR / folder, kit / "autograder" / folder) for folder in stage.kit_mounts]
    if stage.student_code:
        mounts.append(sandbox.Mount(STUDENT_PACKAGE_DIR / "tools", kit / "student_package" / "tools"))
    mounts += [sandbox.Mount(student_dir, grading / "student"),
               sandbox.Mount(programs, grading / "programs", writable=stage.programs_writable),
               sandbox.Mount(private / "report", grading / "report", writable=True)]
    return _Layout(kit / "autograder" / stage.folder, grading / "student", grading / "programs",
                   grading / "report" / "report.json", Path("/tmp"), [kit, kit / "student_package"], mounts)


def _child_env(layout: _Layout, device: str, nonce_fd: int, skips: _Skips, probe_seed: int) -> dict:
    env = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"]),
        "HOME": str(layout.home), "TMPDIR": str(layout.home),
        "PYTHONPATH": os.pathsep.join(str(p) for p in layout.python_path),
        "PYTHONDONTWRITEBYTECODE": "1", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "MPLBACKEND": "Agg",
        # The suites use tiny batches: one thread is as fast, and parallel gradings do not fight over cores.
        "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        protocol.STUDENT_DIR: str(layout.student), protocol.REPORT_PATH: str(layout.report),
        protocol.PROGRAMS_DIR: str(layout.programs), protocol.GRADING_DEVICE: device,
        protocol.NONCE_FD: str(nonce_fd), protocol.PROBE_SEED: str(probe_seed),
        protocol.NOTEBOOK_NAMES: json.dumps({key: course_config.NOTEBOOKS[key] for key in GRADED_NOTEBOOKS}),
        protocol.BROKEN_MODULES: json.dumps(skips.modules), protocol.SKIPPED_STATEMENTS: json.dumps(skips.statements),
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
            and isinstance(t["passed"], bool) and isinstance(t["message"], str) for t in report["tests"]):
        raise Forgery("the grading report has the wrong shape")
    problems = report.get("problems", {})
    if not isinstance(problems, dict) or not all(
            isinstance(lines, list) and all(isinstance(line, str) for line in lines) for lines in problems.values()):
        raise Forgery("the grading report's problems have the wrong shape")
    return report


def _folder_bytes(folder: Path) -> int:
    total = 0
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                total += entry.stat(follow_symlinks=False).st_size
    except OSError:
        pass
    return total


class _Watch:
    """``should_stop`` for sandbox.run_watched: a part (or a module loading) that runs past its time limit,
    the submission's overall deadline, or programs beyond PROGRAMS_MAX_BYTES. Also remembers what the child
    was doing last."""

    def __init__(self, report: Path, nonce: str, policy: SandboxPolicy, deadline: float, programs: Path | None,
                 waiting: Callable[[], bool] | None = None):
        self.report, self.nonce, self.policy, self.deadline, self.programs = report, nonce, policy, deadline, programs
        self.waiting = waiting
        self.activity: tuple = ("startup",)
        self.since = self.last_read = time.monotonic()

    def __call__(self) -> sandbox.Stop | None:
        now = time.monotonic()
        if now >= self.deadline:
            return sandbox.Stop("timeout", f"the submission's grading time ({self.policy.total_timeout_s:g} s) ran out")
        if self.waiting is not None and self.waiting():   # the judge waits for the export: not its own time
            self.since = now
            return None
        if now - self.last_read >= _REPORT_POLL_S:
            self.last_read = now
            if self.programs is not None and _folder_bytes(self.programs) > PROGRAMS_MAX_BYTES:
                return sandbox.Stop("disk", f"wrote more than {PROGRAMS_MAX_BYTES // 2**20} MB of programs")
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


@dataclass
class _Context:
    """What every stage of one submission shares."""
    student_dir: Path
    programs: Path
    device: str
    policy: SandboxPolicy
    deadline: float
    use_bwrap: bool
    user: int | None
    probe_seed: int
    judge: warm_judge.WarmJudge | None = None
    folder: Path | None = None        # this submission's folder in the warm judge's inbox
    judged: list[str] | None = None   # the parts the judge decides, known once the export is over

    @property
    def manifest(self) -> Path:
        return self.folder / protocol.PROGRAMS_MANIFEST

    def manifest_missing(self) -> bool:
        return not self.manifest.exists()


def _judge_once(context: _Context, parts: list[str]) -> _Attempt:
    """One run of the hidden suites in the warm judge (a forked copy of it), watched like any child."""
    if not context.judge.alive():   # an earlier run of this submission was stopped: a fresh judge, same inbox
        context.judge = warm_judge.restart(context.judge)
    judge, attempt_dir = context.judge, context.folder / secrets.token_hex(4)
    (attempt_dir / "report").mkdir(parents=True)
    tests = (warm_judge.KIT_INSIDE if context.use_bwrap else KIT_DIR) / JUDGE.folder
    nonce = secrets.token_hex(16)
    report = attempt_dir / "report" / "report.json"
    env = {protocol.STUDENT_DIR: str(judge.inside(context.folder / "student")),
           protocol.PROGRAMS_DIR: str(judge.inside(context.programs)),
           protocol.MANIFEST: str(judge.inside(context.manifest)),
           protocol.REPORT_PATH: str(judge.inside(report)), protocol.GRADING_DEVICE: context.device,
           protocol.PROBE_SEED: str(context.probe_seed),
           protocol.NOTEBOOK_NAMES: json.dumps({key: course_config.NOTEBOOKS[key] for key in GRADED_NOTEBOOKS})}
    argv = [*(str(tests / f"{JUDGE.prefix}{part}.py") for part in parts), "-c", str(tests / "pytest.ini"),
            "--rootdir", str(tests), "-q", "-p", "no:cacheprovider", "-p", "autograder.student_side.report_plugin"]
    finished = judge.run(argv, env=env, cwd=attempt_dir, log=attempt_dir / "log.txt", nonce=nonce,
                         memory_mb=context.policy.memory_mb, max_processes=context.policy.max_processes,
                         should_stop=_Watch(report, nonce, context.policy, context.deadline, None,
                                            waiting=context.manifest_missing))
    try:
        return _Attempt(finished, _read_report(report, nonce), None)
    except Forgery as forgery:
        return _Attempt(finished, None, str(forgery))


def _run_once(stage: Stage, context: _Context, parts: list[str], skips: _Skips) -> _Attempt:
    if stage is JUDGE:
        return _judge_once(context, parts)
    with tempfile.TemporaryDirectory(prefix="hw2-grading-") as private_name:
        private = Path(private_name)
        layout = _layout(stage, private, context.student_dir, context.programs, context.use_bwrap, context.user)
        nonce = secrets.token_hex(16)
        read_end, write_end = os.pipe()
        os.write(write_end, nonce.encode("ascii"))
        os.close(write_end)
        files = [layout.tests / f"{stage.prefix}{part}.py" for part in parts]
        if stage.canaries:
            files.append(layout.tests / f"test_{CANARY_PART}.py")
        argv = [sys.executable, "-m", "pytest", *map(str, files), "-c", str(layout.tests / "pytest.ini"),
                "--rootdir", str(layout.tests), "-q", "-p", "no:cacheprovider",
                "-p", "autograder.student_side.report_plugin"]
        if context.use_bwrap:
            argv = sandbox.bwrap_command(argv, layout.mounts, gpu=context.device == "cuda")
        host_report = private / "report" / "report.json"
        watch = _Watch(host_report, nonce, context.policy, context.deadline,
                       context.programs if stage.programs_writable else None)
        try:
            finished = sandbox.run_watched(
                argv, env=_child_env(layout, context.device, read_end, skips, context.probe_seed),
                cwd=private / "home", memory_mb=context.policy.memory_mb, max_processes=context.policy.max_processes,
                should_stop=watch, pass_fds=(read_end,), use_bwrap=context.use_bwrap,
                user=context.user if stage.student_code else None)
        finally:
            os.close(read_end)
        try:
            return _Attempt(finished, _read_report(host_report, nonce), None)
        except Forgery as forgery:
            return _Attempt(finished, None, str(forgery))


def _check_genuine(stage: Stage, context: _Context, attempt: _Attempt, parts: list[str]) -> None:
    """Raise Forgery unless a finished run looks exactly like a genuine one: pytest exited 0 or 1 (1 when
    canaries ran: every one of them must have failed), and the parts report exactly what they should: the
    rubric's checks, or for the export stage, well-formed program ids of those parts only."""
    tests = attempt.report["tests"]
    graded = [t for t in tests if t["part"] != CANARY_PART]
    if stage.canaries:
        canaries = [t for t in tests if t["part"] == CANARY_PART]
        if not canaries:
            raise Forgery("the canary tests are missing from a finished grading run")
        cheated = [t["name"] for t in canaries if t["passed"]]
        if cheated:
            raise Forgery(f"canary tests that must fail passed ({', '.join(cheated)}): "
                          "student code changed pytest, torch or builtins")
        if attempt.finished.exit_code != 1:
            raise Forgery(f"pytest exited with status {attempt.finished.exit_code} although the canaries failed "
                          "(a genuine run exits 1)")
    if stage is JUDGE:
        parts = [part for part in parts if part in (context.judged or ())]
    if not stage.canaries and attempt.finished.exit_code not in ((0, 1) if parts else (0, 1, 5)):  # 5: no test
        raise Forgery(f"pytest exited with status {attempt.finished.exit_code} after a finished run")
    if stage is EXPORT:
        if not all(t["part"] in parts and isinstance(t.get("case"), str) and _PROGRAM_ID.fullmatch(t["case"])
                   for t in graded) or {t["part"] for t in graded} != set(parts):
            raise Forgery("the export report's programs are not those of the export tests")
        return
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


def _run_stage(stage: Stage, context: _Context, parts: list[str], run: SuiteRun) -> list[dict]:
    """Run ``stage`` for ``parts`` until a run finishes, blaming and leaving out whatever stops it; returns the
    finished run's outcomes (its parts' errors and the problems go into ``run``)."""
    skips = _Skips()
    load_problems: dict[str, list[str]] = {}   # notebook key -> skipped statements, from the last run that loaded it
    parts = list(parts)
    outcomes: list[dict] = []
    runs = 0
    while parts and runs < MAX_RUNS:
        runs += 1
        run.runs += 1
        log.debug("%s stage, run %d: parts %s", stage.name, runs, ", ".join(parts))
        attempt = _run_once(stage, context, parts, skips)
        if attempt.report:   # the child's text: kept short before it reaches the student's feedback
            load_problems.update({key: [one_line(line, PROBLEM_CHARS) for line in lines[:PROBLEMS_PER_MODULE]]
                                  for key, lines in attempt.report.get("problems", {}).items()
                                  if key in GRADED_NOTEBOOKS})
        try:
            if attempt.forgery:
                raise Forgery(attempt.forgery)
            if attempt.finished.stop is None and attempt.report and attempt.report["finished"]:
                _check_genuine(stage, context, attempt, parts)
                outcomes = [dict(t, message=one_line(t["message"])) for t in attempt.report["tests"]
                            if t["part"] != CANARY_PART]
                run.device = attempt.report.get("device", context.device)
                break
        except Forgery as forgery:
            log.warning("%s stage, run %d: flagged as tampered: %s", stage.name, runs, forgery)
            run.flag("tampered", f"flagged as tampered ({stage.name} stage): {forgery}",
                     "this submission was flagged for review by the course staff; its score is 0 until they have "
                     "looked at it")
            return []
        stop = attempt.finished.stop
        status = stop.kind if stop else "exited"
        cause = stop.detail if stop else (f"the grading process exited (status {attempt.finished.exit_code}: "
                                          "os._exit, sys.exit outside a test, or a crash)")
        reason = f"{cause} {_what_was_running(attempt.report)}"
        report = attempt.report or {}
        loading, statement = report.get("loading"), report.get("statement")
        if stage.student_code and loading in GRADED_NOTEBOOKS and loading not in skips.modules:
            blamed = skips.statements.setdefault(loading, {})
            if (isinstance(statement, str) and len(statement) <= 40 and statement not in blamed
                    and len(blamed) < MAX_STATEMENT_BLAMES):
                blamed[statement] = f"it stopped an earlier grading run: {cause}"
                log.info("%s stage, run %d: %s of %s blamed (%s); the next run skips it", stage.name, runs,
                         statement, _notebook(loading), cause)
                run.note(status, f"{_notebook(loading)}: {statement} was skipped: {cause}")
            else:
                skips.modules[loading] = reason
                log.info("%s stage, run %d: %s marked broken (%s)", stage.name, runs, _notebook(loading), reason)
                run.note(status, f"{_notebook(loading)}: {reason}")
        elif report.get("current") and part_of(report["current"]) in parts:
            part = part_of(report["current"])
            parts.remove(part)
            log.info("%s stage, run %d: part %s blamed (%s); the next run leaves it out", stage.name, runs, part,
                     reason)
            run.part_errors[part] = reason
            run.note(status, f"{part}: {reason}")
        else:   # nothing to blame: the kit's own problem, or a crash we cannot place
            if stage.canaries and report.get("current") and part_of(report["current"]) == CANARY_PART:
                run.flag("tampered", f"flagged as tampered: a canary test did not complete ({reason})",
                         "this submission was flagged for review by the course staff")
                return []
            tail = " | ".join(attempt.finished.output.strip().splitlines()[-3:])
            log.error("%s stage, run %d could not run: %s; output: %s", stage.name, runs, reason, tail or "(none)")
            run.flag("error", f"the {stage.name} stage could not run: {reason}; output: {tail or '(none)'}",
                     f"the hidden tests could not run ({reason}); the course staff has been told")
            for part in parts:
                run.part_errors[part] = reason
            return []
    if stage.student_code:
        run.problems = [line for key in GRADED_NOTEBOOKS for line in load_problems.get(key, [])] + [
            line for line in run.problems if not any(line in lines for lines in load_problems.values())]
    return outcomes


def _write_manifest(path: Path, exports: list[dict], judged: list[str]) -> None:
    """programs.json for the judge, from the export stage's outcomes: the parts it decides, and each program's
    state. Written last: the judge, started early, waits for it."""
    manifest = {outcome["case"]: {"exported": outcome["passed"], "message": outcome["message"],
                                  "unexportable": outcome["message"].startswith(protocol.UNEXPORTABLE_PREFIX)}
                for outcome in exports}
    partial = path.with_name(f"{path.name}.partial")
    partial.write_text(json.dumps({"parts": judged, "programs": manifest}), encoding="utf-8")
    os.replace(partial, path)


def _unexportable(exports: list[dict]) -> dict[str, str]:
    """Part -> the first construct that kept one of its objects from being exported."""
    found: dict[str, str] = {}
    for outcome in exports:
        if outcome["message"].startswith(protocol.UNEXPORTABLE_PREFIX):
            found.setdefault(outcome["part"], outcome["message"].removeprefix(protocol.UNEXPORTABLE_PREFIX))
    return found


def _merge(run: SuiteRun, other: SuiteRun) -> None:
    """Fold a stage that ran beside the others (the judge) into the submission's run."""
    run.tests += other.tests
    run.part_errors.update(other.part_errors)
    run.problems += other.problems
    run.runs += other.runs
    if other.staff_message:
        run.staff_message = "; ".join(filter(None, (run.staff_message, other.staff_message)))
    if STATUS_SEVERITY.index(other.status) > STATUS_SEVERITY.index(run.status):
        run.status = other.status


def exported_parts() -> list[str]:
    """The parts with an export file of their own (``student_side/exports/export_<part>.py``). A part without one
    is judged on the programs other parts export (a new check of SimpleNN needs no new export), and has no
    in-process fallback."""
    folder = KIT_DIR / EXPORT.folder
    return [part for part in SUITE_PARTS if (folder / f"{EXPORT.prefix}{part}.py").is_file()]


def run_suites(student_dir: Path, device: str, policy: SandboxPolicy = SandboxPolicy()) -> SuiteRun:
    """Grade every part of the modules in ``student_dir`` on ``device`` ('cpu' or 'cuda'): export, judge, and
    the in-process fallback for what could not be exported. The judge starts beside the export (importing
    torch and its loader takes seconds) and waits for the manifest before it collects any check."""
    started = time.monotonic()
    use_bwrap = policy.uses_bwrap()
    user = None if use_bwrap else sandbox.fallback_user()
    run = SuiteRun(device=device, sandbox="bwrap" if use_bwrap else
                   "subprocess" + ("" if user is None else f" as uid {user}"))
    judge = warm_judge.acquire(device, use_bwrap, _judge_env(use_bwrap))
    folder = judge.new_folder()
    context = None
    try:
        programs = folder / "programs"
        programs.mkdir()
        shutil.copytree(student_dir, folder / "student")   # read as text by the judge's Swish source check
        if user is not None:
            os.chown(programs, user, user)
        context = _Context(student_dir, programs, device, policy, started + policy.total_timeout_s, use_bwrap, user,
                           probe_seed=secrets.randbelow(2**31), judge=judge, folder=folder)
        judge_run = SuiteRun(device=device)
        judging = threading.Thread(target=lambda: judge_run.tests.extend(
            _run_stage(JUDGE, context, list(SUITE_PARTS), judge_run)), daemon=True)
        judging.start()
        exports: list[dict] = []
        exporting = exported_parts()
        try:
            exports = _run_stage(EXPORT, context, exporting, run)
        finally:
            if user is not None:   # the student process is over: from now on only the grader may write here
                os.chown(programs, os.getuid(), os.getgid())
            run.unverified = {} if run.status == "tampered" else _unexportable(exports)
            context.judged = [part for part in SUITE_PARTS if run.status != "tampered" and part not in run.part_errors
                              and part not in run.unverified
                              and (part not in exporting or any(t["part"] == part for t in exports))]
            _write_manifest(context.manifest, exports, context.judged)
            judging.join()
        _merge(run, judge_run)
        if run.status == "tampered":
            run.tests = []
            return _finish(run, started)
        refused = [t for t in run.tests if t["message"].startswith(REFUSED_PREFIX)]
        if refused:
            run.flag("tampered", f"flagged as tampered: {refused[0]['message']}",
                     "this submission was flagged for review by the course staff; its score is 0 until they "
                     "have looked at it")
            return _finish(run, started)
        fallback = [part for part in SUITE_PARTS if part in run.unverified]
        if fallback:
            log.info("graded in-process (unverified): %s", "; ".join(f"{p}: {run.unverified[p]}" for p in fallback))
            run.tests += _run_stage(IN_PROCESS, context, fallback, run)
            for part in fallback:
                run.note("unverified", f"{part}: graded in your own process for the course staff to review, "
                                       f"since torch.export cannot capture {one_line(run.unverified[part], 200)}")
            why = ", ".join(f"{part}: {blocker}" for part, blocker in run.unverified.items())
            run.staff_message = "; ".join(filter(None, (run.staff_message, f"unverified (graded in-process): {why}")))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        warm_judge.release(context.judge if context is not None else judge)
    return _finish(run, started)


def _judge_env(use_bwrap: bool) -> dict:
    """The warm judge's environment (each judging adds its own HW2_* names)."""
    env = {"PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"]),
           "PYTHONPATH": "/kit" if use_bwrap else str(course_config.REPO_ROOT),
           "HOME": "/tmp", "TMPDIR": "/tmp", "PYTHONDONTWRITEBYTECODE": "1", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
           "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    for name in ("CUDA_VISIBLE_DEVICES", "LANG", "LC_ALL"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def _finish(run: SuiteRun, started: float) -> SuiteRun:
    run.seconds = time.monotonic() - started
    log.debug("graded in %d runs, %.1f s, status %s, sandbox %s, device %s", run.runs, run.seconds, run.status,
              run.sandbox, run.device)
    return run
