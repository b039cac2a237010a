"""Train or eval mode for an exported program: the flag of every BatchNorm and dropout call in its graph.

Programs are exported in train mode; ``ExportedProgram.module()`` cannot switch modes, so the mode is an
argument of those calls and is rewritten in place. Both sides use it: the student process to compare a program
with the live object in both modes, the judge to run its checks in the mode each needs.
"""
from __future__ import annotations

import torch
from torch import fx

TRAINING_ARGUMENT = {"batch_norm": "training", "dropout": "train", "feature_dropout": "train",
                     "alpha_dropout": "train", "feature_alpha_dropout": "train"}


def op_name(node: fx.Node) -> str:
    """``aten.conv2d.default`` -> ``conv2d``; '' for what is not an ATen call."""
    target = node.target
    if node.op != "call_function" or not isinstance(target, torch._ops.OpOverload):
        return ""
    return target.overloadpacket.__name__


def set_training(module: fx.GraphModule, training: bool) -> fx.GraphModule:
    """``module`` with every BatchNorm and dropout call set to train (``True``) or eval mode, recompiled."""
    for node in module.graph.nodes:
        name = TRAINING_ARGUMENT.get(op_name(node))
        if name is not None:
            index = [a.name for a in node.target._schema.arguments].index(name)
            if index < len(node.args):
                node.args = (*node.args[:index], training, *node.args[index + 1:])
            else:
                node.kwargs = {**node.kwargs, name: training}
    module.recompile()
    return module


def random_calls(module: fx.GraphModule) -> list[str]:
    """The dropout calls of ``module`` (their masks depend on the random state)."""
    return [op_name(node) for node in module.graph.nodes if op_name(node) in TRAINING_ARGUMENT
            and op_name(node) != "batch_norm"]
