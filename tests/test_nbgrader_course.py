"""The nbgrader side of a term on a temporary course of five students (honest, buggy, missing a notebook, one
notebook not even JSON, one notebook over the grader's size limit):
grade-all, import into nbgrader's gradebook without executing a notebook, a TA's hand grade through nbgrader's
API, final_grades.csv, a rerun that changes nothing, and nbgrader's feedback with the grader's words in it."""
from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys

import pytest
from nbgrader.api import Gradebook

import course_config
from fixtures import corpus
from publishing import handout_points
from term.nbgrader import run_nbgrader
from publishing.release import generate
from tests.conftest import REPO_ROOT

NB = course_config.NOTEBOOKS
ASSIGNMENT = course_config.ASSIGNMENT_ID
pytestmark = pytest.mark.xdist_group("nbgrader-course")


def _command(package, *args, cwd=REPO_ROOT):
    done = subprocess.run([sys.executable, "-m", package, *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _answer(text):
    def edit(key, nb):
        if key == "true_false":
            cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "tf_1")
            cell.source = text
        if key == "simplenn":   # nbgrader's Execute would run this cell; nothing else may
            nb.cells.append(corpus.nbformat.v4.new_code_cell(f"%%bash\ntouch {MARKER_NAME}"))
    return edit


MARKER_NAME = "executed-by-nbgrader"


@pytest.fixture(scope="module")
def term(tmp_path_factory, course_data):
    """An nbgrader course after generate_assignment and collection, graded by grade-all."""
    root = tmp_path_factory.mktemp("term")
    shutil.copytree(REPO_ROOT / "source", root / "source", ignore=shutil.ignore_patterns("__pycache__"))
    generate(course_root=root, db_dir=root)
    labels = course_data[1]
    submitted = root / "submitted"
    corpus.build_submission(submitted / "honest" / ASSIGNMENT, predictions=labels,   # 100 % accuracy
                            edit=_answer("False: BN's output mean is its learned shift beta."))
    mutant = next(m for m in corpus.MUTANTS if m.id == "simplenn-fc1-100")
    corpus.build_case(mutant, submitted / "buggy" / ASSIGNMENT, labels)
    corpus.build_submission(submitted / "missing" / ASSIGNMENT, omit={"resnet"},   # and a SimpleNN for a TA
                            edit=corpus.add_unexportable_simplenn)
    corpus.build_submission(submitted / "broken" / ASSIGNMENT, predictions=labels)
    (submitted / "broken" / ASSIGNMENT / NB["simplenn"]).write_text('{"cells": [', encoding="utf-8")
    corpus.build_submission(submitted / "huge" / ASSIGNMENT, predictions=labels)
    with open(submitted / "huge" / ASSIGNMENT / NB["simplenn"], "ab") as notebook:   # nbgrader must not parse it
        notebook.write(b" " * course_config.NOTEBOOK_MAX_BYTES)
    results = root / "results"
    _command("autograder", "grade-all", submitted, "--out", results, "--labels", labels, "--jobs", 2, "--device", "cpu", "-q",
                "--no-similarity")   # five copies of one solution: tests/test_similarity.py checks the flags
    return root, results, f"sqlite:///{root / 'gradebook.db'}"


def _import(root, results, db_url):
    return _command("term", "import-nbgrader", root, "--results", results, "--db-url", db_url)


def _final(root, results, db_url, out):
    _command("term", "final-grades", root, "--results", results, "--db-url", db_url, "--out", out)
    with open(out / "final_grades.csv", newline="", encoding="utf-8") as handle:
        return {row["student"]: row for row in csv.DictReader(handle)}


def test_the_class_reaches_final_grades_through_nbgrader_without_running_a_notebook(term, tmp_path):
    root, results, db_url = term
    imported = _import(root, results, db_url)
    assert "autograded points of 4 students written" in imported, imported
    assert "nbgrader could not read a notebook of broken, huge" in imported, "the class goes on past them"
    assert not list(root.rglob(MARKER_NAME)), "nbgrader executed a student's cell"
    for notebook in (root / "autograded").rglob("*.ipynb"):
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
        assert all(c.get("execution_count") is None for c in cells if c["cell_type"] == "code"), notebook

    with Gradebook(db_url) as gradebook:
        recorded = gradebook.find_submission(ASSIGNMENT, "honest")
        assert {g.name for nb in recorded.notebooks for g in nb.grades} == set(handout_points.expected_points()), \
            "nbgrader recorded every graded cell without executing"

        def grade(student, cell, notebook):
            return gradebook.find_grade(cell, notebook, ASSIGNMENT, student)
        assert grade("honest", "simplenn_tests", "simplenn-cifar10").auto_score == 1
        assert grade("honest", "predictions_tests", "resnet-cifar10").auto_score == 12
        assert (grade("honest", "l1_tests", "simplenn-cifar10-dev").auto_score,
                grade("honest", "l1_tests", "simplenn-cifar10-dev").extra_credit) == (0, 2), "bonus is extra credit"
        assert grade("buggy", "simplenn_tests", "simplenn-cifar10").auto_score < 1
        assert grade("missing", "resnet20_tests", "resnet-cifar10").auto_score == 0
        assert grade("missing", "predictions_tests", "resnet-cifar10").auto_score == 0
        assert not grade("honest", "simplenn_tests", "simplenn-cifar10").needs_manual_grade
        manual = grade("missing", "simplenn_tests", "simplenn-cifar10")   # code torch.export cannot capture
        assert manual.auto_score == 0 and manual.needs_manual_grade, "formgrader lists it for a TA"
        answered = grade("honest", "tf_1", "true-false")
        assert answered.needs_manual_grade
        answered.manual_score, answered.needs_manual_grade = 3.0, False     # a TA grades it
        grade("honest", "lab1_h", "simplenn-cifar10").extra_credit = 4.0     # and gives the Lab 1 bonus
        gradebook.db.commit()

    rows = _final(root, results, db_url, tmp_path / "final")
    honest, buggy, missing = rows["honest"], rows["buggy"], rows["missing"]
    assert (float(honest["1.1"]), float(honest["Lab 1 (h)"]), float(honest["Lab 3 (b)"])) == (3, 4, 12)
    assert (float(honest["autograded"]), float(honest["manual"]), float(honest["bonus"])) == (27, 3, 6)
    assert float(honest["total"]) == 36 and honest["ungraded"] == "0" and honest["flags"] == ""
    assert float(buggy["Lab 1 (a)"]) < 1 and buggy["flags"] == ""
    assert "missing: resnet-cifar10.ipynb predictions.csv" in missing["flags"]
    assert "needs manual grading: simplenn" in missing["flags"]
    assert float(missing["Lab 3 (a)"]) == 0 and float(missing["Lab 1 (a)"]) == 0
    assert int(missing["ungraded"]) == 1, "simplenn_tests waits for a TA (answer cells left as they were do not)"
    assert "not in formgrader: " in rows["broken"]["flags"] and float(rows["broken"]["Lab 3 (b)"]) == 12
    huge = rows["huge"]   # never in the gradebook: its row comes from results.json, its answers wait for a TA
    assert "not in nbgrader's gradebook" in huge["flags"] and float(huge["Lab 3 (b)"]) == 12
    assert float(huge["Lab 3 (a)"]) == 8 and int(huge["ungraded"]) == len(course_config.MANUAL_CELLS)
    lms = (tmp_path / "final" / "lms_grades.csv").read_text(encoding="utf-8").splitlines()
    assert lms[0] == f"student,{ASSIGNMENT}" and "honest,36.0" in lms
    assert (tmp_path / "final" / "final_grades_histogram.png").stat().st_size > 0

    before = (tmp_path / "final" / "final_grades.csv").read_bytes()
    _import(root, results, db_url)
    _final(root, results, db_url, tmp_path / "again")
    assert (tmp_path / "again" / "final_grades.csv").read_bytes() == before, "a rerun changes nothing"

    done = run_nbgrader("generate_feedback", ASSIGNMENT, f"--CourseDirectory.root={root}",
                        f"--CourseDirectory.db_url={db_url}", cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    html = (root / "feedback" / "buggy" / ASSIGNMENT / "simplenn-cifar10.html").read_text(encoding="utf-8")
    assert "hw2 autograder:" in html and "82,030" in html, "the grader's feedback reaches the student's HTML"


def test_import_refuses_a_folder_that_is_not_a_course(tmp_path):
    done = subprocess.run([sys.executable, "-m", "term", "import-nbgrader", str(tmp_path), "--results",
                           str(tmp_path)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stderr.startswith("error:") and "submitted/" in done.stderr
