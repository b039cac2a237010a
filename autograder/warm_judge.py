"""Warm judges on the host side: a pool of sandboxed ``autograder.judge.server`` processes, one per grading
running at once, each forking a fresh judge per submission (see that module for why).

A warm judge lives in the same kind of sandbox as the student's process (bwrap: no network, the kit's
``autograder/`` read-only, the subprocess fallback otherwise), with less: Python in isolated mode (``-I``: no
working folder or writable folder on ``sys.path``, no ``PYTHON*`` variables), no ``/tmp``, a read-only root and
``/dev``, ``RLIMIT_FSIZE``. The only writable place is its *inbox*, where each submission gets a folder of
its own under a random name (its programs, which the student process writes through its own mount of that
one folder; a copy of its extracted modules, read as text for the Swish source check; the manifest; one
folder per judging for the report and the log), deleted when the submission is done.

Nothing of one judging may reach another. ``run`` watches a judging like ``sandbox.run_watched`` watches a
child (memory and processes of the whole tree, the caller's ``should_stop``) and kills the judge when it is
stopped; ``restart`` starts a fresh one on the same inbox for a rerun of that submission. ``release`` puts a
judge back in the pool only when the caller says its judgings were clean (nothing stopped, crashed or was
refused), no process of a judging outlived it and its inbox is empty again; any other judge is discarded with
its inbox. Nothing here runs student code.
"""
from __future__ import annotations

import atexit
import json
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

from autograder import sandbox

KIT_DIR = Path(__file__).resolve().parent
KIT_INSIDE = Path("/kit/autograder")       # where the judge sees the kit's autograder/ package (bwrap)
INBOX_INSIDE = Path("/grading/inbox")
CACHE_INSIDE = Path("/grading/torch-cache")
READY_TIMEOUT_S = 180
FILE_BYTES = 16 * 2**20                    # no file a judge writes (a report, a log) grows past this
# Isolated mode ignores PYTHONPATH: the kit's folder is the one entry added to sys.path, read-only.
_BOOTSTRAP = "import sys; sys.path.insert(0, sys.argv[1]); from autograder.judge.server import main; main()"
_pool: dict[tuple, list["WarmJudge"]] = {}
_lock = threading.Lock()
_live: list["WarmJudge"] = []


class WarmJudge:
    def __init__(self, device: str, use_bwrap: bool, env: dict, inbox: Path | None = None):
        self.device, self.use_bwrap, self.env = device, use_bwrap, env
        if inbox is None:
            inbox = Path(tempfile.mkdtemp(prefix="hw2-judge-")) / "inbox"
            inbox.mkdir(mode=0o711)
            inbox.parent.chmod(0o711)
        self.inbox = inbox
        # torch's compile cache: its folder must exist when torch._dynamo is imported (the default one asks for
        # a writable temporary folder); the judge compiles nothing, so it stays empty (read-only in bwrap)
        self._cache = self.inbox.parent / "torch-cache"
        self._cache.mkdir(mode=0o700, exist_ok=True)
        kit = KIT_INSIDE.parent if use_bwrap else KIT_DIR.parent
        argv = [sys.executable, "-I", "-B", "-c", _BOOTSTRAP, str(kit)]
        if use_bwrap:
            mounts = [sandbox.Mount(KIT_DIR, KIT_INSIDE), sandbox.Mount(self.inbox, INBOX_INSIDE, writable=True),
                      sandbox.Mount(self._cache, CACHE_INSIDE)]
            argv = sandbox.bwrap_command(argv, mounts, gpu=device == "cuda", tmp=False)
        env = env | {"TORCHINDUCTOR_CACHE_DIR": str(CACHE_INSIDE if use_bwrap else self._cache)}
        self._log = self.inbox.parent / "server.log"
        with open(self._log, "wb") as log:
            self.process = subprocess.Popen(
                argv, cwd=self.inbox if not use_bwrap else "/", env=env, stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=log, start_new_session=True,
                preexec_fn=sandbox.limit_resources(FILE_BYTES))
        self._base_processes = 3 if use_bwrap else 1   # bwrap adds two processes around the server
        answer = self._answer(time.monotonic() + READY_TIMEOUT_S)
        if answer != {"ready": True}:
            text = self._log.read_text(errors="replace")[-500:]
            self.discard()
            raise RuntimeError(f"the warm judge did not start: {text.strip() or answer}")

    def inside(self, host: Path) -> Path:
        """Where a host path of the inbox is, as the judge sees it."""
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

    def run(self, argv: list[str], *, env: dict, cwd: Path, log: Path, nonce: str, memory_mb: float,
            max_processes: int, should_stop: Callable[[], sandbox.Stop | None]) -> sandbox.Finished:
        """One judging, watched until it ends (``argv`` is pytest's, paths as the judge sees them). A judging
        that is stopped, or leaves a process behind, takes the judge down."""
        request = {"argv": argv, "env": env, "cwd": str(self.inside(cwd)), "log": str(self.inside(log)),
                   "nonce": nonce}
        stop, peak, answer = None, 0.0, None
        try:
            self.process.stdin.write((json.dumps(request) + "\n").encode())
            self.process.stdin.flush()
        except OSError:   # it died since it was last asked: the caller's rerun restarts it
            return sandbox.Finished(exit_code=None, stop=None, output="", peak_memory_mb=0.0)
        while answer is None:
            pids = sandbox._descendants(self.process.pid)
            resident = sandbox._resident_mb(pids)
            peak = max(peak, resident)
            if resident > memory_mb:
                stop = sandbox.Stop("memory", f"used {resident:,.0f} MB of memory (the limit is {memory_mb:,.0f} MB)")
            elif len(pids) - self._base_processes > max_processes:
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
        output = log.read_bytes()[-sandbox.OUTPUT_TAIL_BYTES:].decode("utf-8", "replace") if log.exists() else ""
        exit_code = answer.get("exit") if stop is None and isinstance(answer, dict) else None
        return sandbox.Finished(exit_code=exit_code if isinstance(exit_code, int) else None, stop=stop,
                                output=output, peak_memory_mb=peak)

    def _stray(self) -> bool:
        """Whether a process of the last judging is still running beside the server."""
        return len(sandbox._descendants(self.process.pid)) > self._base_processes

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


def restart(judge: WarmJudge) -> WarmJudge:
    """A new warm judge on the inbox of one that was stopped (the submission's folder stays for its rerun)."""
    judge.close()
    fresh = WarmJudge(judge.device, judge.use_bwrap, judge.env, inbox=judge.inbox)
    with _lock:
        if judge in _live:
            _live.remove(judge)
        _live.append(fresh)
    return fresh


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
    the judge is alive with no stray process, and its inbox is empty again; otherwise discarded."""
    if clean and judge.alive() and not judge._stray() and _empty(judge.inbox) and _empty(judge._cache):
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
