"""Warm judges on the host side: a pool of sandboxed ``autograder.judge.server`` processes, one per grading
running at once, each forking a fresh judge per submission (see that module for why).

A warm judge lives in the same kind of sandbox as the per-submission children (bwrap: no network, only the
kit's ``autograder/`` and its own *inbox* folder mounted; the subprocess fallback otherwise). Each submission
gets a folder in the inbox: its programs (the student process writes them through its own mount of that
one folder), a copy of its extracted modules (read as text for the Swish source check), the report and the
log. ``run`` watches a judging like ``sandbox.run_watched`` watches a child (memory and processes of the whole
tree, the caller's ``should_stop``); a stopped judging kills the warm judge, and the next submission starts
a new one. Nothing here runs student code.
"""
from __future__ import annotations

import atexit
import itertools
import json
import os
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
    def __init__(self, device: str, use_bwrap: bool, env: dict):
        self.device, self.use_bwrap = device, use_bwrap
        self.inbox = Path(tempfile.mkdtemp(prefix="hw2-judge-"))
        self.inbox.chmod(0o755)
        self._numbers = itertools.count(1)
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
            self.close()
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
        self.process.stdin.write((json.dumps(request) + "\n").encode())
        self.process.stdin.flush()
        stop, peak, answer = None, 0.0, None
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
        if self.process.poll() is None:
            sandbox.kill_tree(self.process.pid)
        self.process.wait()
        shutil.rmtree(self.inbox, ignore_errors=True)


def acquire(device: str, use_bwrap: bool, env: dict) -> WarmJudge:
    """An idle warm judge for this device and sandbox, started when none is."""
    key = (device, use_bwrap)
    with _lock:
        idle = _pool.setdefault(key, [])
        while idle:
            judge = idle.pop()
            if judge.alive():
                return judge
            judge.close()
    judge = WarmJudge(device, use_bwrap, env)
    with _lock:
        _live.append(judge)
    return judge


def release(judge: WarmJudge) -> None:
    with _lock:
        if judge.alive():
            _pool.setdefault((judge.device, judge.use_bwrap), []).append(judge)
        else:
            judge.close()
            if judge in _live:
                _live.remove(judge)


@atexit.register
def _close_all() -> None:
    for judge in list(_live):
        judge.close()
