"""`nbgrader validate` as a student runs it in their folder, after training.

Under nbgrader (it sets NBGRADER_EXECUTION) the notebooks shrink every run to a smoke test and write
checkpoints and predictions.csv to a throw-away folder that is removed afterwards, and the release ships its
own nbgrader_config.py (any code cell that raises fails the validation and is named; a cell that runs too long
is reported in one line): validating passes on finished work, fails on stubs and on a broken training cell,
and never touches what the student trained.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
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


def _validate(folder: Path, *arguments: str) -> subprocess.CompletedProcess:
    """``nbgrader validate`` in ``folder``, its temporary files in ``folder``'s own ``tmp`` sibling."""
    scratch = folder.parent / "tmp"
    scratch.mkdir(exist_ok=True)
    # TMPDIR is a short link to it: the DataLoader workers' shared memory goes through a socket under TMPDIR, and
    # a socket's path may not pass 107 bytes, which pytest's own folders do under xdist once its run counter has
    # three digits (pytest-105/popen-gw0/...: the loader's workers died and the training cell hung).
    short = Path(tempfile.mkdtemp(prefix="hw2v-"))
    try:
        (short / "t").symlink_to(scratch)
        env = dict(os.environ, MPLBACKEND="Agg", TMPDIR=str(short / "t"))
        return subprocess.run([NBGRADER, "validate", *arguments], cwd=folder, env=env, capture_output=True,
                              text=True, timeout=600)
    finally:
        shutil.rmtree(short)


def _scratch_left(folder: Path) -> list[str]:
    return sorted(p.name for p in (folder.parent / "tmp").glob("hw2-nbgrader-*"))


def _code_cell_number(notebook, text: str) -> int:
    """The number ``nbgrader validate`` gives the code cell holding ``text`` (code cells counted from 1)."""
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    return next(number for number, cell in enumerate(code, 1) if text in cell.source)


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
    assert not _scratch_left(folder), "validate's throw-away folders must be removed when it ends"


def test_validate_fails_naming_the_cell_when_a_training_cell_raises(tmp_path, data_source):
    """A typo in train_one_epoch raises only when training runs, in a cell that is not a graded test."""
    folder = _student_folder(SOURCE, tmp_path)
    lab1 = nbformat.read(str(folder / NB["simplenn"]), as_version=4)
    [cell] = [cell for cell in lab1.cells if "def train_one_epoch" in cell.source]
    cell.source = cell.source.replace("loss.backward()", "loss.backwards()", 1)
    nbformat.write(lab1, str(folder / NB["simplenn"]))
    training = _code_cell_number(lab1, "history = fit(model")

    result = _validate(folder, NB["simplenn"])

    assert "VALIDATION FAILED" in result.stdout and "Success!" not in result.stdout, result.stdout + result.stderr
    assert f"code cell {training} raised AttributeError" in result.stdout, result.stdout[-3000:]
    assert "backwards" in result.stdout
    assert not _scratch_left(folder)


def test_a_cell_that_runs_too_long_is_one_line_and_the_rest_still_runs(tmp_path):
    folder = tmp_path / course_config.ASSIGNMENT_ID
    folder.mkdir()
    shutil.copyfile(SOURCE / "nbgrader_config.py", folder / "nbgrader_config.py")
    cells = ["x = 1", "import time\ntime.sleep(60)", "print(x)", "raise ValueError('after the slow cell')"]
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]),
                   str(folder / "slow.ipynb"))

    result = _validate(folder, "--Execute.timeout=3", "slow.ipynb")

    assert "VALIDATION FAILED ON 2 CELL(S)" in result.stdout.replace("\n", " "), result.stdout + result.stderr
    assert "code cell 2 ran longer than 3 s under validate's smoke settings" in result.stdout, result.stdout
    assert "Traceback" not in result.stdout.split("code cell 4")[0] and "KeyboardInterrupt" not in result.stdout
    assert result.stdout.count("code cell 4 raised ValueError: after the slow cell") == 1, result.stdout


def test_validate_fails_on_the_release_stubs_without_writing_anything(tmp_path, data_source):
    folder = _student_folder(RELEASE, tmp_path)
    before = _files(folder)
    result = _validate(folder, NB["simplenn"])
    assert "VALIDATION FAILED" in result.stdout, result.stdout + result.stderr
    assert _files(folder) == before
