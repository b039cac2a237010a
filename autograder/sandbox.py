"""Run one grading child (the student's export, the judge, the in-process fallback) and watch it until it ends.

Two ways to contain it, chosen once per grader process:

- ``bwrap`` (Debian's ``bubblewrap``) when it is installed and works here: new user, pid, network, IPC and
  UTS namespaces, so the child has no network (not even the host's loopback), sees only its own
  processes, and dies with the grader. Its file system is built from nothing: the Python install and the
  venv, the system libraries and the kit folders the caller names (for student code only
  ``autograder/student_side/`` and the students' ``tools/`` package), all read-only; the student's extracted
  modules read-only; the writable folders the caller names (a report, the programs); for the student's process
  a size-capped tmpfs for ``/tmp`` (its HOME), for the judge nothing more. The root and ``/dev`` are remounted
  read-only, so nothing else can be written (bwrap's own root and ``/dev`` would be uncapped tmpfs otherwise).
  The held-out labels, the grader's output folder, other students' submissions, the source notebooks and the
  real home directory are simply not there.
- ``subprocess`` otherwise: the same command in its own session with rlimits (no core files, capped
  file size and open files) and the same watch, but with the host's file system and network; when the
  grader is root it runs as ``nobody`` if that user can run Python (``fallback_user``), so root-only
  files such as the labels stay unreadable. results.json says which one graded a submission; install
  bubblewrap for anything but a trusted class.

Both get ``RLIMIT_FSIZE`` (``file_bytes``): no file they write grows past it, and the caller counts its
writable host folders (``folder_usage``) to bound their sum.

Either way the parent polls the child's whole process tree (``/proc/<pid>/task/*/children``): the sum of
resident memory and the number of processes are checked against the limits, because ``RLIMIT_AS`` breaks
``import torch`` and cgroups are rarely writable inside containers. Any stop kills every process of the
tree and the child's process group (``kill_tree``; with bwrap, the pid namespace dies with it).
"""
from __future__ import annotations

import collections
import functools
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

POLL_S = 0.05
TMPFS_BYTES = 512 * 1024 * 1024
OUTPUT_TAIL_BYTES = 4096
NOBODY = 65534                 # the user student code runs as (inside bwrap, and in the fallback under root)
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
# Read-only system paths the sandbox needs (those that exist here); /etc only for the dynamic loader.
_SYSTEM_PATHS = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc/ld.so.cache", "/etc/ld.so.conf",
                 "/etc/ld.so.conf.d", "/etc/localtime", "/etc/alternatives")
_GPU_PATHS = ("/sys", "/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset")


class SandboxUnavailable(RuntimeError):
    """bwrap was required but cannot run here (a staff-side problem; the message says how to fix it)."""


@dataclass(frozen=True)
class Stop:
    """Why the parent stopped the child: ``kind`` is 'memory', 'processes' or whatever ``should_stop`` said."""
    kind: str
    detail: str


@dataclass
class Finished:
    exit_code: int | None      # None when the parent killed it
    stop: Stop | None
    output: str                # the last few kB of stdout+stderr, for staff messages only
    peak_memory_mb: float


@dataclass(frozen=True)
class Mount:
    host: Path
    inside: Path
    writable: bool = False


@functools.lru_cache(maxsize=1)
def bwrap_problem() -> str | None:
    """None when bubblewrap can build a sandbox here, else why not (one line)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bwrap is not installed (apt-get install bubblewrap)"
    probe = subprocess.run([bwrap, *_namespace_flags(), "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev",
                            "true"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        return f"bwrap cannot create namespaces here: {probe.stderr.strip().splitlines()[-1:]}"
    return None


@functools.lru_cache(maxsize=1)
def bwrap_gpu_problem() -> str | None:
    """None when torch inside the bwrap sandbox sees a CUDA GPU, else why not (one line). Checked once per
    grader process (~3 s), so a GPU grader whose sandbox cannot reach the GPU never fails honest students."""
    argv = bwrap_command([sys.executable, "-c", "import torch; print(torch.cuda.is_available())"], [], gpu=True)
    probe = subprocess.run(argv, capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin"})
    if probe.returncode == 0 and probe.stdout.strip() == "True":
        return None
    detail = (probe.stderr.strip().splitlines() or [probe.stdout.strip() or f"exit {probe.returncode}"])[-1]
    return f"torch sees no CUDA GPU inside the bwrap sandbox ({detail})"


def _namespace_flags() -> list[str]:
    return ["--unshare-all", "--die-with-parent", "--new-session"]


def _python_paths() -> list[Path]:
    """The interpreter, its standard library and the venv's site-packages, wherever they live."""
    paths = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), Path(sys.exec_prefix).resolve()}
    return sorted(paths)


def bwrap_command(argv: list[str], mounts: list[Mount], *, gpu: bool, tmp: bool = True,
                  mount_points: tuple[str, ...] = ()) -> list[str]:
    """``argv`` wrapped in bubblewrap with nothing visible but ``mounts``, Python and the system libraries;
    nothing writable but the writable ``mounts`` and, with ``tmp``, a capped tmpfs at ``/tmp`` (the working
    folder then; else ``/``, read-only). ``mount_points``: empty, read-only folders (the zygote's children each
    mount a tmpfs of their own on one)."""
    command = [shutil.which("bwrap") or "bwrap", *_namespace_flags(), "--uid", str(NOBODY), "--gid", str(NOBODY),
               "--proc", "/proc", "--dev", "/dev"]
    for folder in mount_points:
        command += ["--dir", folder]
    if tmp:
        command += ["--size", str(TMPFS_BYTES), "--tmpfs", "/tmp"]
    for path in _SYSTEM_PATHS:
        if os.path.lexists(path):
            command += ["--ro-bind", path, path]
    for path in _python_paths():
        command += ["--ro-bind", str(path), str(path)]
    venv_python = Path(sys.executable)
    if not venv_python.resolve().is_relative_to(Path(sys.prefix).resolve()):
        command += ["--ro-bind", str(venv_python.parent), str(venv_python.parent)]
    if gpu:
        for path in (*_GPU_PATHS, *(str(p) for p in sorted(Path("/dev").glob("nvidia[0-9]*")))):
            if os.path.exists(path):
                command += ["--dev-bind" if path.startswith("/dev") else "--ro-bind", path, path]
    for mount in mounts:
        command += ["--bind" if mount.writable else "--ro-bind", str(mount.host), str(mount.inside)]
    return command + ["--remount-ro", "/", "--remount-ro", "/dev", "--chdir", "/tmp" if tmp else "/", "--", *argv]


def fallback_user() -> int | None:
    """The uid the subprocess fallback runs student code as: ``nobody`` when the grader is root (as on
    Gradescope, where the labels sit in the same container, mode 600) and nobody can run this Python;
    None (the grader's own user) otherwise."""
    if os.geteuid() != 0:
        return None
    for path in {Path(sys.executable).resolve(), Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()}:
        for folder in (path, *path.parents):
            if folder.is_dir() and not folder.stat().st_mode & stat.S_IXOTH:
                return None
    return NOBODY


def limit_resources(file_bytes: int) -> Callable[[], None]:
    """A preexec_fn (bwrap keeps rlimits across its exec): no core dumps, no file over ``file_bytes``, a bounded
    number of open files."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))
    return limit


def folder_usage(folders: list[Path], max_entries: int) -> tuple[int, int]:
    """(bytes, entries) of everything below ``folders``, links not followed; the count stops past
    ``max_entries`` (a folder of a million files is over budget, however small they are)."""
    size = entries = 0
    stack = [str(folder) for folder in folders]
    while stack and entries <= max_entries:
        try:
            with os.scandir(stack.pop()) as found:
                for entry in found:
                    entries += 1
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    else:
                        size += entry.stat(follow_symlinks=False).st_size
        except OSError:
            continue
    return size, entries


def _descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (threads' children included)."""
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children", encoding="ascii") as handle:
                    stack.extend(int(child) for child in handle.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return found


def _resident_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm", encoding="ascii") as handle:
                total += int(handle.read().split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return total * _PAGE_BYTES / 2**20


def _signal(pid: int, signum: int, *, group: bool = False) -> None:
    try:
        (os.killpg if group else os.kill)(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def kill_tree(pid: int) -> int:
    """SIGKILL ``pid``, every process below it and its process group; returns how many processes were in the
    tree. The tree is frozen first (SIGSTOP, looked at three times) so nothing forks its way out while it dies."""
    frozen: list[int] = []
    for _ in range(3):
        for found in _descendants(pid):
            if found not in frozen:
                frozen.append(found)
                _signal(found, signal.SIGSTOP)
    for found in reversed(frozen):
        _signal(found, signal.SIGKILL)
    _signal(pid, signal.SIGKILL, group=True)
    return len(frozen)


def run_watched(argv: list[str], *, env: dict, cwd: Path, memory_mb: float, max_processes: int,
                should_stop: Callable[[], Stop | None], file_bytes: int, pass_fds: tuple[int, ...] = (),
                use_bwrap: bool = False, user: int | None = None) -> Finished:
    """Run ``argv`` (already wrapped by ``bwrap_command`` when ``use_bwrap``) and watch it until it ends.

    Every ``POLL_S`` the child's process tree is measured; it is killed when its resident memory passes
    ``memory_mb``, when it has more than ``max_processes`` processes, or when ``should_stop()`` returns a
    Stop (the caller's clock, progress and disk checks). ``user`` (a uid) runs it as that user and group; no
    file it writes grows past ``file_bytes``."""
    child = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, start_new_session=True, pass_fds=pass_fds,
                             preexec_fn=limit_resources(file_bytes),
                             **({} if user is None else {"user": user, "group": user, "extra_groups": []}))
    tail = _Tail(child.stdout)
    stop, peak = None, 0.0
    while child.poll() is None:
        pids = _descendants(child.pid)
        resident = _resident_mb(pids)
        peak = max(peak, resident)
        if resident > memory_mb:
            stop = Stop("memory", f"used {resident:,.0f} MB of memory (the limit is {memory_mb:,.0f} MB)")
        elif len(pids) - (2 if use_bwrap else 0) > max_processes:  # bwrap itself adds two processes
            stop = Stop("processes", f"started {len(pids):,} processes (the limit is {max_processes})")
        else:
            stop = should_stop()
        if stop is not None:
            break
        time.sleep(POLL_S)
    # Stopped or not, whatever is left (a grandchild that outlived its parent, the session) goes too.
    kill_tree(child.pid)
    child.wait()
    return Finished(exit_code=None if stop else child.returncode, stop=stop, output=tail.text(),
                    peak_memory_mb=peak)


def file_tail(path: Path) -> str:
    """The last ``OUTPUT_TAIL_BYTES`` of the log at ``path``, read as hostile data: a regular file only (never
    through a link, never blocking on a FIFO), '' when there is none."""
    try:
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK), "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                return ""
            handle.seek(max(0, size - OUTPUT_TAIL_BYTES))
            return handle.read(OUTPUT_TAIL_BYTES).decode("utf-8", "replace")
    except OSError:
        return ""


class _Tail:
    """Drains a pipe in a thread and keeps only its last OUTPUT_TAIL_BYTES (the child may print forever)."""

    def __init__(self, pipe):
        self._chunks: collections.deque[bytes] = collections.deque()
        self._size = 0
        self._thread = threading.Thread(target=self._drain, args=(pipe,), daemon=True)
        self._thread.start()

    def _drain(self, pipe) -> None:
        with pipe:
            for chunk in iter(lambda: pipe.read1(65536), b""):
                self._chunks.append(chunk)
                self._size += len(chunk)
                while self._size - len(self._chunks[0]) >= OUTPUT_TAIL_BYTES:
                    self._size -= len(self._chunks.popleft())

    def text(self) -> str:
        self._thread.join(timeout=5)
        return b"".join(self._chunks)[-OUTPUT_TAIL_BYTES:].decode("utf-8", "replace")
