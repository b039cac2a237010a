"""Part swish: Lab 2's hand-written Swish and SimpleNNSwish.

Checked by behaviour, never by attribute names; any formula equal to x * sigmoid(x) is fine
(``x * torch.sigmoid(x)``, ``torch.mul(x, x.sigmoid())``, ``x / (1 + torch.exp(-x))``, a helper function).
Decisions:

* Values are compared with x * sigmoid(x) computed in float64, within rtol 1e-5 / atol 1e-6 (a few float32
  ulps, whatever the formula); gradients (autograd of the sum) with the analytic derivative, on moderate
  inputs. Extreme inputs (up to +-1e4) are checked for values only: ``x / (1 + exp(-x))`` is a correct
  Swish whose *gradient* is NaN at -1e4, which is not worth a deduction here.
* "By hand" means no ``nn.SiLU`` / ``F.silu`` / ``torch.silu``: checked in the source of the student's
  Swish class (names only, so comments and docstrings may mention SiLU), by module inventory and by
  behaviour (a torch-function mode that fails on any silu call, however it was imported). Like every check
  here it tests only its own property: a Swish with the wrong formula fails the value and gradient checks,
  not this one (a stub that raises NotImplementedError fails every check that calls it).
* SimpleNNSwish must call no relu at all (checked with the same mode: ``nn.ReLU``, ``F.relu``,
  ``torch.relu``, ``x.relu()`` and aliases of them all fail) and must apply the student's Swish 4 times per
  forward, where SimpleNN had its 4 ReLUs (instances created in ``__init__`` or in ``forward``, one shared
  instance or several, all count; counted by wrapping ``Swish.forward`` for the duration of one forward),
  and keep SimpleNNBN's BatchNorm2d right after each conv.
* What a failed check costs (``deduction``, a share of the part): calling SiLU instead of writing Swish is
  half the part (the handout asks for Swish written by hand); the formula's value and gradient a quarter
  each; SimpleNNSwish's checks add up to the whole part.
"""
from __future__ import annotations

import inspect
import io
import textwrap
import tokenize

import pytest
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from autograder.expectations import assert_swish_gradient, assert_swish_values
from autograder.inprocess_suites.conftest import (assert_simplenn_bn_parameters, batchnorm_fed_by_each_conv, build,
                                                  call_student, forward, student_object)

SHAPES = {"1-D": (1000,), "4-D": (4, 3, 8, 8)}


class ForbiddenCall(RuntimeError):
    """Raised when student code calls an operation the homework rules out."""


class _Forbid(TorchFunctionMode):
    """Fails on any torch function named in ``names`` (F.relu, torch.relu, Tensor.relu, nn.ReLU, F.silu, ...)."""

    def __init__(self, names: set[str], rule: str):
        super().__init__()
        self.names, self.rule = names, rule

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in self.names:
            raise ForbiddenCall(f"it calls {name} ({self.rule})")
        return func(*args, **(kwargs or {}))


def _swish():
    return build("simplenn_dev", "Swish")


def _swish_net():
    return build("simplenn_dev", "SimpleNNSwish")


def _apply(swish, x, own_copy: bool = True):
    """Swish(x); by default on a copy of x, so an in-place Swish fails only the test about modifying its input."""
    out = forward(swish, x.clone() if own_copy else x)
    assert isinstance(out, torch.Tensor), f"Swish must return a tensor, got {type(out).__name__}"
    return out


@pytest.mark.deduction(1 / 4)
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_value_is_x_sigmoid_x(shape, device):
    """Swish(x) equals x * sigmoid(x)"""
    x = 4 * torch.randn(shape, device=device)
    assert_swish_values(_apply(_swish(), x), x)


@pytest.mark.deduction(1 / 4)
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_gradient(shape, device):
    """The gradient of Swish is sigmoid(x) * (1 + x * (1 - sigmoid(x)))"""
    x = (4 * torch.randn(shape, device=device)).requires_grad_()
    out = _apply(_swish(), x, own_copy=False)
    assert out.requires_grad, "Swish's output does not require grad: do not detach it or use .data / numpy"
    call_student("backward through Swish", out.sum().backward)
    assert_swish_gradient(x)


@pytest.mark.deduction(1 / 8)
def test_extreme_inputs(device):
    """Extreme inputs (+-1e4, +-100, +-88) give finite values: x for large x, 0 for very negative x"""
    x = torch.tensor([-1e4, -100.0, -88.0, -20.0, -1.0, 0.0, 1.0, 20.0, 88.0, 100.0, 1e4], device=device)
    out = _apply(_swish(), x)
    finite = torch.isfinite(out)
    assert finite.all(), (f"expected finite values, got {out[~finite][0].item()} at x = {x[~finite][0].item():g} "
                          "(avoid exp(x) / (1 + exp(x)) forms that overflow)")
    assert_swish_values(out, x)


@pytest.mark.deduction(1 / 8)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_keeps_shape_and_dtype(dtype, device):
    """Swish keeps its input's shape and dtype"""
    x = torch.randn(2, 5, 3, dtype=dtype, device=device)
    out = _apply(_swish(), x)
    assert out.shape == x.shape, f"expected output shape {tuple(x.shape)}, got {tuple(out.shape)}"
    assert out.dtype == dtype, f"expected a {dtype} output for a {dtype} input, got {out.dtype}"


@pytest.mark.deduction(1 / 8)
def test_does_not_modify_its_input(device):
    """Swish leaves its input unchanged (no in-place operation), also a leaf that requires grad"""
    x = torch.randn(4, 3, 8, 8, device=device)
    before = x.clone()
    _apply(_swish(), x, own_copy=False)
    assert torch.equal(x, before), "expected Swish to leave its input unchanged, got a modified input (in-place op?)"
    leaf = torch.randn(10, device=device, requires_grad=True)
    before = leaf.detach().clone()
    _apply(_swish(), leaf, own_copy=False)
    assert torch.equal(leaf.detach(), before), "expected Swish to leave a leaf that requires grad unchanged"


def _functions_of(cls):
    """The functions (methods, static/class methods, property getters) of ``cls`` and its student-defined bases.

    Read one function at a time: ``inspect.getsource(cls)`` would show the first of several definitions of
    the class in the notebook, while a function's code object points at the definition that is in use.
    """
    for klass in inspect.getmro(cls):
        if klass.__module__ != cls.__module__:
            continue
        for member in vars(klass).values():
            for candidate in (member, getattr(member, "__func__", None), getattr(member, "fget", None)):
                if inspect.isfunction(candidate):
                    yield candidate


def _names_in_source(cls) -> dict[str, str]:
    """Every identifier (not comments or strings) in the source of ``cls``'s functions -> the line using it."""
    names: dict[str, str] = {}
    for function in _functions_of(cls):
        try:
            lines, first = inspect.getsourcelines(function)
            tokens = list(tokenize.generate_tokens(io.StringIO(textwrap.dedent("".join(lines))).readline))
        except (OSError, TypeError, tokenize.TokenError, IndentationError, SyntaxError):
            continue
        for token in tokens:
            if token.type == tokenize.NAME:
                names.setdefault(token.string, f"line {first + token.start[0] - 1}: {token.line.strip()}")
    return names


@pytest.mark.deduction(1 / 2)
def test_written_by_hand(device):
    """Swish does not call nn.SiLU, F.silu or torch.silu (the handout asks for it written by hand)"""
    swish = _swish()
    with _Forbid({"silu", "silu_"}, "write x * sigmoid(x) yourself"):
        _apply(swish, 4 * torch.randn(64, device=device))
    silu_modules = [type(m).__name__ for m in swish.modules() if isinstance(m, nn.SiLU)]
    assert not silu_modules, f"expected no nn.SiLU inside Swish, got {silu_modules}"
    cls = student_object("simplenn_dev", "Swish")
    used = [where for name, where in _names_in_source(cls).items() if name.lower() == "silu"]
    assert not used, f"expected Swish written by hand, got SiLU in its source ({used[0]})"


@pytest.mark.deduction(1 / 4)
@pytest.mark.parametrize("n", [1, 5, 128])
def test_simplenn_swish_output_shape(n, device):
    """SimpleNNSwish maps (N, 3, 32, 32) images to (N, 10) logits"""
    model = _swish_net()
    if n == 1:
        model.eval()
    out = forward(model, torch.randn(n, 3, 32, 32, device=device))
    assert isinstance(out, torch.Tensor), f"forward must return a tensor, got {type(out).__name__}"
    assert tuple(out.shape) == (n, 10), f"expected output shape ({n}, 10), got {tuple(out.shape)}"


@pytest.mark.deduction(1 / 8)
def test_simplenn_swish_parameter_count():
    """SimpleNNSwish has SimpleNNBN's 82,078 trainable parameters (82,054 with bias-free convs)"""
    assert_simplenn_bn_parameters(_swish_net())


@pytest.mark.deduction(1 / 4)
def test_simplenn_swish_keeps_batchnorm(device):
    """SimpleNNSwish keeps SimpleNNBN's BatchNorm2d right after each conv"""
    pairs = batchnorm_fed_by_each_conv(_swish_net(), torch.randn(4, 3, 32, 32, device=device))
    assert pairs, "no conv ran during the forward"
    missing = [f"{conv.in_channels}->{conv.out_channels}" for conv, norm in pairs
               if norm is None or norm.num_features != conv.out_channels]
    assert not missing, (f"expected every conv's output to go straight into a BatchNorm2d of its width (SimpleNNSwish "
                         f"is SimpleNNBN with Swish), got none after the conv(s) {', '.join(missing)}")


@pytest.mark.deduction(1 / 4)
def test_simplenn_swish_has_no_relu(device):
    """SimpleNNSwish uses no ReLU (no nn.ReLU, F.relu, torch.relu or x.relu())"""
    model = _swish_net()
    relus = [type(m).__name__ for m in model.modules() if isinstance(m, nn.ReLU)]
    assert not relus, f"expected no nn.ReLU in SimpleNNSwish (every ReLU becomes Swish), got {len(relus)}"
    with _Forbid({"relu", "relu_"}, "every ReLU of SimpleNNSwish must become Swish"):
        out = forward(model, torch.randn(2, 3, 32, 32, device=device))
    assert isinstance(out, torch.Tensor), f"forward must return a tensor, got {type(out).__name__}"


@pytest.mark.deduction(1 / 8)
def test_simplenn_swish_applies_swish(device):
    """SimpleNNSwish applies your Swish 4 times per forward, where SimpleNN had its 4 ReLUs"""
    swish_class = student_object("simplenn_dev", "Swish")
    model = _swish_net()
    own = vars(swish_class).get("forward")
    calls = []

    def counted(self, *args, **kwargs):
        calls.append(type(self))
        return original(self, *args, **kwargs)

    original = swish_class.forward
    swish_class.forward = counted
    try:
        forward(model, torch.randn(2, 3, 32, 32, device=device))
    finally:
        if own is None:
            del swish_class.forward
        else:
            swish_class.forward = own
    assert len(calls) == 4, (f"expected Swish applied 4 times per forward (after conv1, conv2, fc1 and fc2), "
                             f"got {len(calls)}")
