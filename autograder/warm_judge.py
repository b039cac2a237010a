"""Grading slots on the host side: a pool of sandboxed fork servers, one pair per grading running at once: a
warm judge (``autograder.judge.server``) and, with bwrap, the student process's zygote
(``autograder.student_side.zygote``). Each forks a fresh child per submission (see those modules for why).

Both live in bwrap sandboxes (no network; the subprocess fallback has only the judge, and spawns the student
process per submission): Python in isolated mode (``-I``: no working folder or writable folder on ``sys.path``,
no ``PYTHON*`` variables), a read-only root and ``/dev``, no writable ``/tmp``, ``RLIMIT_FSIZE``. The only
writable place of each is its *inbox*, where each submission gets a folder of its own under a random name,
deleted when the submission is done. The zygote's sees the kit's ``student_side`` and the students' ``tools``
read-only; a submission's folder there holds its extracted modules, the programs its child exports and each
run's report and log. The judge's sees the kit's ``autograder/`` read-only and its zygote's inbox read-only
(the programs); a submission's folder there holds a copy of its modules (read as text for the Swish source
check), the manifest and one folder per judging for the report and the log.

Nothing of one submission may reach another. ``run`` watches a request like ``sandbox.run_watched`` watches a
child (memory and processes, the caller's ``should_stop``) and kills the server when it is stopped or leaves
a process behind; ``restart`` and ``restart_zygote`` start a fresh one on the same inbox for a rerun of that
submission. ``release`` puts a pair back in the pool only when the caller says its judgings were clean
(nothing stopped, crashed or was refused) and both servers are alive with no stray process and empty inboxes
again; any other pair is discarded with its inboxes. Nothing here runs student code.
"""
from __future__ import annotations

import atexit
import json
import logging
import os
import secrets
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

import course_config
from autograder import sandbox
from autograder.student_side import zygote
from autograder.student_side.protocol import PROGRAM_MAX_BYTES

KIT_DIR = Path(__file__).resolve().parent
STUDENT_PACKAGE_DIR = course_config.STUDENT_PACKAGE_DIR   # holds tools/
KIT_INSIDE = Path("/kit/autograder")       # where the judge sees the kit's autograder/ package (bwrap)
STUDENT_PACKAGE_INSIDE = Path("/kit/student_package")
INBOX_INSIDE = Path("/grading/inbox")
EXPORTS_INSIDE = Path("/grading/exports")  # the zygote's inbox, read-only, as its judge sees it
CACHE_INSIDE = Path("/grading/torch-cache")
HOME_INSIDE = Path(zygote.HOME.decode())   # a zygote child's home, a tmpfs of its own (not /tmp: see there)
READY_TIMEOUT_S = 180
FILE_BYTES = 16 * 2**20                    # no file a judge writes (a report, a log) grows past this
# Isolated mode ignores PYTHONPATH: the kit's folders are added to sys.path from the arguments, read-only.
_BOOTSTRAP = "import sys; sys.path[:0] = sys.argv[2:]; import importlib; importlib.import_module(sys.argv[1]).main()"
_pool: dict[tuple, list["WarmJudge"]] = {}
zygote_problem: list[str | None] = [None]   # why no zygote could start here (then none is tried again)
log = logging.getLogger(__name__)
_lock = threading.Lock()
_live: list["WarmJudge"] = []


def student_kit_mounts() -> list[sandbox.Mount]:
    """What of the kit a student process sees (read-only): the ``student_side`` package and the students'
    ``tools``, below ``KIT_INSIDE`` and ``STUDENT_PACKAGE_INSIDE``."""
    return [sandbox.Mount(KIT_DIR / "__init__.py", KIT_INSIDE / "__init__.py"),
            sandbox.Mount(KIT_DIR / "student_side", KIT_INSIDE / "student_side"),
            sandbox.Mount(STUDENT_PACKAGE_DIR / "tools", STUDENT_PACKAGE_INSIDE / "tools")]


class _Server:
    """A sandboxed fork server (``student_side/fork_server.py``) and its inbox, the one folder it may write."""
    module = ""                        # the server's module, run by the bootstrap
    paths: tuple[Path, ...] = ()       # its sys.path entries, as it sees them (bwrap) ...
    host_paths: tuple[Path, ...] = ()  # ... and without bwrap
    what = "fork server"
    file_bytes = FILE_BYTES            # no file it writes grows past this
    mount_points: tuple[str, ...] = ()   # empty read-only folders (sandbox.bwrap_command); no /tmp at all

    def __init__(self, device: str, use_bwrap: bool, env: dict, inbox: Path | None = None, *, wait: bool = True):
        self.device, self.use_bwrap, self.env = device, use_bwrap, env
        if inbox is None:
            inbox = Path(tempfile.mkdtemp(prefix=f"hw2-{type(self).__name__.lower()}-")) / "inbox"
            inbox.mkdir(mode=0o711)
            inbox.parent.chmod(0o711)
        self.inbox = inbox
        # torch's compile cache: its folder must exist when torch._dynamo is imported (the default one asks for
        # a writable temporary folder); nothing is compiled, so it stays empty (read-only in bwrap)
        self._cache = self.inbox.parent / "torch-cache"
        self._cache.mkdir(mode=0o700, exist_ok=True)
        paths = self.paths if use_bwrap else self.host_paths
        argv = [sys.executable, "-I", "-B", "-c", _BOOTSTRAP, self.module, *map(str, paths)]
        if use_bwrap:
            mounts = [*self._mounts(), sandbox.Mount(self.inbox, INBOX_INSIDE, writable=True),
                      sandbox.Mount(self._cache, CACHE_INSIDE)]
            argv = sandbox.bwrap_command(argv, mounts, gpu=device == "cuda", tmp=False, mount_points=self.mount_points)
        env = env | {"TORCHINDUCTOR_CACHE_DIR": str(CACHE_INSIDE if use_bwrap else self._cache)}
        self._log = self.inbox.parent / "server.log"
        with open(self._log, "wb") as log:
            self.process = subprocess.Popen(
                argv, cwd=self.inbox if not use_bwrap else "/", env=env, stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=log, start_new_session=True,
                preexec_fn=sandbox.limit_resources(self.file_bytes))
        if wait:
            self.wait_ready()

    def wait_ready(self) -> None:
        """Wait until the server is warm; RuntimeError (and the server discarded) when it does not start."""
        answer = self._answer(time.monotonic() + READY_TIMEOUT_S)
        if answer != {"ready": True}:
            problem = answer.get("problem") if isinstance(answer, dict) else None
            text = self._log.read_text(errors="replace")[-500:]
            self.discard()
            raise RuntimeError(f"the {self.what} did not start: {problem or text.strip() or answer}")
        self._base = set(sandbox._descendants(self.process.pid))   # bwrap's processes and the server

    def _mounts(self) -> list[sandbox.Mount]:
        return []

    def inside(self, host: Path) -> Path:
        """Where a host path of the inbox is, as the server sees it."""
        return INBOX_INSIDE / host.relative_to(self.inbox) if self.use_bwrap else host

    def new_folder(self) -> Path:
        """A folder for one submission, named so that nobody can guess it."""
        folder = self.inbox / secrets.token_hex(16)
        folder.mkdir(mode=0o711)
        return folder

    def alive(self) -> bool:
        return self.process.poll() is None

    def _answer(self, deadline: float) -> dict | None:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], sandbox.POLL_S)
            if ready:
                line = self.process.stdout.readline(4096)
                try:
                    answer = json.loads(line) if line.strip() else None
                except ValueError:
                    return None
                return answer if isinstance(answer, dict) else None
            if not self.alive():
                return None
        return None

    def _counted(self, pids: list[int]) -> list[int]:
        """The processes whose memory a request's limit counts."""
        return pids

    def run(self, argv: list[str], *, env: dict, cwd: Path | str, log: Path, nonce: str, memory_mb: float,
            max_processes: int, should_stop: Callable[[], sandbox.Stop | None]) -> sandbox.Finished:
        """One request, watched until it ends (``argv`` is pytest's, paths as the server sees them; ``cwd`` a
        host path of the inbox, or a string: a path as the child sees it). A request that is stopped, or leaves
        a process behind, takes the server down."""
        request = {"argv": argv, "env": env, "cwd": cwd if isinstance(cwd, str) else str(self.inside(cwd)),
                   "log": str(self.inside(log)), "nonce": nonce}
        stop, peak, answer = None, 0.0, None
        try:
            self.process.stdin.write((json.dumps(request) + "\n").encode())
            self.process.stdin.flush()
        except OSError:   # it died since it was last asked: the caller's rerun restarts it
            return sandbox.Finished(exit_code=None, stop=None, output="", peak_memory_mb=0.0)
        while answer is None:
            pids = sandbox._descendants(self.process.pid)
            resident = sandbox._resident_mb(self._counted(pids))
            peak = max(peak, resident)
            if resident > memory_mb:
                stop = sandbox.Stop("memory", f"used {resident:,.0f} MB of memory (the limit is {memory_mb:,.0f} MB)")
            elif len(pids) - len(self._base) > max_processes:
                stop = sandbox.Stop("processes", f"started {len(pids):,} processes (the limit is {max_processes})")
            elif not self.alive():
                break
            else:
                stop = should_stop()
            if stop is not None:
                break
            ready, _, _ = select.select([self.process.stdout], [], [], sandbox.POLL_S)
            if ready:
                line = self.process.stdout.readline(4096)
                try:
                    answer = json.loads(line) if line.strip() else {"exit": None}
                except ValueError:
                    answer = {"exit": None}
        if stop is not None or answer is None or not isinstance(answer.get("exit"), int) or self._stray():
            self.close()
        output = sandbox.file_tail(log)   # a zygote's child could have made it a link or a FIFO
        exit_code = answer.get("exit") if stop is None and isinstance(answer, dict) else None
        return sandbox.Finished(exit_code=exit_code if isinstance(exit_code, int) else None, stop=stop,
                                output=output, peak_memory_mb=peak)

    def _stray(self) -> bool:
        """Whether a process of the last request is still running beside the server."""
        return len(sandbox._descendants(self.process.pid)) > len(self._base)

    def clean(self) -> bool:
        """Alive, no process of a request left, its inbox and cache empty again."""
        return self.alive() and not self._stray() and _empty(self.inbox) and _empty(self._cache)

    def close(self) -> None:
        """Stop the process (its inbox stays, for ``restart``)."""
        if self.process.poll() is None:
            sandbox.kill_tree(self.process.pid)
        self.process.wait()

    def discard(self) -> None:
        self.close()
        shutil.rmtree(self.inbox.parent, ignore_errors=True)
        with _lock:
            if self in _live:
                _live.remove(self)


class Zygote(_Server):
    """The student process's zygote (``student_side/zygote.py``), bwrap only: it sees the kit's
    ``student_side`` package and the students' ``tools``, and writes only its inbox, which holds the one
    submission it serves (its modules, the programs its child exports, that child's report and log; the child's
    home is a tmpfs of its own). Only the child's own processes count against the memory limit (the zygote's
    pages are shared with it)."""
    module = zygote.__name__
    paths = (KIT_INSIDE.parent, STUDENT_PACKAGE_INSIDE)
    what = "student process's zygote"
    file_bytes = PROGRAM_MAX_BYTES       # the largest file a child writes: one program
    mount_points = (str(HOME_INSIDE),)   # each child mounts a tmpfs of its own there, its home

    def _mounts(self) -> list[sandbox.Mount]:
        return student_kit_mounts()

    def _counted(self, pids: list[int]) -> list[int]:
        return [pid for pid in pids if pid not in self._base]


class WarmJudge(_Server):
    """A warm judge (``judge/server.py``): the kit's ``autograder/`` read-only, its inbox, and (bwrap) its
    student process's zygote, whose inbox it reads at ``EXPORTS_INSIDE``: each grading slot is such a pair."""
    module = "autograder.judge.server"
    paths = (KIT_INSIDE.parent,)
    host_paths = (KIT_DIR.parent,)
    what = "warm judge"

    def __init__(self, device: str, use_bwrap: bool, env: dict, inbox: Path | None = None,
                 zygote: Zygote | None = None):
        # both warm up at once (two cores: half the wait)
        starting = zygote is None and use_bwrap and zygote_problem[0] is None
        self.zygote = Zygote(device, use_bwrap, env, wait=False) if starting else zygote
        try:
            super().__init__(device, use_bwrap, env, inbox)
        except RuntimeError:
            if self.zygote is not None:
                self.zygote.discard()
            raise
        if starting:
            try:
                self.zygote.wait_ready()
            except RuntimeError as error:   # it discarded itself: the student process is spawned per submission
                zygote_problem[0] = str(error)
                log.warning("%s; each student process is started on its own (slower)", error)
                self.zygote = None

    def _mounts(self) -> list[sandbox.Mount]:
        exports = [sandbox.Mount(self.zygote.inbox, EXPORTS_INSIDE)] if self.zygote is not None else []
        return [sandbox.Mount(KIT_DIR, KIT_INSIDE), *exports]

    def inside_exports(self, host: Path) -> Path:
        """Where a host path of the zygote's inbox is, as the judge sees it."""
        return EXPORTS_INSIDE / host.relative_to(self.zygote.inbox)

    def clean(self) -> bool:
        return super().clean() and (self.zygote is None or self.zygote.clean())

    def discard(self) -> None:
        super().discard()
        if self.zygote is not None:
            self.zygote.discard()


def restart(judge: WarmJudge) -> WarmJudge:
    """A new warm judge on the inbox of one that was stopped (the submission's folder stays for its rerun),
    beside the same zygote."""
    judge.close()
    fresh = WarmJudge(judge.device, judge.use_bwrap, judge.env, inbox=judge.inbox, zygote=judge.zygote)
    with _lock:
        if judge in _live:
            _live.remove(judge)
        _live.append(fresh)
    return fresh


def restart_zygote(judge: WarmJudge) -> Zygote:
    """A new zygote for ``judge`` on the inbox of one that was stopped (its judge keeps reading that folder)."""
    judge.zygote.close()
    judge.zygote = Zygote(judge.device, judge.use_bwrap, judge.env, inbox=judge.zygote.inbox)
    return judge.zygote


def acquire(device: str, use_bwrap: bool, env: dict) -> WarmJudge:
    """An idle warm judge for this device and sandbox, started when none is."""
    key = (device, use_bwrap)
    with _lock:
        idle = _pool.setdefault(key, [])
        judge = idle.pop() if idle else None
    if judge is not None and judge.alive():
        return judge
    if judge is not None:
        judge.discard()
    judge = WarmJudge(device, use_bwrap, env)
    with _lock:
        _live.append(judge)
    return judge


def release(judge: WarmJudge, *, clean: bool) -> None:
    """Back to the pool when ``clean`` (the caller's judgings were: nothing stopped, crashed or was refused),
    and the judge and its zygote are alive with no stray process and empty inboxes again; otherwise discarded
    (both)."""
    if clean and judge.clean():
        with _lock:
            _pool.setdefault((judge.device, judge.use_bwrap), []).append(judge)
    else:
        judge.discard()


def _empty(folder: Path) -> bool:
    with os.scandir(folder) as entries:
        return next(entries, None) is None


@atexit.register
def _discard_all() -> None:
    for judge in list(_live):
        judge.discard()
