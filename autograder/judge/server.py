"""A warm judge: one sandboxed process that imports torch and the program loader once, then forks a fresh copy
of itself for every judging (``python -m autograder.judge.server``, started by ``autograder/warm_judge.py``).

Importing torch and torch.export's loader costs a judging ~4 s of CPU; a grading process pays it once per
concurrent grading instead of once per submission. The zygote runs no check and loads no program: each request
runs in a forked child (its memory is the child's own; it reads no request but its own, its stdin is
``/dev/null``), so nothing of one submission's judging survives into the next in memory, and a child that is
stopped (memory, time) takes the zygote down with it (the host then starts another). On disk, the sandbox
leaves a judging nothing to write but its own folder (``autograder/warm_judge.py``). No student code runs here,
forked or not: a program is data, calls from a closed op set (``allowed_ops``). One JSON line per request on
stdin, ``{"argv", "env", "cwd", "log", "nonce"}``; one JSON line per answer on stdout, ``{"exit": status}``
(``{"ready": true}`` first, once warm).
"""
from __future__ import annotations

import json
import os
import sys


def _warm() -> None:
    import pytest  # noqa: F401
    import torch  # noqa: F401
    import torch._export.serde.serialize  # noqa: F401 - the loader's imports (torch._dynamo among them)

    import autograder.judge.archive
    import autograder.judge.program  # noqa: F401

    autograder.judge.archive.remember_schema_hints()
    _load_a_program_of_our_own()


def _load_a_program_of_our_own() -> None:
    """Load a small program the kit exports itself: the loader's first use (its lazy imports, sympy's parser,
    the fake-tensor caches) costs a second, paid here once instead of in every forked judging. torch.export
    asks where a temporary folder would be (it writes nothing there): the judge has none, so it is told the
    read-only compile cache's."""
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
    finally:   # a judging's pytest writes its captures into its own folder (the working one, found again)
        tempfile.tempdir = None


def _judge(request: dict) -> int:
    """Run one pytest session in a forked child; its exit status."""
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        code = 70
        try:
            devnull = os.open(os.devnull, os.O_RDONLY)
            os.dup2(devnull, 0)
            os.chdir(request["cwd"])
            os.environ.update(request["env"])
            log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(log, 1)
            os.dup2(log, 2)
            read_end, write_end = os.pipe()
            os.write(write_end, request["nonce"].encode("ascii"))
            os.close(write_end)
            os.environ["HW2_NONCE_FD"] = str(read_end)
            import pytest

            code = int(pytest.main(request["argv"]))
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except (OSError, ValueError):
                    pass
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def main() -> None:
    _warm()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        print(json.dumps({"exit": _judge(json.loads(line))}), flush=True)


if __name__ == "__main__":
    main()
