"""Part swish: Lab 2's hand-written Swish and SimpleNNSwish, judged on their exported programs.

Checked by behaviour and by the programs' calls, never by attribute names; any formula equal to
x * sigmoid(x) is fine (``x * torch.sigmoid(x)``, ``torch.mul(x, x.sigmoid())``, ``x / (1 + torch.exp(-x))``, a
helper function). Decisions:

* Values are compared with x * sigmoid(x) computed in float64, within rtol 1e-5 / atol 1e-6 (a few float32
  ulps, whatever the formula); gradients (autograd of the sum) with the analytic derivative, on moderate
  inputs. Extreme inputs (up to +-1e4) are checked for values only: ``x / (1 + exp(-x))`` is a correct
  Swish whose *gradient* is NaN at -1e4, which is not worth a deduction here.
* "By hand" means no ``nn.SiLU`` / ``F.silu`` / ``torch.silu``: no silu call in the Swish programs, no SiLU
  module around any call, and no ``silu`` name in the source of the student's Swish class (read as text:
  comments and docstrings may mention SiLU). Like every check here it tests only its own property: a Swish
  with the wrong formula fails the value and gradient checks, not this one.
* SimpleNNSwish must call no relu at all (no relu call in its program, no nn.ReLU around any call) and must
  apply the student's Swish 4 times per forward, where SimpleNN had its 4 ReLUs (instances created in
  ``__init__`` or in ``forward``, one shared instance or several, all count: the student process marks the
  calls of every Swish instance while exporting), and keep SimpleNNBN's BatchNorm2d right after each conv.
* What a failed check costs (``deduction``, a share of the part): calling SiLU instead of writing Swish is
  half the part (the handout asks for Swish written by hand); the formula's value and gradient a quarter
  each; SimpleNNSwish's checks add up to the whole part.
"""
from __future__ import annotations

import ast

import pytest
import torch
from torch import fx

from autograder.expectations import assert_swish_gradient, assert_swish_values, listed, listing
from autograder.judge.program import Program
from autograder.student_side.probes import SWISH_CALL, SWISH_FLOAT64
from autograder.suites.conftest import (assert_simplenn_bn_parameters, backward, batchnorm_fed_by_each_conv,
                                        convs_without_their_batchnorm, images, program, run, student_source)

SHAPES = {"1-D": "Swish-1d", "4-D": "Swish-4d"}
_SIZES = {"Swish-1d": (1000,), "Swish-4d": (4, 3, 8, 8)}


def _swish_net():
    return program("SimpleNNSwish")


def _apply(program_id: str, x, own_copy: bool = True):
    """Swish(x) by the program ``program_id``; by default on a copy of x, so an in-place Swish fails only the
    test about modifying its input."""
    out = run(program(program_id), x.clone() if own_copy else x, what="Swish")
    assert isinstance(out, torch.Tensor), f"Swish must return a tensor, got {type(out).__name__}"
    return out


@pytest.mark.deduction(1 / 4)
@pytest.mark.parametrize("program_id", SHAPES.values(), ids=SHAPES.keys())
def test_value_is_x_sigmoid_x(program_id, device):
    """Swish(x) equals x * sigmoid(x)"""
    x = 4 * torch.randn(_SIZES[program_id], device=device)
    assert_swish_values(_apply(program_id, x), x)


@pytest.mark.deduction(1 / 4)
@pytest.mark.parametrize("program_id", SHAPES.values(), ids=SHAPES.keys())
def test_gradient(program_id, device):
    """The gradient of Swish is sigmoid(x) * (1 + x * (1 - sigmoid(x)))"""
    x = (4 * torch.randn(_SIZES[program_id], device=device)).requires_grad_()
    out = _apply(program_id, x, own_copy=False)
    assert out.requires_grad, "Swish's output does not require grad: do not detach it or use .data / numpy"
    backward(out.sum(), "Swish")
    assert_swish_gradient(x)


@pytest.mark.deduction(1 / 8)
def test_extreme_inputs(device):
    """Extreme inputs (+-1e4, +-100, +-88) give finite values: x for large x, 0 for very negative x"""
    x = torch.tensor([-1e4, -100.0, -88.0, -20.0, -1.0, 0.0, 1.0, 20.0, 88.0, 100.0, 1e4], device=device)
    out = _apply("Swish-1d", x)
    assert torch.isfinite(out).all(), listed("expected finite values, got ", _not_finite(out, x),
                                             " (avoid exp(x) / (1 + exp(x)) forms that overflow)")
    assert_swish_values(out, x)


def _not_finite(out: torch.Tensor, x: torch.Tensor) -> list[str]:
    """"nan at x = -10000" for every value of ``out`` that is not finite (its x where the shapes match)."""
    bad = ~torch.isfinite(out)
    if out.shape != x.shape:
        return [str(value) for value in out[bad].tolist()]
    return [f"{value} at x = {at:g}" for value, at in zip(out[bad].tolist(), x[bad].tolist())]


@pytest.mark.deduction(1 / 8)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_keeps_shape_and_dtype(dtype, device):
    """Swish keeps its input's shape and dtype"""
    x = torch.randn(2, 5, 3, dtype=dtype, device=device)
    out = _apply(SWISH_FLOAT64 if dtype == torch.float64 else "Swish-3d", x)
    wrong = [(f"output shape {tuple(x.shape)}", f"{tuple(out.shape)}")] if out.shape != x.shape else []
    wrong += [(f"a {dtype} output for a {dtype} input", f"{out.dtype}")] if out.dtype != dtype else []
    assert not wrong, (f"expected {' and '.join(expected for expected, _ in wrong)}, "
                       f"got {' and '.join(got for _, got in wrong)}")


@pytest.mark.deduction(1 / 8)
def test_does_not_modify_its_input(device):
    """Swish leaves its input unchanged (no in-place operation), also a leaf that requires grad"""
    x = torch.randn(4, 3, 8, 8, device=device)
    before = x.clone()
    _apply("Swish-4d", x, own_copy=False)
    assert torch.equal(x, before), "expected Swish to leave its input unchanged, got a modified input (in-place op?)"
    leaf = torch.randn(10, device=device, requires_grad=True)
    before = leaf.detach().clone()
    _apply("Swish-1d", leaf, own_copy=False)
    assert torch.equal(leaf.detach(), before), "expected Swish to leave a leaf that requires grad unchanged"


def _class_sources(tree: ast.Module, name: str) -> list[ast.ClassDef]:
    """The last top-level definition of class ``name`` and of every student-defined base it names."""
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    found, todo = [], [name]
    while todo:
        current = classes.get(todo.pop())
        if current is not None and current not in found:
            found.append(current)
            todo += [base.id for base in current.bases if isinstance(base, ast.Name)]
    return found


def _silu_in_source() -> list[str]:
    """'line N: <code>' of every ``silu`` name (any case) in the student's Swish class and its bases, in order."""
    tree = student_source("simplenn_dev")
    if tree is None:
        return []
    found = []
    for cls in _class_sources(tree, "Swish"):
        for node in ast.walk(cls):
            word = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None
            if word is not None and word.lower() == "silu":
                found.append((node.lineno, node.col_offset, f"line {node.lineno}: {ast.unparse(node)}"))
    return [text for *_, text in sorted(found)]


@pytest.mark.deduction(1 / 2)
def test_written_by_hand():
    """Swish does not call nn.SiLU, F.silu or torch.silu (the handout asks for it written by hand)"""
    swish = program("Swish-1d")
    calls = swish.calls("silu", "silu_")
    silu_modules = {kind for node in swish.nodes() for kind in swish.classes(node) if kind.endswith(".SiLU")}
    used = _silu_in_source()
    found = ([f"{len(calls)} silu calls" if len(calls) > 1 else "a silu call"] if calls else []) + (
        [f"nn.SiLU inside it ({', '.join(sorted(silu_modules))})"] if silu_modules else []) + (
        [f"SiLU in its source ({listing(used, 100)})"] if used else [])
    assert not found, listed("expected Swish written by hand, got ", found, " (write x * sigmoid(x) yourself)")


@pytest.mark.deduction(1 / 4)
@pytest.mark.parametrize("n", [1, 5, 128])
def test_simplenn_swish_output_shape(n):
    """SimpleNNSwish maps (N, 3, 32, 32) images to (N, 10) logits"""
    model = _swish_net()
    if n == 1:
        model.eval()
    out = run(model, images(n))
    assert isinstance(out, torch.Tensor), f"forward must return a tensor, got {type(out).__name__}"
    assert tuple(out.shape) == (n, 10), f"expected output shape ({n}, 10), got {tuple(out.shape)}"


@pytest.mark.deduction(1 / 8)
def test_simplenn_swish_parameter_count():
    """SimpleNNSwish has SimpleNNBN's 82,078 trainable parameters (82,054 with bias-free convs)"""
    assert_simplenn_bn_parameters(_swish_net())


@pytest.mark.deduction(1 / 4)
def test_simplenn_swish_keeps_batchnorm():
    """SimpleNNSwish keeps SimpleNNBN's BatchNorm2d right after each conv"""
    pairs = batchnorm_fed_by_each_conv(_swish_net())
    assert pairs, "no conv ran during the forward"
    wrong = convs_without_their_batchnorm(pairs)
    assert not wrong, listed("expected every conv's output to go straight into a BatchNorm2d of its width "
                             "(SimpleNNSwish is SimpleNNBN with Swish), got ", wrong)


def _weighted_layers(model: Program) -> dict[fx.Node, str]:
    """Every conv and linear call, named as SimpleNN's layers in call order: conv1, conv2, fc1, fc2, fc3."""
    names = {call: f"conv{index + 1}" for index, call in enumerate(model.calls("conv2d"))}
    return names | {call: f"fc{index + 1}" for index, call in enumerate(model.calls("linear"))}


def _layer_before(layers: dict[fx.Node, str], node: fx.Node) -> str | None:
    """The weighted layer of ``layers`` whose output reaches ``node`` through the first input of each call on
    the way, "the input", or None (a constant, a long chain): where the ReLU or the Swish ``node`` is."""
    current = node
    for _ in range(100):
        inputs = [arg for arg in current.args if isinstance(arg, fx.Node)]
        if not inputs:
            return "the input" if current.op == "placeholder" else None
        current = inputs[0]
        if current in layers:
            return layers[current]
    return None


def _relus_found(model: Program, in_modules: set[fx.Node], calls: list[fx.Node]) -> str:
    """"... got ReLUs after conv1 and fc2": every place a ReLU (a relu call or an nn.ReLU) is applied at."""
    layers, relus = _weighted_layers(model), set(calls) | in_modules
    places = list(dict.fromkeys(place for node in model.nodes() if node in relus
                                if (place := _layer_before(layers, node))))
    start = "expected no ReLU in SimpleNNSwish (every ReLU of SimpleNNSwish must become Swish), got "
    if not places:
        return start + (f"{len(calls)} relu call(s)" if calls else "an nn.ReLU")
    return listed(start + ("a ReLU after " if len(places) == 1 else "ReLUs after "), places)


@pytest.mark.deduction(1 / 4)
def test_simplenn_swish_has_no_relu():
    """SimpleNNSwish uses no ReLU (no nn.ReLU, F.relu, torch.relu or x.relu())"""
    model = _swish_net()
    in_modules = {node for node in model.nodes() if any(kind.endswith(".ReLU") for kind in model.classes(node))}
    calls = model.calls("relu", "relu_", "threshold", "threshold_")
    assert not (in_modules or calls), _relus_found(model, in_modules, calls)
    out = run(model, images(2))
    assert isinstance(out, torch.Tensor), f"forward must return a tensor, got {type(out).__name__}"


def _without_swish(model: Program, by_call: dict[object, list[fx.Node]]) -> str:
    """", none after fc1 and fc2": the places of SimpleNN's ReLUs that no Swish call follows, or ""."""
    layers = _weighted_layers(model)
    after = {next((place for node in nodes if (place := _layer_before(layers, node))), None)
             for nodes in by_call.values()}
    missing = [place for place in ("conv1", "conv2", "fc1", "fc2") if place not in after]
    return listed(", none after ", missing) if missing else ""


@pytest.mark.deduction(1 / 8)
def test_simplenn_swish_applies_swish():
    """SimpleNNSwish applies your Swish 4 times per forward, where SimpleNN had its 4 ReLUs"""
    model = _swish_net()
    by_call: dict[object, list[fx.Node]] = {}
    for node in model.nodes():
        call = model.annotation(node, SWISH_CALL)
        if call is not None:
            by_call.setdefault(call, []).append(node)
    assert len(by_call) == 4, (f"expected Swish applied 4 times per forward (after conv1, conv2, fc1 and fc2), "
                               f"got {len(by_call)}{_without_swish(model, by_call)}")
