"""Which programs the student process exports, and the small probe models the L1 penalty is exported on.

The one home of the program ids: ``exports/`` writes them, the judge's suites read them. Nothing here is
secret: the judge chooses its inputs (and the probe models' parameter values) only after the export. The
grading parent reads the ids too, so nothing here imports torch until a probe model is built.
"""
from __future__ import annotations

EXAMPLE_BATCH = 4            # the batch a model is traced with; its batch dimension stays dynamic
SWISH_INPUTS = {"Swish-1d": (1000,), "Swish-3d": (2, 5, 3), "Swish-4d": (4, 3, 8, 8)}   # float32
SWISH_FLOAT64 = "Swish-3d-float64"                                                        # (2, 5, 3), float64
SWISH_CALL = "hw2_call"      # node.meta["custom"] key naming the Swish call a SimpleNNSwish node belongs to
RESNET_CLASSES = {"ResNet20": 10, "ResNet20-100classes": 100}

L1_PROGRAMS = {"l1_penalty-linear-0.1": ("linear", 0.1), "l1_penalty-linear-0.5": ("linear", 0.5),
               "l1_penalty-linear-0": ("linear", 0.0), "l1_penalty-mlp-0.5": ("mlp", 0.5),
               "l1_penalty-convnet-0.0001": ("convnet", 1e-4)}


# Every program the student process may write, by part: the judge reads these files and no others.
PROGRAMS = {"simplenn": ("SimpleNN",), "simplenn_bn": ("SimpleNNBN",),
            "swish": (*SWISH_INPUTS, SWISH_FLOAT64, "SimpleNNSwish"), "l1": tuple(L1_PROGRAMS),
            "resnet20": tuple(RESNET_CLASSES)}
PROGRAM_IDS = frozenset(program_id for ids in PROGRAMS.values() for program_id in ids)


def l1_probe_model(model_name: str):
    """A fresh probe model ('linear', 'mlp' or 'convnet') for the l1_penalty programs."""
    from torch import nn

    return {"linear": lambda: nn.Linear(3, 2),
            "mlp": lambda: nn.Sequential(nn.Linear(3, 2), nn.Tanh(), nn.Linear(2, 2)),
            "convnet": lambda: nn.Sequential(nn.Conv2d(3, 8, 5), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(),
                                             nn.Linear(8 * 4 * 4, 10))}[model_name]()


def l1_parameter_shapes(model_name: str) -> dict[str, tuple[int, ...]]:
    """The names and shapes of a probe model's parameters: the inputs of its l1_penalty programs."""
    return {name: tuple(p.shape) for name, p in l1_probe_model(model_name).named_parameters()}
