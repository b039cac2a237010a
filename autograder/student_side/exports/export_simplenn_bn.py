"""Programs for part simplenn_bn: Lab 2's SimpleNNBN."""
import pytest

from autograder.student_side.exports.conftest import batch_dynamic, export_program, images
from autograder.student_side.student_code import build


@pytest.mark.parametrize("program_id", ["SimpleNNBN"])
def test_SimpleNNBN(program_id):
    export_program(program_id, "SimpleNNBN.forward", build("simplenn_dev", "SimpleNNBN").train(), (images(),),
                   dynamic=batch_dynamic())
