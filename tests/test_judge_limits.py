"""A program too large or too slow to judge is the student's failure, said in the feedback: never a kit error,
never a flag (an honest model could be big). A 20,000-node program once held the judge past its time limit
while it loaded, before any check had started, and the grader reported the kit as broken.
"""
from __future__ import annotations

import secrets
import shutil
import time

import pytest
import torch
from torch import nn

from autograder import runner, sandbox, stages, warm_judge
from autograder.suite_run import SuiteRun
from autograder.judge import archive
from autograder.judge.archive import ProgramTooLarge, UnsafeProgram, clean_archive


class _Deep(nn.Module):
    """A long forward: ``depth`` convs, each followed by a ReLU and an addition (4 calls each)."""

    def __init__(self, depth: int):
        super().__init__()
        self.depth, self.conv = depth, nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        for _ in range(self.depth):
            x = torch.relu(self.conv(x)) + x * 0.5
        return x.mean((2, 3)).repeat(1, 4)[:, :10]


def _save(module: nn.Module, path):
    program = torch.export.export(module, (torch.randn(4, 3, 32, 32),),
                                  dynamic_shapes=({0: torch.export.Dim.AUTO},), strict=False)
    torch.export.save(program, path)
    return path


def test_a_program_over_the_node_limit_is_too_large_not_forged(tmp_path):
    path = _save(_Deep(archive.MAX_NODES // 4 + 10), tmp_path / "deep.pt2")
    with pytest.raises(ProgramTooLarge, match=f"more than the {archive.MAX_NODES:,} the judge loads") as raised:
        clean_archive(path)
    assert not isinstance(raised.value, UnsafeProgram)


@pytest.mark.skipif(sandbox.bwrap_problem() is not None, reason=f"{sandbox.bwrap_problem()}")
def test_a_program_that_loads_too_long_fails_its_checks_and_the_kit_is_not_blamed(tmp_path):
    """The judge stage alone, on a SimpleNN program that loads for seconds (just under the node limit), with a
    part limit well under its load time on this machine: the stop is blamed on that program, its checks fail
    saying so, the status is the student's ('timeout', not 'error') and the judge that was stopped is never
    reused."""
    slow = _save(_Deep(archive.MAX_NODES // 4 - 10), tmp_path / "slow.pt2")
    started = time.monotonic()
    archive.load_program(slow)
    limit = round(max(1.0, (time.monotonic() - started) / 3), 1)
    policy = runner.SandboxPolicy(kind="bwrap", part_timeout_s=limit)
    judge = warm_judge.acquire("cpu", True, stages.judge_env())
    folder, export_folder = judge.new_folder(), judge.zygote.new_folder()
    context = runner._Context(tmp_path, export_folder / "programs", "cpu", policy, time.monotonic() + 120, True,
                              None, probe_seed=secrets.randbelow(2**31), judge=judge, folder=folder,
                              export_folder=export_folder)
    try:
        context.programs.mkdir()
        (folder / "student").mkdir()
        shutil.copyfile(slow, context.programs / "SimpleNN.pt2")
        context.exports = [{"part": "simplenn", "case": "SimpleNN", "passed": True, "message": ""}]
        context.judged = ["simplenn"]
        context.write_manifest()
        run = SuiteRun()
        outcomes = runner.run_stage(stages.JUDGE, context, ["simplenn"], run)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(export_folder, ignore_errors=True)
        warm_judge.release(context.judge, clean=context.judge_clean)
    assert run.status == "timeout" and run.staff_message is None, (run.status, run.staff_message)
    assert outcomes and all(not outcome["passed"] for outcome in outcomes)
    messages = {outcome["message"] for outcome in outcomes}
    assert messages == {f"the exported program could not be judged: ran for more than {limit:g} s (an endless loop "
                        "or very slow code?) while it loaded"}, messages
    assert run.problems == [f"SimpleNN: {messages.pop()}"]
    assert not context.judge_clean and not context.judge.alive()
