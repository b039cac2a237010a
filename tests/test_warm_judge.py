"""The warm judge (autograder/warm_judge.py): forks a fresh pytest per request, is watched like any child,
and after a stop is restarted on the same inbox so a rerun finds its submission's folder. Fast-ish: each
start imports torch once (a few seconds); plain test files stand in for the hidden suites."""
from __future__ import annotations

import time

from autograder import runner, sandbox, warm_judge

PASSING = "def test_passes():\n    assert True\n"
SLEEPING = "def test_sleeps():\n    import time\n    time.sleep(60)\n"
HOARDING = "def test_hoards():\n    hoard = [bytearray(256 * 2**20) for _ in range(16)]\n    assert hoard\n"


def _ask(judge, folder, source: str, *, memory_mb: float = 4000, stop_after_s: float | None = None):
    test = folder / f"test_{time.monotonic_ns()}.py"
    test.write_text(source, encoding="utf-8")
    started = time.monotonic()

    def should_stop():
        if stop_after_s is not None and time.monotonic() - started > stop_after_s:
            return sandbox.Stop("timeout", f"ran for more than {stop_after_s} s")
        return None
    return judge.run([str(judge.inside(test)), "-q", "-p", "no:cacheprovider"], env={}, cwd=folder,
                     log=folder / "log.txt", nonce="0" * 32, memory_mb=memory_mb, max_processes=8,
                     should_stop=should_stop)


def test_a_stopped_judging_kills_the_judge_and_a_restart_serves_the_same_inbox():
    judge = warm_judge.acquire("cpu", False, runner._judge_env(False))
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
        warm_judge.release(judge)
    assert not inbox.exists(), "a dead judge is discarded with its inbox on release"


def test_an_idle_judge_is_reused():
    first = warm_judge.acquire("cpu", False, runner._judge_env(False))
    warm_judge.release(first)
    second = warm_judge.acquire("cpu", False, runner._judge_env(False))
    try:
        assert second is first
    finally:
        warm_judge.release(second)
