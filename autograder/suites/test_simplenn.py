"""Part simplenn: Lab 1's SimpleNN.

Checked by behaviour and module inventory, never by attribute names: modules or functional ops,
``nn.Sequential`` or separate layers, one shared or two pooling layers are all fine.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from autograder.suites.conftest import assert_simplenn_layers, build, forward, trainable_parameters

EXPECTED_PARAMETERS = 82_030


def _model():
    return build("simplenn", "SimpleNN")


@pytest.mark.parametrize("n", [1, 5, 128])
def test_output_shape(n, device):
    """SimpleNN maps (N, 3, 32, 32) images to (N, 10) logits"""
    out = forward(_model(), torch.randn(n, 3, 32, 32, device=device))
    assert isinstance(out, torch.Tensor), f"forward must return a tensor, got {type(out).__name__}"
    assert tuple(out.shape) == (n, 10), f"expected output shape ({n}, 10), got {tuple(out.shape)}"


@pytest.mark.points(2)
def test_parameter_count():
    """SimpleNN has exactly 82,030 trainable parameters"""
    count = trainable_parameters(_model())
    assert count == EXPECTED_PARAMETERS, f"expected {EXPECTED_PARAMETERS:,} trainable parameters, got {count:,}"


def test_simplenn_layers():
    """Two convolutions (5x5 3->8, 3x3 8->16, stride 1, no padding) and Linear 576->120->84->10"""
    assert_simplenn_layers(_model())


def test_pooling_and_activations_shape_the_features(device):
    """The features entering the first Linear are 16 x 6 x 6 = 576 (two 2x2 max-pools, no padding)"""
    model = _model()
    first_linear = next((m for m in model.modules() if isinstance(m, nn.Linear)), None)
    assert first_linear is not None, "SimpleNN has no nn.Linear layer"
    seen = []
    first_linear.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].detach()))
    forward(model, torch.randn(2, 3, 32, 32, device=device))
    assert seen and tuple(seen[0].shape) == (2, 576), \
        f"the first Linear should receive (2, 576), got {tuple(seen[0].shape) if seen else 'nothing'}"
    assert (seen[0] >= 0).all(), "the flattened features should be ReLU outputs (no negative values)"


def test_relu_after_the_hidden_fully_connected_layers(device):
    """ReLU after fc1 and fc2: the inputs of the second and third Linear are never negative"""
    model = _model()
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 3, f"expected 3 Linear layers, got {len(linears)}"
    seen = {}

    def record(index):
        def hook(module, inputs, output):  # returns None: a hook's return value would replace the output
            seen.setdefault(index, inputs[0].detach())
        return hook

    for index in (1, 2):
        linears[index].register_forward_hook(record(index))
    forward(model, torch.randn(64, 3, 32, 32, device=device))
    for index, name in ((1, "fc1"), (2, "fc2")):
        assert index in seen, f"the Linear after {name} was never called"
        assert (seen[index] >= 0).all(), f"the output of {name} reaches the next layer with negative values: add a ReLU"


def test_gradients_reach_every_parameter(device):
    """A backward pass gives every parameter a non-zero gradient"""
    model = _model()
    loss = nn.functional.cross_entropy(forward(model, torch.randn(16, 3, 32, 32, device=device)),
                                       torch.randint(0, 10, (16,), device=device))
    loss.backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"no gradient reaches {missing}"
