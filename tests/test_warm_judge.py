"""The warm judge (autograder/warm_judge.py): forks a fresh pytest per request, is watched like any child,
after a stop is restarted on the same inbox so a rerun finds its submission's folder, and leaves no judging
anything a later one could read. Fast-ish: each start imports torch once (a few seconds); plain test files
stand in for the hidden suites (and, in the isolation test, for code no program can make the judge run)."""
from __future__ import annotations

import json
import shutil
import time

import pytest

from autograder import sandbox, stages, warm_judge

PASSING = "def test_passes():\n    assert True\n"
SLEEPING = "def test_sleeps():\n    import time\n    time.sleep(60)\n"
HOARDING = "def test_hoards():\n    hoard = [bytearray(256 * 2**20) for _ in range(16)]\n    assert hoard\n"
NEEDS_BWRAP = pytest.mark.skipif(sandbox.bwrap_problem() is not None, reason=f"{sandbox.bwrap_problem()}")


def _ask(judge, folder, source: str, *, memory_mb: float = 4000, stop_after_s: float | None = None):
    attempt = folder / f"attempt-{time.monotonic_ns()}"
    attempt.mkdir()
    test = attempt / "test_it.py"
    test.write_text(source, encoding="utf-8")
    started = time.monotonic()

    def should_stop():
        if stop_after_s is not None and time.monotonic() - started > stop_after_s:
            return sandbox.Stop("timeout", f"ran for more than {stop_after_s} s")
        return None
    return judge.run([str(judge.inside(test)), "-q", "-p", "no:cacheprovider"], env={}, cwd=attempt,
                     log=attempt / "log.txt", nonce="0" * 32, memory_mb=memory_mb, max_processes=8,
                     should_stop=should_stop)


def test_a_stopped_judging_kills_the_judge_and_a_restart_serves_the_same_inbox():
    judge = warm_judge.acquire("cpu", False, stages.judge_env())
    try:
        folder = judge.new_folder()
        passed = _ask(judge, folder, PASSING)
        assert passed.exit_code == 0 and passed.stop is None, passed.output
        stopped = _ask(judge, folder, SLEEPING, stop_after_s=1)
        assert stopped.stop is not None and stopped.stop.kind == "timeout" and not judge.alive()
        judge = warm_judge.restart(judge)
        assert judge.alive() and folder.is_dir()
        hoarded = _ask(judge, folder, HOARDING, memory_mb=1500)
        assert hoarded.stop is not None and hoarded.stop.kind == "memory" and not judge.alive()
        judge = warm_judge.restart(judge)
        again = _ask(judge, folder, PASSING)
        assert again.exit_code == 0, again.output
    finally:
        inbox = judge.inbox
        judge.close()
        warm_judge.release(judge, clean=True)
    assert not inbox.exists(), "a dead judge is discarded with its inbox on release"


def test_an_idle_judge_is_reused_only_when_clean_and_its_inbox_empty():
    first = warm_judge.acquire("cpu", False, stages.judge_env())
    folder = first.new_folder()
    assert len(folder.name) == 32, "folder names nobody can guess"
    shutil.rmtree(folder)
    warm_judge.release(first, clean=True)
    second = warm_judge.acquire("cpu", False, stages.judge_env())
    assert second is first
    second.new_folder()   # left behind
    warm_judge.release(second, clean=True)
    third = warm_judge.acquire("cpu", False, stages.judge_env())
    assert third is not first and not first.inbox.exists()
    warm_judge.release(third, clean=False)
    assert not third.alive() and not third.inbox.exists(), "a judge whose judgings were not clean is discarded"


PLANT = """
import json, os, sys


def test_plants():
    cwd = os.getcwd()
    folders = ["/", "/tmp", "/dev", "/dev/shm", os.path.expanduser("~"), cwd, os.path.dirname(cwd),
               os.path.dirname(os.path.dirname(cwd)), os.environ.get("TORCHINDUCTOR_CACHE_DIR", "/"), *sys.path]
    planted = []
    for folder in folders:
        for name in ("pdb.py", "hw2_planted.py"):
            try:
                with open(os.path.join(folder, name), "w") as handle:
                    handle.write("raise SystemExit('a planted module was imported')")
                planted.append(folder)
            except OSError:
                pass
    with open("planted.json", "w") as handle:
        json.dump({"planted": planted, "cwd": cwd, "inbox": os.path.dirname(os.path.dirname(cwd))}, handle)
"""

LOOK = """
import importlib.util, os, sys


def test_finds_nothing():
    import pdb   # the standard library's: a planted one would raise SystemExit
    assert importlib.util.find_spec("hw2_planted") is None
    for folder in sys.path:
        # pytest prepends this stand-in file's own folder; the hidden suites live in the read-only kit
        assert folder == os.path.dirname(__file__) or not os.access(folder, os.W_OK), f"{folder} is writable"
    assert [name for name in os.environ if name.startswith("PYTHON")] == []
    assert sys.flags.isolated == 1
"""


@NEEDS_BWRAP
def test_nothing_one_judging_writes_reaches_the_next():
    """The attack that once zeroed two honest students: a judging planted /tmp/pdb.py, which a later judging on
    the same warm judge imported. Here a test file stands in for code that no program can make the judge run
    (the closed op set stops that first), and writes everywhere it can; the next judging finds nothing."""
    judge = warm_judge.acquire("cpu", True, stages.judge_env())
    folder = judge.new_folder()
    planted = _ask(judge, folder, PLANT)
    assert planted.exit_code == 0, planted.output
    (attempt,) = [path for path in folder.iterdir() if (path / "planted.json").exists()]
    report = json.loads((attempt / "planted.json").read_text(encoding="utf-8"))
    inside = str(warm_judge.INBOX_INSIDE)
    assert report["planted"] and all(path.startswith(inside) for path in report["planted"]), report
    assert inside in report["planted"], "the inbox itself is writable: a plant there must end the judge"
    assert report["inbox"] == inside
    shutil.rmtree(folder)                      # as run_suites does after every submission
    warm_judge.release(judge, clean=True)      # a plant in the inbox itself: this judge is never reused
    judge = warm_judge.acquire("cpu", True, stages.judge_env())
    try:
        looked = _ask(judge, judge.new_folder(), LOOK)
        assert looked.exit_code == 0, looked.output
    finally:
        for path in judge.inbox.iterdir():
            shutil.rmtree(path)
        warm_judge.release(judge, clean=False)
