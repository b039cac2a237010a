"""The course data set for the reference trainer, loaded with the students' own ``tools.dataset.CIFAR10``.

A staff member points it at a local build with ``--data-source build/course_data/manifest.json`` (the
same as ``HW2_DATA_SOURCE``); without either it uses the published data of ``tools/data_source.py``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from solutions import kit  # noqa: F401  (puts `tools` on sys.path)
from tools.dataset import CIFAR10, ENV_DATA_SOURCE, DatasetError


class DataError(RuntimeError):
    """The course data cannot be loaded; the message says what to do."""


@dataclass
class CourseData:
    train: CIFAR10
    val: CIFAR10
    test: CIFAR10

    def sizes(self) -> str:
        return f"{len(self.train):,} train / {len(self.val):,} val / {len(self.test):,} test images"


def load(root: str | Path, data_source: str | Path | None = None, train_subset: int | None = None) -> CourseData:
    """Train, val and test splits (fetched and extracted into ``root`` once); ``train_subset`` keeps the first N."""
    if data_source is not None:
        manifest = Path(data_source).expanduser()
        if not manifest.is_file():
            raise DataError(f"--data-source {manifest}: no such file; give the manifest.json that "
                            "`python -m course_data.build` wrote")
        os.environ[ENV_DATA_SOURCE] = str(manifest.resolve())
    try:
        splits = {mode: CIFAR10(root, mode=mode, download=True) for mode in ("train", "val", "test")}
    except DatasetError as error:
        hint = "" if os.environ.get(ENV_DATA_SOURCE) else \
            " (course staff: pass --data-source <build>/manifest.json to train on a local build)"
        raise DataError(f"{error}{hint}") from None
    data = CourseData(**splits)
    if train_subset is not None and train_subset < len(data.train):
        data.train.data = data.train.data[:train_subset]   # the first N images, as the notebooks' TRAIN_SUBSET
        data.train.targets = data.train.targets[:train_subset]
    return data
