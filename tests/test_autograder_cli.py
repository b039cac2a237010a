"""python -m autograder: results.json's schema, exit codes, and grade-all over nbgrader's submitted/ tree."""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time

import nbformat
import pytest
import torch

import course_config
from tests.conftest import REPO_ROOT
from fixtures.corpus import build_submission

RELEASE = REPO_ROOT / "release" / course_config.ASSIGNMENT_ID
SOURCE = REPO_ROOT / "source" / course_config.ASSIGNMENT_ID
PARTS = set(course_config.AUTOGRADED_POINTS)


def autograder(*args):
    return subprocess.run([sys.executable, "-m", "autograder", *map(str, args)], cwd=REPO_ROOT,
                          capture_output=True, text=True)


@pytest.fixture(scope="module")
def labels_csv(course_data):
    return course_data[1]


@pytest.fixture(scope="module")
def graded_release(tmp_path_factory, labels_csv):
    """The release (every stub unimplemented) plus a perfect predictions.csv, graded once."""
    submission = tmp_path_factory.mktemp("release") / "hw2"
    shutil.copytree(RELEASE, submission)
    shutil.copyfile(labels_csv, submission / "predictions.csv")   # the labels themselves: 100 %
    out = submission.parent / "out"
    result = autograder("grade", submission, "--out", out, "--labels", labels_csv, "--device", "cpu")
    return result, out


def test_grade_writes_results_and_feedback_and_exits_0(graded_release):
    result, out = graded_release
    assert result.returncode == 0, result.stderr
    assert (out / "results.json").is_file() and (out / "feedback.md").is_file()


def test_results_json_follows_the_gradescope_schema(graded_release):
    results = json.loads((graded_release[1] / "results.json").read_text())
    assert {"score", "execution_time", "output", "tests"} <= set(results)
    for test in results["tests"]:
        assert {"name", "score", "max_score", "status", "output", "visibility", "tags"} <= set(test)
        part = test["name"].split(": ", 1)[0]
        assert part in PARTS and test["tags"] == [part], test["name"]
        assert test["status"] in ("passed", "failed") and 0 <= test["score"] <= test["max_score"]
        assert test["visibility"] == course_config.GRADESCOPE_TEST_VISIBILITY
    maxima = {part: round(sum(t["max_score"] for t in results["tests"] if t["tags"] == [part]), 2) for part in PARTS}
    assert maxima == {part: 0.0 if part in course_config.BONUS_PARTS else float(points)
                      for part, points in course_config.AUTOGRADED_POINTS.items()}
    assert results["extra_data"]["device"] == "cpu"


def test_stubs_score_zero_with_a_reason_and_predictions_still_count(graded_release):
    results = json.loads((graded_release[1] / "results.json").read_text())
    suites = [t for t in results["tests"] if t["tags"] != ["predictions"]]
    assert all(t["score"] == 0 and "not implemented" in t["output"] for t in suites)
    assert results["score"] == course_config.AUTOGRADED_POINTS["predictions"]
    feedback = (graded_release[1] / "feedback.md").read_text()
    assert "What to fix" in feedback and "not implemented yet" in feedback


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_device_cuda_without_a_gpu_fails_clearly(tmp_path, labels_csv):
    result = autograder("grade", RELEASE, "--out", tmp_path, "--labels", labels_csv, "--device", "cuda")
    assert result.returncode == 1
    assert result.stderr.startswith("error: --device cuda") and result.stderr.count("\n") == 1
    assert not (tmp_path / "results.json").exists()


def test_sandbox_bwrap_where_it_cannot_run_fails_clearly(tmp_path, labels_csv):
    env = dict(os.environ, PATH=str(tmp_path))   # no bwrap on this PATH
    result = subprocess.run([sys.executable, "-m", "autograder", "grade", str(RELEASE), "--out", str(tmp_path / "out"),
                             "--labels", str(labels_csv), "--sandbox", "bwrap"], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: --sandbox bwrap was asked for but bwrap is not installed"), result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_reference_solution_passes_on_cuda(tmp_path, labels_csv):
    result = autograder("grade", SOURCE, "--out", tmp_path, "--labels", labels_csv, "--device", "cuda")
    results = json.loads((tmp_path / "results.json").read_text())
    assert result.returncode == 0 and results["extra_data"]["device"] == "cuda"
    assert all(t["status"] == "passed" for t in results["tests"] if t["tags"] != ["predictions"])


_CPU_TENSOR_IN_FORWARD = """
class SimpleNN(SimpleNN):
    def forward(self, x):
        return super().forward(x) + torch.zeros(10, device="cpu")
"""


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_forward_that_creates_cpu_tensors_fails_on_cuda_and_says_so(tmp_path, labels_csv):
    def edit(key, nb):
        if key == "simplenn":
            nb.cells.append(nbformat.v4.new_code_cell(_CPU_TENSOR_IN_FORWARD))
    submission = build_submission(tmp_path / "submission", predictions=labels_csv, edit=edit)
    autograder("grade", submission, "--out", tmp_path / "out", "--labels", labels_csv, "--device", "cuda")
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    (total,) = [t for t in results["tests"] if t["name"] == "simplenn: part total"]
    assert total["score"] < total["max_score"] and "create them on x.device" in total["output"], total["output"]


@pytest.mark.parametrize("problem, args", [
    ("labels missing", ["--labels", "/nonexistent/labels.csv"]),
    ("not a folder", ["--labels", None]),
])
def test_staff_side_problems_exit_1_with_one_line(problem, args, tmp_path, labels_csv):
    args = [labels_csv if a is None else a for a in args]
    submission = tmp_path / "nothing-here" if problem == "not a folder" else RELEASE
    result = autograder("grade", submission, "--out", tmp_path / "out", *args)
    assert result.returncode == 1 and result.stderr.startswith("error: ") and result.stderr.count("\n") == 1


def test_grade_all_grades_the_class_skips_unchanged_and_never_stops(tmp_path, labels_csv):
    submitted = tmp_path / "submitted"
    for student in ("ana", "ben"):
        shutil.copytree(RELEASE, submitted / student / "hw2")
    shutil.copyfile(labels_csv, submitted / "ana" / "hw2" / "predictions.csv")
    (submitted / "cleo").mkdir(parents=True)           # submitted nothing for hw2
    out = tmp_path / "autograded"

    result = autograder("grade-all", submitted, "--out", out, "--labels", labels_csv, "--jobs", "2", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    with open(out / "gradebook.csv", newline="") as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    assert set(rows) == {"ana", "ben", "cleo"}
    assert float(rows["ana"]["total"]) == course_config.AUTOGRADED_POINTS["predictions"]
    assert float(rows["ben"]["total"]) == 0 and rows["ben"]["status"] == "graded"
    assert rows["cleo"]["status"].startswith("no hw2/ folder")
    assert (out / "ana" / "hw2" / "results.json").is_file() and (out / "totals_histogram.png").is_file()
    assert "| predictions: test-set accuracy of predictions.csv | 1/2 (50%) |" in (out / "summary.md").read_text()

    started = time.perf_counter()
    again = autograder("grade-all", submitted, "--out", out, "--labels", labels_csv, "--device", "cpu")
    assert again.returncode == 0 and time.perf_counter() - started < 15
    with open(out / "gradebook.csv", newline="") as handle:
        statuses = {row["student"]: row["status"] for row in csv.DictReader(handle)}
    assert statuses["ana"] == statuses["ben"] == "unchanged"

    later = time.time() + 5
    os.utime(submitted / "ben" / "hw2" / course_config.NOTEBOOKS["simplenn"], (later, later))
    third = autograder("grade-all", submitted, "--out", out, "--labels", labels_csv, "--device", "cpu")
    with open(out / "gradebook.csv", newline="") as handle:
        statuses = {row["student"]: row["status"] for row in csv.DictReader(handle)}
    assert third.returncode == 0 and statuses["ben"] == "graded" and statuses["ana"] == "unchanged"
