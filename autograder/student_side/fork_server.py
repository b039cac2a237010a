"""A warm, sandboxed Python that forks a fresh child per request: the loop the judge (``judge/server.py``) and
the student process's zygote (``student_side/zygote.py``) share. Nothing here runs student code; the children
do, in the zygote's case.

The server imports what every child needs once (``warm``), then reads one JSON line per request on stdin,
``{"argv", "env", "cwd", "log", "nonce"}``, and answers one line per request on stdout, ``{"exit": status}``
(``{"ready": true}`` first, once warm). Each request runs ``pytest.main(argv)`` in a forked child: its stdin is
``/dev/null``, its stdout and stderr go to its log, the nonce reaches the report plugin through a pipe
(``HW2_NONCE_FD``), ``isolate`` (if given) runs in it first. The server itself is not dumpable, so no child
can read or write its memory through ``ptrace`` or ``/proc``: what each child starts from is what ``warm``
left, whatever an earlier child did.
"""
from __future__ import annotations

import ctypes
import json
import os
import sys
from typing import Callable

_PR_SET_DUMPABLE = 4


def _not_dumpable() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) failed")


def _child(request: dict, isolate: Callable[[], None] | None) -> None:
    code = 70
    try:
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        if isolate is not None:
            isolate()
        os.chdir(request["cwd"])
        os.environ.update(request["env"])
        read_end, write_end = os.pipe()
        os.write(write_end, request["nonce"].encode("ascii"))
        os.close(write_end)
        os.environ["HW2_NONCE_FD"] = str(read_end)
        import pytest

        code = int(pytest.main(request["argv"]))
    except BaseException as error:   # noqa: BLE001 - said in the log; the exit status tells the parent
        print(f"the forked child could not run: {type(error).__name__}: {error}", file=sys.stderr)
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)


def _serve_one(request: dict, isolate: Callable[[], None] | None) -> int:
    """Run one request in a forked child; its exit status."""
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        _child(request, isolate)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def exercise_export_and_load() -> None:
    """Export, save and load a small program of the kit's own: the first use of torch.export and of its loader
    (lazy imports, sympy's parser, the fake-tensor caches) costs a second or more, paid here once instead of in
    every child. torch.export asks where a temporary folder would be (it writes nothing there): a server has
    none, so it is told the read-only compile cache's."""
    import io
    import tempfile

    import torch

    tempfile.tempdir = os.environ.get("TORCHINDUCTOR_CACHE_DIR") or tempfile.tempdir
    try:
        model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                    torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2))
        exported = torch.export.export(model, (torch.randn(2, 3, 8, 8),),
                                       dynamic_shapes=({0: torch.export.Dim.AUTO},), strict=False)
        archive = io.BytesIO()
        torch.export.save(exported, archive)
        torch.export.load(io.BytesIO(archive.getvalue())).module()(torch.randn(3, 3, 8, 8))
    finally:   # a child finds its own temporary folder (its working one, or $TMPDIR)
        tempfile.tempdir = None


def _isolation_problem(isolate: Callable[[], None]) -> str | None:
    """Why a forked child cannot isolate itself here (an AppArmor profile that forbids nested user namespaces,
    say), or None. The host then grades without this server."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            isolate()
            message = b""
        except BaseException as error:   # noqa: BLE001 - what failed, for the host's warning
            message = f"{type(error).__name__}: {error}".encode("utf-8", "replace")[:300]
        os.write(write_end, message)
        os._exit(0)
    os.close(write_end)
    message = os.read(read_end, 400).decode("utf-8", "replace")
    os.close(read_end)
    os.waitpid(pid, 0)
    return message or None


def serve(warm: Callable[[], None], isolate: Callable[[], None] | None = None) -> None:
    _not_dumpable()
    warm()
    problem = _isolation_problem(isolate) if isolate is not None else None
    print(json.dumps({"ready": True} if problem is None else {"ready": False, "problem": problem}), flush=True)
    if problem is not None:
        return
    for line in sys.stdin:
        print(json.dumps({"exit": _serve_one(json.loads(line), isolate)}), flush=True)
