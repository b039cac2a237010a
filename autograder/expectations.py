"""What the hidden checks expect: the numbers the handout fixes, and assertions on values a suite has already
computed. Nothing here touches a program; the judge's suites (``suites/``) use it, the student process never
sees it.

A check's message names every place that fails it (every layer, parameter, value), not only the first:
``listed`` keeps such a list within the ``MESSAGE_CHARS`` a student sees, counting what does not fit.
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

# ---- messages ------------------------------------------------------------------------------------------
MESSAGE_CHARS = 300   # autograder/results.py cuts every message a student sees to this (``one_line``)


def listing(items, budget: int, sep: str = ", ", last: str = " and ", more: str = "{} more",
            at_most: int | None = None) -> str:
    """``items`` as "a, b and c"; when that is longer than ``budget`` characters or has more than ``at_most``
    items, as many as fit (at least one) and the rest counted: "a, b and 3 more" (``more`` formats the count)."""
    items = [str(item) for item in items]
    shown = len(items) if at_most is None else max(1, min(at_most, len(items)))
    while True:
        if shown == len(items):
            text = sep.join(items[:-1]) + last + items[-1] if len(items) > 1 else "".join(items)
        else:
            text = sep.join(items[:shown]) + last + more.format(len(items) - shown)
        if len(text) <= budget or shown == 1:
            return text
        shown -= 1


def listed(start: str, items, end: str = "", **style) -> str:
    """``start + listing(items) + end``, the list as long as keeps the message within ``MESSAGE_CHARS``."""
    return start + listing(items, MESSAGE_CHARS - len(start) - len(end), **style) + end


def assert_logits(out, n: int, mode: str | None = None, classes: int = 10) -> None:
    """``out`` is a tensor of (n, classes) logits."""
    assert isinstance(out, torch.Tensor), f"forward must return a tensor, got {type(out).__name__}"
    where = f" in {mode} mode" if mode else ""
    assert tuple(out.shape) == (n, classes), f"expected output shape ({n}, {classes}){where}, got {tuple(out.shape)}"


def _pair_text(value) -> str:
    if isinstance(value, tuple) and len(set(value)) == 1:
        return str(value[0])
    return repr(value) if isinstance(value, str) else str(value)


def conv_text(layer: tuple) -> str:
    """(in, out, kernel, stride, padding) as "8->16 3x3", with the stride and padding where not 1 and 0."""
    in_channels, out_channels, kernel, stride, padding = layer
    text = f"{in_channels}->{out_channels} {'x'.join(map(str, kernel))}"
    if stride != (1, 1):
        text += f" stride {_pair_text(stride)}"
    if padding != (0, 0):
        text += f" padding {_pair_text(padding)}"
    return text


def _wrong_calls(name: str, got: list, expected: list, text) -> list[str]:
    """Every call of ``got`` that differs from ``expected`` at its place ("conv2 8->16 5x5"), every missing one
    ("no fc3") and every extra one."""
    wrong = []
    for index in range(max(len(got), len(expected))):
        label = f"{name}{index + 1}"
        if index >= len(got):
            wrong.append(f"no {label}")
        elif index >= len(expected):
            wrong.append(f"an extra {label} {text(got[index])}")
        elif got[index] != expected[index]:
            wrong.append(f"{label} {text(got[index])}")
    return wrong


def assert_simplenn_layers(convs: list[tuple], linears: list[tuple[int, int]]) -> None:
    """SimpleNN's layers (SimpleNNBN keeps them): convs as (in, out, kernel, stride, padding), linears as
    (in_features, out_features), each in call order. The message names every wrong layer, convs and Linears."""
    wrong = (_wrong_calls("conv", convs, SIMPLENN_CONVS, conv_text)
             + _wrong_calls("fc", linears, SIMPLENN_LINEARS, lambda layer: f"{layer[0]}->{layer[1]}"))
    expected = " and ".join(conv_text(layer) for layer in SIMPLENN_CONVS)
    assert not wrong, listed(f"expected convs {expected} (stride 1, no padding), then Linear 576->120->84->10, got ",
                             wrong)


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


def _wrong_values(x: torch.Tensor, got: torch.Tensor, expected: torch.Tensor) -> list[str]:
    """"at x = a expected b, got c" for every element where ``got`` is not ``expected`` within the Swish
    tolerance (what ``torch.allclose`` with it rejects), the worst first."""
    x, got, expected = (t.detach().flatten().cpu() for t in (x, got, expected))
    wrong = (~torch.isclose(got, expected, rtol=SWISH_RTOL, atol=SWISH_ATOL, equal_nan=False)).tolist()
    error = (got.double() - expected.double()).abs().nan_to_num(nan=float("inf"))
    order = [i for i in torch.argsort(error, descending=True, stable=True).tolist() if wrong[i]]
    order = order or [int(error.argmax())]   # never empty: allclose rejected these values
    return [f"at x = {x[i].item():.6g} expected {expected[i].item():.6g}, got {got[i].item():.6g}" for i in order]


def _fail_values(start: str, wrong: list[str], total: int) -> None:
    pytest.fail(listed(start, wrong, sep="; ", last="; and ", more=f"at {{}} more of the {total} inputs", at_most=3),
                pytrace=False)


def assert_swish_values(out, x) -> None:
    """``out`` is Swish(x) = x * sigmoid(x), elementwise and shape-preserving."""
    expected = swish_reference(x)
    assert out.shape == x.shape, f"expected output shape {tuple(x.shape)}, got {tuple(out.shape)}"
    if not torch.allclose(out.to(expected.dtype), expected, rtol=SWISH_RTOL, atol=SWISH_ATOL, equal_nan=False):
        _fail_values("expected Swish(x) = x * sigmoid(x): ", _wrong_values(x, out.to(expected.dtype), expected),
                     x.numel())


def assert_swish_gradient(x: torch.Tensor) -> None:
    """The gradient backward left in ``x.grad`` is d Swish / dx = sigmoid(x) * (1 + x * (1 - sigmoid(x)))."""
    assert x.grad is not None, "no gradient reached Swish's input"
    wide = x.detach().double()
    s = torch.sigmoid(wide)
    expected = (s * (1 + wide * (1 - s))).float()
    if not torch.allclose(x.grad, expected, rtol=SWISH_RTOL, atol=SWISH_ATOL):
        _fail_values("expected d Swish / dx = sigmoid(x) * (1 + x * (1 - sigmoid(x))): ",
                     _wrong_values(x, x.grad, expected), x.numel())


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
