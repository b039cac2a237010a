"""A warm judge: one sandboxed process that imports torch and the program loader once, then forks a fresh copy
of itself for every judging (``python -m autograder.judge.server``, started by ``autograder/warm_judge.py``).

Importing torch and torch.export's loader costs a judging ~4 s of CPU; a grading process pays it once per
concurrent grading instead of once per submission. The zygote runs no check and loads no program: each request
runs in a forked child (its memory is the child's own; it reads no request but its own, its stdin is
``/dev/null``), so nothing of one submission's judging survives into the next in memory, and a child that is
stopped (memory, time) takes the zygote down with it (the host then starts another). On disk, the sandbox
leaves a judging nothing to write but its own folder (``autograder/warm_judge.py``). No student code runs here,
forked or not: a program is data, calls from a closed op set (``allowed_ops``). The requests and answers are
``student_side/fork_server.py``'s.
"""
from __future__ import annotations

from autograder.student_side.fork_server import exercise_export_and_load, serve


def _warm() -> None:
    import pytest  # noqa: F401
    import torch  # noqa: F401
    import torch._export.serde.serialize  # noqa: F401 - the loader's imports (torch._dynamo among them)

    import autograder.judge.archive
    import autograder.judge.program  # noqa: F401

    autograder.judge.archive.remember_schema_hints()
    exercise_export_and_load()


def main() -> None:
    serve(_warm)


if __name__ == "__main__":
    main()
