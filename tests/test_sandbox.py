"""autograder/sandbox.py on tiny commands (no torch): the watch's limits, the output tail, the bwrap file system,
and who the subprocess fallback runs as. The full attacks through the grader are tests/test_hostile_submissions.py."""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest

from autograder import sandbox

NEEDS_BWRAP = pytest.mark.skipif(sandbox.bwrap_problem() is not None, reason=f"{sandbox.bwrap_problem()}")


def _run(code: str, tmp_path: Path, *, memory_mb: float = 2000, max_processes: int = 8, wall_s: float = 20,
         use_bwrap: bool = False, mounts=(), file_bytes: int = 2**30, tmp: bool = True) -> sandbox.Finished:
    deadline = time.monotonic() + wall_s
    argv = [sys.executable, "-c", code]
    if use_bwrap:
        argv = sandbox.bwrap_command(argv, list(mounts), gpu=False, tmp=tmp)
    return sandbox.run_watched(
        argv, env={"PATH": "/usr/bin:/bin"}, cwd=tmp_path, memory_mb=memory_mb, max_processes=max_processes,
        should_stop=lambda: sandbox.Stop("timeout", "too slow") if time.monotonic() > deadline else None,
        file_bytes=file_bytes, use_bwrap=use_bwrap)


def test_a_clean_exit_reports_its_status_and_the_tail_of_its_output(tmp_path):
    finished = _run("import sys\nfor i in range(200000): print(i)\nsys.exit(3)", tmp_path)
    assert finished.stop is None and finished.exit_code == 3
    assert finished.output.rstrip().endswith("199999") and len(finished.output) <= sandbox.OUTPUT_TAIL_BYTES


def test_the_caller_can_stop_an_endless_loop_and_every_process_dies(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    code = (f"import os, subprocess, sys\np = subprocess.Popen([sys.executable, '-c', 'while True: pass'])\n"
            f"open({str(pid_file)!r}, 'w').write(str(p.pid))\nwhile True: pass")
    finished = _run(code, tmp_path, wall_s=2)
    assert finished.stop == sandbox.Stop("timeout", "too slow") and finished.exit_code is None
    grandchild = int(pid_file.read_text())
    time.sleep(0.2)
    assert not Path(f"/proc/{grandchild}").exists() or "Z" in Path(f"/proc/{grandchild}/stat").read_text().split()[2]


def test_memory_over_the_limit_is_stopped(tmp_path):
    finished = _run("hoard = []\nwhile True: hoard.append(bytearray(64 * 2 ** 20))", tmp_path, memory_mb=300)
    assert finished.stop is not None and finished.stop.kind == "memory", finished
    assert 300 < finished.peak_memory_mb < 2000


def test_too_many_processes_are_stopped(tmp_path):
    code = "import subprocess, sys, time\nkids = [subprocess.Popen(['sleep', '30']) for _ in range(12)]\ntime.sleep(30)"
    finished = _run(code, tmp_path, max_processes=5)
    assert finished.stop is not None and finished.stop.kind == "processes", finished


@NEEDS_BWRAP
def test_bwrap_shows_only_the_mounts_and_no_network(tmp_path):
    shared, secret = tmp_path / "shared", tmp_path / "secret"
    shared.mkdir()
    secret.mkdir()
    (shared / "visible.txt").write_text("yes")
    (secret / "labels.csv").write_text("Id,Label\n")
    code = f"""
import os, socket
print("visible", open("/grading/visible.txt").read())
print("secret", os.path.exists({str(secret)!r}), os.path.exists({str(Path.home())!r} + "/.bashrc"))
try:
    socket.create_connection(("127.0.0.1", 22), timeout=1)
    print("network yes")
except OSError:
    print("network no")
try:
    open("/grading/new.txt", "w")
    print("writable yes")
except OSError:
    print("writable no")
"""
    finished = _run(code, tmp_path, use_bwrap=True, mounts=[sandbox.Mount(shared, Path("/grading"))])
    assert finished.exit_code == 0, finished.output
    assert "visible yes" in finished.output and "secret False False" in finished.output
    assert "network no" in finished.output and "writable no" in finished.output


_WRITABLE = """
import os
found = []
for folder in ("/", "/tmp", "/dev", "/dev/shm", "/usr", "/grading", "/grading/in", "/grading/out", os.getcwd()):
    try:
        with open(os.path.join(folder, "probe"), "w") as handle:
            handle.write("x")
        found.append(folder)
    except OSError:
        pass
print("writable", sorted(set(found)))
"""


@NEEDS_BWRAP
@pytest.mark.parametrize("tmp", [True, False], ids=["student", "judge"])
def test_bwrap_leaves_nothing_writable_but_the_writable_mounts_and_a_capped_tmp(tmp, tmp_path):
    """bwrap's own root and /dev are tmpfs that no memory watch sees: remounted read-only, like everything else."""
    (tmp_path / "ro").mkdir()
    (tmp_path / "rw").mkdir()
    mounts = [sandbox.Mount(tmp_path / "ro", Path("/grading/in")),
              sandbox.Mount(tmp_path / "rw", Path("/grading/out"), writable=True)]
    finished = _run(_WRITABLE, tmp_path, use_bwrap=True, mounts=mounts, tmp=tmp)
    assert finished.exit_code == 0, finished.output
    expected = ["/grading/out", "/tmp"] if tmp else ["/grading/out"]
    assert f"writable {expected}" in finished.output, finished.output


@pytest.mark.parametrize("use_bwrap", [False, pytest.param(True, marks=NEEDS_BWRAP)], ids=["subprocess", "bwrap"])
def test_no_file_grows_past_file_bytes(use_bwrap, tmp_path):
    (tmp_path / "out").mkdir()
    code = ("import os\nhandle = open(os.path.join(%r, 'big'), 'wb')\ntry:\n    handle.write(b'0' * 3 * 2 ** 20)\n"
            "    handle.flush()\nexcept OSError as error:\n    print('refused', error.errno)" %
            ("/grading/out" if use_bwrap else str(tmp_path / "out")))
    finished = _run(code, tmp_path, use_bwrap=use_bwrap, file_bytes=2**20,
                    mounts=[sandbox.Mount(tmp_path / "out", Path("/grading/out"), writable=True)])
    assert "refused 27" in finished.output, finished.output   # EFBIG
    assert (tmp_path / "out" / "big").stat().st_size <= 2**20


def test_folder_usage_counts_every_level_and_stops_counting_past_the_entry_budget(tmp_path):
    deep = tmp_path / "a" / "b" / "c"
    deep.mkdir(parents=True)
    (deep / "blob").write_bytes(b"0" * 5000)
    (tmp_path / "top").write_bytes(b"0" * 100)
    os.symlink("/usr", tmp_path / "a" / "link")   # never followed
    assert sandbox.folder_usage([tmp_path], 100) == (5100 + len("/usr"), 6)
    for index in range(50):
        (tmp_path / f"file-{index}").touch()
    size, entries = sandbox.folder_usage([tmp_path], 10)
    assert 10 < entries < 56, "counting stops once past the budget"


@pytest.fixture
def world_readable_folder():
    """A folder every user can traverse (pytest's tmp_path lives under a 0700 folder)."""
    folder = Path(tempfile.mkdtemp(prefix="hw2-sandbox-test-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


@pytest.mark.skipif(os.geteuid() != 0, reason="the fallback changes user only when the grader is root")
def test_the_fallback_runs_as_nobody_only_where_nobody_can_run_python(world_readable_folder, monkeypatch):
    python_home = world_readable_folder / "python"
    python_home.mkdir(mode=0o755)
    for attribute in ("executable", "prefix", "base_prefix"):
        monkeypatch.setattr(sys, attribute, str(python_home))
    assert sandbox.fallback_user() == sandbox.NOBODY
    world_readable_folder.chmod(0o700)   # like /root, where pyenv puts Python on these machines
    assert sandbox.fallback_user() is None


@NEEDS_BWRAP
def test_the_gpu_probe_runs_torch_inside_the_sandbox():
    """On a GPU machine this is the check that bwrap exposes the GPU (else --device auto grades on the CPU)."""
    import torch

    problem = sandbox.bwrap_gpu_problem()
    if torch.cuda.is_available():
        assert problem is None
    else:
        assert problem == "torch sees no CUDA GPU inside the bwrap sandbox (False)"
