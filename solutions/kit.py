"""Where the kit's pieces are, and the Lab 3 notebook's definitions (ResNet20 and the handout's settings).

The model code lives once, in the solution cells of ``source/hw2/resnet-cifar10.ipynb``;
``load_lab3()`` extracts it with ``tools.notebook_defs`` (the reader the autograder and
``save_test_predictions.ipynb`` use), so the reference trainer always trains the reference solution.
"""
from __future__ import annotations

import functools
import types

import matplotlib

matplotlib.use("Agg")  # before the notebook's `import matplotlib.pyplot`: no display on a training server

import course_config  # noqa: E402

REPO = course_config.REPO_ROOT
STUDENT_DIR = course_config.STUDENT_PACKAGE_DIR
LAB3_NOTEBOOK = STUDENT_DIR / course_config.NOTEBOOKS["resnet"]

course_config.use_student_tools()   # `tools` as the notebooks import it


class ModelSourceError(RuntimeError):
    """The Lab 3 notebook does not give a usable ResNet20."""


@functools.lru_cache(maxsize=1)
def load_lab3() -> types.ModuleType:
    """The definitions of the Lab 3 source notebook: ``ResNet20``, ``scale_milestones`` and its settings."""
    from tools.notebook_defs import is_available, load_definitions

    lab3 = load_definitions(LAB3_NOTEBOOK)
    missing = [name for name in ("ResNet20", "scale_milestones", "LEARNING_RATE", "MOMENTUM", "WEIGHT_DECAY",
                                 "TRAIN_BATCH_SIZE", "VAL_BATCH_SIZE", "MILESTONES", "GAMMA", "EPOCHS")
               if not is_available(getattr(lab3, name, None)) or not hasattr(lab3, name)]
    if missing:
        problems = "; ".join(lab3.__extraction_problems__) or "no unparsable or skipped statements"
        raise ModelSourceError(f"{LAB3_NOTEBOOK} does not define {', '.join(missing)} ({problems}): "
                               "restore the notebook's solution and settings cells")
    return lab3
