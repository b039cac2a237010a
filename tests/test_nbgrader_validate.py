"""`nbgrader validate` as a student runs it in their folder, after training.

Under nbgrader (it sets NBGRADER_EXECUTION) the notebooks shrink every run to a smoke test and write
checkpoints and predictions.csv to a throw-away folder, and the release ships its own nbgrader_config.py (a
cell that times out is an error): validating passes on finished work, fails on stubs, and never touches what
the student trained.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

import course_config
from solutions.kit import load_lab3
from tests.conftest import REPO_ROOT

SOURCE = REPO_ROOT / "source" / course_config.ASSIGNMENT_ID
RELEASE = REPO_ROOT / "release" / course_config.ASSIGNMENT_ID
NB = course_config.NOTEBOOKS
NBGRADER = str(Path(sys.executable).parent / "nbgrader")


def _student_folder(origin: Path, tmp_path: Path) -> Path:
    folder = tmp_path / course_config.ASSIGNMENT_ID
    shutil.copytree(origin, folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def _validate(folder: Path, *notebooks: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, MPLBACKEND="Agg")
    return subprocess.run([NBGRADER, "validate", *notebooks], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=600)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and "data" not in p.relative_to(folder).parts}


def test_validate_passes_on_finished_work_and_leaves_checkpoints_and_predictions_byte_identical(tmp_path,
                                                                                                data_source):
    folder = _student_folder(SOURCE, tmp_path)
    saved = folder / "saved_model"
    saved.mkdir()
    (saved / "simplenn.pth").write_bytes(os.urandom(4096))   # stands for a trained Lab 1 model
    # A trained ResNet-20 as a training loop often saves it: val_acc a numpy number, which torch's default
    # weights-only loading refuses (the predictions notebook must still load it).
    torch.save({"state_dict": load_lab3().ResNet20().state_dict(), "epoch": 180, "lr": 0.001,
                "val_acc": np.float64(0.91)}, saved / "resnet20.pth")
    (folder / course_config.PREDICTIONS_FILENAME).write_text("Id,Label\n0,3\n", encoding="utf-8")
    before = _files(folder)

    result = _validate(folder, NB["simplenn"], NB["save_predictions"])

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("Success!") == 2, result.stdout
    assert "No nbgrader_config.py file found" not in result.stdout + result.stderr
    after = _files(folder)
    assert {name: data for name, data in after.items() if name in before} == before, \
        "validating changed the student's checkpoints or predictions.csv"
    assert not [name for name in after if name not in before and not name.startswith(".ipynb_checkpoints")], \
        "validating wrote into the student's folder"


def test_validate_fails_on_the_release_stubs_without_writing_anything(tmp_path, data_source):
    folder = _student_folder(RELEASE, tmp_path)
    before = _files(folder)
    result = _validate(folder, NB["simplenn"])
    assert "VALIDATION FAILED" in result.stdout, result.stdout + result.stderr
    assert _files(folder) == before
