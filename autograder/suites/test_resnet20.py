"""Part resnet20: Lab 3's ResNet20 (He et al. 2016, section 4.2), judged on its exported program.

Checked by behaviour and by the program's calls, never by attribute or helper-class names: blocks as classes
or ``nn.Sequential``, ReLU as a module or a function, option-A shortcuts (``F.pad`` with ``::2``
subsampling, a ``LambdaLayer``, a padding module) and option-B shortcuts (1x1 conv + BN) are all fine.
Decisions:

* 20 weighted layers = 19 convs (the stem and 2 per block) + 1 Linear; option-B 1x1 projection convs are
  not counted among them; 269,722 (option A) or 272,474 (option B) parameters. A stem of another kernel
  size (5x5) is a conv all the same: it costs only the parameter count.
* Widths and map sizes, each its own check: the convs widen 16 -> 32 -> 64, and the maps shrink
  32x32 -> 16x16 -> 8x8 (conv outputs in call order, one forward). How many convs each stage has is the
  weighted-layer check's business, not theirs.
* "BN after every conv": each conv call's output (1x1 projections included) is exactly what a BatchNorm call
  of the same width receives (read from the graph).
* Global average pooling: the Linear's input (N, C) equals the mean over H, W of a C-channel feature map
  the forward computed (every value of one forward is recorded), so this holds whether the pooling is
  ``F.adaptive_avg_pool2d``, ``nn.AvgPool2d(8)``, ``F.avg_pool2d(x, x.size(3))`` or ``x.mean((2, 3))``;
  max pooling fails.
* Shortcuts really add: with every residual-branch conv's weights zeroed in the program (every 3x3 conv but
  the stem, the one with 3 input channels; option-B projections kept), in eval mode the output must still
  depend on the input; without shortcuts it is constant.
* ReLU placement (read from the graph): each block's output is ReLU(F(x) + shortcut(x)), as in the paper and
  the notebook. The residual additions are the ``add`` / ``add_`` calls (``out + sc``, ``out += sc``,
  ``torch.add``) of two 4-D tensors of one shape whose values depend on different numbers of conv calls: the
  input behind more convs is the residual branch F(x), the other the shortcut (``x`` itself, option A's
  padding, or option B's projection: one conv fewer). Each addition must feed a ReLU (``relu``, or a clamp or
  threshold at 0; a module or a function, in place or not; through copies: ``alias``, ``clone``,
  ``contiguous``), and its branch must not be a ReLU's output (no ReLU between the block's last BatchNorm and
  the addition). Only the additions present are judged: how many blocks there are is the weighted-layer check's business, and a
  network with no residual addition passes here (the shortcut check charges it), so no mistake is charged
  twice. A branch without BatchNorm is the BatchNorm check's business, not this one's.
* N = 1 is checked in eval mode only (the inference contract); larger batches in both modes.
* What a failed check costs (``deduction``, a share of the part): shortcuts that add and the downsampling
  are what make this ResNet-20 (half the part each); BN after every conv 3/8 (with the parameter count it
  changes, half); 20 weighted layers 3/8 (with the parameter count, half); the ReLU after each block's
  addition 1/8 (a ReLU before the addition, or none after it, is a slip, not a different network); the pooling
  1/16 (max instead of average pooling is a slip too).
"""
from __future__ import annotations

import pytest
import torch
from torch import fx

from autograder.expectations import RESNET20_MAPS, RESNET20_WIDTHS, assert_logits, assert_resnet20_parameters
from autograder.judge.program import Program, op_name
from autograder.student_side.probes import EXAMPLE_BATCH
from autograder.suites.conftest import (backward, batchnorm_fed_by_each_conv, conv_layers, images, linear_layers,
                                        program, run, trace, trainable_parameters)



def _model(num_classes: int = 10) -> Program:
    return program("ResNet20" if num_classes == 10 else f"ResNet20-{num_classes}classes")


def _weighted_convs(model: Program) -> list:
    """Every conv call but the option-B 1x1 projections, with its (in, out, kernel, stride, padding)."""
    return [(node, layer) for node, layer in zip(model.calls("conv2d"), conv_layers(model)) if layer[2] != (1, 1)]


def _stages(values) -> list:
    """Consecutive repeats dropped: [16, 16, 32, 32, 64] -> [16, 32, 64]."""
    return [value for i, value in enumerate(values) if i == 0 or value != values[i - 1]]


_COPIES = {"alias", "clone", "contiguous"}   # calls whose output is their input's value
def _is_relu(node) -> bool:
    """A ReLU call, however written: ``relu``, or a clamp / threshold at 0 (``x.clamp(min=0)``,
    ``x.clamp_min(0)``, ``F.threshold(x, 0, 0)``), in place or not."""
    name = op_name(node)
    try:
        if name in ("relu", "relu_"):
            return True
        if name in ("clamp", "clamp_"):
            return Program.argument(node, "min") == 0 and Program.argument(node, "max") is None
        if name in ("clamp_min", "clamp_min_"):
            return Program.argument(node, "min") == 0
        if name in ("threshold", "threshold_"):
            return Program.argument(node, "threshold") == 0 and Program.argument(node, "value") == 0
    except (KeyError, AttributeError):   # an overload without these arguments (clamp.Tensor): not a ReLU here
        return False
    return False


def _shape(value) -> tuple | None:
    """The shape of a call's tensor value (symbolic sizes as text), None when it is not a tensor."""
    meta = value.meta.get("val") if isinstance(value, fx.Node) else None
    return tuple(str(size) for size in meta.shape) if isinstance(meta, torch.Tensor) else None


def _residual_additions(model: Program) -> list[tuple[fx.Node, fx.Node]]:
    """Every residual addition (an ``add`` / ``add_`` of two 4-D tensors of one shape whose values depend on
    different numbers of conv calls) with its branch input (the one behind more convs), in execution order."""
    behind: dict[fx.Node, frozenset] = {}   # node -> the conv calls its value depends on
    for node in model.module.graph.nodes:
        convs = frozenset().union(*(behind.get(arg, frozenset()) for arg in node.all_input_nodes))
        behind[node] = convs | {node} if op_name(node) == "conv2d" else convs
    additions = []
    for node in model.calls("add", "add_"):
        inputs = node.args[:2]
        shapes = [_shape(value) for value in inputs]
        if len(inputs) != 2 or shapes[0] is None or len(shapes[0]) != 4 or shapes[0] != shapes[1]:
            continue
        first, second = (len(behind.get(value, ())) for value in inputs)
        if first != second:
            additions.append((node, inputs[0] if first > second else inputs[1]))
    return additions


def _produced_by(node: fx.Node) -> fx.Node:
    """The call that computed ``node``'s value, looking back through copies."""
    while op_name(node) in _COPIES and node.args and isinstance(node.args[0], fx.Node):
        node = node.args[0]
    return node


def _feeds_relu(node: fx.Node) -> bool:
    """Whether a ReLU call receives ``node``'s value (through copies)."""
    frontier = [node]
    while frontier:
        current = frontier.pop()
        for user in current.users:
            if user.args and user.args[0] is current:
                if _is_relu(user):
                    return True
                if op_name(user) in _COPIES:
                    frontier.append(user)
    return False


def _blocks(numbers: list[int], total: int) -> str:
    shown = ", ".join(map(str, numbers[:9])) + (", ..." if len(numbers) > 9 else "")
    return f"block{'s' * (len(numbers) > 1)} {shown} of {total}"


def _logits(model: Program, mode: str, x, classes: int = 10):
    out = run(getattr(model, mode)(), x)
    assert_logits(out, x.shape[0], mode, classes)
    return out


@pytest.mark.deduction(1 / 4)
@pytest.mark.parametrize("n", [1, 2, 8])
def test_output_shape(n):
    """ResNet20 maps (N, 3, 32, 32) images to (N, 10) logits"""
    model = _model()
    x = images(n)
    if n > 1:
        _logits(model, "train", x)
    _logits(model, "eval", x)


@pytest.mark.deduction(1 / 8)
def test_num_classes():
    """ResNet20(num_classes=100) gives 100 outputs"""
    _logits(_model(num_classes=100), "eval", images(EXAMPLE_BATCH), classes=100)   # exported with static shapes


@pytest.mark.deduction(1 / 8)
def test_parameter_count():
    """ResNet20 has 269,722 trainable parameters (option A) or 272,474 (option B)"""
    count = trainable_parameters(_model())
    assert_resnet20_parameters(count)


@pytest.mark.deduction(3 / 8)
def test_weighted_layers():
    """20 weighted layers: 19 convs (the stem and 2 per block, 3 stages x 3 blocks) and 1 Linear"""
    model = _model()
    convs, linears = len(_weighted_convs(model)), len(linear_layers(model))
    assert (convs, linears) == (19, 1), (
        f"expected 19 convs (1x1 projection shortcuts not counted) and 1 Linear, 6n + 2 = 20 for n = 3, got "
        f"{convs} convs and {linears} Linear layers")


@pytest.mark.deduction(1 / 8)
def test_conv_widths():
    """The convs widen from 16 to 32 to 64 filters, one width per stage"""
    widths = _stages([layer[1] for _, layer in _weighted_convs(_model())])
    assert widths == RESNET20_WIDTHS, f"expected the convs' widths to go {RESNET20_WIDTHS}, got {widths}"


@pytest.mark.deduction(1 / 2)
def test_downsampling():
    """The feature maps shrink from 32x32 to 16x16 to 8x8 (downsampling at the second and third stage)"""
    model = _model().eval()
    _, values = trace(model, images(2))
    sizes = [tuple(values[node].shape[2:]) for node, _ in _weighted_convs(model) if node in values]
    maps = _stages([h if h == w else f"{h}x{w}" for h, w in sizes])
    assert maps == RESNET20_MAPS, (f"expected the convs' outputs to go from {RESNET20_MAPS[0]}x{RESNET20_MAPS[0]} to "
                                   f"16x16 to 8x8 maps (stride 2 where a stage begins), got the sizes {maps}")


@pytest.mark.deduction(3 / 8)
def test_batchnorm_after_every_conv():
    """Every conv's output goes straight into a BatchNorm2d of its width"""
    pairs = batchnorm_fed_by_each_conv(_model())
    assert pairs, "no conv ran during the forward"
    missing = [f"call {index + 1} ({in_channels}->{out_channels}, {kernel[0]}x{kernel[1]})"
               for index, ((in_channels, out_channels, kernel), width) in enumerate(pairs) if width != out_channels]
    assert not missing, (f"expected every conv's output to go straight into a BatchNorm2d of its width, got "
                         f"{len(missing)} of {len(pairs)} conv calls without one: {', '.join(missing[:3])}"
                         f"{' ...' if len(missing) > 3 else ''}")


@pytest.mark.deduction(1 / 16)
def test_global_average_pooling():
    """Global average pooling of the last feature maps feeds the Linear"""
    model = _model().eval()
    linears = model.calls("linear")
    assert linears, "ResNet20 has no nn.Linear layer"
    with torch.no_grad():
        _, values = trace(model, images(2))
    features = values.get(linears[-1].args[0])
    assert features is not None, "the Linear layer did not run during the forward"
    assert features.dim() == 2 and features.shape[0] == 2, (
        f"expected the Linear to receive (2, channels) features, got {tuple(features.shape)}")
    maps = [v for v in values.values() if isinstance(v, torch.Tensor) and v.dim() == 4 and v.shape[2] * v.shape[3] > 1]
    pooled = [m.mean(dim=(2, 3)) for m in maps if tuple(m.shape[:2]) == tuple(features.shape)]
    assert pooled, f"expected {features.shape[1]}-channel feature maps before the Linear layer, got none"
    assert any(torch.allclose(features, p, rtol=1e-4, atol=1e-5) for p in pooled), (
        "expected the Linear's input to be the mean over H and W of the last feature map (global average "
        "pooling), got something else (max pooling?)")


@pytest.mark.deduction(1 / 2)
def test_shortcuts_add():
    """Shortcuts add each block's input: with every residual-branch conv zeroed the output still depends on x"""
    model = _model().eval()
    branch = [node for node, layer in _weighted_convs(model) if layer[0] != 3]
    assert branch, "expected convs after the stem, got none"
    with torch.no_grad():
        for node in branch:
            weight = model.tensor(Program.argument(node, "weight"))
            assert weight is not None, "a conv's weight is not a parameter of the program"
            weight.zero_()
        first = run(model, images(2))
        second = run(model, 3 * images(2))
    assert isinstance(first, torch.Tensor), f"forward must return a tensor, got {type(first).__name__}"
    assert not torch.allclose(first, second, rtol=1e-4, atol=1e-6), (
        "expected the output to still depend on the image when every residual-branch conv is zeroed (the "
        "shortcut carries x around each block: out = F(x) + shortcut(x)), got a constant output: "
        "are the shortcuts added?")


@pytest.mark.deduction(1 / 8)
def test_relu_after_the_addition():
    """Each block's output is ReLU(F(x) + shortcut(x)): the ReLU comes after the addition"""
    additions = _residual_additions(_model())   # none at all: the shortcut check's business, not this one's
    before = [k for k, (_, branch) in enumerate(additions, 1) if _is_relu(_produced_by(branch))]
    missing = [k for k, (node, _) in enumerate(additions, 1) if not _feeds_relu(node)]
    wrong = [f"a ReLU before the addition in {_blocks(before, len(additions))}"] if before else []
    wrong += [f"no ReLU after the addition in {_blocks(missing, len(additions))}"] if missing else []
    assert not wrong, (f"expected each block's output to be ReLU(F(x) + shortcut(x)), the ReLU after the addition "
                       f"and none before it, got {' and '.join(wrong)}")


@pytest.mark.deduction(1 / 8)
def test_training_step():
    """A train-mode batch of 2 and a backward pass give every parameter a gradient"""
    model = _model().train()
    out = run(model, images(2))
    assert isinstance(out, torch.Tensor), f"forward must return a tensor, got {type(out).__name__}"
    loss = out.float().logsumexp(-1).mean()   # whatever the output's shape: that is another check's business
    backward(loss, "ResNet20")
    missing = [name for name, p in model.parameters().items()
               if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all())]
    assert not missing, f"expected a finite gradient for every parameter, got none for {missing[:5]}"
