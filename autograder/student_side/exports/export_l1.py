"""Programs for part l1: ``l1_penalty(model, strength)`` on small probe models, one per (model, strength).

The probe model's parameters are the program's *inputs*, so the judge chooses their values after the export
and backpropagates to them. ``strength`` is fixed in each program (``probes.L1_PROGRAMS``)."""
import pytest
from torch import nn
from torch.nn.utils.stateless import _reparametrize_module

from autograder.student_side.exports.conftest import export_program
from autograder.student_side.probes import L1_PROGRAMS, l1_probe_model
from autograder.student_side.student_code import grading_device, student_object


class Penalty(nn.Module):
    """``forward(parameters)`` = ``l1_penalty(probe model with these parameters, strength)``."""

    def __init__(self, l1_penalty, model: nn.Module, strength: float):
        super().__init__()
        self.l1_penalty, self.model, self.strength = l1_penalty, model, strength

    def forward(self, parameters: dict):
        with _reparametrize_module(self.model, parameters):
            return self.l1_penalty(self.model, self.strength)


@pytest.mark.parametrize("program_id", L1_PROGRAMS)
def test_l1_penalty(program_id):
    model_name, strength = L1_PROGRAMS[program_id]
    l1_penalty = student_object("simplenn_dev", "l1_penalty")
    model = l1_probe_model(model_name).to(grading_device())
    parameters = {name: p.detach().clone().requires_grad_() for name, p in model.named_parameters()}
    export_program(program_id, "l1_penalty(model, strength)", Penalty(l1_penalty, model, strength), (parameters,),
                   data_detached=True)
