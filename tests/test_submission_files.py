"""Which files of a submission folder are graded (autograder/submission.py). Fast: nothing is graded.

Exact names first; a name that differs only by what browsers, LMS exports, Jupyter's "Duplicate" or Colab
add, by case or by a sub-folder is graded with a note; two candidates are never guessed between; other
notebooks and CSV files are named once in the feedback.
"""
from __future__ import annotations

import os

import pytest

import course_config
from autograder.submission import find_submission

LAB1, LAB2, LAB3 = (course_config.NOTEBOOKS[key] for key in ("simplenn", "simplenn_dev", "resnet"))
PREDICTIONS = course_config.PREDICTIONS_FILENAME


def _folder(tmp_path, *paths: str):
    for path in paths:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("{}", encoding="utf-8")
    return tmp_path


def _graded(submission) -> dict[str, str]:
    found = {key: str(path.relative_to(submission.root)) for key, path in submission.notebooks.items()}
    if submission.predictions is not None:
        found["predictions"] = str(submission.predictions.relative_to(submission.root))
    return found


def test_exact_names_are_graded_without_a_note(tmp_path):
    submission = find_submission(_folder(tmp_path, LAB1, LAB2, LAB3, PREDICTIONS, "save_test_predictions.ipynb"))
    assert _graded(submission) == {"simplenn": LAB1, "simplenn_dev": LAB2, "resnet": LAB3,
                                   "save_predictions": "save_test_predictions.ipynb", "predictions": PREDICTIONS}
    assert submission.problems == []


@pytest.mark.parametrize("saved_as, key", [
    ("resnet-cifar10 (1).ipynb", "resnet"), ("resnet-cifar10-1.ipynb", "resnet"),
    ("resnet-cifar10_copy.ipynb", "resnet"), ("Copy of resnet-cifar10.ipynb", "resnet"),
    ("RESNET-CIFAR10.IPYNB", "resnet"), ("simplenn-cifar10-dev-Copy1.ipynb", "simplenn_dev"),
    ("simplenn-cifar10 copy 2.ipynb", "simplenn"), ("predictions (2).csv", "predictions"),
    ("Predictions.csv", "predictions"),
])
def test_a_name_that_differs_only_by_a_download_suffix_or_case_is_graded_with_a_note(saved_as, key, tmp_path):
    expected = {"simplenn": LAB1, "simplenn_dev": LAB2, "resnet": LAB3, "predictions": PREDICTIONS}[key]
    others = [name for name in (LAB1, LAB2, LAB3, PREDICTIONS) if name != expected]
    submission = find_submission(_folder(tmp_path, saved_as, *others))
    assert _graded(submission)[key] == saved_as
    assert submission.problems == [f"graded {saved_as} as {expected}: please name it exactly {expected} next time"]


def test_the_exact_name_wins_over_a_near_miss_and_a_sub_folder_is_graded_with_a_note(tmp_path):
    submission = find_submission(_folder(tmp_path, LAB1, "resnet-cifar10 (1).ipynb", f"old/{LAB1}", f"hw2/{LAB2}",
                                         f"hw2/{LAB3}", PREDICTIONS))
    assert _graded(submission) == {"simplenn": LAB1, "simplenn_dev": f"hw2/{LAB2}", "resnet": f"hw2/{LAB3}",
                                   "predictions": PREDICTIONS}
    assert f"graded hw2/{LAB2} as {LAB2} (found in a sub-folder)" in submission.problems
    assert "also found, not graded: resnet-cifar10 (1).ipynb, old/simplenn-cifar10.ipynb" in submission.problems


def test_two_candidates_are_never_guessed_between(tmp_path):
    submission = find_submission(_folder(tmp_path, LAB1, LAB2, "resnet-cifar10 (1).ipynb", "resnet-cifar10 (2).ipynb",
                                         PREDICTIONS))
    assert "resnet" not in submission.notebooks
    assert submission.problems == [
        f"found 2 files that could be {LAB3} (resnet-cifar10 (1).ipynb, resnet-cifar10 (2).ipynb): none was graded, "
        f"so its parts score 0; submit exactly one file named {LAB3}"]


def test_other_files_are_named_once_with_a_rename_hint_when_they_resemble_a_missing_one(tmp_path):
    extra = [f"scratch{i}.ipynb" for i in range(7)]
    submission = find_submission(_folder(tmp_path, LAB1, LAB2, "resnet_cifar10_final.ipynb", PREDICTIONS,
                                         "sample_predictions.csv", *extra))
    assert submission.problems == [
        f"found resnet_cifar10_final.ipynb: rename it to {LAB3} (it was not graded)",
        "also found, not graded: scratch0.ipynb, scratch1.ipynb, scratch2.ipynb, scratch3.ipynb, scratch4.ipynb "
        "and 2 more",
        f"{LAB3} is missing: its parts score 0"]


def test_checkpoints_resource_forks_hidden_files_and_links_never_count(tmp_path):
    outside = tmp_path / "outside.ipynb"
    outside.write_text("{}", encoding="utf-8")
    root = _folder(tmp_path / "submission", LAB1, LAB2, PREDICTIONS, f".ipynb_checkpoints/{LAB3}",
                   f"__MACOSX/._{LAB3}", f".hidden/{LAB3}", "._resnet-cifar10.ipynb")
    os.symlink(outside, root / LAB3)
    submission = find_submission(root)
    assert "resnet" not in submission.notebooks
    assert submission.problems == [f"{LAB3} is missing: its parts score 0"]
