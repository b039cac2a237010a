"""Shared fixtures: a small synthetic CIFAR-10 archive and the course data built from it."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
STUDENT_DIR = REPO_ROOT / "source" / "hw2"
for path in (REPO_ROOT, STUDENT_DIR):  # the kit's modules, and `tools` as a student imports it
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from autograder.build_course_data import build  # noqa: E402
from tests.fixtures.synthetic_cifar10 import write_archive  # noqa: E402
import course_config  # noqa: E402

TRAIN_PER_CLASS = 200
TEST_PER_CLASS = 50


@pytest.fixture(scope="session")
def synthetic_archive(tmp_path_factory) -> Path:
    """A small cifar-10-python.tar.gz in the official format (2,000 train / 500 test images)."""
    return write_archive(tmp_path_factory.mktemp("archive") / "cifar-10-python.tar.gz",
                         train_per_class=TRAIN_PER_CLASS, test_per_class=TEST_PER_CLASS)


@pytest.fixture(scope="session")
def course_data(synthetic_archive, tmp_path_factory):
    """The course data built from the synthetic archive with the demo secret: (out dir, labels CSV, manifest)."""
    base = tmp_path_factory.mktemp("course")
    out, labels = base / "published", base / "private" / "test_labels.csv"
    manifest = build(synthetic_archive, out, labels, course_config.DEMO_SECRET, allow_unofficial=True,
                     base_url=str(out))
    return out, labels, manifest


@pytest.fixture
def data_source(course_data, monkeypatch) -> dict:
    """Point tools.dataset at the synthetic build, as a TA trying a build before publishing would."""
    out, _, manifest = course_data
    monkeypatch.setenv("HW2_DATA_SOURCE", str(out / "manifest.json"))
    return manifest
