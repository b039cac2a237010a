"""The student process's zygote (autograder/student_side/zygote.py, warm_judge.Zygote): each submission's code
runs in a fresh forked child that cannot reach the zygote's memory, gets IPC and a home (a tmpfs) of its own, and leaves
nothing a later child could find: a process left running or a file left outside the submission's folder ends the zygote.
Plain test files stand in for a student's code (the zygote runs whatever pytest file it is asked to, as it runs
the export tests on a student's modules). bwrap only (without it the student process is spawned per submission).
"""
from __future__ import annotations

import json
import shutil
import time

import pytest

import course_config
from autograder import sandbox, stages, warm_judge

pytestmark = pytest.mark.skipif(sandbox.bwrap_problem() is not None, reason=f"{sandbox.bwrap_problem()}")

REACH = """
import ctypes, json, os

IPC_CREAT, KEY = 0o1000, 0x48573221


def test_reach():
    found = {"parent": os.getppid()}
    for what in ("mem", "environ", "fd/0"):   # fd/0: the zygote's requests, the next student's among them
        try:
            os.close(os.open(f"/proc/{os.getppid()}/{what}", os.O_RDONLY | os.O_NONBLOCK))
            found[what] = "opened"
        except OSError as error:
            found[what] = type(error).__name__
    libc = ctypes.CDLL(None, use_errno=True)
    found["shm_created"] = libc.shmget(KEY, 4096, IPC_CREAT | 0o666) >= 0
    found["cwd"], found["home_writable"] = os.getcwd(), os.access(os.environ["HOME"], os.W_OK)
    with open(os.path.join(os.environ["HOME"], "left-for-the-next.txt"), "w") as handle:
        handle.write("hello")
    with open(os.path.join(os.environ["ATTEMPT"], "reach.json"), "w") as handle:
        json.dump(found, handle)
"""

LOOK_FOR_IPC = """
import ctypes

KEY = 0x48573221


def test_no_ipc_of_an_earlier_child():
    import os
    assert ctypes.CDLL(None).shmget(KEY, 0, 0) == -1, "a shared memory segment of an earlier child is here"
    assert os.listdir(os.environ["HOME"]) == [], "a file of an earlier child's home is here"
"""

PLANT_IN_INBOX = """
import os


def test_plant():
    inbox = os.path.dirname(os.path.dirname(os.environ["ATTEMPT"]))   # inbox/submission/attempt
    with open(os.path.join(inbox, "for-the-next-student.txt"), "w") as handle:
        handle.write("hello")
"""

DAEMON = """
import subprocess


def test_leaves_a_process():
    subprocess.Popen(["sleep", "60"], start_new_session=True)
"""


def _ask(zygote, folder, source: str):
    attempt = folder / f"attempt-{time.monotonic_ns()}"
    attempt.mkdir()
    test = attempt / "test_it.py"
    test.write_text(source, encoding="utf-8")
    return zygote.run([str(zygote.inside(test)), "-q", "-p", "no:cacheprovider"],
                      env={"ATTEMPT": str(zygote.inside(attempt)), "HOME": str(warm_judge.HOME_INSIDE)},
                      cwd=str(warm_judge.HOME_INSIDE), log=attempt / "log.txt",
                      nonce="0" * 32, memory_mb=4000,
                      max_processes=8, should_stop=lambda: None), attempt


def test_a_child_cannot_reach_the_zygote_and_its_ipc_dies_with_it():
    judge = warm_judge.acquire("cpu", True, stages.judge_env())
    zygote = judge.zygote
    try:
        folder = zygote.new_folder()
        reached, attempt = _ask(zygote, folder, REACH)
        assert reached.exit_code == 0, reached.output
        found = json.loads((attempt / "reach.json").read_text(encoding="utf-8"))
        assert "opened" not in (found["mem"], found["environ"], found["fd/0"]), found
        assert found["cwd"] == str(warm_judge.HOME_INSIDE) and found["home_writable"], "its home: a tmpfs of its own"
        assert found["shm_created"], "the child made a shared memory segment (in an IPC namespace of its own)"
        looked, _ = _ask(zygote, folder, LOOK_FOR_IPC)
        assert looked.exit_code == 0, looked.output
        shutil.rmtree(folder)
        assert zygote.clean(), "a child that only used its own folder and IPC leaves the zygote reusable"
    finally:
        warm_judge.release(judge, clean=True)


def test_a_file_left_outside_the_submission_or_a_process_left_running_ends_the_zygote():
    judge = warm_judge.acquire("cpu", True, stages.judge_env())
    try:
        zygote = judge.zygote
        folder = zygote.new_folder()
        planted, _ = _ask(zygote, folder, PLANT_IN_INBOX)
        assert planted.exit_code == 0, planted.output
        shutil.rmtree(folder)
        assert not zygote.clean() and not judge.clean()
        warm_judge.release(judge, clean=True)
        assert not judge.alive() and not zygote.alive() and not zygote.inbox.exists(), "both are discarded"

        judge = warm_judge.acquire("cpu", True, stages.judge_env())
        zygote = judge.zygote
        left, _ = _ask(zygote, zygote.new_folder(), DAEMON)
        assert left.exit_code == 0 and not zygote.alive(), "a process left behind takes the zygote down with it"
        assert judge.alive() and not judge.clean()
        warm_judge.restart_zygote(judge)
        assert judge.zygote.alive() and judge.zygote.inbox == zygote.inbox, "a restart serves the same inbox"
    finally:
        for path in judge.zygote.inbox.iterdir():
            shutil.rmtree(path)
        warm_judge.release(judge, clean=False)


def test_the_isolation_probe_says_why_a_child_cannot_isolate_itself():
    """Where nested user namespaces are forbidden (an AppArmor profile for bwrap, say), the zygote says so
    instead of serving: its ready line carries this reason."""
    from autograder.student_side import fork_server

    def forbidden():
        raise PermissionError("nested user namespaces are not allowed here")
    assert fork_server._isolation_problem(lambda: None) is None
    assert fork_server._isolation_problem(forbidden) == "PermissionError: nested user namespaces are not allowed here"


def test_without_a_zygote_each_student_process_is_spawned_in_its_own_sandbox(tmp_path, monkeypatch, course_data):
    """The slower path a machine without nested namespaces takes: the same grades."""
    from common.predictions import load_labels
    from autograder.grade import grade_submission
    from fixtures import corpus

    monkeypatch.setattr(warm_judge, "_pool", {})
    monkeypatch.setattr(warm_judge, "zygote_problem", ["forced by the test"])
    labels_csv = course_data[1]
    submission = corpus.build_submission(tmp_path / "submission", predictions=labels_csv)
    result = grade_submission(submission, tmp_path / "out", load_labels(labels_csv), "cpu")
    assert result.status == "ok" and result.sandbox == "bwrap", (result.status, result.staff_message)
    assert result.score == pytest.approx(sum(course_config.AUTOGRADED_POINTS.values()), abs=0.01)
    assert result.timings["student: torch + kit imports"] > 0.3, "a spawned student process imports torch itself"
    (judge,) = warm_judge._pool[("cpu", True)]
    assert judge.zygote is None
