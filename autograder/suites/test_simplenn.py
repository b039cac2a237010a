"""Part simplenn: Lab 1's SimpleNN, judged on its exported program.

Checked by behaviour and by the program's calls, never by attribute names: modules or functional ops,
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

from autograder.expectations import SIMPLENN_PARAMETERS, assert_logits, assert_relu_before, listed
from autograder.suites.conftest import (assert_simplenn_layers, backward, images, program, run, trace,
                                        trainable_parameters)

def _model():
    return program("SimpleNN")


@pytest.mark.deduction(1 / 2)
@pytest.mark.parametrize("n", [1, 5, 128])
def test_output_shape(n, device):
    """SimpleNN maps (N, 3, 32, 32) images to (N, 10) logits"""
    out = run(_model().eval(), images(n))
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


def _inputs_of_weighted_layers(n: int) -> dict[str, list[torch.Tensor]]:
    """One eval-mode forward: what every conv and linear call received, by op, in call order."""
    model = _model().eval()
    _, values = trace(model, images(n))
    received: dict[str, list[torch.Tensor]] = {"conv2d": [], "linear": []}
    for kind, calls in received.items():
        for node in model.calls(kind):
            source = node.args[0]
            calls.append(values[source] if source in values else None)
    return received


@pytest.mark.deduction(1 / 6)
def test_features_entering_the_first_linear():
    """The first Linear receives 16 x 6 x 6 = 576 features per image (two 2x2 pools after the convs)"""
    linears = _model().calls("linear")
    assert linears, "SimpleNN has no nn.Linear layer"
    received = _inputs_of_weighted_layers(2)["linear"][0]
    shape = tuple(received.shape) if received is not None else None
    assert shape == (2, 576), f"expected the first Linear to receive (2, 576) for 2 images, got {shape}"


def _assert_relu_after(layer: str, kind: str, index: int) -> None:
    """A ReLU after ``layer``: call ``index`` of the next layer of type ``kind`` receives no negative value."""
    calls = _inputs_of_weighted_layers(64)[kind]
    label = {"conv2d": "Conv2d", "linear": "Linear"}[kind]
    follower = f"{label} call {index + 1}"
    assert len(calls) > index, f"expected a {follower} after {layer}, got {len(calls)} {label} calls"
    received = calls[index]
    assert received is not None, f"the {follower} receives no computed value"
    assert_relu_before(received, follower, layer)


@pytest.mark.deduction(1 / 6)
def test_relu_after_conv1():
    """A ReLU follows conv1: conv2 never receives a negative value"""
    _assert_relu_after("conv1", "conv2d", 1)


@pytest.mark.deduction(1 / 6)
def test_relu_after_conv2():
    """A ReLU follows conv2: the features entering fc1 are never negative"""
    _assert_relu_after("conv2", "linear", 0)


@pytest.mark.deduction(1 / 6)
def test_relu_after_fc1():
    """A ReLU follows fc1: fc2 never receives a negative value"""
    _assert_relu_after("fc1", "linear", 1)


@pytest.mark.deduction(1 / 6)
def test_relu_after_fc2():
    """A ReLU follows fc2: fc3 never receives a negative value"""
    _assert_relu_after("fc2", "linear", 2)


@pytest.mark.deduction(1 / 6)
def test_gradients_reach_every_parameter(device):
    """A backward pass gives every parameter a non-zero gradient"""
    model = _model().train()
    out = run(model, images(16))
    loss = nn.functional.cross_entropy(out, torch.randint(0, 10, (16,), device=device))
    backward(loss, "SimpleNN")
    missing = [name for name, p in model.parameters().items() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, listed("no gradient reaches ", missing)
