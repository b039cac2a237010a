"""The notebooks run: sources top to bottom on tiny synthetic data, release copies up to their first stub.

Each run goes through papermill with the notebook's ``parameters`` cell overridden, in a scratch copy of
the assignment folder, with tools.dataset pointed at the synthetic course data (HW2_DATA_SOURCE).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import papermill
import pytest
import torch
from papermill.exceptions import PapermillExecutionError

import course_config
from term.nbgrader import run_nbgrader
from tests.conftest import REPO_ROOT

SOURCE = REPO_ROOT / "source" / course_config.ASSIGNMENT_ID
RELEASE = REPO_ROOT / "release" / course_config.ASSIGNMENT_ID
NB = course_config.NOTEBOOKS
QUICK = {"NUM_WORKERS": 0, "TRAIN_SUBSET": 256}
# The smallest settings that still exercise every cell (each sweep keeps all its values).
TINY = {
    NB["simplenn"]: dict(QUICK, EPOCHS=1, DECAY=0.5),   # DECAY < 1: the bonus (h) run happens too
    NB["simplenn_dev"]: dict(QUICK, EPOCHS=1, BN_EPOCHS=1, SWEEP_EPOCHS=1),
    NB["resnet"]: dict(QUICK, EPOCHS=4, TRAIN_SUBSET=1000),
    NB["save_predictions"]: {"NUM_WORKERS": 0},
}
CHECKPOINTS = {NB["simplenn"]: "simplenn.pth", NB["resnet"]: "resnet20.pth"}


@pytest.fixture
def assignment(tmp_path, data_source, monkeypatch):
    """A scratch copy of an assignment folder's tools/ and sample file; notebooks are run from their origin."""
    def copy(origin):
        work = tmp_path / origin.parent.name
        shutil.copytree(origin, work, ignore=shutil.ignore_patterns("*.ipynb", "__pycache__"))
        return work
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return copy


def run(notebook, work, **overrides):
    """Execute ``notebook`` in ``work`` with its tiny parameters; returns the executed notebook."""
    parameters = dict(TINY[notebook.name], DATA_ROOT=str(work / "data"), **overrides)
    return papermill.execute_notebook(str(notebook), str(work / f"executed-{notebook.name}"), parameters=parameters,
                                      cwd=str(work), kernel_name="python3", progress_bar=False)


def _text_outputs(executed) -> str:
    return "".join("".join(o.get("text", "")) for c in executed.cells for o in c.get("outputs", []))


def _without_folder_creation_in_fit(notebook: str, work) -> object:
    """A copy of the source ``notebook`` in ``work`` whose ``fit`` creates no folder, as a student's may not:
    the notebook must create the folders it asks ``fit`` to save into."""
    import nbformat

    nb = nbformat.read(str(SOURCE / notebook), as_version=4)
    line = '    os.makedirs(os.path.dirname(checkpoint_path) or ".", exist_ok=True)\n'
    [cell] = [cell for cell in nb.cells if "def fit(" in cell.source]
    assert line in cell.source
    cell.source = cell.source.replace(line, "")
    nbformat.write(nb, str(work / notebook))
    return work / notebook


@pytest.mark.parametrize("notebook", [NB["simplenn"], NB["simplenn_dev"]])
def test_source_lab_runs_top_to_bottom_and_checkpoints(notebook, assignment):
    work = assignment(SOURCE)
    executed = run(_without_folder_creation_in_fit(notebook, work), work)
    assert "Traceback" not in _text_outputs(executed)
    if notebook in CHECKPOINTS:
        checkpoint = torch.load(work / "saved_model" / CHECKPOINTS[notebook], map_location="cpu")
        assert {"state_dict", "epoch", "lr", "val_acc"} <= set(checkpoint)
    assert list((work / "saved_model").glob("*.pth")), "every lab saves a checkpoint"
    if notebook == NB["simplenn"]:
        decayed = torch.load(work / "saved_model" / "simplenn_decay.pth", map_location="cpu")
        assert decayed["state_dict"].keys() == checkpoint["state_dict"].keys(), \
            "the bonus (h) run keeps its own checkpoint beside the first run's"
        # One epoch is fewer than DECAY_EPOCHS, so the decay never applied: from the same starting weights and
        # the same order of batches, the bonus run must have trained exactly the first run's model.
        differing = [name for name, tensor in checkpoint["state_dict"].items()
                     if not torch.equal(tensor, decayed["state_dict"][name])]
        assert not differing, f"bonus (h) did not start from the first run's weights and batches: {differing}"


def test_resnet_lab_then_test_predictions_score_above_chance(assignment, course_data, learning_seed):
    work = assignment(SOURCE)
    shutil.copyfile(SOURCE / NB["resnet"], work / NB["resnet"])  # save_test_predictions loads ResNet20 from it
    run(SOURCE / NB["resnet"], work, SEED=learning_seed)
    checkpoint = torch.load(work / "saved_model" / CHECKPOINTS[NB["resnet"]], map_location="cpu")
    assert checkpoint["epoch"] >= 1
    run(SOURCE / NB["save_predictions"], work)
    result = subprocess.run([sys.executable, "grade_predictions.py", str(work / "predictions.csv"),
                             "--labels", str(course_data[1]), "--json"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["accuracy"] > 0.2, "a short ResNet-20 run must beat chance (10 %) clearly"


@pytest.mark.parametrize("notebook", [name for key, name in NB.items() if key != "true_false"])   # no code there
def test_release_notebook_stops_at_its_first_stub(notebook, assignment):
    work = assignment(RELEASE)
    shutil.copyfile(RELEASE / NB["resnet"], work / NB["resnet"])
    with pytest.raises(PapermillExecutionError) as stopped:
        run(RELEASE / notebook, work)
    assert stopped.value.ename == "NotImplementedError", \
        f"{notebook} must stop at a stub, not with {stopped.value.ename}: {stopped.value.evalue}"


@pytest.mark.parametrize("notebook", [NB["simplenn_dev"], NB["resnet"]])   # Lab 1: tests/test_nbgrader_validate.py
def test_nbgrader_validate_passes_on_the_source_notebook_at_its_default_settings(notebook, assignment):
    """Under nbgrader the notebook shrinks its own runs (1 epoch on 256 images; Lab 2 has 20 runs), so
    validating the notebook as a student has it, defaults and all, is quick and passes."""
    work = assignment(SOURCE)
    shutil.copyfile(SOURCE / notebook, work / notebook)
    result = run_nbgrader("validate", str(work / notebook), cwd=work)
    assert "Success! Your notebook passes all the tests." in result.stdout, result.stdout + result.stderr
    assert not (work / "saved_model").exists(), "under nbgrader the checkpoints go to a throw-away folder"


def test_an_untouched_l1_bonus_stub_is_skipped_and_run_all_goes_on():
    """Lab 2's bonus cells, run after a preamble in which l1_penalty is still the release's stub."""
    import nbformat
    from nbclient import NotebookClient

    lab2 = nbformat.read(str(RELEASE / NB["simplenn_dev"]), as_version=4)
    bonus = [cell for cell in lab2.cells if cell.cell_type == "code" and "_l1_done" in cell.source]
    assert len(bonus) == 3, "the L1 check, the L1/L2 runs and the histograms are gated on _l1_done"
    preamble = nbformat.v4.new_code_cell("import torch\nfrom torch import nn\n\n"
                                         "def l1_penalty(model, strength):\n    raise NotImplementedError()")
    notebook = nbformat.v4.new_notebook(cells=[preamble, *bonus])
    NotebookClient(notebook, timeout=120, kernel_name="python3").execute()   # raises if any cell fails
    printed = "".join(o.get("text", "") for cell in notebook.cells for o in cell.get("outputs", []))
    assert "bonus skipped" in printed
