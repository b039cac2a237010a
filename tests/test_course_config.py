"""course_config.py: the points curve and the checks that name a bad key."""
from __future__ import annotations

import pytest

import course_config


@pytest.mark.parametrize("accuracy, points", [
    (0.0, 0.0), (0.05, 0.0), (0.10, 0.0), (0.35, 3.0), (0.60, 6.0), (0.70, 7.5), (0.80, 9.0),
    (0.85, 10.5), (0.90, 12.0), (0.95, 12.0), (1.0, 12.0),
])
def test_prediction_points_follow_the_documented_curve(accuracy, points):
    assert course_config.prediction_points(accuracy) == pytest.approx(points)


def test_full_prediction_points_at_ninety_percent():
    assert course_config.prediction_points(0.90) == course_config.AUTOGRADED_POINTS["predictions"] == 12


def test_the_registry_holds_the_design_cards_parts_and_everything_else_derives_from_it():
    assert tuple(course_config.AUTOGRADED_PARTS) == ("simplenn", "simplenn_bn", "swish", "l1", "resnet20", "predictions")
    assert course_config.SUITE_PARTS == tuple(course_config.AUTOGRADED_PARTS)[:-1]
    assert course_config.GRADED_NOTEBOOKS == ("simplenn", "simplenn_dev", "resnet")
    assert course_config.AUTOGRADED_POINTS == {part: spec["points"] for part, spec in course_config.AUTOGRADED_PARTS.items()}


_PARTS = course_config.AUTOGRADED_PARTS
_ITEMS = course_config.HANDOUT_ITEMS


@pytest.mark.parametrize("key, value, named", [
    ("AUTOGRADED_PARTS", {**_PARTS, "swish": {"points": -1, "notebook": "simplenn_dev"}},
     "AUTOGRADED_PARTS['swish']['points']"),
    ("AUTOGRADED_PARTS", {k: v for k, v in _PARTS.items() if k != "predictions"}, "AUTOGRADED_PARTS['predictions']"),
    ("AUTOGRADED_PARTS", {**_PARTS, "resnet56": {"points": 3, "notebook": "resnet56"}},
     "AUTOGRADED_PARTS['resnet56']['notebook']"),
    ("AUTOGRADED_PARTS", {**_PARTS, "ResNet 56": {"points": 3, "notebook": "resnet"}}, "AUTOGRADED_PARTS['ResNet 56']"),
    ("AUTOGRADED_PARTS", {**_PARTS, "l1": {"points": 2}}, "AUTOGRADED_PARTS['l1']"),
    ("HANDOUT_ITEMS", {**_ITEMS, "Lab 1 (b)": {**_ITEMS["Lab 1 (b)"], "points": 3}}, "HANDOUT_ITEMS['Lab 1 (b)']['points']"),
    ("HANDOUT_ITEMS", {**_ITEMS, "Lab 1 (b)": {**_ITEMS["Lab 1 (b)"], "cells": {"lab1_a": 2}}}, "HANDOUT_ITEMS['Lab 1 (b)']"),
    ("HANDOUT_ITEMS", {k: v for k, v in _ITEMS.items() if k != "Lab 3 (a)"}, "HANDOUT_ITEMS"),
    ("HANDOUT_ITEMS", {**_ITEMS, "Lab 3 (c)": {"title": "x", "notebook": "resnet", "points": 1, "parts": ("swish",)}},
     "HANDOUT_ITEMS['Lab 3 (c)']['parts']"),
    ("HANDOUT_ITEMS", {**_ITEMS, "1.1": {**_ITEMS["1.1"], "cells": {"tf_1": -3}}}, "HANDOUT_ITEMS['1.1']['cells']['tf_1']"),
    ("PREDICTIONS_CURVE", ((0.1, 0.0), (0.05, 12.0)), "PREDICTIONS_CURVE[1]"),
    ("PREDICTIONS_CURVE", ((0.1, 0.0), (0.9, 10.0)), "PREDICTIONS_CURVE[-1]"),
    ("PREDICTIONS_CURVE", ((0.1, 0.0), (1.5, 12.0)), "PREDICTIONS_CURVE[1]"),
    ("TERM", "fall 2026/../x", "TERM"),
    ("COURSE_DATA_BASE_URL", "ftp://example.edu/", "COURSE_DATA_BASE_URL"),
    ("COURSE_DATA_SHA256", {"trainval": "abc", "test": None}, "COURSE_DATA_SHA256['trainval']"),
    ("VAL_FRACTION", 1.5, "VAL_FRACTION"),
    ("GRADING_TIMEOUT_S", 0, "GRADING_TIMEOUT_S"),
    ("CIFAR10_STD", (0.2, 0.2), "CIFAR10_STD"),
])
def test_a_bad_value_is_reported_by_its_key(monkeypatch, key, value, named):
    monkeypatch.setattr(course_config, key, value)
    with pytest.raises(course_config.ConfigError) as error:
        course_config.check()
    assert str(error.value).startswith(f"course_config.{named}:")


def test_private_paths_live_outside_the_repository(monkeypatch, tmp_path):
    monkeypatch.delenv("HW2_LABELS_CSV", raising=False)
    monkeypatch.delenv("HW2_PRIVATE_DIR", raising=False)
    assert not course_config.labels_csv_path().resolve().is_relative_to(course_config.REPO_ROOT)
    monkeypatch.setenv("HW2_LABELS_CSV", str(tmp_path / "labels.csv"))
    assert course_config.labels_csv_path() == tmp_path / "labels.csv"
