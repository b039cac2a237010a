"""Part simplenn: Lab 1's SimpleNN.

Checked by behaviour and module inventory, never by attribute names: modules or functional ops,
``nn.Sequential`` or separate layers, one shared or two pooling layers are all fine. Each check tests one
property and costs its ``deduction`` share of the part's points (see autograder/rubric.py):

* the output shape (half the part: nothing else matters if the model does not produce logits);
* the handout's 82,030 parameters; the layer sizes; 576 = 16 x 6 x 6 features reaching fc1 (the pooling);
* a ReLU after each of conv1, conv2, fc1 and fc2, one check each: what reaches the next weighted layer is
  never negative (so a ReLU before or after a max-pool, as a module or a function, in place or not, passes);
* a gradient for every parameter.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from autograder.expectations import SIMPLENN_PARAMETERS, assert_logits, assert_relu_before
from autograder.inprocess_suites.conftest import (assert_simplenn_layers, build, call_student, forward,
                                                  trainable_parameters)

def _model():
    return build("simplenn", "SimpleNN")


@pytest.mark.deduction(1 / 2)
@pytest.mark.parametrize("n", [1, 5, 128])
def test_output_shape(n, device):
    """SimpleNN maps (N, 3, 32, 32) images to (N, 10) logits"""
    out = forward(_model(), torch.randn(n, 3, 32, 32, device=device))
    assert_logits(out, n)


@pytest.mark.deduction(1 / 6)
def test_parameter_count():
    """SimpleNN has exactly 82,030 trainable parameters"""
    count = trainable_parameters(_model())
    assert count == SIMPLENN_PARAMETERS, f"expected {SIMPLENN_PARAMETERS:,} trainable parameters, got {count:,}"


@pytest.mark.deduction(1 / 6)
def test_simplenn_layers():
    """Its layers are conv 5x5 3->8 and conv 3x3 8->16 (stride 1, no padding), then Linear 576->120->84->10"""
    assert_simplenn_layers(_model())


@pytest.mark.deduction(1 / 6)
def test_features_entering_the_first_linear(device):
    """The first Linear receives 16 x 6 x 6 = 576 features per image (two 2x2 pools after the convs)"""
    model = _model()
    first_linear = next((m for m in model.modules() if isinstance(m, nn.Linear)), None)
    assert first_linear is not None, "SimpleNN has no nn.Linear layer"
    seen = []
    first_linear.register_forward_pre_hook(lambda module, inputs: seen.append(tuple(inputs[0].shape)))
    forward(model, torch.randn(2, 3, 32, 32, device=device))
    assert seen, "the first Linear was never called"
    assert seen[0] == (2, 576), f"expected the first Linear to receive (2, 576) for 2 images, got {seen[0]}"


def _inputs_of_weighted_layers(model, device) -> dict[type, list[torch.Tensor]]:
    """One eval-mode forward: what every Conv2d and Linear call received, by layer type, in call order."""
    received: dict[type, list[torch.Tensor]] = {nn.Conv2d: [], nn.Linear: []}
    for module in model.modules():
        for kind, calls in received.items():
            if isinstance(module, kind):
                module.register_forward_pre_hook(
                    lambda layer, inputs, calls=calls: calls.append(inputs[0].detach().clone()))
    with torch.no_grad():
        forward(model.eval(), torch.randn(64, 3, 32, 32, device=device))
    return received


def _assert_relu_after(layer: str, kind: type, index: int, device) -> None:
    """A ReLU after ``layer``: call ``index`` of the next layer of type ``kind`` receives no negative value."""
    calls = _inputs_of_weighted_layers(_model(), device)[kind]
    follower = f"{kind.__name__} call {index + 1}"
    assert len(calls) > index, f"expected a {follower} after {layer}, got {len(calls)} {kind.__name__} calls"
    assert_relu_before(calls[index], follower, layer)


@pytest.mark.deduction(1 / 6)
def test_relu_after_conv1(device):
    """A ReLU follows conv1: conv2 never receives a negative value"""
    _assert_relu_after("conv1", nn.Conv2d, 1, device)


@pytest.mark.deduction(1 / 6)
def test_relu_after_conv2(device):
    """A ReLU follows conv2: the features entering fc1 are never negative"""
    _assert_relu_after("conv2", nn.Linear, 0, device)


@pytest.mark.deduction(1 / 6)
def test_relu_after_fc1(device):
    """A ReLU follows fc1: fc2 never receives a negative value"""
    _assert_relu_after("fc1", nn.Linear, 1, device)


@pytest.mark.deduction(1 / 6)
def test_relu_after_fc2(device):
    """A ReLU follows fc2: fc3 never receives a negative value"""
    _assert_relu_after("fc2", nn.Linear, 2, device)


@pytest.mark.deduction(1 / 6)
def test_gradients_reach_every_parameter(device):
    """A backward pass gives every parameter a non-zero gradient"""
    model = _model()
    loss = nn.functional.cross_entropy(forward(model, torch.randn(16, 3, 32, 32, device=device)),
                                       torch.randint(0, 10, (16,), device=device))
    call_student("backward through SimpleNN", loss.backward)
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"no gradient reaches {missing}"
