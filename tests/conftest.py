"""Shared fixtures: a small synthetic CIFAR-10 archive and the course data built from it, and the seeds of the
tests that check training *learns*.

A learning test asks for the ``learning_seed`` fixture, is marked ``learning`` and runs once per seed of
``--learning-seeds`` (default ``0,1,2``; ``make test-learning`` runs only them, with five seeds). Floating-point results of a short run differ
between CPUs (Intel and AMD) as much as between seeds, so every such test must pass for every seed with a
wide margin: it checks that training learns, never a number one machine happens to reach.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:   # the kit's modules
    sys.path.insert(0, str(REPO_ROOT))
import course_config  # noqa: E402

course_config.use_student_tools()   # `tools` as a student imports it
STUDENT_DIR = course_config.STUDENT_PACKAGE_DIR

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs two workers on two cores: one thread each, for them and the processes they start. With
    # more, OpenMP threads spin against the other worker's (seen: a 2-epoch CPU training run took 119 s beside
    # another worker's training instead of 8 s).
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
    torch.set_num_threads(1)

from course_data.build import build  # noqa: E402
from fixtures.synthetic_cifar10 import write_archive  # noqa: E402

TRAIN_PER_CLASS = 200
TEST_PER_CLASS = 50


def pytest_addoption(parser):
    parser.addoption("--learning-seeds", default="0,1,2", metavar="S1,S2,...",
                     help="seeds of the tests that check training learns (each runs once per seed; default 0,1,2)")


def pytest_configure(config):
    config.addinivalue_line("markers", "learning: checks that training learns, once per --learning-seeds seed")


def pytest_itemcollected(item):
    """Mark the learning tests as they are collected: before ``-m`` deselects (``make test-learning``)."""
    if "learning_seed" in getattr(item, "fixturenames", ()):
        item.add_marker(pytest.mark.learning)


@pytest.hookimpl(trylast=True)   # after pytest-xdist's own
def pytest_collection_modifyitems(config, items):
    """Make ``--dist loadgroup`` keep an ``xdist_group`` on one worker again:
    pytest-xdist 3.8 marks a grouped test by setting ``item._nodeid`` to ``<nodeid>@<group>``, which pytest 9 no
    longer reads (its node ids live in ``item._id``). Without this, a module-scoped fixture such as the hostile
    class was built, and graded, once per worker."""
    from _pytest.nodeid import NodeId

    for item in items:
        grouped = getattr(item, "_nodeid", None)
        if isinstance(grouped, str) and grouped != item.nodeid:
            item._id = NodeId.parse(grouped)


def pytest_generate_tests(metafunc):
    if "learning_seed" in metafunc.fixturenames:
        text = metafunc.config.getoption("--learning-seeds")
        try:
            seeds = [int(seed) for seed in text.split(",")]
        except ValueError:
            raise pytest.UsageError(f"--learning-seeds takes comma-separated integers, got {text!r}") from None
        # module scope: a module-scoped fixture that trains once per seed serves all of that module's tests
        metafunc.parametrize("learning_seed", seeds, ids=[f"seed{seed}" for seed in seeds], scope="module")


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
