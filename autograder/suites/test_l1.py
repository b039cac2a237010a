"""Part l1: Lab 2's bonus ``l1_penalty(model, strength)``, judged on its exported programs.

The contract (DESIGN.md): a scalar tensor strength * sum |p| over the model's parameters, differentiable.
Any way of summing is fine (a loop, ``torch.cat`` of flattened parameters, ``torch.norm(p, 1)``). The student
process exported the penalty on small probe models with the parameters as the program's inputs
(``student_side/probes.py``): the judge sets their values here. Decisions:

* Frozen parameters may count or not: the handout asks for an L1 penalty on the weights added to the loss,
  and no model of this homework has frozen parameters, so both ``model.parameters()`` and only those with
  ``requires_grad`` are right (the probes here have no frozen parameter).
* "Scalar tensor" accepts a 0-dim or a 1-element tensor, on the model's device. Strength 0 must give 0
  (a plain number 0 is accepted there, since adding it to a loss works).
* Differentiable is checked through the gradient: d penalty / dp = strength * sign(p) for every
  parameter, which fails a penalty built from ``p.data``, ``p.detach()``, ``.item()`` or numpy.
* Weights are set by hand (no zeros, where |p| has no gradient) so expected values are exact; random
  weights with strength 1e-4 check realistic magnitudes within rtol 1e-5.
* A program cannot show whether the penalty switched ``requires_grad`` off: "parameters unchanged" checks
  their values only.
* What a failed check costs (``deduction``, a share of the part): a penalty that cannot be backpropagated
  does nothing in training, so differentiability is half the part.
"""
from __future__ import annotations

import pytest
import torch

from autograder.expectations import (L1_LINEAR_BIAS, L1_LINEAR_SUM, L1_LINEAR_WEIGHT, L1_LINEAR_WEIGHT_SUM,
                                       L1_MLP_SECOND_BIAS, L1_MLP_SECOND_WEIGHT, assert_scalar_tensor, listing,
                                       penalty_value)
from autograder.student_side.probes import l1_parameter_shapes
from autograder.suites.conftest import backward, grading_device, program, run



def _tensor(values) -> torch.Tensor:
    return torch.tensor(values, device=grading_device()).requires_grad_()


def _linear() -> dict[str, torch.Tensor]:
    return {"weight": _tensor(L1_LINEAR_WEIGHT), "bias": _tensor(L1_LINEAR_BIAS)}


def _mlp() -> dict[str, torch.Tensor]:
    return {"0.weight": _tensor(L1_LINEAR_WEIGHT), "0.bias": _tensor(L1_LINEAR_BIAS),
            "2.weight": _tensor(L1_MLP_SECOND_WEIGHT), "2.bias": _tensor(L1_MLP_SECOND_BIAS)}


def _penalty(program_id: str, parameters: dict[str, torch.Tensor]):
    return run(program(program_id), parameters, what="l1_penalty(model, strength)")


@pytest.mark.deduction(1 / 4)
def test_value_on_known_weights():
    """l1_penalty is strength * sum |p| (a Linear layer with weights set by hand)"""
    got = penalty_value(_penalty("l1_penalty-linear-0.1", _linear()))
    expected = 0.1 * L1_LINEAR_SUM
    hint = " (the biases are trainable parameters too)" if got == pytest.approx(0.1 * L1_LINEAR_WEIGHT_SUM) else ""
    assert got == pytest.approx(expected, rel=1e-6), \
        f"expected 0.1 * {L1_LINEAR_SUM:g} = {expected:g}, got {got:.6g}{hint}"


@pytest.mark.deduction(1 / 4)
def test_returns_a_scalar_tensor_on_the_model_device(device):
    """l1_penalty returns a scalar tensor on the model's device"""
    result = _penalty("l1_penalty-linear-0.5", _linear())
    assert_scalar_tensor(result)
    assert result.is_floating_point(), f"expected a floating-point tensor, got {result.dtype}"
    assert result.device.type == device.type, f"expected the penalty on {device.type}, got {result.device.type}"


@pytest.mark.deduction(1 / 2)
def test_gradient_is_strength_times_sign():
    """The penalty is differentiable: its gradient is strength * sign(p) for every parameter"""
    parameters = _mlp()
    result = _penalty("l1_penalty-mlp-0.5", parameters)
    assert_scalar_tensor(result)
    assert result.requires_grad, ("expected a penalty that requires grad (differentiable), got one detached from "
                                  "the parameters: do not use p.data, p.detach(), .item() or numpy")
    backward(result.sum(), "l1_penalty")
    missing = [name for name, p in parameters.items() if p.grad is None]
    wrong = [name for name, p in parameters.items()
             if p.grad is not None and not torch.allclose(p.grad, 0.5 * torch.sign(p.detach()), rtol=1e-6, atol=1e-7)]
    assert not missing and not wrong, _gradient_message(parameters, missing, wrong)


def _values(tensor: torch.Tensor) -> str:
    return "[" + ", ".join(f"{value:.4g}" for value in tensor.detach().flatten().tolist()) + "]"


def _gradient_message(parameters: dict[str, torch.Tensor], missing: list[str], wrong: list[str]) -> str:
    """Names every parameter without a gradient and every one with a wrong gradient (the first one's values)."""
    got = [f"none for {listing(missing, 80)}"] if missing else []
    if wrong:
        first = parameters[wrong[0]]
        got.append(f"a wrong one for {listing(wrong, 80)} ({wrong[0]}: {_values(first.grad)} instead of "
                   f"{_values(0.5 * torch.sign(first.detach()))})")
    return "expected the gradient of every parameter to be 0.5 * sign(p), got " + ", and ".join(got)


@pytest.mark.deduction(1 / 8)
def test_zero_strength_gives_zero():
    """Strength 0 gives a zero penalty"""
    got = penalty_value(_penalty("l1_penalty-linear-0", _linear()))
    assert got == 0.0, f"expected 0 for strength 0, got {got:g}"


@pytest.mark.deduction(1 / 8)
def test_small_strength_on_a_conv_net():
    """A small strength (1e-4) on a small conv net gives 1e-4 * sum |p|"""
    parameters = {name: torch.randn(shape, device=grading_device()).requires_grad_()
                  for name, shape in l1_parameter_shapes("convnet").items()}
    expected = 1e-4 * sum(p.detach().double().abs().sum().item() for p in parameters.values())
    got = penalty_value(_penalty("l1_penalty-convnet-0.0001", parameters))
    assert got == pytest.approx(expected, rel=1e-5), f"expected {expected:.6g}, got {got:.6g}"


@pytest.mark.deduction(1 / 8)
def test_parameters_are_not_modified():
    """l1_penalty leaves the parameters unchanged"""
    parameters = _mlp()
    before = {name: p.detach().clone() for name, p in parameters.items()}
    _penalty("l1_penalty-mlp-0.5", parameters)
    changed = [name for name, p in parameters.items() if not torch.equal(p.detach(), before[name])]
    assert not changed, f"expected the parameters unchanged, got {changed} modified (an in-place abs_()?)"
