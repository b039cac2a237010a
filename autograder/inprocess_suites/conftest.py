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

from autograder import expectations
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
    """SimpleNN's layers (shared by the SimpleNN and SimpleNNBN suites)."""
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    expectations.assert_simplenn_layers(
        [(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding) for c in convs],
        [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, torch.nn.Linear)])


def assert_simplenn_bn_parameters(model) -> None:
    """SimpleNNBN's parameter count, which SimpleNNSwish shares."""
    expectations.assert_simplenn_bn_parameters(trainable_parameters(model))


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
