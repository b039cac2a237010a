"""The reference ResNet-20 trainer (solutions/): one real epoch of each pipeline on the synthetic course data.

CPU only: the GPU-only parts (bf16, channels_last, torch.compile) must fall back cleanly. The runs are
small (1,024 images, batch 32). The fast recipe decays its learning rate to zero within the one epoch, so
BatchNorm's running statistics settle; the baseline's step schedule keeps its full rate for the whole of a
one-epoch run, and its eval-mode predictions can then sit near chance on one CPU and not on another (seen:
20 % on an Intel Xeon for seed 0, 56 % for seed 1). Two epochs let its schedule step down once, after which
every seed tried scored at least 88 % on both. Once per ``--learning-seeds`` seed.
"""
from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import torchvision.transforms as transforms

import course_config
from common.predictions import grade_file, load_labels
from solutions import engine, recipes
from solutions.kit import LAB3_NOTEBOOK, REPO
from solutions.pipelines import ResidentPipeline, handout_transforms
from solutions.train_resnet20 import main
from tools import data_source
from tools.dataset import CIFAR10
from tools.notebook_defs import load_definitions

SUBSET, BATCH = 1024, 32
EPOCHS = {"baseline": 2, "fast": 1}   # the shortest runs whose learning-rate schedule settles (see above)
CHANCE = 1 / course_config.NUM_CLASSES
# One worker runs this module, so each (pipeline, seed) run is trained once, not once per worker.
pytestmark = pytest.mark.xdist_group("reference-trainer")


@pytest.fixture(scope="session")
def train_reference(course_data, tmp_path_factory):
    """Runs the trainer's CLI once per (pipeline, seed), however the tests that need the run are ordered."""
    published, labels, _ = course_data
    runs = {}

    def run(pipeline: str, seed: int):
        if (pipeline, seed) not in runs:
            out = tmp_path_factory.mktemp(f"reference-{pipeline}-{seed}")
            with pytest.MonkeyPatch.context() as patch:  # the CLI sets $HW2_DATA_SOURCE; restore it afterwards
                patch.delenv("HW2_DATA_SOURCE", raising=False)
                code = main(["--pipeline", pipeline, "--epochs", str(EPOCHS[pipeline]), "--device", "cpu",
                             "--train-subset", str(SUBSET), "--batch-size", str(BATCH), "--workers", "1",
                             "--seed", str(seed), "--no-progress", "--data-source", str(published / "manifest.json"),
                             "--data-root", str(out / "data"), "--out", str(out)])
            assert code == 0
            runs[pipeline, seed] = (pipeline, out, out / "data", labels)
        return runs[pipeline, seed]
    return run


@pytest.fixture(params=recipes.PIPELINES)
def reference_run(request, train_reference, learning_seed):
    """(pipeline, output folder, data root, labels CSV) of a short CPU run of the trainer's CLI."""
    return train_reference(request.param, learning_seed)


def test_a_short_run_writes_the_outputs_and_falls_back_on_cpu(reference_run):
    pipeline, out, _, _ = reference_run
    for name in ("resnet20.pth", "predictions.csv", "curves.png", "summary.json"):
        assert (out / name).stat().st_size > 0, name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["recipe"]["pipeline"] == pipeline and len(summary["history"]) == EPOCHS[pipeline]
    assert summary["runtime"] == "cpu; bf16 off, channels_last off, compile off"
    assert summary["recipe"]["batch_size"] == BATCH
    assert summary["recipe"]["lr"] == pytest.approx(recipes.recipe_for(pipeline).lr * BATCH
                                                    / recipes.recipe_for(pipeline).batch_size)


def test_predictions_score_above_chance(reference_run):
    _, out, _, labels_csv = reference_run
    result = grade_file(out / "predictions.csv", load_labels(labels_csv))
    assert result.status == "scored", result.message
    assert result.score.accuracy > 3 * CHANCE, f"{result.score.accuracy:.2%} after a short run"


def test_checkpoint_reloads_into_the_notebooks_resnet20_and_reproduces_the_predictions(reference_run):
    """What save_test_predictions.ipynb does: extract ResNet20, load the state_dict, predict the test set."""
    _, out, data_root, _ = reference_run
    checkpoint = torch.load(out / "resnet20.pth", map_location="cpu", weights_only=True)
    assert {"state_dict", "epoch", "lr", "val_acc"} <= set(checkpoint)
    model = load_definitions(LAB3_NOTEBOOK).ResNet20()
    model.load_state_dict(checkpoint["state_dict"])  # strict: same keys, same shapes
    model.eval()

    test_set = CIFAR10(data_root, mode="test", download=False, transform=handout_transforms()[1])
    images = torch.stack([test_set[i] for i in range(len(test_set))])
    with torch.no_grad():
        logits = model(images)
        if checkpoint["recipe"]["flip_tta"]:
            logits = (logits + model(images.flip(3))) / 2
    with open(out / "predictions.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["Id", "Label"] and [int(r[0]) for r in rows[1:]] == list(range(len(test_set)))
    written = np.array([int(r[1]) for r in rows[1:]])
    assert np.mean(written == logits.argmax(1).numpy()) > 0.99


def test_device_pipeline_crops_flips_and_normalizes_like_the_handouts_transforms(course_data):
    """Every augmented image is one of the 81 crops x 2 flips torchvision's RandomCrop(pad 4) + flip can give."""
    class Split:
        def __init__(self, data, targets):
            self.data, self.targets = data, targets

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    data = type("Data", (), {"train": Split(images, np.arange(6)), "val": Split(images, np.arange(6)),
                             "test": Split(images, None)})()
    pipeline = ResidentPipeline(data, recipes.FAST.with_overrides(batch_size=6), torch.device("cpu"))
    padded = np.pad(images, ((0, 0), (4, 4), (4, 4), (0, 0))).transpose(0, 3, 1, 2)
    seen = set()
    for _ in range(20):
        index = torch.arange(6)
        augmented = pipeline.augment(index).numpy()
        for i in range(6):
            matches = [(top, left, flip) for top in range(9) for left in range(9) for flip in (False, True)
                       if np.array_equal(augmented[i], (lambda crop: crop[..., ::-1] if flip else crop)(
                           padded[i][:, top:top + 32, left:left + 32]))]
            assert matches, f"image {i} is not a crop/flip of its padded original"
            seen.update(matches)
    assert len({flip for *_, flip in seen}) == 2 and len({(t, l) for t, l, _ in seen}) > 20, "offsets are not random"

    expected = transforms.Compose([transforms.ToTensor(), transforms.Normalize(course_config.CIFAR10_MEAN,
                                                                               course_config.CIFAR10_STD)])
    batch, _, count = next(pipeline.eval_batches("val"))
    assert count == 6
    assert torch.allclose(batch, torch.stack([expected(image) for image in images]), atol=1e-5)


@pytest.mark.parametrize("bf16, channels_last", [(True, False), (False, True)])
def test_the_gpu_code_paths_also_run_on_the_cpu(bf16, channels_last):
    """bf16 autocast and channels_last, which CUDA gets by default, exercised on the CPU."""
    class Split:
        def __init__(self, data, targets):
            self.data, self.targets = data, targets

    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (64, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, 64)
    data = type("Data", (), {"train": Split(images, labels), "val": Split(images[:16], labels[:16]),
                             "test": Split(images[:16], None)})()
    recipe = recipes.FAST.with_overrides(epochs=1, batch_size=32)
    runtime = engine.Runtime(torch.device("cpu"), bf16=bf16, compile=False, channels_last=channels_last)
    pipeline = ResidentPipeline(data, recipe, runtime.device)
    result = engine.train(pipeline, recipe, runtime, seed=0, show_progress=False)
    assert np.isfinite(result.history[0].train_loss) and result.steps_per_epoch == 2
    assert engine.predict_labels(result, pipeline, runtime, recipe).shape == (16,)
    assert all(tensor.is_contiguous() and tensor.device.type == "cpu" for tensor in result.best_state.values())
    load_definitions(LAB3_NOTEBOOK).ResNet20().load_state_dict(result.best_state)


def test_forcing_bf16_on_the_cpu_is_honoured():
    runtime = engine.resolve_runtime(recipes.FAST, "cpu", compile="off", bf16="on")
    assert runtime.bf16 and not runtime.compile and not runtime.channels_last


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the fallback of a machine without a GPU")
def test_auto_runtime_turns_the_gpu_only_parts_off_without_cuda():
    runtime = engine.resolve_runtime(recipes.FAST, "auto")
    assert (runtime.device.type, runtime.bf16, runtime.channels_last, runtime.compile) == ("cpu", False, False, False)


def test_schedules_baseline_steps_down_at_half_and_three_quarters_fast_warms_up_then_decays():
    baseline = recipes.baseline_recipe().with_overrides(epochs=8)
    factors = [recipes.lr_factor(baseline, step, steps_per_epoch=10) for step in range(80)]
    assert factors[:40] == [1.0] * 40 and factors[40:60] == pytest.approx([0.1] * 20)
    assert factors[60:] == pytest.approx([0.01] * 20)

    fast = recipes.FAST.with_overrides(epochs=40)
    factors = [recipes.lr_factor(fast, step, steps_per_epoch=10) for step in range(400)]
    peak = factors.index(max(factors))
    assert factors[0] < 0.1 and max(factors) == 1.0 and 10 <= peak <= 30
    assert all(a >= b for a, b in zip(factors[peak:], factors[peak + 1:])) and factors[-1] < 0.01


@pytest.mark.parametrize("arguments, problem", [
    (["--epochs", "0"], "--epochs"),
    (["--pipeline", "turbo"], "--pipeline"),
    (["--data-source", "/nonexistent/manifest.json"], "no such file"),
    ([], "not published yet"),  # no local build given and the term's data not published yet
])
def test_bad_input_exits_1_with_one_line(arguments, problem, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("HW2_DATA_SOURCE", raising=False)
    unpublished = {kind: {**info, "sha256": None} for kind, info in data_source.FILES.items()}
    monkeypatch.setattr(data_source, "FILES", unpublished)  # never reach for the network from a test
    try:
        code = main([*arguments, "--device", "cpu", "--data-root", str(tmp_path / "data"), "--out", str(tmp_path)])
    except SystemExit as exit_:
        code = exit_.code
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error:") and problem in err, err


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_asked_without_a_gpu_exits_1_with_one_line_from_the_command_line(tmp_path):
    run = subprocess.run([sys.executable, "-m", "solutions.train_resnet20", "--device", "cuda", "--out", str(tmp_path)],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert len(run.stderr.strip().splitlines()) == 1 and "no CUDA GPU" in run.stderr, run.stderr
