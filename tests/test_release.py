"""The committed release: generated from source/ by nbgrader, leak-free, and true to the student contract."""
from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys

import pytest

import course_config
from publishing import leak_check
from publishing.release import generate
from tests.conftest import REPO_ROOT
from tools.notebook_defs import extract

SOURCE = REPO_ROOT / "source" / course_config.ASSIGNMENT_ID
RELEASE = REPO_ROOT / "release" / course_config.ASSIGNMENT_ID
NOTEBOOKS = list(course_config.NOTEBOOKS.values())
# The student contract of DESIGN.md: notebook -> names the autograder imports.
CONTRACT = {
    course_config.NOTEBOOKS["simplenn"]: ["SimpleNN"],
    course_config.NOTEBOOKS["simplenn_dev"]: ["SimpleNNBN", "Swish", "SimpleNNSwish", "l1_penalty"],
    course_config.NOTEBOOKS["resnet"]: ["ResNet20"],
}


def _cells(path):
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _files(root):
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


@pytest.fixture(scope="module")
def fresh_release(tmp_path_factory):
    """A release generated now from a copy of source/, with its own nbgrader database."""
    course = tmp_path_factory.mktemp("course")
    shutil.copytree(REPO_ROOT / "source", course / "source",
                    ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    return generate(course_root=course, db_dir=course / "db")


def test_every_notebook_of_the_assignment_is_released():
    assert sorted(p.name for p in RELEASE.glob("*.ipynb")) == sorted(NOTEBOOKS)
    assert sorted(p.name for p in SOURCE.glob("*.ipynb")) == sorted(NOTEBOOKS)


def test_committed_release_equals_a_fresh_generation(fresh_release):
    assert _files(RELEASE) == _files(fresh_release), "run `make release` and commit release/"
    for relative in _files(RELEASE):
        committed, fresh = RELEASE / relative, fresh_release / relative
        if relative.suffix == ".ipynb":
            stale = [i for i, (a, b) in enumerate(zip(_cells(committed), _cells(fresh)), start=1)
                     if (a["cell_type"], a["source"], a["metadata"]) != (b["cell_type"], b["source"], b["metadata"])]
            assert len(_cells(committed)) == len(_cells(fresh)) and not stale, \
                f"release/{relative} is stale (cells {stale[:5]}): run `make release` and commit it"
        else:
            assert committed.read_bytes() == fresh.read_bytes(), f"release/{relative} is stale: run `make release`"


def test_release_passes_the_leak_check():
    assert leak_check.scan(RELEASE) == []


@pytest.mark.parametrize("plant", ["solution line", "marker", "labels file", "outputs", "secret"])
def test_leak_check_fails_on_a_planted_leak(plant, tmp_path):
    release = tmp_path / "hw2"
    shutil.copytree(RELEASE, release)
    notebook = release / course_config.NOTEBOOKS["simplenn"]
    document = json.loads(notebook.read_text())
    if plant == "solution line":
        line = sorted(leak_check.reference_lines())[0]
        document["cells"][-1]["source"] = f"# looks harmless\n    {line}\n"
        notebook.write_text(json.dumps(document))
    elif plant == "marker":
        (release / "tools" / "extra.py").write_text("x = 1\n### BEGIN SOLUTION\n")
    elif plant == "labels file":
        (release / "test_labels_fall2026.csv").write_text("Id,Label\n0,3\n")
    elif plant == "outputs":
        code_cell = next(c for c in document["cells"] if c["cell_type"] == "code")
        code_cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "82030\n"}]
        notebook.write_text(json.dumps(document))
    else:
        (release / "notes.txt").write_text(f"remember: {course_config.DEMO_SECRET}\n")
    result = subprocess.run([sys.executable, "-m", "publishing.leak_check", str(release)], cwd=REPO_ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 1
    leaks = [line for line in result.stderr.splitlines() if line.startswith("LEAK ")]
    assert len(leaks) == 1, result.stderr
    assert "hw2/" in leaks[0] and ":" in leaks[0]


def test_reference_lines_cover_the_solutions():
    lines = leak_check.reference_lines()
    assert "self.conv1 = nn.Conv2d(3, 8, kernel_size=5)" in lines
    assert not any("YOUR CODE HERE" in line for line in lines)


@pytest.mark.parametrize("notebook, names", CONTRACT.items())
def test_release_keeps_every_name_the_autograder_imports(notebook, names):
    defined = {}
    for statement in extract(RELEASE / notebook).statements:
        if isinstance(statement.node, (ast.ClassDef, ast.FunctionDef)):
            defined[statement.node.name] = ast.get_docstring(statement.node) or ""
    for name in names:
        assert name in defined, f"{notebook} must define {name}"
        assert "do not rename" in defined[name].lower(), f"{name}'s docstring must say 'Do not rename'"


@pytest.mark.parametrize("notebook", [name for name in NOTEBOOKS if name != course_config.NOTEBOOKS["true_false"]])
def test_each_notebook_has_one_parameters_cell_before_any_work(notebook):
    cells = _cells(SOURCE / notebook)
    tagged = [i for i, c in enumerate(cells) if "parameters" in c["metadata"].get("tags", [])]
    first_code = next(i for i, c in enumerate(cells) if c["cell_type"] == "code")
    assert tagged == [first_code]


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_every_visible_sanity_check_is_a_locked_cell(notebook):
    """A code cell of asserts that is not a student's cell is locked: nbgrader restores it if a student edits it."""
    unlocked = [index for index, cell in enumerate(_cells(RELEASE / notebook))
                if cell["cell_type"] == "code" and "\nassert " in "\n" + "".join(cell["source"])
                and "YOUR CODE HERE" not in "".join(cell["source"])
                and not cell["metadata"].get("nbgrader", {}).get("locked")]
    assert not unlocked, f"{notebook}: the sanity-check cells {unlocked} are not locked"


def test_the_students_readme_is_generated_from_course_config_and_released():
    from publishing import student_readme

    assert student_readme.STUDENT_README.is_current(), "run `make release` (it writes source/hw2/README.md) and commit it"
    text = (RELEASE / "README.md").read_text(encoding="utf-8")
    for name in [*course_config.NOTEBOOKS.values(), course_config.PREDICTIONS_FILENAME]:
        assert f"`{name}`" in text
    rows = {row.split("|")[1].strip(): row.split("|")[4].strip() for row in text.splitlines() if row.startswith("| ")}
    for item, spec in course_config.HANDOUT_ITEMS.items():
        assert rows[item] == f"{spec['points']:g}{' bonus' * spec.get('bonus', False)}", item
    assert rows["**total**"] == "**100 + 10 bonus**"


def test_the_students_readme_commands_and_submission_form_work_as_written():
    """The smoke runs call papermill through the venv's Python (its script need not be on PATH); the README
    says in which form to hand the files in, and how to point the notebooks at a local data folder."""
    text = (RELEASE / "README.md").read_text(encoding="utf-8")
    runs = [line for line in text.splitlines() if "papermill " in line and " -p " in line]
    assert runs and all(line.startswith("python -m papermill ") for line in runs), runs
    assert "side by side" in text and "`.zip`" in text and "nbgrader submit" in text
    from tools.dataset import LOCAL_DATA_FILE

    assert f"`{LOCAL_DATA_FILE}`" in text


def test_the_predictions_notebook_names_every_notebook_to_submit():
    intro = "".join(_cells(RELEASE / course_config.NOTEBOOKS["save_predictions"])[0]["source"])
    named = {name for name in course_config.NOTEBOOKS.values() if f"`{name}`" in intro.split("Submit it")[1][:400]}
    assert named == {course_config.NOTEBOOKS[key] for key in course_config.SUBMITTED_NOTEBOOKS}, named


@pytest.mark.parametrize("key", ["simplenn", "resnet"])
def test_the_device_instructions_honour_the_device_setting(key):
    """Lab 1 and Lab 3 both ask for `device` from DEVICE: "cpu" means the CPU even on a GPU server."""
    steps = [cell for cell in _cells(RELEASE / course_config.NOTEBOOKS[key]) if cell["cell_type"] == "markdown"
             and "Set `device`" in "".join(cell["source"])]
    assert len(steps) == 1
    assert 'with `"cuda"` or `"cpu"`, that device' in "".join(steps[0]["source"]).replace("\n", " ")
