"""Part resnet20: Lab 3's ResNet20 (He et al. 2016, section 4.2).

Checked by behaviour and module inventory, never by attribute or helper-class names: blocks as classes
or ``nn.Sequential``, ReLU as a module or a function, option-A shortcuts (``F.pad`` with ``::2``
subsampling, a ``LambdaLayer``, a padding module) and option-B shortcuts (1x1 conv + BN) are all fine.
Decisions:

* 20 weighted layers = 19 3x3 convs (the stem and 2 per block) + 1 Linear(64, num_classes); option-B
  1x1 projection convs are not counted among them; 269,722 (option A) or 272,474 (option B) parameters.
* Widths and map sizes: the 3x3 convs' out_channels are 16/32/64 for 7/6/6 of them (module inventory),
  and their outputs are 32x32 / 16x16 / 8x8 for 7/6/6 of them (forward hooks, one forward).
* "BN after every conv": each conv call's output (1x1 projections included) is exactly what a BatchNorm2d
  of the same width receives (copies from the conv's forward hook and the BN's forward pre-hook).
* Global average pooling: the Linear's input is (N, 64) and equals the mean over H, W of a 64-channel
  feature map the forward computed. Every tensor the forward computes is recorded with a torch-function
  mode, so this holds whether the pooling is ``F.adaptive_avg_pool2d``, ``nn.AvgPool2d(8)``,
  ``F.avg_pool2d(x, x.size(3))`` or ``x.mean((2, 3))``, and whatever the module structure; max pooling fails.
* Shortcuts really add: with every residual-branch conv zeroed (every 3x3 conv but the stem, the one with
  3 input channels; option-B projections kept), in eval mode the output must still depend on the input;
  without shortcuts it is constant.
* ReLU placement inside a block is not checked: ReLU after the addition (the paper), no ReLU after it, or
  ReLU before it are all accepted here (their effect shows in the accuracy graded by ``predictions``).
* N = 1 is checked in eval mode only (the inference contract); larger batches in both modes.
"""
from __future__ import annotations

from collections import Counter

import pytest
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from autograder.suites.conftest import batchnorm_fed_by_each_conv, build, call_student, forward, trainable_parameters

EXPECTED_PARAMETERS = {269_722: "option A", 272_474: "option B"}
EXPECTED_WIDTHS = {16: 7, 32: 6, 64: 6}
EXPECTED_MAPS = {32: 7, 16: 6, 8: 6}


def _model(num_classes: int = 10):
    return build("resnet", "ResNet20", num_classes=num_classes)


def _is_3x3(conv: nn.Conv2d) -> bool:
    return tuple(conv.kernel_size) == (3, 3)


def _convs_3x3(model) -> list[nn.Conv2d]:
    return [m for m in model.modules() if isinstance(m, nn.Conv2d) and _is_3x3(m)]


def _logits(model, x, classes: int = 10):
    out = forward(model, x)
    assert isinstance(out, torch.Tensor), f"forward must return a tensor, got {type(out).__name__}"
    mode = "train" if model.training else "eval"
    assert tuple(out.shape) == (x.shape[0], classes), (
        f"expected output shape ({x.shape[0]}, {classes}) in {mode} mode, got {tuple(out.shape)}")
    return out


@pytest.mark.parametrize("n", [1, 2, 8])
def test_output_shape(n, device):
    """ResNet20 maps (N, 3, 32, 32) images to (N, 10) logits"""
    model = _model()
    x = torch.randn(n, 3, 32, 32, device=device)
    if n > 1:
        _logits(model.train(), x)
    _logits(model.eval(), x)


def test_num_classes(device):
    """ResNet20(num_classes=100) gives 100 outputs"""
    model = _model(num_classes=100)
    _logits(model.eval(), torch.randn(2, 3, 32, 32, device=device), classes=100)


@pytest.mark.points(2)
def test_parameter_count():
    """ResNet20 has 269,722 trainable parameters (option A) or 272,474 (option B)"""
    count = trainable_parameters(_model())
    assert count in EXPECTED_PARAMETERS, (
        f"expected 269,722 trainable parameters (option-A shortcuts) or 272,474 (option-B 1x1 projections), "
        f"got {count:,}")


def test_weighted_layers():
    """20 weighted layers: 19 3x3 convs and one Linear(64, 10) (1x1 projections not counted)"""
    model = _model()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    count_3x3 = sum(_is_3x3(c) for c in convs)
    others = sorted({tuple(c.kernel_size) for c in convs if not _is_3x3(c)} - {(1, 1)})
    linears = [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)]
    assert count_3x3 == 19, f"expected 19 3x3 convs (the stem and 2 per block, 3 stages x 3 blocks), got {count_3x3}"
    assert not others, f"expected only 3x3 convs (and 1x1 projection shortcuts), got kernel sizes {others}"
    assert linears == [(64, 10)], f"expected one Linear(64, 10), got Linear layers {linears}"


def test_conv_widths():
    """The 3x3 convs have 16, 32 and 64 filters: 7, 6 and 6 of them"""
    widths = dict(Counter(c.out_channels for c in _convs_3x3(_model())))
    assert widths == EXPECTED_WIDTHS, f"expected {{width: number of 3x3 convs}} = {EXPECTED_WIDTHS}, got {widths}"


def test_feature_map_sizes(device):
    """The 3x3 convs work on 32x32, 16x16 and 8x8 maps: 7, 6 and 6 of them (stride-2 downsampling)"""
    model = _model()
    sizes = []
    for conv in _convs_3x3(model):
        conv.register_forward_hook(lambda module, inputs, output: sizes.append(tuple(output.shape[2:])))
    forward(model.eval(), torch.randn(2, 3, 32, 32, device=device))
    assert len(sizes) == 19, f"expected 19 3x3 conv calls per forward, got {len(sizes)}"
    maps = dict(Counter(h if h == w else f"{h}x{w}" for h, w in sizes))
    assert maps == EXPECTED_MAPS, (f"expected {{map size: number of 3x3 conv outputs}} = {EXPECTED_MAPS}, "
                                   f"got {maps}")


@pytest.mark.points(2)
def test_batchnorm_after_every_conv(device):
    """Every conv's output goes straight into a BatchNorm2d of its width"""
    pairs = batchnorm_fed_by_each_conv(_model(), torch.randn(2, 3, 32, 32, device=device))
    assert pairs, "no conv ran during the forward"
    missing = [f"call {index + 1} ({conv.in_channels}->{conv.out_channels}, "
               f"{conv.kernel_size[0]}x{conv.kernel_size[1]})"
               for index, (conv, norm) in enumerate(pairs) if norm is None or norm.num_features != conv.out_channels]
    assert not missing, (f"expected every conv's output to go straight into a BatchNorm2d of its width, got "
                         f"{len(missing)} of {len(pairs)} conv calls without one: {', '.join(missing[:3])}"
                         f"{' ...' if len(missing) > 3 else ''}")


class _Record64(TorchFunctionMode):
    """Records every 64-channel feature map (N, 64, H, W) with H * W > 1 that a torch function returns."""

    def __init__(self):
        super().__init__()
        self.maps = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        if (isinstance(result, torch.Tensor) and result.dim() == 4 and result.shape[1] == 64
                and result.shape[2] * result.shape[3] > 1):
            self.maps.append(result.detach())
        return result


def test_global_average_pooling(device):
    """Global average pooling of the 64-channel maps feeds the Linear(64, 10)"""
    model = _model().eval()
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert linears, "ResNet20 has no nn.Linear layer"
    seen = []
    linears[-1].register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].detach()))
    recorder = _Record64()
    with torch.no_grad(), recorder:
        forward(model, torch.randn(2, 3, 32, 32, device=device))
    assert seen, "the Linear layer did not run during the forward"
    features = seen[-1]
    assert tuple(features.shape) == (2, 64), (
        f"expected the Linear to receive (2, 64) features, got {tuple(features.shape)}")
    pooled = [m.mean(dim=(2, 3)) for m in recorder.maps if m.shape[0] == 2]
    assert pooled, "expected 64-channel feature maps before the Linear layer, got none"
    assert any(torch.allclose(features, p, rtol=1e-4, atol=1e-5) for p in pooled), (
        "expected the Linear's input to be the mean over H and W of the last 64-channel feature map "
        "(global average pooling), got something else (max pooling?)")


@pytest.mark.points(2)
def test_shortcuts_add(device):
    """Shortcuts add each block's input: with every residual-branch conv zeroed the output still depends on x"""
    model = _model().eval()
    branch = [c for c in _convs_3x3(model) if c.in_channels != 3]
    assert branch, "expected 3x3 convs after the stem, got none"
    with torch.no_grad():
        for conv in branch:
            conv.weight.zero_()
        first = forward(model, torch.randn(2, 3, 32, 32, device=device))
        second = forward(model, 3 * torch.randn(2, 3, 32, 32, device=device))
    assert isinstance(first, torch.Tensor), f"forward must return a tensor, got {type(first).__name__}"
    assert not torch.allclose(first, second, rtol=1e-4, atol=1e-6), (
        "expected the output to still depend on the image when every residual-branch conv is zeroed (the "
        "shortcut carries x around each block: out = F(x) + shortcut(x)), got a constant output: "
        "are the shortcuts added?")


def test_training_step(device):
    """A train-mode batch of 2 and a backward pass give every parameter a gradient"""
    model = _model().train()
    out = _logits(model, torch.randn(2, 3, 32, 32, device=device))
    loss = nn.functional.cross_entropy(out, torch.tensor([3, 7], device=device))
    call_student("backward through ResNet20", loss.backward)
    missing = [name for name, p in model.named_parameters()
               if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all())]
    assert not missing, f"expected a finite gradient for every parameter, got none for {missing[:5]}"
