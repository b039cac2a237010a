"""Warm judges on the host side: a pool of sandboxed ``autograder.judge.server`` processes, one per grading
running at once, each forking a fresh judge per submission (see that module for why).

A warm judge lives in the same kind of sandbox as the per-submission children (bwrap: no network, only the
kit's ``autograder/`` and its own *inbox* folder mounted; the subprocess fallback otherwise). Each submission
gets a folder in the inbox: its programs (the student process writes them through its own mount of that
one folder), a copy of its extracted modules (read as text for the Swish source check), the report and the
log. ``run`` watches a judging like ``sandbox.run_watched`` watches a child (memory and processes of the whole
tree, the caller's ``should_stop``); a stopped judging kills the warm judge, ``restart`` starts another on the
same inbox (so a rerun of that submission finds its folder), and a dead judge is discarded on release.
Nothing here runs student code.
"""
from __future__ import annotations

import atexit
import itertools
import json
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
READY_TIMEOUT_S = 180
_pool: dict[tuple, list["WarmJudge"]] = {}
_lock = threading.Lock()
_live: list["WarmJudge"] = []


class WarmJudge:
    def __init__(self, device: str, use_bwrap: bool, env: dict, inbox: Path | None = None,
                 numbers: itertools.count | None = None):
        self.device, self.use_bwrap, self.env = device, use_bwrap, env
        self.inbox = inbox or Path(tempfile.mkdtemp(prefix="hw2-judge-"))
        self.inbox.chmod(0o755)
        self._numbers = numbers or itertools.count(1)
        argv = [sys.executable, "-m", "autograder.judge.server"]
        if use_bwrap:
            mounts = [sandbox.Mount(KIT_DIR, KIT_INSIDE),
                      sandbox.Mount(self.inbox, INBOX_INSIDE, writable=True)]
            argv = sandbox.bwrap_command(argv, mounts, gpu=device == "cuda")
        self.process = subprocess.Popen(
            argv, cwd=self.inbox, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=open(self.inbox / "server.log", "wb"), start_new_session=True)
        answer = self._answer(time.monotonic() + READY_TIMEOUT_S)
        if answer != {"ready": True}:
            log = (self.inbox / "server.log").read_text(errors="replace")[-500:]
            self.discard()
            raise RuntimeError(f"the warm judge did not start: {log.strip() or answer}")

    def inside(self, host: Path) -> Path:
        """Where a host path of the inbox is, as the judge sees it."""
        return INBOX_INSIDE / host.relative_to(self.inbox) if self.use_bwrap else host

    def new_folder(self) -> Path:
        folder = self.inbox / str(next(self._numbers))
        folder.mkdir()
        return folder

    def alive(self) -> bool:
        return self.process.poll() is None

    def _answer(self, deadline: float) -> dict | None:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], sandbox.POLL_S)
            if ready:
                line = self.process.stdout.readline()
                return json.loads(line) if line.strip() else None
            if not self.alive():
                return None
        return None

    def run(self, argv: list[str], *, env: dict, cwd: Path, log: Path, nonce: str, memory_mb: float,
            max_processes: int, should_stop: Callable[[], sandbox.Stop | None]) -> sandbox.Finished:
        """One judging, watched until it ends (``argv`` is pytest's, paths as the judge sees them)."""
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
            elif len(pids) - (3 if self.use_bwrap else 1) > max_processes:
                stop = sandbox.Stop("processes", f"started {len(pids):,} processes (the limit is {max_processes})")
            elif not self.alive():
                break
            else:
                stop = should_stop()
            if stop is not None:
                break
            ready, _, _ = select.select([self.process.stdout], [], [], sandbox.POLL_S)
            if ready:
                line = self.process.stdout.readline()
                answer = json.loads(line) if line.strip() else {"exit": None}
        if stop is not None or answer is None:
            self.close()
        output = log.read_bytes()[-sandbox.OUTPUT_TAIL_BYTES:].decode("utf-8", "replace") if log.exists() else ""
        return sandbox.Finished(exit_code=None if stop else (answer or {}).get("exit"), stop=stop, output=output,
                                peak_memory_mb=peak)

    def close(self) -> None:
        """Stop the process (its inbox stays, for ``restart``)."""
        if self.process.poll() is None:
            sandbox.kill_tree(self.process.pid)
        self.process.wait()

    def discard(self) -> None:
        self.close()
        shutil.rmtree(self.inbox, ignore_errors=True)
        with _lock:
            if self in _live:
                _live.remove(self)


def restart(judge: WarmJudge) -> WarmJudge:
    """A new warm judge on the inbox of one that was stopped (its folders stay where they are)."""
    judge.close()
    fresh = WarmJudge(judge.device, judge.use_bwrap, judge.env, inbox=judge.inbox, numbers=judge._numbers)
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
        dead, judge = [], None
        while idle and judge is None:
            candidate = idle.pop()
            if candidate.alive():
                judge = candidate
            else:
                dead.append(candidate)
    for corpse in dead:
        corpse.discard()
    if judge is not None:
        return judge
    judge = WarmJudge(device, use_bwrap, env)
    with _lock:
        _live.append(judge)
    return judge


def release(judge: WarmJudge) -> None:
    if judge.alive():
        with _lock:
            _pool.setdefault((judge.device, judge.use_bwrap), []).append(judge)
    else:
        judge.discard()


@atexit.register
def _discard_all() -> None:
    for judge in list(_live):
        judge.discard()
