"""The in-process checks: the fallback for student code that ``torch.export`` cannot capture.

These suites run in the student's own process (sandboxed) on the live objects, as every check ran before the
judge existed, so a student can forge their verdicts: a part graded here is marked ``unverified`` for staff
review. Each ``test_<part>.py`` makes exactly the checks, with the same names and deductions, as the judge's
``autograder/suites/test_<part>.py`` (a kit test keeps them equal); ``test_canary.py`` must fail and catches the
crudest forgeries. Student objects come from ``autograder.student_side.student_code``.
"""
from __future__ import annotations

import pytest
import torch

from autograder.student_side.student_code import (build, call_student, forward, grading_device,  # noqa: F401
                                                 student_object)


def trainable_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.fixture
def device() -> torch.device:
    return grading_device()


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)


def assert_simplenn_layers(model) -> None:
    """SimpleNN's layers (shared by the SimpleNN and SimpleNNBN suites): convs 5x5 3->8 and 3x3 8->16,
    stride 1, no padding, and Linear 576->120->84->10."""
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    got = [(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding) for c in convs]
    expected = [(3, 8, (5, 5), (1, 1), (0, 0)), (8, 16, (3, 3), (1, 1), (0, 0))]
    assert got == expected, f"expected convs (in, out, kernel, stride, padding) {expected}, got {got}"
    linears = [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert linears == [(576, 120), (120, 84), (84, 10)], f"expected Linear 576->120->84->10, got {linears}"


SIMPLENN_BN_PARAMETERS = (82_078, 82_054)   # with conv biases / with bias=False convs before the BNs


def assert_simplenn_bn_parameters(model) -> None:
    """SimpleNNBN's parameter count, which SimpleNNSwish shares."""
    count = trainable_parameters(model)
    assert count in SIMPLENN_BN_PARAMETERS, (
        f"expected 82,078 trainable parameters (82,054 if the convs have bias=False), got {count:,}")


def batchnorm_fed_by_each_conv(model, x) -> list[tuple[torch.nn.Conv2d, torch.nn.BatchNorm2d | None]]:
    """One train-mode forward of ``x``; every conv call paired with the BatchNorm2d that received exactly
    its output, or None. Copies are compared, so an in-place op between conv and BN shows."""
    conv_outputs, norm_inputs = [], []
    for conv in (m for m in model.modules() if isinstance(m, torch.nn.Conv2d)):
        conv.register_forward_hook(lambda module, args, output: conv_outputs.append((module, output.detach().clone())))
    for norm in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        norm.register_forward_pre_hook(lambda module, args: norm_inputs.append((module, args[0].detach().clone())))
    forward(model.train(), x)
    pairs = []
    for conv, output in conv_outputs:
        fed = [norm for norm, received in norm_inputs
               if received.shape == output.shape and torch.equal(received, output)]
        pairs.append((conv, fed[0] if fed else None))
    return pairs
