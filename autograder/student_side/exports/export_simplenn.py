"""Programs for part simplenn: Lab 1's SimpleNN."""
import pytest

from autograder.student_side.exports.conftest import batch_dynamic, export_program, images
from autograder.student_side.student_code import build


@pytest.mark.parametrize("program_id", ["SimpleNN"])
def test_SimpleNN(program_id):
    export_program(program_id, "SimpleNN.forward", build("simplenn", "SimpleNN").train(), (images(),),
                   dynamic=batch_dynamic())
