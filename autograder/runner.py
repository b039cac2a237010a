"""Grade the extracted student modules in two sandboxed stages, and decide which outcomes to trust.

1. **Export** (the student's process: with bwrap a child forked from the slot's warm zygote, else a sandboxed
   subprocess): ``student_side/exports`` loads the student's code and saves every object the hidden checks
   need as a ``torch.export`` program, compared with the live object on the same inputs. Its report only says
   which exports failed and why; whatever it says, no verdict comes from it.
2. **Judge** (a process that never runs student code): the hidden suites (``suites/``) load the programs as
   hostile data (``judge/archive.py``: a closed op set, no code), read their graphs and run them on probes
   drawn after the export, and decide every verdict.

A part whose object runs but cannot be exported, or whose program computes something else than the live
object, scores 0 automatically and is marked ``needs manual grading`` with the construct that blocked the
capture: a TA grades it by hand. Nothing is graded in the student's process.

Each child's pytest rewrites a report as tests start and end (``student_side/report_plugin.py``), so when a
run is stopped (a part ran past ``GRADING_PART_TIMEOUT_S``, the memory, process or disk limit) or dies
(``os._exit``, a crash), the parent knows what was running and runs the stage again without it:

- the stop happened while a statement of a notebook's code was loading (an endless loop in a class body,
  ``os._exit`` in a default argument) -> the next run skips that statement, so only what needs it fails;
  after ``MAX_STATEMENT_BLAMES`` such statements, or a stop before any statement ran, the whole module is
  marked broken;
- it happened while the judge loaded a program -> the checks that need that program fail, saying so;
- it happened inside a test -> that test's part gets 0 with the reason, and the next run leaves it out.

Every file a child writes is hostile data: reports are read with a size cap and any decoding error flags the
submission, the student's writable folders are counted recursively against a budget (and no file grows past
``RLIMIT_FSIZE``), and the judge reads only the programs of ``probes.PROGRAMS``. Each child's report also
carries its clock, from which the parent measures every stage (``autograder/profile.py``; printed only).
"""
from __future__ import annotations

import json
import logging
import os
import stat
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
from autograder import profile, rubric, sandbox, warm_judge
from autograder.results import one_line
from autograder.student_side import protocol
from autograder.student_side.probes import PROGRAM_IDS, PROGRAMS
from autograder.student_side.protocol import part_of

log = logging.getLogger(__name__)
KIT_DIR = Path(__file__).resolve().parent                                                # the autograder package
# Statements of one module that may each stop a run (and be skipped in the next) before the whole module is.
MAX_STATEMENT_BLAMES = 2
# The worst a submission can force in one stage: one stop per part, per program, per blamed statement and per
# module, then a clean run.
MAX_RUNS = len(SUITE_PARTS) + len(PROGRAM_IDS) + len(GRADED_NOTEBOOKS) * (MAX_STATEMENT_BLAMES + 1) + 1
# Skipped statements reported per module, and characters of each line, in the student's feedback.
PROBLEMS_PER_MODULE, PROBLEM_CHARS = 20, 300
# What the student process may write into the grader's folders (programs, report; its home without bwrap),
# all together and counted recursively: a ResNet-20 program is 1.4 MB, all 14 programs about 4 MB.
STUDENT_WRITE_BYTES, STUDENT_WRITE_ENTRIES = 64 * 2**20, 256
MANUAL = "needs manual grading"
# How bad each status is; the submission's status is the worst of its runs.
STATUS_SEVERITY = ("ok", MANUAL, "exited", "timeout", "processes", "memory", "disk", "error", "tampered")
_REPORT_POLL_S = 0.2
REFUSED_PREFIX = "the exported program was refused"
TAMPERED_PROBLEM = ("this submission was flagged for review by the course staff; its score is 0 until they have "
                    "looked at it")


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
    the kit) and whether student code runs in it."""
    name: str
    folder: str                  # below autograder/
    prefix: str
    student_code: bool


EXPORT = Stage("export", "student_side/exports", "export_", True)   # a child of the zygote, with bwrap
JUDGE = Stage("judge", "suites", "test_", False)                    # a child of the warm judge


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
    needs_manual: dict[str, str] = field(default_factory=dict)   # part -> why a TA grades it (what blocked it)
    review: list[str] = field(default_factory=list)        # for staff: exported programs unlike the live objects
    device: str = "cpu"
    sandbox: str = "subprocess"
    runs: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)   # stage -> seconds (autograder/profile.py)

    def worsen(self, status: str) -> None:
        if STATUS_SEVERITY.index(status) > STATUS_SEVERITY.index(self.status):
            self.status = status

    def note(self, status: str, problem: str) -> None:
        self.problems.append(problem)
        self.worsen(status)

    def flag(self, status: str, staff_message: str, problem: str) -> None:
        self.staff_message = "; ".join(filter(None, (self.staff_message, staff_message)))
        self.note(status, problem)


class Forgery(Exception):
    """The child's report or exit status cannot come from a genuine run; the message says what was wrong."""


@dataclass
class _Layout:
    """Where everything is for a student process spawned per submission (the subprocess fallback, or bwrap where
    the zygote cannot isolate its children), as it sees it, and the host folders it may write."""
    tests: Path
    student: Path
    programs: Path
    report: Path
    home: Path
    python_path: list[Path]
    mounts: list[sandbox.Mount]
    writable: list[Path]


def _layout(private: Path, student_dir: Path, programs: Path, use_bwrap: bool,
            user: int | None) -> _Layout:
    """The layout of a student process spawned per submission (usually, with bwrap, it is a zygote's child)."""
    (private / "report").mkdir()
    (private / "home").mkdir()
    if user is not None:   # the fallback's child runs as another user: let it reach its own folders only
        for folder in (private, private / "report", private / "home"):
            os.chown(folder, user, user)
        student_dir.chmod(0o755)
    if not use_bwrap:
        return _Layout(KIT_DIR / EXPORT.folder, student_dir, programs, private / "report" / "report.json",
                       private / "home", [course_config.REPO_ROOT, warm_judge.STUDENT_PACKAGE_DIR], [],
                       [programs, private / "report", private / "home"])
    grading = Path("/grading")
    mounts = [*warm_judge.student_kit_mounts(), sandbox.Mount(student_dir, grading / "student"),
              sandbox.Mount(programs, grading / "programs", writable=True),
              sandbox.Mount(private / "report", grading / "report", writable=True)]
    return _Layout(warm_judge.KIT_INSIDE / EXPORT.folder, grading / "student", grading / "programs",
                   grading / "report" / "report.json", Path("/tmp"),
                   [warm_judge.KIT_INSIDE.parent, warm_judge.STUDENT_PACKAGE_INSIDE], mounts,
                   [programs, private / "report"])


def _student_env(student: Path, report: Path, programs: Path, home: Path, context: "_Context",
                 skips: _Skips) -> dict:
    """What the student process reads (paths as it sees them)."""
    return {"HOME": str(home), "TMPDIR": str(home),
            protocol.STUDENT_DIR: str(student), protocol.REPORT_PATH: str(report),
            protocol.PROGRAMS_DIR: str(programs), protocol.GRADING_DEVICE: context.device,
            protocol.PROBE_SEED: str(context.probe_seed),
            protocol.NOTEBOOK_NAMES: json.dumps({key: course_config.NOTEBOOKS[key] for key in GRADED_NOTEBOOKS}),
            protocol.BROKEN_MODULES: json.dumps(skips.modules),
            protocol.SKIPPED_STATEMENTS: json.dumps(skips.statements)}


def _child_env(layout: _Layout, context: "_Context", nonce_fd: int, skips: _Skips) -> dict:
    """The subprocess fallback's whole environment."""
    env = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"]),
        "PYTHONPATH": os.pathsep.join(str(p) for p in layout.python_path),
        "PYTHONDONTWRITEBYTECODE": "1", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "MPLBACKEND": "Agg",
        # The suites use tiny batches: one thread is as fast, and parallel gradings do not fight over cores.
        "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", protocol.NONCE_FD: str(nonce_fd),
        **_student_env(layout.student, layout.report, layout.programs, layout.home, context, skips)}
    return env | _passed_through()


def _passed_through() -> dict:
    return {name: os.environ[name] for name in ("CUDA_VISIBLE_DEVICES", "LANG", "LC_ALL") if name in os.environ}


def _read_report(path: Path, nonce: str) -> dict | None:
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
            and all(isinstance(t[key], str) for key in ("nodeid", "part", "check", "name")) for t in report["tests"]):
        raise Forgery("the grading report has the wrong shape")
    problems = report.get("problems", {})
    if not isinstance(problems, dict) or not all(
            isinstance(lines, list) and all(isinstance(line, str) for line in lines) for lines in problems.values()):
        raise Forgery("the grading report's problems have the wrong shape")
    if not all(report.get(key) is None or isinstance(report[key], str)
               for key in ("current", "loading", "statement", "program", "device")):
        raise Forgery("the grading report's progress fields have the wrong shape")
    return report


class _Watch:
    """``should_stop`` for sandbox.run_watched: a part (or a module or program loading) that runs past its time
    limit, the submission's overall deadline, or the child's writable host folders past their budget (counted
    recursively). Also remembers what the child was doing last."""

    def __init__(self, report: Path, nonce: str, policy: SandboxPolicy, deadline: float, writable: list[Path],
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
                report = _read_report(self.report, self.nonce)
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
class _Attempt:
    finished: sandbox.Finished
    report: dict | None
    forgery: str | None
    started: float = 0.0   # time.monotonic() when the child was started, and when it was over
    ended: float = 0.0


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
    judge: warm_judge.WarmJudge
    folder: Path                      # this submission's folder in the warm judge's inbox
    export_folder: Path | None = None  # ... and in its zygote's (bwrap): the modules, programs, each run's files
    judged: list[str] | None = None   # the parts the judge decides, known once the export is over
    exports: list[dict] = field(default_factory=list)   # the export stage's outcomes, for the manifest
    unloadable: dict[str, str] = field(default_factory=dict)   # program id -> why the judge cannot load it
    judge_clean: bool = True          # no judging was stopped, crashed or refused a program
    _manifest_lock: threading.Lock = field(default_factory=threading.Lock)   # the export's end and the judge

    @property
    def manifest(self) -> Path:
        return self.folder / protocol.PROGRAMS_MANIFEST

    def manifest_missing(self) -> bool:
        return not self.manifest.exists()

    def write_manifest(self) -> None:
        """programs.json for the judge: the parts it decides, and each program's state (the export's outcome,
        or why the judge could not load it). Written atomically, where the student process cannot write."""
        with self._manifest_lock:
            programs = {outcome["case"]: {"exported": outcome["passed"], "message": outcome["message"]}
                        for outcome in self.exports}
            for program_id, why in self.unloadable.items():
                programs[program_id] = {"exported": False, "message": why}
            partial = self.manifest.with_name(f"{self.manifest.name}.partial")
            partial.write_text(json.dumps({"parts": self.judged or [], "programs": programs}), encoding="utf-8")
            os.replace(partial, self.manifest)


def _judge_once(context: _Context, parts: list[str]) -> _Attempt:
    """One run of the hidden suites in the warm judge (a forked copy of it), watched like any child."""
    if not context.judge.alive():   # an earlier run of this submission was stopped: a fresh judge, same inbox
        context.judge = warm_judge.restart(context.judge)
    judge, attempt_dir = context.judge, context.folder / secrets.token_hex(8)
    (attempt_dir / "report").mkdir(parents=True)
    tests = (warm_judge.KIT_INSIDE if context.use_bwrap else KIT_DIR) / JUDGE.folder
    nonce = secrets.token_hex(16)
    report = attempt_dir / "report" / "report.json"
    env = {protocol.STUDENT_DIR: str(judge.inside(context.folder / "student")),
           protocol.PROGRAMS_DIR: str(judge.inside_exports(context.programs) if context.export_folder is not None
                                      else judge.inside(context.programs)),
           protocol.MANIFEST: str(judge.inside(context.manifest)),
           protocol.REPORT_PATH: str(judge.inside(report)), protocol.GRADING_DEVICE: context.device,
           protocol.PROBE_SEED: str(context.probe_seed), protocol.UNLOADABLE: json.dumps(sorted(context.unloadable)),
           protocol.NOTEBOOK_NAMES: json.dumps({key: course_config.NOTEBOOKS[key] for key in GRADED_NOTEBOOKS})}
    started = time.monotonic()
    finished = judge.run(_pytest_args(JUDGE, tests, parts), env=env, cwd=attempt_dir, log=attempt_dir / "log.txt",
                         nonce=nonce, memory_mb=context.policy.memory_mb, max_processes=context.policy.max_processes,
                         should_stop=_Watch(report, nonce, context.policy, context.deadline, [],
                                            waiting=context.manifest_missing))
    attempt = _attempt(finished, report, nonce, started)
    if finished.stop is not None or finished.exit_code not in (0, 1, 5) or attempt.forgery:
        context.judge_clean = False
    return attempt


def _attempt(finished: sandbox.Finished, report: Path, nonce: str, started: float) -> _Attempt:
    """A finished run and its report (host path), read as hostile data: a forgery is said, never raised."""
    ended = time.monotonic()
    try:
        return _Attempt(finished, _read_report(report, nonce), None, started, ended)
    except Forgery as forgery:
        return _Attempt(finished, None, str(forgery), started, ended)


def _pytest_args(stage: Stage, tests: Path, parts: list[str]) -> list[str]:
    """pytest's arguments for ``parts`` of ``stage``, its files in ``tests`` (as the child sees that folder)."""
    return [*(str(tests / f"{stage.prefix}{part}.py") for part in parts), "-c", str(tests / "pytest.ini"),
            "--rootdir", str(tests), "-q", "-p", "no:cacheprovider", "-p", "autograder.student_side.report_plugin"]


def _export_in_zygote(context: _Context, parts: list[str], skips: _Skips) -> _Attempt:
    """One run of the export stage in a forked child of the zygote (bwrap), watched like any child; its whole
    inbox counts against the disk budget."""
    judge = context.judge
    if not judge.zygote.alive():   # an earlier run of this submission was stopped: a fresh zygote, same inbox
        warm_judge.restart_zygote(judge)   # (if it cannot start, the submission's grading is an error)
    zygote, attempt_dir = judge.zygote, context.export_folder / secrets.token_hex(8)
    (attempt_dir / "report").mkdir(parents=True)
    nonce = secrets.token_hex(16)
    report = attempt_dir / "report" / "report.json"
    env = _student_env(zygote.inside(context.export_folder / "student"), zygote.inside(report),
                       zygote.inside(context.programs), warm_judge.HOME_INSIDE, context, skips)
    started = time.monotonic()
    finished = zygote.run(_pytest_args(EXPORT, warm_judge.KIT_INSIDE / EXPORT.folder, parts), env=env,
                          cwd=str(warm_judge.HOME_INSIDE), log=attempt_dir / "log.txt", nonce=nonce,
                          memory_mb=context.policy.memory_mb, max_processes=context.policy.max_processes,
                          should_stop=_Watch(report, nonce, context.policy, context.deadline, [zygote.inbox]))
    return _attempt(finished, report, nonce, started)


def _run_once(stage: Stage, context: _Context, parts: list[str], skips: _Skips) -> _Attempt:
    if stage is JUDGE:
        return _judge_once(context, parts)
    _empty(context.programs)   # what an earlier run wrote (its programs, or what filled the disk) starts over
    if context.export_folder is not None:
        return _export_in_zygote(context, parts, skips)
    with tempfile.TemporaryDirectory(prefix="hw2-grading-") as private_name:
        private = Path(private_name)
        layout = _layout(private, context.student_dir, context.programs, context.use_bwrap, context.user)
        nonce = secrets.token_hex(16)
        read_end, write_end = os.pipe()
        os.write(write_end, nonce.encode("ascii"))
        os.close(write_end)
        argv = [sys.executable, "-m", "pytest", *_pytest_args(EXPORT, layout.tests, parts)]
        if context.use_bwrap:
            argv = sandbox.bwrap_command(argv, layout.mounts, gpu=context.device == "cuda")
        host_report = private / "report" / "report.json"
        watch = _Watch(host_report, nonce, context.policy, context.deadline, layout.writable)
        started = time.monotonic()
        try:
            finished = sandbox.run_watched(
                argv, env=_child_env(layout, context, read_end, skips), cwd=private / "home",
                memory_mb=context.policy.memory_mb, max_processes=context.policy.max_processes, should_stop=watch,
                file_bytes=protocol.PROGRAM_MAX_BYTES, pass_fds=(read_end,), use_bwrap=context.use_bwrap,
                user=context.user)
        finally:
            os.close(read_end)
        return _attempt(finished, host_report, nonce, started)


def _empty(folder: Path) -> None:
    with os.scandir(folder) as entries:
        for entry in list(entries):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)


def _check_genuine(stage: Stage, context: _Context, attempt: _Attempt, parts: list[str]) -> None:
    """Raise Forgery unless a finished run looks exactly like a genuine one: pytest exited 0 or 1, and the parts
    report exactly what they should: the rubric's checks, or for the export stage, each of its parts' programs
    (``probes.PROGRAMS``) once."""
    tests = attempt.report["tests"]
    if stage is JUDGE:
        parts = [part for part in parts if part in (context.judged or ())]
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


def _notebook(key) -> str:
    return course_config.NOTEBOOKS[key] if key in GRADED_NOTEBOOKS else "a notebook"


def _what_was_running(report: dict | None) -> str:
    if report and report.get("loading"):
        statement = report.get("statement")
        return f"while {statement if isinstance(statement, str) else 'the code'} of {_notebook(report['loading'])} loaded"
    if report and report.get("program") in PROGRAM_IDS:
        return f"while the judge loaded the program {report['program']}"
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
        profile.add(run.timings, profile.child_stages(stage.name, attempt.report, attempt.started, attempt.ended))
        if attempt.report:   # the child's text: kept short before it reaches the student's feedback
            load_problems.update({key: [one_line(line, PROBLEM_CHARS) for line in lines[:PROBLEMS_PER_MODULE]]
                                  for key, lines in attempt.report.get("problems", {}).items()
                                  if key in GRADED_NOTEBOOKS})
        try:
            if attempt.forgery:
                raise Forgery(attempt.forgery)
            if attempt.finished.stop is None and attempt.report and attempt.report.get("finished") is True:
                _check_genuine(stage, context, attempt, parts)
                outcomes = [dict(t, message=one_line(t["message"])) for t in attempt.report["tests"]]
                device = attempt.report.get("device")
                run.device = device if device in ("cpu", "cuda") else context.device
                break
        except Forgery as forgery:
            log.warning("%s stage, run %d: flagged as tampered: %s", stage.name, runs, forgery)
            run.flag("tampered", f"flagged as tampered ({stage.name} stage): {forgery}", TAMPERED_PROBLEM)
            return []
        stop = attempt.finished.stop
        status = stop.kind if stop else "exited"
        cause = stop.detail if stop else (f"the grading process exited (status {attempt.finished.exit_code}: "
                                          "os._exit, sys.exit outside a test, or a crash)")
        reason = f"{cause} {_what_was_running(attempt.report)}"
        report = attempt.report or {}
        loading, statement, program = report.get("loading"), report.get("statement"), report.get("program")
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
        elif stage is JUDGE and program in PROGRAM_IDS and program not in context.unloadable:
            context.unloadable[program] = f"the exported program could not be judged: {cause} while it loaded"
            if context.judged is not None:   # else the export is still running and writes the manifest last
                context.write_manifest()
            log.info("judge stage, run %d: program %s blamed (%s); the next run fails the checks that need it",
                     runs, program, cause)
            run.note(status, f"{program}: {context.unloadable[program]}")
        elif report.get("current") and part_of(report["current"]) in parts:
            part = part_of(report["current"])
            parts.remove(part)
            log.info("%s stage, run %d: part %s blamed (%s); the next run leaves it out", stage.name, runs, part,
                     reason)
            run.part_errors[part] = reason
            run.note(status, f"{part}: {reason}")
        elif stop is not None and time.monotonic() >= context.deadline:   # the submission's time ran out
            log.info("%s stage, run %d: %s; parts %s get no outcome", stage.name, runs, reason, ", ".join(parts))
            run.note(status, reason)
            for part in parts:
                run.part_errors[part] = reason
            return []
        else:   # nothing to blame: the kit's own problem, or a crash we cannot place
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


def _manual_parts(exports: list[dict]) -> dict[str, str]:
    """Part -> why a TA grades it: the first of its objects that ran but could not be exported, or whose program
    computes something else than the live object (whatever the student process claims, it gains nothing)."""
    found: dict[str, str] = {}
    for outcome in exports:
        message = outcome["message"]
        if message.startswith(protocol.UNEXPORTABLE_PREFIX):
            found.setdefault(outcome["part"], "torch.export cannot capture "
                             + message.removeprefix(protocol.UNEXPORTABLE_PREFIX))
        elif message.startswith(protocol.MISMATCH_PREFIX):
            found.setdefault(outcome["part"], message)
    return found


def _merge(run: SuiteRun, other: SuiteRun) -> None:
    """Fold a stage that ran beside the others (the judge) into the submission's run."""
    run.tests += other.tests
    run.part_errors.update(other.part_errors)
    run.problems += other.problems
    run.runs += other.runs
    profile.add(run.timings, other.timings)
    if other.staff_message:
        run.staff_message = "; ".join(filter(None, (run.staff_message, other.staff_message)))
    run.worsen(other.status)


def exported_parts() -> list[str]:
    """The parts with an export file of their own (``student_side/exports/export_<part>.py``). A part without one
    is judged on the programs other parts export (a new check of SimpleNN needs no new export)."""
    folder = KIT_DIR / EXPORT.folder
    return [part for part in SUITE_PARTS if (folder / f"{EXPORT.prefix}{part}.py").is_file()]


def _grade_by_hand(run: SuiteRun, manual: dict[str, str]) -> None:
    """Parts a TA grades: 0 automatic points, the construct that blocked the capture, for student and staff."""
    run.needs_manual = manual
    for part, why in manual.items():
        run.part_errors[part] = f"{MANUAL}: a TA will grade this part by hand, since {why}"
        if why.startswith(protocol.MISMATCH_PREFIX):
            run.review.append(f"{part}: {why}")
        run.worsen(MANUAL)
    if manual:
        why = "; ".join(f"{part}: {blocker}" for part, blocker in manual.items())
        log.info("%s: %s", MANUAL, why)
        run.staff_message = "; ".join(filter(None, (run.staff_message, f"{MANUAL}: {why}")))


def run_suites(student_dir: Path, device: str, policy: SandboxPolicy = SandboxPolicy()) -> SuiteRun:
    """Grade every part of the modules in ``student_dir`` on ``device`` ('cpu' or 'cuda'): export, judge, and
    the parts a TA must grade by hand. The judge starts beside the export (importing torch and its loader takes
    seconds) and waits for the manifest before it collects any check."""
    started = time.monotonic()
    use_bwrap = policy.uses_bwrap()
    user = None if use_bwrap else sandbox.fallback_user()
    run = SuiteRun(device=device, sandbox="bwrap" if use_bwrap else
                   "subprocess" + ("" if user is None else f" as uid {user}"))
    judge = warm_judge.acquire(device, use_bwrap, _judge_env())
    run.timings["grader: judge start (none warm)"] = round(time.monotonic() - started, 3)
    folder = judge.new_folder()
    export_folder = judge.zygote.new_folder() if judge.zygote is not None else None
    context = _Context(student_dir, (export_folder or folder) / "programs", device, policy,
                       started + policy.total_timeout_s, use_bwrap, user, probe_seed=secrets.randbelow(2**31),
                       judge=judge, folder=folder, export_folder=export_folder)
    try:
        context.programs.mkdir()
        shutil.copytree(student_dir, folder / "student")   # read as text by the judge's Swish source check
        if export_folder is not None:
            shutil.copytree(student_dir, export_folder / "student")   # loaded by the zygote's child
        if user is not None:
            os.chown(context.programs, user, user)
        judge_run = SuiteRun(device=device)
        judging = threading.Thread(target=lambda: judge_run.tests.extend(
            _run_stage(JUDGE, context, list(SUITE_PARTS), judge_run)), daemon=True)
        judging.start()
        exporting = exported_parts()
        manual: dict[str, str] = {}
        try:
            context.exports = _run_stage(EXPORT, context, exporting, run)
        finally:
            if user is not None:   # the student process is over: from now on only the grader may write here
                os.chown(context.programs, os.getuid(), os.getgid())
            manual = {} if run.status == "tampered" else _manual_parts(context.exports)
            context.judged = [part for part in SUITE_PARTS if run.status != "tampered" and part not in run.part_errors
                              and part not in manual
                              and (part not in exporting or any(t["part"] == part for t in context.exports))]
            context.write_manifest()
            judging.join()
        _merge(run, judge_run)
        if run.status == "tampered":
            run.tests = []
            return _finish(run, started)
        refused = [t for t in run.tests if t["message"].startswith(REFUSED_PREFIX)]
        if refused:
            context.judge_clean = False
            run.flag("tampered", f"flagged as tampered: {refused[0]['message']}", TAMPERED_PROBLEM)
            return _finish(run, started)
        _grade_by_hand(run, manual)
    finally:
        for submission_folder in (folder, export_folder):
            if submission_folder is not None:
                shutil.rmtree(submission_folder, ignore_errors=True)
        warm_judge.release(context.judge, clean=context.judge_clean and run.status not in ("error", "tampered"))
    return _finish(run, started)


def _judge_env() -> dict:
    """The warm judge's environment (each judging adds its own HW2_* names). No PYTHON* names: the judge runs
    Python in isolated mode, which would ignore them."""
    return {"PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"]), "HOME": "/",
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1"} | _passed_through()


def _finish(run: SuiteRun, started: float) -> SuiteRun:
    run.seconds = time.monotonic() - started
    log.debug("graded in %d runs, %.1f s, status %s, sandbox %s, device %s", run.runs, run.seconds, run.status,
              run.sandbox, run.device)
    return run
