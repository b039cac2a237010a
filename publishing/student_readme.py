"""Write (or check) the students' ``source/hw2/README.md`` from ``course_config.py``; nbgrader copies it into
the release as it is.

The points, file names and data address come from the config, so the README students read cannot drift from
what the graders do. ``make release`` writes it; a test fails while the committed file is stale.

    python -m publishing.student_readme write
    python -m publishing.student_readme check   # exit 1 when the committed file is stale
"""
from __future__ import annotations


import course_config
from common import cli
from publishing.generated import GeneratedFile

README_PATH = course_config.REPO_ROOT / "source" / course_config.ASSIGNMENT_ID / "README.md"

# What each autograded part checks, in the students' words (the part ids are course_config's).
PART_CHECKS = {
    "simplenn": "`SimpleNN` (Lab 1): output shape, 82,030 parameters, layer sizes, a ReLU after each hidden layer, "
                "gradients reach every parameter",
    "simplenn_bn": "`SimpleNNBN` (Lab 2): a BatchNorm2d right after each conv, parameter count, train vs eval mode",
    "swish": "`Swish` and `SimpleNNSwish` (Lab 2): x * sigmoid(x) written by hand (no SiLU), values, gradient, "
             "Swish wherever SimpleNN had a ReLU",
    "l1": "`l1_penalty(model, strength)` (Lab 2 bonus): value, differentiable, gradient strength * sign(p)",
    "resnet20": "`ResNet20` (Lab 3): 20 weighted layers, widths and map sizes, BN after every conv, working "
                "shortcuts, a ReLU after each block's addition, global average pooling, parameter count",
    "predictions": "`predictions.csv`: test-set accuracy against labels only the staff hold",
}
IMPORTED_NAMES = ("SimpleNN", "SimpleNNBN", "Swish", "SimpleNNSwish", "l1_penalty", "ResNet20")
# A smoke run of each notebook (papermill parameters): every cell runs, on a few hundred images.
_SCRATCH = "-p CHECKPOINT_DIR /tmp/hw2-smoke"
QUICK_RUNS = {
    "simplenn": f"-p EPOCHS 1 -p TRAIN_SUBSET 256 -p DECAY 0.5 {_SCRATCH}",
    "simplenn_dev": f"-p EPOCHS 1 -p BN_EPOCHS 1 -p SWEEP_EPOCHS 1 -p TRAIN_SUBSET 256 {_SCRATCH}",
    "resnet": f"-p EPOCHS 2 -p TRAIN_SUBSET 512 {_SCRATCH}",
    "save_predictions": "-p CHECKPOINT /tmp/hw2-smoke/resnet20.pth -p OUTPUT /tmp/hw2-smoke/predictions.csv",
}


def _points(value: float) -> str:
    return f"{value:g}"


def _item_row(item: str, spec: dict) -> str:
    """One row of the points table: the item, what it asks, its notebook, its points, who grades them."""
    graders = [f"autograder `{part}` ({_points(course_config.AUTOGRADED_POINTS[part])})" for part in spec.get("parts", ())]
    cells = spec.get("cells", {})
    if cells:
        graders.append(f"course staff ({_points(sum(cells.values()))})")
    where = f"`{course_config.NOTEBOOKS[spec['notebook']]}`"
    points = f"{_points(spec['points'])} bonus" if spec.get("bonus") else _points(spec["points"])
    return f"| {item} | {spec['title']} | {where} | {points} | {' + '.join(graders)} |"


def render() -> str:
    nb = course_config.NOTEBOOKS
    submitted = [nb[key] for key in course_config.SUBMITTED_NOTEBOOKS]
    auto = course_config.AUTOGRADED_PARTS
    lines = [
        f"# {course_config.ASSIGNMENT_ID.upper()}: construct, train and optimize CNN models (CIFAR-10, PyTorch)",
        "",
        "<!-- Generated from the course's course_config.py by `python -m publishing.student_readme write`. -->",
        "",
        "## What to submit",
        "",
        *[f"- `{name}`" for name in submitted],
        f"- `{course_config.PREDICTIONS_FILENAME}`, written by `{nb['save_predictions']}` from your best model",
        "",
        "Keep these exact file names: nbgrader and the autograder look the files up by name. "
        f"`{nb['save_predictions']}` itself is not graded. Hand in the files themselves, side by side: upload "
        "them as they are, or one `.zip` that holds them at its top level (no folder around them); with "
        "nbgrader, run `nbgrader submit` in this folder.",
        "",
        "## Points",
        "",
        f"{_points(course_config.COURSE_MAX)} points plus {_points(course_config.COURSE_BONUS)} bonus points, one row "
        "per item of the handout. Bonus points are extra credit: they add to your score but never to the maximum.",
        "",
        "| item | what | where | points | graded by |",
        "| --- | --- | --- | --- | --- |",
        *[_item_row(item, spec) for item, spec in course_config.HANDOUT_ITEMS.items()],
        f"| **total** | | | **{_points(course_config.COURSE_MAX)} + {_points(course_config.COURSE_BONUS)} bonus** | |",
        "",
        "What the autograder checks, per part:",
        "",
        *[f"- `{part}` ({_points(spec['points'])}{' bonus' * (part in course_config.BONUS_PARTS)} "
          f"point{'s' * (spec['points'] != 1)}): "
          f"{PART_CHECKS.get(part, part)}" for part, spec in auto.items()],
        "",
        f"The autograder reads your notebooks' classes and functions ({', '.join(f'`{n}`' for n in IMPORTED_NAMES)}); "
        "it never reruns your training, so keep them self-contained and never rename them. "
        "It checks what they do (shapes, values, gradients, structure), not how you named your layers.",
        "Written answers are graded by hand; where an answer cell says so, the TA also reads the code of that step.",
        "",
        "## Rules",
        "",
        "- Train only on the course's training and validation images; never on the test images.",
        "- No pretrained weights: every model starts from a random initialization.",
        "- Write ResNet-20 yourself, from the paper; do not copy code from the internet or from other students.",
        "- The test labels are the course's own: a model trained on the public CIFAR-10 scores near chance here.",
        "",
        "## The data",
        "",
        "`tools.dataset.CIFAR10(root, mode='train' | 'val' | 'test', download=True, transform=...)` downloads the "
        f"course's zips from {course_config.COURSE_DATA_BASE_URL} the first time, checks their SHA-256 and keeps "
        "the images in memory: 45,000 training, 5,000 validation and 10,000 test images (the test images "
        "have no labels).",
        "",
        "If the course gives you the data in a folder instead (on the GPU server, say), write that folder's path "
        "on one line of a file named `local_data.txt` beside the notebooks, once: every notebook then copies the "
        "zips from there and checks them the same way. For example:",
        "",
        "```bash",
        "echo /shared/hw2-data > local_data.txt",
        "```",
        "",
        "A data source that is missing, or not published yet, stops the first data cell with one line saying "
        "what to do.",
        "",
        "## Quick runs and `nbgrader validate`",
        "",
        "Every notebook's first code cell holds its settings; papermill overrides them for a smoke run of the whole "
        f"notebook in a minute or two. Point the run at a scratch folder so it never overwrites your real "
        f"checkpoints or `{course_config.PREDICTIONS_FILENAME}`:",
        "",
        "```bash",
        "mkdir -p /tmp/hw2-smoke",
        *[f"python -m papermill {nb[key]} /tmp/hw2-smoke/{nb[key]} {params}" for key, params in QUICK_RUNS.items()],
        "```",
        "",
        "Leave the defaults for your final runs. `nbgrader validate *.ipynb` is safe on finished work: under "
        "nbgrader every run shrinks to one epoch on 256 images and writes to a throw-away folder (removed "
        f"afterwards), so your `saved_model/` and `{course_config.PREDICTIONS_FILENAME}` are never touched. "
        "Validation fails when any code cell raises an error, naming it (\"code cell N\", counted from the top), "
        "and a cell that runs too long is stopped and reported in one line (see `nbgrader_config.py`).",
    ]
    return "\n".join(lines) + "\n"


STUDENT_README = GeneratedFile(README_PATH, render, "publishing.student_readme")


def main(argv: list[str] | None = None) -> int:
    return STUDENT_README.main(argv, __doc__.splitlines()[0])


if __name__ == "__main__":
    cli.run(main)
