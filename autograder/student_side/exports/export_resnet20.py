"""Programs for part resnet20: Lab 3's ResNet20, with 10 and with 100 classes.

The 100-class program serves one check (its output width, at one batch size): it is exported with static
shapes, about a third cheaper to export and to load than a dynamic batch dimension."""
import pytest

from autograder.student_side.exports.conftest import batch_dynamic, export_program, images
from autograder.student_side.probes import RESNET_CLASSES
from autograder.student_side.student_code import build


@pytest.mark.parametrize("program_id", RESNET_CLASSES)
def test_ResNet20(program_id):
    classes = RESNET_CLASSES[program_id]
    model = build("resnet", "ResNet20", num_classes=classes).train()
    export_program(program_id, "ResNet20.forward", model, (images(),),
                   dynamic=batch_dynamic() if classes == 10 else None)
