"""A student's exported program as the hidden checks see it: a graph to read and a function to run.

``Program`` wraps the GraphModule of a loaded ExportedProgram (a fresh copy per check, so one check's edits
never reach another). Reading: ``calls(op)`` lists the ATen calls in execution order, ``argument`` reads a
call's argument by its schema name (defaults filled in), ``tensor`` resolves a weight, ``classes`` says which
module classes a call ran inside (``nn_module_stack``), ``annotation`` reads the student process's marks.
Running: ``program(*inputs)`` on the judge's own probes, ``trace(*inputs)`` to record every value a forward
computes, ``train()`` / ``eval()`` to switch every BatchNorm and dropout call, ``parameters()`` for gradients
and weight edits.
"""
from __future__ import annotations

import copy
import json

import torch
from torch import fx

from autograder.student_side.graph_modes import op_name, set_training


class Program:
    def __init__(self, program_id: str, module: fx.GraphModule, device: torch.device):
        self.id, self.module, self.device = program_id, module.to(device), device

    @classmethod
    def of(cls, program_id: str, module: fx.GraphModule, device: torch.device) -> "Program":
        """A copy of ``module`` (``ExportedProgram.module()``), so one check's edits never reach another."""
        return cls(program_id, copy.deepcopy(module), device)

    # ---- reading the graph ----------------------------------------------------------------------
    def nodes(self) -> list[fx.Node]:
        return [node for node in self.module.graph.nodes if op_name(node)]

    def calls(self, *names: str) -> list[fx.Node]:
        """The ATen calls named ``names`` (``conv2d``, ``batch_norm``, ...), in execution order."""
        return [node for node in self.nodes() if op_name(node) in names]

    @staticmethod
    def argument(node: fx.Node, name: str):
        for index, argument in enumerate(node.target._schema.arguments):
            if argument.name == name:
                if index < len(node.args):
                    return node.args[index]
                return node.kwargs.get(name, argument.default_value)
        raise KeyError(name)

    def tensor(self, value) -> torch.Tensor | None:
        """The weight or buffer a call's argument names (a get_attr node), None when it is not one."""
        if isinstance(value, fx.Node) and value.op == "get_attr":
            owner = self.module
            *path, last = str(value.target).split(".")
            for part in path:
                owner = getattr(owner, part)
            return getattr(owner, last)
        return None

    @staticmethod
    def classes(node: fx.Node) -> list[str]:
        """The qualified class names of the modules this call ran inside, outermost first."""
        return [str(kind) for _, kind in (node.meta.get("nn_module_stack") or {}).values()]

    @staticmethod
    def annotation(node: fx.Node, key: str):
        custom = node.meta.get("custom") or {}
        if isinstance(custom, str):
            custom = json.loads(custom)
        return custom.get(key)

    # ---- running it -----------------------------------------------------------------------------
    def train(self) -> "Program":
        set_training(self.module, True)
        return self

    def eval(self) -> "Program":
        set_training(self.module, False)
        return self

    def parameters(self) -> dict[str, torch.nn.Parameter]:
        return dict(self.module.named_parameters())

    def __call__(self, *inputs):
        return self.module(*inputs)

    def trace(self, *inputs) -> tuple[object, dict[fx.Node, object]]:
        """The output of one forward and every value it computed, by node (detached copies)."""
        values: dict[fx.Node, object] = {}

        class Recorder(fx.Interpreter):
            def run_node(self, node):
                result = super().run_node(node)
                if op_name(node):
                    values[node] = result.detach().clone() if isinstance(result, torch.Tensor) else result
                return result

        output = Recorder(self.module).run(*inputs)
        return output, values
