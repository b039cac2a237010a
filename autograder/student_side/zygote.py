"""The student process's zygote: a sandboxed Python that imports torch, pytest and what the notebooks import
once, then forks one fresh child per submission, which loads that submission's code and exports its programs
(``python -I -B -c ... zygote``, started by ``autograder/warm_judge.py`` beside a warm judge, with bwrap only).

Importing torch and torchvision and the first export cost a submission ~4 s of CPU; the zygote pays
them once per concurrent grading. It never runs student code and reads nothing but its requests (the loop of
``fork_server``): each child starts from the memory ``warm`` left (the zygote is not dumpable: no child can
reach its memory), and moves into user, IPC and mount namespaces of its own before anything else, with a tmpfs
of its own as its home, so no file in its home and no IPC object one student's code creates is there for the
next. What else a child could leave behind the host checks after every submission: a process still running, or anything left in the zygote's inbox (its only
writable folder, holding the one submission it serves), discards the zygote (``warm_judge.release``).
"""
from __future__ import annotations

import ctypes
import os

from autograder.student_side.fork_server import exercise_export_and_load, serve

_CLONE_NEWUSER, _CLONE_NEWIPC, _CLONE_NEWNS = 0x10000000, 0x08000000, 0x00020000
_MS_NOSUID, _MS_NODEV = 2, 4
# The child's home: a tmpfs of its own, gone with the child. Not /tmp: Python and the kit may live below /tmp on the
# host (a clone in /tmp/...), and a tmpfs there would hide them from the child.
HOME = b"/grading/home"
HOME_BYTES = 512 * 2**20


def _warm() -> None:
    """The modules every child needs. Not matplotlib: it wants a writable folder for its cache when imported,
    and the zygote has none (a child, which the notebooks make import it, uses its own home)."""
    import numpy  # noqa: F401
    import PIL.Image  # noqa: F401
    import pytest  # noqa: F401
    import torch  # noqa: F401
    import torch.export  # noqa: F401
    import torch.fx.traceback  # noqa: F401
    import torch.utils._pytree  # noqa: F401
    import torchvision.transforms  # noqa: F401
    import tqdm  # noqa: F401
    from torch._export.serde import serialize  # noqa: F401

    exercise_export_and_load()


def _own_namespaces() -> None:
    """User, IPC and mount namespaces of the child's own (its capabilities reach none the zygote or a later
    child uses; the mounts it inherits stay locked read-only), and a fresh tmpfs at ``HOME``: what it writes
    there, and the IPC objects it makes, end with it."""
    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(_CLONE_NEWUSER | _CLONE_NEWIPC | _CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWUSER | CLONE_NEWIPC | CLONE_NEWNS) failed")
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w", encoding="ascii") as handle:   # the same ids as before, and no other
            handle.write(text)
    if libc.mount(b"tmpfs", HOME, b"tmpfs", _MS_NOSUID | _MS_NODEV, f"size={HOME_BYTES},mode=1777".encode()) != 0:
        raise OSError(ctypes.get_errno(), f"mounting a tmpfs at {HOME.decode()} failed")


def main() -> None:
    serve(_warm, isolate=_own_namespaces)


if __name__ == "__main__":
    main()
