"""Part simplenn_bn: Lab 2's SimpleNNBN (SimpleNN with a BatchNorm2d right after each conv), judged on its program.

Checked by behaviour and by the program's calls, never by attribute names: separate layers or
``nn.Sequential``, ReLU as a module or a function are all fine. Decisions:

* "Right after the conv" is read from the graph: a BatchNorm call must receive exactly the conv call's output
  (an in-place ReLU in between is a separate call once exported, so it shows). BN after the ReLU or the
  pooling, BN before the conv, a BN declared but never called and a conv without BN all fail.
* 82,078 trainable parameters, or 82,054 when the two convs have ``bias=False`` (a bias right before BN
  is redundant, so dropping it is legitimate).
* N = 1 is checked in eval mode only (the inference contract); larger batches in both modes.
* Train and eval mode must give different outputs once a train-mode forward has updated the running
  statistics: that is what BatchNorm does, and a model without BN gives the same output in both.
* What a failed check costs (``deduction``, a share of the part): BatchNorm right after each conv is what
  the part is about (half); a model that does not produce logits loses half too.
"""
from __future__ import annotations

import pytest
import torch

from autograder.expectations import assert_logits, assert_modes_differ, listed
from autograder.suites.conftest import (assert_simplenn_bn_parameters, assert_simplenn_layers,
                                        batchnorm_fed_by_each_conv, convs_without_their_batchnorm, images, program,
                                        run)


def _model():
    return program("SimpleNNBN")


@pytest.mark.deduction(1 / 2)
@pytest.mark.parametrize("n", [1, 5, 128])
def test_output_shape(n):
    """SimpleNNBN maps (N, 3, 32, 32) images to (N, 10) logits"""
    model = _model()
    x = images(n)
    if n > 1:
        assert_logits(run(model.train(), x), n, "train")
    assert_logits(run(model.eval(), x), n, "eval")


@pytest.mark.deduction(1 / 4)
def test_parameter_count():
    """SimpleNNBN has 82,078 trainable parameters (82,054 with bias-free convs)"""
    assert_simplenn_bn_parameters(_model())


@pytest.mark.deduction(1 / 2)
def test_batchnorm_right_after_each_conv():
    """Each conv's output goes straight into a BatchNorm2d of its width (BatchNorm2d(8), BatchNorm2d(16))"""
    model = _model()
    convs = model.calls("conv2d")
    assert len(convs) == 2, f"expected 2 Conv2d layers, got {len(convs)}"
    assert model.calls("batch_norm"), "SimpleNNBN has no nn.BatchNorm2d layer"
    wrong = convs_without_their_batchnorm(batchnorm_fed_by_each_conv(model))
    assert not wrong, listed("expected each conv's output to go straight into a BatchNorm2d of its width (before the "
                             "ReLU and the pooling), got ", wrong)


@pytest.mark.deduction(1 / 4)
def test_train_and_eval_modes_differ():
    """Train mode (batch statistics) and eval mode (running statistics) give different outputs"""
    model = _model()
    x = images(8)
    with torch.no_grad():
        train_out = run(model.train(), x)
        eval_out = run(model.eval(), x)
    assert_modes_differ(train_out, eval_out)


@pytest.mark.deduction(1 / 4)
def test_simplenn_layers():
    """Still SimpleNN's layers: convs 5x5 3->8 and 3x3 8->16 (stride 1, no padding), Linear 576->120->84->10"""
    assert_simplenn_layers(_model())
