"""Programs for part swish: Lab 2's Swish (one per input rank and dtype the checks use) and SimpleNNSwish
(its Swish calls annotated, so the judge can count them)."""
import pytest
import torch

from autograder.student_side.exports.conftest import all_dynamic, batch_dynamic, export_program, images
from autograder.student_side.probes import SWISH_FLOAT64, SWISH_INPUTS
from autograder.student_side.student_code import build, grading_device, student_object


@pytest.mark.parametrize("program_id", SWISH_INPUTS)
def test_Swish(program_id):
    shape = SWISH_INPUTS[program_id]
    export_program(program_id, "Swish.forward", build("simplenn_dev", "Swish"),
                   (torch.randn(shape, device=grading_device()),), dynamic=all_dynamic(len(shape)))


@pytest.mark.parametrize("program_id", [SWISH_FLOAT64])
def test_Swish_float64(program_id):
    export_program(program_id, "Swish.forward", build("simplenn_dev", "Swish"),
                   (torch.randn(2, 5, 3, dtype=torch.float64, device=grading_device()),), dynamic=all_dynamic(3))


@pytest.mark.parametrize("program_id", ["SimpleNNSwish"])
def test_SimpleNNSwish(program_id):
    swish = student_object("simplenn_dev", "Swish")
    export_program(program_id, "SimpleNNSwish.forward", build("simplenn_dev", "SimpleNNSwish").train(),
                   (images(),), dynamic=batch_dynamic(), annotate=swish if isinstance(swish, type) else None)
