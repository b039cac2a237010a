"""What the hidden checks expect: the numbers the handout fixes, and assertions on values a suite has already
computed. Nothing here touches a program; the judge's suites (``suites/``) use it, the student process never
sees it.
"""
from __future__ import annotations

import pytest
import torch

# ---- SimpleNN, SimpleNNBN, SimpleNNSwish ---------------------------------------------------------------
SIMPLENN_PARAMETERS = 82_030
SIMPLENN_BN_PARAMETERS = (82_078, 82_054)   # with conv biases / with bias=False convs before the BNs
SIMPLENN_CONVS = [(3, 8, (5, 5), (1, 1), (0, 0)), (8, 16, (3, 3), (1, 1), (0, 0))]   # in, out, kernel, stride, padding
SIMPLENN_LINEARS = [(576, 120), (120, 84), (84, 10)]

# ---- ResNet20 ------------------------------------------------------------------------------------------
RESNET20_PARAMETERS = {269_722: "option A", 272_474: "option B"}
RESNET20_WIDTHS = [16, 32, 64]
RESNET20_MAPS = [32, 16, 8]

# ---- Swish: compared with x * sigmoid(x) in float64, within a few float32 ulps whatever the formula ------
SWISH_RTOL, SWISH_ATOL = 1e-5, 1e-6

# ---- l1_penalty: a Linear(3, 2) with weights set by hand, and the second layer of a small MLP -------------
L1_LINEAR_WEIGHT = [[1.0, -2.0, 3.0], [-4.0, 5.0, -6.0]]
L1_LINEAR_BIAS = [0.5, -0.5]
L1_LINEAR_WEIGHT_SUM = 21.0
L1_LINEAR_SUM = 22.0   # sum of |p| of the layer above, biases included
L1_MLP_SECOND_WEIGHT = [[0.25, -0.75], [-1.25, 2.0]]
L1_MLP_SECOND_BIAS = [-0.1, 0.3]


def assert_logits(out, n: int, mode: str | None = None, classes: int = 10) -> None:
    """``out`` is a tensor of (n, classes) logits."""
    assert isinstance(out, torch.Tensor), f"forward must return a tensor, got {type(out).__name__}"
    where = f" in {mode} mode" if mode else ""
    assert tuple(out.shape) == (n, classes), f"expected output shape ({n}, {classes}){where}, got {tuple(out.shape)}"


def assert_simplenn_layers(convs: list[tuple], linears: list[tuple[int, int]]) -> None:
    """SimpleNN's layers (SimpleNNBN keeps them): convs as (in, out, kernel, stride, padding), linears as
    (in_features, out_features), each in call order."""
    assert convs == SIMPLENN_CONVS, f"expected convs (in, out, kernel, stride, padding) {SIMPLENN_CONVS}, got {convs}"
    assert linears == SIMPLENN_LINEARS, f"expected Linear 576->120->84->10, got {linears}"


def assert_simplenn_bn_parameters(count: int) -> None:
    """SimpleNNBN's parameter count, which SimpleNNSwish shares."""
    assert count in SIMPLENN_BN_PARAMETERS, (
        f"expected 82,078 trainable parameters (82,054 if the convs have bias=False), got {count:,}")


def assert_relu_before(received: torch.Tensor, follower: str, layer: str) -> None:
    """What the weighted layer ``follower`` received after ``layer`` holds no negative value (a ReLU between)."""
    negative = (received < 0).float().mean().item()
    assert negative == 0, (f"expected a ReLU after {layer} (the next weighted layer never receives a negative "
                           f"value), got {negative:.0%} negative values reaching it")


def assert_modes_differ(train_out, eval_out) -> None:
    """BatchNorm at work: train mode (batch statistics) and eval mode (running statistics) differ."""
    assert isinstance(train_out, torch.Tensor) and isinstance(eval_out, torch.Tensor), \
        f"forward must return a tensor, got {type(train_out).__name__}"
    same = train_out.shape == eval_out.shape and torch.allclose(train_out, eval_out, rtol=1e-4, atol=1e-5)
    assert not same, (
        "expected different outputs in train and eval mode (BatchNorm normalizes with the batch's statistics "
        "in training and with its running statistics in evaluation), got the same outputs")


def assert_resnet20_parameters(count: int) -> None:
    assert count in RESNET20_PARAMETERS, (
        f"expected 269,722 trainable parameters (option-A shortcuts) or 272,474 (option-B 1x1 projections), "
        f"got {count:,}")


def swish_reference(x: torch.Tensor) -> torch.Tensor:
    wide = x.detach().double()
    return (wide * torch.sigmoid(wide)).to(x.dtype)


def assert_swish_values(out, x) -> None:
    """``out`` is Swish(x) = x * sigmoid(x), elementwise and shape-preserving."""
    expected = swish_reference(x)
    assert out.shape == x.shape, f"expected output shape {tuple(x.shape)}, got {tuple(out.shape)}"
    if not torch.allclose(out.to(expected.dtype), expected, rtol=SWISH_RTOL, atol=SWISH_ATOL, equal_nan=False):
        bad = (out.to(expected.dtype) - expected).abs().argmax()
        pytest.fail(f"expected Swish(x) = x * sigmoid(x): at x = {x.flatten()[bad].item():.6g} expected "
                    f"{expected.flatten()[bad].item():.6g}, got {out.flatten()[bad].item():.6g}", pytrace=False)


def assert_swish_gradient(x: torch.Tensor) -> None:
    """The gradient backward left in ``x.grad`` is d Swish / dx = sigmoid(x) * (1 + x * (1 - sigmoid(x)))."""
    assert x.grad is not None, "no gradient reached Swish's input"
    wide = x.detach().double()
    s = torch.sigmoid(wide)
    expected = (s * (1 + wide * (1 - s))).float()
    if not torch.allclose(x.grad, expected, rtol=SWISH_RTOL, atol=SWISH_ATOL):
        bad = (x.grad - expected).abs().argmax()
        pytest.fail(f"expected d Swish / dx = sigmoid(x) * (1 + x * (1 - sigmoid(x))): at x = "
                    f"{x.flatten()[bad].item():.6g} expected {expected.flatten()[bad].item():.6g}, "
                    f"got {x.grad.flatten()[bad].item():.6g}", pytrace=False)


def penalty_value(result) -> float:
    """The value of what l1_penalty returned (a scalar tensor, or a plain number for the value checks)."""
    if isinstance(result, torch.Tensor):
        assert result.numel() == 1, f"expected a scalar tensor, got shape {tuple(result.shape)}"
        return result.detach().double().sum().item()
    assert isinstance(result, (int, float)), f"expected a scalar tensor, got {type(result).__name__}"
    return float(result)


def assert_scalar_tensor(result) -> None:
    assert isinstance(result, torch.Tensor), f"expected a scalar tensor, got {type(result).__name__}"
    assert result.numel() == 1, f"expected a scalar (0-dim or 1-element) tensor, got shape {tuple(result.shape)}"
