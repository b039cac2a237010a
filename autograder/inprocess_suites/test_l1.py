"""Part l1: Lab 2's bonus ``l1_penalty(model, strength)``.

The contract (DESIGN.md): a scalar tensor strength * sum |p| over the model's parameters, differentiable.
Any way of summing is fine (a loop, ``torch.cat`` of flattened parameters, ``torch.norm(p, 1)``). Decisions:

* Frozen parameters may count or not: the handout asks for an L1 penalty on the weights added to the loss,
  and no model of this homework has frozen parameters, so both ``model.parameters()`` and only those with
  ``requires_grad`` are right (the probes here have no frozen parameter).
* "Scalar tensor" accepts a 0-dim or a 1-element tensor, on the model's device. Strength 0 must give 0
  (a plain number 0 is accepted there, since adding it to a loss works).
* Differentiable is checked through the gradient: d penalty / dp = strength * sign(p) for every
  parameter, which fails a penalty built from ``p.data``, ``p.detach()``, ``.item()`` or numpy.
* Weights are set by hand (no zeros, where |p| has no gradient) so expected values are exact; random
  weights with strength 1e-4 check realistic magnitudes within rtol 1e-5.
* What a failed check costs (``deduction``, a share of the part): a penalty that cannot be backpropagated
  does nothing in training, so differentiability is half the part.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from autograder.expectations import (L1_LINEAR_BIAS, L1_LINEAR_SUM, L1_LINEAR_WEIGHT, L1_LINEAR_WEIGHT_SUM,
                                       L1_MLP_SECOND_BIAS, L1_MLP_SECOND_WEIGHT, assert_scalar_tensor, penalty_value)
from autograder.inprocess_suites.conftest import call_student, student_object



def _penalty(model, strength):
    return call_student("l1_penalty(model, strength)", student_object("simplenn_dev", "l1_penalty"), model, strength)


def _linear(device) -> nn.Linear:
    layer = nn.Linear(3, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(L1_LINEAR_WEIGHT))
        layer.bias.copy_(torch.tensor(L1_LINEAR_BIAS))
    return layer.to(device)


@pytest.mark.deduction(1 / 4)
def test_value_on_known_weights(device):
    """l1_penalty is strength * sum |p| (a Linear layer with weights set by hand)"""
    result = _penalty(_linear(device), 0.1)
    got = penalty_value(result)
    expected = 0.1 * L1_LINEAR_SUM
    hint = " (the biases are trainable parameters too)" if got == pytest.approx(0.1 * L1_LINEAR_WEIGHT_SUM) else ""
    assert got == pytest.approx(expected, rel=1e-6), \
        f"expected 0.1 * {L1_LINEAR_SUM:g} = {expected:g}, got {got:.6g}{hint}"


@pytest.mark.deduction(1 / 4)
def test_returns_a_scalar_tensor_on_the_model_device(device):
    """l1_penalty returns a scalar tensor on the model's device"""
    result = _penalty(_linear(device), 0.5)
    assert_scalar_tensor(result)
    assert result.is_floating_point(), f"expected a floating-point tensor, got {result.dtype}"
    assert result.device.type == device.type, f"expected the penalty on {device.type}, got {result.device.type}"


@pytest.mark.deduction(1 / 2)
def test_gradient_is_strength_times_sign(device):
    """The penalty is differentiable: its gradient is strength * sign(p) for every parameter"""
    model = nn.Sequential(_linear(device), nn.Tanh(), nn.Linear(2, 2).to(device))
    with torch.no_grad():
        model[2].weight.copy_(torch.tensor(L1_MLP_SECOND_WEIGHT))
        model[2].bias.copy_(torch.tensor(L1_MLP_SECOND_BIAS))
    result = _penalty(model, 0.5)
    assert_scalar_tensor(result)
    assert result.requires_grad, ("expected a penalty that requires grad (differentiable), got one detached from "
                                  "the parameters: do not use p.data, p.detach(), .item() or numpy")
    call_student("backward through l1_penalty", result.sum().backward)
    for name, p in model.named_parameters():
        assert p.grad is not None, f"expected a gradient for parameter {name}, got none"
        expected = 0.5 * torch.sign(p.detach())
        assert torch.allclose(p.grad, expected, rtol=1e-6, atol=1e-7), (
            f"expected the gradient of {name} to be 0.5 * sign(p) = {expected.flatten().tolist()}, "
            f"got {p.grad.flatten().tolist()}")


@pytest.mark.deduction(1 / 8)
def test_zero_strength_gives_zero(device):
    """Strength 0 gives a zero penalty"""
    got = penalty_value(_penalty(_linear(device), 0.0))
    assert got == 0.0, f"expected 0 for strength 0, got {got:g}"


@pytest.mark.deduction(1 / 8)
def test_small_strength_on_a_conv_net(device):
    """A small strength (1e-4) on a small conv net gives 1e-4 * sum |p|"""
    model = nn.Sequential(nn.Conv2d(3, 8, 5), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 10))
    model = model.to(device)
    expected = 1e-4 * sum(p.detach().double().abs().sum().item() for p in model.parameters())
    got = penalty_value(_penalty(model, 1e-4))
    assert got == pytest.approx(expected, rel=1e-5), f"expected {expected:.6g}, got {got:.6g}"


@pytest.mark.deduction(1 / 8)
def test_parameters_are_not_modified(device):
    """l1_penalty leaves the parameters unchanged"""
    model = nn.Sequential(_linear(device), nn.Tanh(), nn.Linear(2, 2).to(device))
    before = [p.detach().clone() for p in model.parameters()]
    _penalty(model, 0.5)
    changed = [name for (name, p), old in zip(model.named_parameters(), before) if not torch.equal(p.detach(), old)]
    assert not changed, f"expected the parameters unchanged, got {changed} modified (an in-place abs_()?)"
    flags = [name for name, p in model.named_parameters() if not p.requires_grad]
    assert not flags, f"expected every parameter still trainable, got requires_grad=False on {flags}"
