"""The one file a course edits each term: HW2 "Construct, Train, and Optimize CNN Models".

Everything a term changes lives here: the term name, the notebooks, the registry of autograded parts (points,
the notebook each grades), the handout's graded items (their points and which parts and answer cells make
them up; 100 points plus 10 bonus), the accuracy -> points curve for ``predictions.csv``, where the data comes from
(URLs and SHA-256), the grading budgets and where the private files (held-out labels, the
label-permutation secret) are kept.

Edit the constants in the first half. The second half checks them when this module is imported and
raises ``ConfigError`` naming the bad key, so a typo fails at once instead of in the middle of grading.

Private things never live in this repository:
  * the held-out test labels: ``$HW2_LABELS_CSV``, else ``<private dir>/test_labels_<term>.csv``;
  * the label-permutation secret: ``$HW2_LABEL_SECRET``, else ``<private dir>/label_secret.txt``;
  * ``<private dir>`` is ``$HW2_PRIVATE_DIR``, else ``~/.hw2-private``.
The demo uses ``DEMO_SECRET`` and its own labels file under ``build/demo/``; the data builder refuses
to use the demo secret on the official CIFAR-10 archive.
"""
from __future__ import annotations

import math
import os
import re
import sys
from pathlib import Path

# --------------------------------------------------------------------------------------------------
# The term
# --------------------------------------------------------------------------------------------------
TERM = "fall2026"
ASSIGNMENT_ID = "hw2"

# The notebooks of the assignment (keys are used by the autograder and the release tooling). The true/false
# part has a notebook of its own: it is graded by hand only, and formgrader lists it as its own 30 points.
NOTEBOOKS = {
    "true_false": "true-false.ipynb",
    "simplenn": "simplenn-cifar10.ipynb",
    "simplenn_dev": "simplenn-cifar10-dev.ipynb",
    "resnet": "resnet-cifar10.ipynb",
    "save_predictions": "save_test_predictions.ipynb",
}
PREDICTIONS_FILENAME = "predictions.csv"
# What a student hands in: these notebooks and the predictions file (the predictions notebook is not graded).
SUBMITTED_NOTEBOOKS = ("true_false", "simplenn", "simplenn_dev", "resnet")
# The code-similarity check (python -m term similarity) compares these objects, by notebook, and each
# notebook's other code; a pair is flagged when the larger of its two shares (the part of one side's
# fingerprints found in the other) reaches the threshold, with at least the minimum of shared fingerprints.
# The numbers come from the calibration in tests/test_similarity.py (docs/instructor-guide.md, "Code similarity").
SIMILARITY_OBJECTS = {"simplenn": ("SimpleNN",), "simplenn_dev": ("SimpleNNBN", "Swish", "SimpleNNSwish", "l1_penalty"),
                      "resnet": ("ResNet20",)}
SIMILARITY_FOLDER = "similarity"   # where grade-all writes its code-similarity check, in its --out folder
SIMILARITY_THRESHOLD = 0.5
# Lab 1's models are specified layer by layer by the handout: independent answers share more than ResNet-20s do
# (the calibration's table, docs/instructor-guide.md), so their pairs need more to be flagged.
SIMILARITY_THRESHOLD_BY_PART = {"SimpleNN": 0.6, "SimpleNNBN": 0.6, "SimpleNNSwish": 0.6}
SIMILARITY_MIN_SHARED = 8

# --------------------------------------------------------------------------------------------------
# Points
# --------------------------------------------------------------------------------------------------
# The autograded parts: the one registry every grader, gradebook and test derives from. The keys are the
# part ids of DESIGN.md (every test name starts with "<part id>: "), in the order reports list them.
#   points:   what the part is worth (extra credit when HANDOUT_ITEMS counts it towards a bonus item)
#   notebook: the key of NOTEBOOKS whose code it grades, or None for predictions.csv (scored by
#             grade_predictions.py in the trusted grader, never by student code)
# A part with a notebook is judged by its hidden suite autograder/suites/test_<part id>.py; adding a part is
# one entry here plus that file (docs/adding-a-part.md).
AUTOGRADED_PARTS = {
    "simplenn":    {"points": 1,  "notebook": "simplenn"},       # Lab 1 (a): SimpleNN
    "simplenn_bn": {"points": 3,  "notebook": "simplenn_dev"},   # Lab 2 (b) 1: SimpleNNBN
    "swish":       {"points": 3,  "notebook": "simplenn_dev"},   # Lab 2 (b) 3: Swish and SimpleNNSwish
    "l1":          {"points": 2,  "notebook": "simplenn_dev"},   # Lab 2 (c) bonus: l1_penalty
    "resnet20":    {"points": 8,  "notebook": "resnet"},         # Lab 3 (a): ResNet20
    "predictions": {"points": 12, "notebook": None},             # Lab 3 (b): test accuracy of predictions.csv
}

# The handout's graded items, in its order: what each is worth and what makes it up. Every point of the
# homework is in exactly one item, so notebook cells, results.json, gradebooks and the answer key all derive
# from this table (a test checks the release against the handout's own list, tests/handout_items.json).
#   title:    what the item asks, in a few of our words
#   notebook: the NOTEBOOKS key where students answer it
#   points:   the handout's points; they must equal the sum of the parts' and cells' points below
#   parts:    autograded parts (AUTOGRADED_PARTS keys) that count towards it, each with all its points
#   cells:    manually graded answer cells (nbgrader grade_id -> points), graded by TAs in formgrader
#   bonus:    True for extra credit: its points never raise a maximum (nbgrader cells carry 0 points and the
#             TA enters the bonus as "extra credit"; in results.json its autograded part has max_score 0)
TRUE_FALSE_STATEMENTS = 10
HANDOUT_ITEMS = {
    **{f"1.{i}": {"title": f"true/false statement 1.{i}, with an explanation", "notebook": "true_false",
                  "points": 3, "cells": {f"tf_{i}": 3}} for i in range(1, TRUE_FALSE_STATEMENTS + 1)},
    "Lab 1 (a)": {"title": "SimpleNN, and how to check it is right", "notebook": "simplenn", "points": 2,
                  "parts": ("simplenn",), "cells": {"lab1_a": 1}},
    "Lab 1 (b)": {"title": "preprocessing transforms and why", "notebook": "simplenn", "points": 2,
                  "cells": {"lab1_b": 2}},
    "Lab 1 (c)": {"title": "data sets and data loaders", "notebook": "simplenn", "points": 2,
                  "cells": {"lab1_c": 2}},
    "Lab 1 (d)": {"title": "the model on the GPU, and how to verify it", "notebook": "simplenn", "points": 2,
                  "cells": {"lab1_d": 2}},
    "Lab 1 (e)": {"title": "loss function and optimizer", "notebook": "simplenn", "points": 2,
                  "cells": {"lab1_e": 2}},
    "Lab 1 (f)": {"title": "the training and validation loop", "notebook": "simplenn", "points": 2,
                  "cells": {"lab1_f": 2}},
    "Lab 1 (g)": {"title": "initial loss and what the curves show", "notebook": "simplenn", "points": 3,
                  "cells": {"lab1_g": 3}},
    "Lab 1 (h)": {"title": "learning-rate decay against none", "notebook": "simplenn", "points": 4,
                  "bonus": True, "cells": {"lab1_h": 4}},
    "Lab 2 (a)": {"title": "data augmentation against none", "notebook": "simplenn_dev", "points": 6,
                  "cells": {"lab2_a": 6}},
    "Lab 2 (b) 1": {"title": "BatchNorm after each conv, with and without at the standard learning rate",
                    "notebook": "simplenn_dev", "points": 5, "parts": ("simplenn_bn",), "cells": {"lab2_b1": 2}},
    "Lab 2 (b) 2": {"title": "evidence that BatchNorm allows a larger learning rate", "notebook": "simplenn_dev",
                    "points": 5, "cells": {"lab2_b2": 5}},
    "Lab 2 (b) 3": {"title": "Swish written by hand, against ReLU (BatchNorm, learning rate 0.1)",
                    "notebook": "simplenn_dev", "points": 5, "parts": ("swish",), "cells": {"lab2_b3": 2}},
    "Lab 2 (c) 1": {"title": "learning-rate sweep", "notebook": "simplenn_dev", "points": 7,
                    "cells": {"lab2_c1": 7}},
    "Lab 2 (c) 2": {"title": "L2 (weight decay) sweep", "notebook": "simplenn_dev", "points": 7,
                    "cells": {"lab2_c2": 7}},
    "Lab 2 (c) bonus": {"title": "L1 penalty, and L1 against L2 weight histograms", "notebook": "simplenn_dev",
                        "points": 6, "bonus": True, "parts": ("l1",), "cells": {"lab2_c_bonus": 4}},
    "Lab 3 (a)": {"title": "ResNet-20 built from the paper", "notebook": "resnet", "points": 8,
                  "parts": ("resnet20",)},
    "Lab 3 (b)": {"title": "ResNet-20 tuned above 90 %: test accuracy of predictions.csv", "notebook": "resnet",
                  "points": 12, "parts": ("predictions",)},
}

# predictions.csv: test accuracy -> points, piecewise linear between the (accuracy, points) knots,
# 0 points below the first knot and full points at and above the last. The default gives nothing for
# chance level (10 %), half the points for the Lab 1 target region (~60 %) and the full 12 points at
# >= 90 %, the Lab 3 (ResNet-20) target.
PREDICTIONS_CURVE = (
    (0.10, 0.0),
    (0.60, 6.0),
    (0.80, 9.0),
    (0.90, 12.0),
)

# --------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------
NUM_CLASSES = 10
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2023, 0.1994, 0.2010)

# The official archive the course data set is built from (instructors only).
OFFICIAL_ARCHIVE_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
OFFICIAL_ARCHIVE_SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"

# The course data set ("special preprocessing"): 45,000 train / 5,000 val drawn stratified from the
# five training batches (VAL_FRACTION of every class, i.e. 500 per class) with a fixed public seed;
# the test images are shuffled under new Ids and every label is remapped by a secret permutation.
VAL_FRACTION = 0.1
SPLIT_SEED = 661

# Where students download the course zips from; the file names follow the term.
COURSE_DATA_BASE_URL = "https://courses.example.edu/hw2/data/"
COURSE_DATA_FILENAMES = {
    "trainval": f"cifar10_trainval_{TERM}.zip",
    "test": f"cifar10_test_{TERM}.zip",
}
# SHA-256 of the zips above. Build the term's data with `python -m course_data.build`,
# paste the two digests it prints here, then regenerate the release (it writes them next to
# tools/dataset.py). None means "not built yet": students cannot download until they are set.
COURSE_DATA_SHA256 = {
    "trainval": None,
    "test": None,
}

# The secret used by `make demo` and the tests; never for a real term.
DEMO_SECRET = "hw2-demo-secret-not-for-a-real-term"

# --------------------------------------------------------------------------------------------------
# Grading budgets
# --------------------------------------------------------------------------------------------------
# Limits of the sandbox that runs student code (autograder/sandbox.py). A part that breaks a limit loses
# its points and the other parts are graded in a fresh sandbox; the reference solution needs ~5 s and ~1 GB.
GRADING_TIMEOUT_S = 120            # wall clock for one submission's hidden suites, reruns included
GRADING_PART_TIMEOUT_S = 30        # wall clock for one part's tests (or for loading one notebook's code)
GRADING_MEMORY_MB = 6144           # resident memory of all sandboxed processes together
GRADING_MAX_PROCESSES = 32         # processes in the sandbox at once (the suites need 1)
PREDICTIONS_MAX_BYTES = 1_048_576  # a 10,000-row predictions.csv is ~80 kB; larger files are rejected unread
# Limits on reading a notebook, which the grading process does itself, outside the sandbox
# (autograder/submission.py): parsing costs it ~250-500 bytes of memory per byte of code. A course notebook
# is < 100 KB with outputs cleared, has < 1,000 JSON objects and lists, < 30 KB of code, no cell over 5 KB.
# (tools/notebook_defs.py, which students get alone, has the same numbers as its defaults.)
NOTEBOOK_MAX_BYTES = 64 * 1024 * 1024   # an .ipynb file, outputs included; a larger one is refused unread
NOTEBOOK_MAX_BRACKETS = 1_000_000       # '{' and '[' in it, a bound on its JSON objects and lists (~70 B each)
NOTEBOOK_MAX_CODE_BYTES = 1024 * 1024   # code of all its code cells together; over it the notebook is refused
NOTEBOOK_MAX_CELL_BYTES = 256 * 1024    # code of one code cell; a larger cell is skipped with a note
# Gradescope visibility of every autograded test: "visible", "hidden", "after_due_date" or "after_published".
# Gradescope hides the student's total while any test is after_due_date/after_published, and meant
# "hidden" for tests worth no points: keep "visible" unless the course wants scores withheld.
GRADESCOPE_TEST_VISIBILITY = "visible"

# ==================================================================================================
# Below: resolution of private paths and the checks run on import. Nothing to edit.
# ==================================================================================================
ENV_PRIVATE_DIR = "HW2_PRIVATE_DIR"
ENV_LABELS_CSV = "HW2_LABELS_CSV"
ENV_LABEL_SECRET = "HW2_LABEL_SECRET"

REPO_ROOT = Path(__file__).resolve().parent
# The student tools (``tools``: the data set, the notebooks' reader) are STUDENT_PACKAGE_DIR/tools, shipped to
# students in release/. Kit code reaches them one way, the students' way: ``use_student_tools()`` puts the
# folder on sys.path, then ``import tools`` (a grading child gets the same folder on its PYTHONPATH).
STUDENT_PACKAGE_DIR = REPO_ROOT / "source" / ASSIGNMENT_ID


def use_student_tools() -> None:
    """Make ``import tools`` find the student tools, as a student's notebook does."""
    if str(STUDENT_PACKAGE_DIR) not in sys.path:
        sys.path.insert(0, str(STUDENT_PACKAGE_DIR))


class ConfigError(ValueError):
    """A value in course_config.py (or a private file it points to) is wrong; the message names it."""


def private_dir() -> Path:
    """The folder outside the repository that holds the labels and the secret."""
    return Path(os.environ.get(ENV_PRIVATE_DIR) or Path.home() / ".hw2-private").expanduser()


def labels_csv_path() -> Path:
    """Where the held-out test labels (``Id,Label``) are read from."""
    override = os.environ.get(ENV_LABELS_CSV)
    return Path(override).expanduser() if override else private_dir() / f"test_labels_{TERM}.csv"


def label_secret() -> str:
    """The term's label-permutation secret, from the environment or the private secret file."""
    secret = os.environ.get(ENV_LABEL_SECRET)
    if secret:
        return secret
    path = private_dir() / "label_secret.txt"
    if not path.is_file():
        raise ConfigError(
            f"no label secret: set ${ENV_LABEL_SECRET} or write one line to {path} "
            "(keep it out of git; the demo uses --demo-secret instead)"
        )
    secret = path.read_text(encoding="utf-8").strip()
    if not secret:
        raise ConfigError(f"the label secret file {path} is empty; write the term's secret into it")
    return secret


def prediction_points(accuracy: float) -> float:
    """Points for a test accuracy in [0, 1], read off PREDICTIONS_CURVE (piecewise linear, clamped)."""
    knots = PREDICTIONS_CURVE
    if accuracy < knots[0][0]:
        return 0.0
    for (a0, p0), (a1, p1) in zip(knots, knots[1:]):
        if accuracy <= a1:
            return float(p0 + (p1 - p0) * (accuracy - a0) / (a1 - a0))
    return float(knots[-1][1])


def course_data_files() -> dict:
    """Per course zip ('trainval', 'test'): its file name, download URL and SHA-256 (or None)."""
    return {
        kind: {
            "filename": filename,
            "url": COURSE_DATA_BASE_URL + filename,
            "sha256": COURSE_DATA_SHA256[kind],
        }
        for kind, filename in COURSE_DATA_FILENAMES.items()
    }


_SHA256 = re.compile(r"[0-9a-f]{64}")
_PART_ID = re.compile(r"[a-z][a-z0-9_]{0,39}")


def _require(condition: bool, key: str, problem: str) -> None:
    if not condition:
        raise ConfigError(f"course_config.{key}: {problem}")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_parts() -> None:
    key = "AUTOGRADED_PARTS"
    _require(isinstance(AUTOGRADED_PARTS, dict) and AUTOGRADED_PARTS, key, "must be a dict of part id -> spec")
    _require("predictions" in AUTOGRADED_PARTS, f"{key}['predictions']",
             "is missing; predictions.csv is always graded (set its points to 0 to drop it)")
    for part, spec in AUTOGRADED_PARTS.items():
        where = f"{key}['{part}']"
        _require(isinstance(part, str) and _PART_ID.fullmatch(part) is not None, where,
                 "a part id is lowercase letters, digits and '_' (it names a suite file)")
        _require(isinstance(spec, dict) and set(spec) == {"points", "notebook"}, where,
                 f"must be {{'points': ..., 'notebook': ...}}, got {spec!r}")
        _require(_is_number(spec["points"]) and spec["points"] >= 0, f"{where}['points']",
                 f"must be a non-negative number, got {spec['points']!r}")
        notebook = spec["notebook"]
        if part == "predictions":
            _require(notebook is None, f"{where}['notebook']", "must be None: predictions.csv is not a notebook")
        else:
            _require(notebook in NOTEBOOKS, f"{where}['notebook']",
                     f"must be one of the NOTEBOOKS keys {sorted(NOTEBOOKS)}, got {notebook!r}")


_ITEM_KEYS = {"title", "notebook", "points", "parts", "cells", "bonus"}


def _check_items() -> None:
    key = "HANDOUT_ITEMS"
    _require(isinstance(HANDOUT_ITEMS, dict) and HANDOUT_ITEMS, key, "must be a dict of handout item -> spec")
    owner: dict[str, str] = {}        # part id or cell grade_id -> the item that counts it
    for item, spec in HANDOUT_ITEMS.items():
        where = f"{key}[{item!r}]"
        _require(isinstance(spec, dict) and {"title", "notebook", "points"} <= set(spec) <= _ITEM_KEYS, where,
                 f"must have 'title', 'notebook' and 'points', and may have 'parts', 'cells', 'bonus'; got {spec!r}")
        _require(spec["notebook"] in NOTEBOOKS, f"{where}['notebook']",
                 f"must be one of the NOTEBOOKS keys {sorted(NOTEBOOKS)}, got {spec['notebook']!r}")
        _require(isinstance(spec.get("bonus", False), bool), f"{where}['bonus']", "must be True or False")
        parts, cells = spec.get("parts", ()), spec.get("cells", {})
        _require(isinstance(parts, tuple) and isinstance(cells, dict) and (parts or cells), where,
                 "needs 'parts' (a tuple of AUTOGRADED_PARTS keys) or 'cells' (a dict of grade_id -> points)")
        for part in parts:
            _require(part in AUTOGRADED_PARTS, f"{where}['parts']", f"{part!r} is not in AUTOGRADED_PARTS")
            _require(AUTOGRADED_PARTS[part]["notebook"] in (spec["notebook"], None), f"{where}['parts']",
                     f"{part!r} grades the notebook {AUTOGRADED_PARTS[part]['notebook']!r}, not {spec['notebook']!r}")
        for cell, points in cells.items():
            _require(isinstance(cell, str) and _PART_ID.fullmatch(cell) is not None, f"{where}['cells']",
                     f"a grade_id is lowercase letters, digits and '_', got {cell!r}")
            _require(_is_number(points) and points >= 0, f"{where}['cells'][{cell!r}]",
                     f"must be a non-negative number, got {points!r}")
        for name in (*parts, *cells):
            _require(name not in owner, where, f"{name!r} already counts towards {owner.get(name)!r}")
            owner[name] = item
        total = sum(AUTOGRADED_PARTS[part]["points"] for part in parts) + sum(cells.values())
        _require(_is_number(spec["points"]) and spec["points"] == total, f"{where}['points']",
                 f"is {spec['points']!r} but its parts and cells add up to {total:g}")
    missing = [part for part in AUTOGRADED_PARTS if part not in owner]
    _require(not missing, key, f"no item counts the autograded parts {missing}; add each to one item's 'parts'")


def _check_curve() -> None:
    key = "PREDICTIONS_CURVE"
    curve = PREDICTIONS_CURVE
    _require(isinstance(curve, (tuple, list)) and len(curve) >= 2, key,
             "needs at least two (accuracy, points) knots")
    for i, knot in enumerate(curve):
        _require(isinstance(knot, (tuple, list)) and len(knot) == 2 and all(map(_is_number, knot)),
                 f"{key}[{i}]", f"must be an (accuracy, points) pair of numbers, got {knot!r}")
        _require(0.0 <= knot[0] <= 1.0, f"{key}[{i}]", f"accuracy must lie in [0, 1], got {knot[0]!r}")
    for i in range(1, len(curve)):
        _require(curve[i][0] > curve[i - 1][0], f"{key}[{i}]", "accuracies must strictly increase")
        _require(curve[i][1] >= curve[i - 1][1], f"{key}[{i}]", "points must not decrease")
    full = AUTOGRADED_PARTS["predictions"]["points"]
    _require(curve[-1][1] == full, f"{key}[-1]",
             f"the last knot must give the full {full} points of AUTOGRADED_PARTS['predictions']")


def _check_data() -> None:
    _require(re.fullmatch(r"[A-Za-z0-9_-]+", TERM or "") is not None, "TERM",
             f"must be letters, digits, '-' or '_' (it names files), got {TERM!r}")
    _require(_SHA256.fullmatch(OFFICIAL_ARCHIVE_SHA256) is not None, "OFFICIAL_ARCHIVE_SHA256",
             "must be 64 lowercase hex digits")
    _require(COURSE_DATA_BASE_URL.startswith(("https://", "http://")) and COURSE_DATA_BASE_URL.endswith("/"),
             "COURSE_DATA_BASE_URL", f"must be an http(s) URL ending in '/', got {COURSE_DATA_BASE_URL!r}")
    _require(set(COURSE_DATA_FILENAMES) == {"trainval", "test"}, "COURSE_DATA_FILENAMES",
             "must have exactly the keys 'trainval' and 'test'")
    _require(set(COURSE_DATA_SHA256) == {"trainval", "test"}, "COURSE_DATA_SHA256",
             "must have exactly the keys 'trainval' and 'test'")
    for kind, digest in COURSE_DATA_SHA256.items():
        _require(digest is None or (isinstance(digest, str) and _SHA256.fullmatch(digest) is not None),
                 f"COURSE_DATA_SHA256['{kind}']",
                 f"must be None (not built yet) or 64 lowercase hex digits, got {digest!r}")
    _require(_is_number(VAL_FRACTION) and 0.0 < VAL_FRACTION < 1.0, "VAL_FRACTION",
             f"must lie strictly between 0 and 1, got {VAL_FRACTION!r}")
    _require(isinstance(SPLIT_SEED, int) and SPLIT_SEED >= 0, "SPLIT_SEED", "must be a non-negative int")
    for key, stats in (("CIFAR10_MEAN", CIFAR10_MEAN), ("CIFAR10_STD", CIFAR10_STD)):
        _require(len(stats) == 3 and all(_is_number(v) and 0 < v < 1 for v in stats), key,
                 "must be three numbers in (0, 1), one per RGB channel")


def _check_budgets() -> None:
    for key in ("GRADING_TIMEOUT_S", "GRADING_PART_TIMEOUT_S", "GRADING_MEMORY_MB", "GRADING_MAX_PROCESSES",
                "PREDICTIONS_MAX_BYTES"):
        value = globals()[key]
        _require(_is_number(value) and value > 0, key, f"must be a positive number, got {value!r}")
    limits = ("NOTEBOOK_MAX_CELL_BYTES", "NOTEBOOK_MAX_CODE_BYTES", "NOTEBOOK_MAX_BYTES")
    for key in (*limits, "NOTEBOOK_MAX_BRACKETS"):
        value = globals()[key]
        _require(isinstance(value, int) and not isinstance(value, bool) and value > 0, key,
                 f"must be a positive int, got {value!r}")
    for smaller, larger in zip(limits, limits[1:]):
        _require(globals()[smaller] <= globals()[larger], smaller, f"must not exceed {larger}")


def _check_visibility() -> None:
    allowed = ("visible", "hidden", "after_due_date", "after_published")
    _require(GRADESCOPE_TEST_VISIBILITY in allowed, "GRADESCOPE_TEST_VISIBILITY",
             f"must be one of {allowed}, got {GRADESCOPE_TEST_VISIBILITY!r}")


def check() -> None:
    """Validate every setting above; raises ConfigError naming the first bad key."""
    _require(set(NOTEBOOKS) == {"true_false", "simplenn", "simplenn_dev", "resnet", "save_predictions"}, "NOTEBOOKS",
             "must name the five notebooks: true_false, simplenn, simplenn_dev, resnet, save_predictions")
    _check_parts()
    _check_items()
    _check_curve()
    _check_data()
    _check_budgets()
    _check_visibility()


check()

# Derived from AUTOGRADED_PARTS and HANDOUT_ITEMS (read these; edit the tables above):
AUTOGRADED_POINTS = {part: spec["points"] for part, spec in AUTOGRADED_PARTS.items()}   # part -> points
SUITE_PARTS = tuple(part for part, spec in AUTOGRADED_PARTS.items() if spec["notebook"])  # parts with a hidden suite
GRADED_NOTEBOOKS = tuple(key for key in NOTEBOOKS if any(spec["notebook"] == key for spec in AUTOGRADED_PARTS.values()))
# part -> (the grade_id of its nbgrader test cell, the NOTEBOOKS key of its handout item, whether that item is a bonus)
PART_TEST_CELLS = {part: (f"{part}_tests", spec["notebook"], spec.get("bonus", False))
                   for spec in HANDOUT_ITEMS.values() for part in spec.get("parts", ())}
BONUS_PARTS = tuple(part for part, (_, _, bonus) in PART_TEST_CELLS.items() if bonus)
AUTOGRADED_MAX = float(sum(p for part, p in AUTOGRADED_POINTS.items() if part not in BONUS_PARTS))   # bonus excluded
AUTOGRADED_BONUS = float(sum(AUTOGRADED_POINTS[part] for part in BONUS_PARTS))
# grade_id -> {"item", "notebook", "points", "bonus"} for every manually graded answer cell, in handout order
MANUAL_CELLS = {cell: {"item": item, "notebook": spec["notebook"], "points": points, "bonus": spec.get("bonus", False)}
                for item, spec in HANDOUT_ITEMS.items() for cell, points in spec.get("cells", {}).items()}
COURSE_MAX = float(sum(spec["points"] for spec in HANDOUT_ITEMS.values() if not spec.get("bonus")))
COURSE_BONUS = float(sum(spec["points"] for spec in HANDOUT_ITEMS.values() if spec.get("bonus")))


def nbgrader_points(points: float, bonus: bool) -> float:
    """The points an nbgrader grade cell carries: a bonus cell carries none (its points are extra credit)."""
    return 0.0 if bonus else float(points)
