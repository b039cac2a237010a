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

This module orchestrates; each job has its module: ``stages.py`` (where each child runs, what it sees, its
environment), ``child_report.py`` (the report protocol, read as hostile data), ``blame.py`` (the rerun and
blame policy) and ``suite_run.py`` (what a grading found, and how bad).
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import course_config
from course_config import SUITE_PARTS
from autograder import sandbox, warm_judge
from autograder.blame import Skips, run_until_finished
from autograder.child_report import Attempt, Watch, attempt_of
from autograder.stages import (EXPORT, JUDGE, KIT_DIR, Stage, exported_parts, judge_env, judging_env, pytest_args,
                               spawned_env, spawned_layout, student_env)
from autograder.student_side import protocol
from autograder.suite_run import MANUAL, SuiteRun

log = logging.getLogger(__name__)
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


def _judge_once(context: _Context, parts: list[str]) -> Attempt:
    """One run of the hidden suites in the warm judge (a forked copy of it), watched like any child."""
    if not context.judge.alive():   # an earlier run of this submission was stopped: a fresh judge, same inbox
        context.judge = warm_judge.restart(context.judge)
    judge, attempt_dir = context.judge, context.folder / secrets.token_hex(8)
    (attempt_dir / "report").mkdir(parents=True)
    tests = (warm_judge.KIT_INSIDE if context.use_bwrap else KIT_DIR) / JUDGE.folder
    nonce = secrets.token_hex(16)
    report = attempt_dir / "report" / "report.json"
    env = judging_env(judge.inside(context.folder / "student"),
                      judge.inside_exports(context.programs) if context.export_folder is not None
                      else judge.inside(context.programs),
                      judge.inside(context.manifest), judge.inside(report), context.device, context.probe_seed,
                      sorted(context.unloadable))
    started = time.monotonic()
    finished = judge.run(pytest_args(JUDGE, tests, parts), env=env, cwd=attempt_dir, log=attempt_dir / "log.txt",
                         nonce=nonce, memory_mb=context.policy.memory_mb, max_processes=context.policy.max_processes,
                         should_stop=Watch(report, nonce, context.policy, context.deadline, [],
                                            waiting=context.manifest_missing))
    attempt = attempt_of(finished, report, nonce, started)
    if finished.stop is not None or finished.exit_code not in (0, 1, 5) or attempt.forgery:
        context.judge_clean = False
    return attempt


def _export_in_zygote(context: _Context, parts: list[str], skips: Skips) -> Attempt:
    """One run of the export stage in a forked child of the zygote (bwrap), watched like any child; its whole
    inbox counts against the disk budget."""
    judge = context.judge
    if not judge.zygote.alive():   # an earlier run of this submission was stopped: a fresh zygote, same inbox
        warm_judge.restart_zygote(judge)   # (if it cannot start, the submission's grading is an error)
    zygote, attempt_dir = judge.zygote, context.export_folder / secrets.token_hex(8)
    (attempt_dir / "report").mkdir(parents=True)
    nonce = secrets.token_hex(16)
    report = attempt_dir / "report" / "report.json"
    env = student_env(zygote.inside(context.export_folder / "student"), zygote.inside(report),
                      zygote.inside(context.programs), warm_judge.HOME_INSIDE, context.device, context.probe_seed,
                      skips.modules, skips.statements)
    started = time.monotonic()
    finished = zygote.run(pytest_args(EXPORT, warm_judge.KIT_INSIDE / EXPORT.folder, parts), env=env,
                          cwd=str(warm_judge.HOME_INSIDE), log=attempt_dir / "log.txt", nonce=nonce,
                          memory_mb=context.policy.memory_mb, max_processes=context.policy.max_processes,
                          should_stop=Watch(report, nonce, context.policy, context.deadline, [zygote.inbox]))
    return attempt_of(finished, report, nonce, started)


def _run_once(stage: Stage, context: _Context, parts: list[str], skips: Skips) -> Attempt:
    if stage is JUDGE:
        return _judge_once(context, parts)
    _empty(context.programs)   # what an earlier run wrote (its programs, or what filled the disk) starts over
    if context.export_folder is not None:
        return _export_in_zygote(context, parts, skips)
    with tempfile.TemporaryDirectory(prefix="hw2-grading-") as private_name:
        private = Path(private_name)
        layout = spawned_layout(private, context.student_dir, context.programs, context.use_bwrap, context.user)
        nonce = secrets.token_hex(16)
        read_end, write_end = os.pipe()
        os.write(write_end, nonce.encode("ascii"))
        os.close(write_end)
        argv = [sys.executable, "-m", "pytest", *pytest_args(EXPORT, layout.tests, parts)]
        if context.use_bwrap:
            argv = sandbox.bwrap_command(argv, layout.mounts, gpu=context.device == "cuda")
        host_report = private / "report" / "report.json"
        watch = Watch(host_report, nonce, context.policy, context.deadline, layout.writable)
        started = time.monotonic()
        try:
            finished = sandbox.run_watched(
                argv, env=spawned_env(layout, read_end, student_env(
                    layout.student, layout.report, layout.programs, layout.home, context.device,
                    context.probe_seed, skips.modules, skips.statements)), cwd=private / "home",
                memory_mb=context.policy.memory_mb, max_processes=context.policy.max_processes, should_stop=watch,
                file_bytes=protocol.PROGRAM_MAX_BYTES, pass_fds=(read_end,), use_bwrap=context.use_bwrap,
                user=context.user)
        finally:
            os.close(read_end)
        return attempt_of(finished, host_report, nonce, started)


def _empty(folder: Path) -> None:
    with os.scandir(folder) as entries:
        for entry in list(entries):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)


def run_stage(stage: Stage, context: _Context, parts: list[str], run: SuiteRun) -> list[dict]:
    """Run ``stage`` for ``parts`` until a run finishes (``blame.py`` decides what each stop leaves out)."""
    return run_until_finished(stage, context, parts, run, _run_once)


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
        run.tell_staff(f"{MANUAL}: {why}")


def run_suites(student_dir: Path, device: str, policy: SandboxPolicy = SandboxPolicy()) -> SuiteRun:
    """Grade every part of the modules in ``student_dir`` on ``device`` ('cpu' or 'cuda'): export, judge, and
    the parts a TA must grade by hand. The judge starts beside the export (importing torch and its loader takes
    seconds) and waits for the manifest before it collects any check."""
    started = time.monotonic()
    use_bwrap = policy.uses_bwrap()
    user = None if use_bwrap else sandbox.fallback_user()
    run = SuiteRun(device=device, sandbox="bwrap" if use_bwrap else
                   "subprocess" + ("" if user is None else f" as uid {user}"))
    judge = warm_judge.acquire(device, use_bwrap, judge_env())
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
            run_stage(JUDGE, context, list(SUITE_PARTS), judge_run)), daemon=True)
        judging.start()
        exporting = exported_parts()
        manual: dict[str, str] = {}
        try:
            context.exports = run_stage(EXPORT, context, exporting, run)
        finally:
            if user is not None:   # the student process is over: from now on only the grader may write here
                os.chown(context.programs, os.getuid(), os.getgid())
            manual = {} if run.status == "tampered" else _manual_parts(context.exports)
            context.judged = [part for part in SUITE_PARTS if run.status != "tampered" and part not in run.part_errors
                              and part not in manual
                              and (part not in exporting or any(t["part"] == part for t in context.exports))]
            context.write_manifest()
            judging.join()
        run.merge(judge_run)
        if run.status == "tampered":
            run.tests = []
            return _finish(run, started)
        refused = [t for t in run.tests if t["message"].startswith(REFUSED_PREFIX)]
        if refused:
            context.judge_clean = False
            run.tampered(f": {refused[0]['message']}")
            return _finish(run, started)
        _grade_by_hand(run, manual)
    finally:
        for submission_folder in (folder, export_folder):
            if submission_folder is not None:
                shutil.rmtree(submission_folder, ignore_errors=True)
        warm_judge.release(context.judge, clean=context.judge_clean and run.status not in ("error", "tampered"))
    return _finish(run, started)


def _finish(run: SuiteRun, started: float) -> SuiteRun:
    run.seconds = time.monotonic() - started
    log.debug("graded in %d runs, %.1f s, status %s, sandbox %s, device %s", run.runs, run.seconds, run.status,
              run.sandbox, run.device)
    return run
