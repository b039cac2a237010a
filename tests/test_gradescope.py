"""make gradescope: the zip's contents, its scripts, and run_autograder grading in a local /autograder.

The zip is built from the synthetic course data's labels and unzipped into a temporary folder laid out
like Gradescope's /autograder (source/, submission/, results/). run_autograder runs there with
AUTOGRADER_ROOT pointing at it and AUTOGRADER_PYTHON at this kit's interpreter; setup.sh's apt and pip
steps are never run here, only ``bash -n``.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import course_config
from gradescope_package import autograder_zip as gradescope
from tests.conftest import REPO_ROOT
from fixtures.corpus import build_submission

FULL_POINTS = float(sum(course_config.AUTOGRADED_POINTS.values()))


def build_cli(*args):
    return subprocess.run([sys.executable, "-m", "gradescope_package.autograder_zip", "build", *map(str, args)],
                          cwd=REPO_ROOT, capture_output=True, text=True)


def run_autograder(root: Path, python: str = sys.executable) -> dict:
    """Run the zip's run_autograder as Gradescope does (copied to the root, working directory the root);
    its output (Gradescope's stdout, for staff) is kept in the results under "_stdout" for failing asserts."""
    env = {"PATH": "/usr/bin:/bin", "AUTOGRADER_ROOT": str(root), "AUTOGRADER_PYTHON": python}
    done = subprocess.run([str(root / "run_autograder")], cwd=root, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((root / "results" / "results.json").read_text(encoding="utf-8"))
    return {**results, "_stdout": done.stdout + done.stderr}


@pytest.fixture(scope="module")
def labels_csv(course_data) -> Path:
    return course_data[1]


@pytest.fixture(scope="module")
def gradescope_zip(tmp_path_factory, labels_csv) -> Path:
    out = tmp_path_factory.mktemp("gradescope") / "autograder.zip"
    result = build_cli("--out", out, "--labels", labels_csv)
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture
def autograder_root(tmp_path, gradescope_zip, labels_csv) -> Path:
    """/autograder in miniature: the unzipped zip, the reference solution with perfect predictions, no results."""
    root = tmp_path / "autograder"
    with zipfile.ZipFile(gradescope_zip) as archive:
        archive.extractall(root / "source")
    for name in gradescope.SCRIPTS:    # extractall drops the modes; Gradescope's unzip keeps them
        (root / "source" / name).chmod(0o755)
    shutil.copy2(root / "source" / "run_autograder", root / "run_autograder")
    build_submission(root / "submission", predictions=labels_csv)   # the labels themselves: 100 % accuracy
    (root / "results").mkdir()
    return root


def test_zip_holds_the_grader_but_no_notebook_and_no_solution(gradescope_zip):
    with zipfile.ZipFile(gradescope_zip) as archive:
        names = archive.namelist()
        texts = {name: archive.read(name).decode("utf-8") for name in names}
    assert {"setup.sh", "run_autograder", "course_config.py", "common/predictions.py", "common/cli.py", "requirements.txt",
            "autograder/__main__.py", "autograder/runner.py", "autograder/suites/conftest.py",
            f"source/{course_config.ASSIGNMENT_ID}/tools/notebook_defs.py"} <= set(names)
    assert not [n for n in names if n.endswith(".ipynb") or "__pycache__" in n or n.startswith("tests/")]
    assert not [n for n, text in texts.items() if "### BEGIN SOLUTION" in text or "BEGIN HIDDEN TESTS" in text]
    staff_only = {"demo/__main__.py", "publishing/release.py", "course_data/build.py",
                  "gradescope_package/autograder_zip.py"}
    assert not staff_only & set(names)


def test_labels_are_only_at_their_private_path_outside_the_sandboxed_folders(gradescope_zip, labels_csv):
    labels = labels_csv.read_text(encoding="utf-8")
    with zipfile.ZipFile(gradescope_zip) as archive:
        holding = [i.filename for i in archive.infolist() if archive.read(i.filename).decode("utf-8") == labels]
        mode = archive.getinfo(gradescope.LABELS_IN_ZIP).external_attr >> 16 & 0o777
    assert holding == [gradescope.LABELS_IN_ZIP]
    assert not gradescope.LABELS_IN_ZIP.startswith(("autograder/", "source/"))
    assert mode == 0o600


def test_zip_is_deterministic_and_scripts_are_executable(gradescope_zip, labels_csv, tmp_path):
    again = tmp_path / "again.zip"
    gradescope.build(again, labels_csv)
    assert again.read_bytes() == gradescope_zip.read_bytes()
    with zipfile.ZipFile(gradescope_zip) as archive:
        names = archive.namelist()
        modes = {name: archive.getinfo(name).external_attr >> 16 & 0o777 for name in gradescope.SCRIPTS}
    assert names == sorted(names)
    assert modes == {"setup.sh": 0o755, "run_autograder": 0o755}


@pytest.mark.parametrize("script", gradescope.SCRIPTS)
def test_scripts_are_valid_bash_with_every_placeholder_filled(autograder_root, script):
    path = autograder_root / "source" / script
    assert subprocess.run(["bash", "-n", str(path)]).returncode == 0
    assert "@@" not in path.read_text(encoding="utf-8")


def test_run_autograder_gives_the_reference_solution_full_points(autograder_root):
    results = run_autograder(autograder_root)
    assert results["score"] == FULL_POINTS, results["_stdout"]
    parts = set(course_config.AUTOGRADED_POINTS)
    for test in results["tests"]:
        assert test["name"].split(": ", 1)[0] in parts, test["name"]
        assert test["visibility"] == course_config.GRADESCOPE_TEST_VISIBILITY
        expected = (course_config.AUTOGRADED_POINTS[test["tags"][0]]
                    if test["tags"][0] in course_config.BONUS_PARTS and test["name"].endswith(": part total")
                    else test["max_score"])
        assert test["status"] == "passed" and test["score"] == expected, test["name"]
    assert sum(t["max_score"] for t in results["tests"]) == course_config.AUTOGRADED_MAX, "bonus never raises it"
    predictions = [t for t in results["tests"] if t["tags"] == ["predictions"]]
    assert len(predictions) == 1 and predictions[0]["score"] == course_config.AUTOGRADED_POINTS["predictions"]
    assert (autograder_root / "results" / "feedback.md").is_file()


@pytest.mark.parametrize("breakage", ["no submission folder", "no interpreter"])
def test_run_autograder_writes_a_zero_score_for_staff_when_the_grader_fails(autograder_root, breakage):
    python = sys.executable
    if breakage == "no submission folder":
        shutil.rmtree(autograder_root / "submission")
    else:
        python = str(autograder_root / "no-such-python")
    results = run_autograder(autograder_root, python)
    assert results["score"] == 0 and results["tests"] == []
    assert "course staff" in results["output"] and "not your grade" in results["output"]
    assert results["extra_data"]["grader_failure"]


@pytest.mark.parametrize("labels", ["missing", "invalid"])
def test_build_without_valid_labels_exits_1_with_one_line(tmp_path, labels):
    path = tmp_path / "labels.csv"
    if labels == "invalid":
        path.write_text("Id,Label\n0,11\n", encoding="utf-8")
    out = tmp_path / "autograder.zip"
    result = build_cli("--out", out, "--labels", path)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "labels" in result.stderr and not out.exists()


def test_build_refuses_a_script_that_bash_rejects(tmp_path, labels_csv, monkeypatch, capsys):
    scripts = tmp_path / "scripts"
    shutil.copytree(gradescope.SCRIPTS_DIR, scripts)
    with (scripts / "run_autograder").open("a", encoding="utf-8") as script:
        script.write('if [ -s "$RESULTS/results.json" ]; then\n')   # an if without fi
    monkeypatch.setattr(gradescope, "SCRIPTS_DIR", scripts)
    out = tmp_path / "autograder.zip"
    assert gradescope.main(["build", "--out", str(out), "--labels", str(labels_csv)]) == 1
    error = capsys.readouterr().err
    assert error.startswith("error: ") and "run_autograder is not valid bash" in error and error.count("\n") == 1
    assert not out.exists()
