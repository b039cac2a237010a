"""Read the official ``cifar-10-python.tar.gz`` into uint8 HWC image arrays and int64 label arrays.

The batches are Python 2 pickles. Unpickling runs code named in the file, so this reader only lets
through the three numpy globals an array needs: a doctored archive fails with a message instead of
executing anything.
"""
from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TOP = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"{TOP}/data_batch_{i}" for i in range(1, 6))
TEST_BATCH = f"{TOP}/test_batch"
META = f"{TOP}/batches.meta"
ROW_BYTES = 3 * 32 * 32

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class ArchiveError(ValueError):
    """The archive is not a readable CIFAR-10 python archive; the message says what is wrong."""


@dataclass(frozen=True)
class Cifar10Arrays:
    train_images: np.ndarray   # (50000, 32, 32, 3) uint8 for the official archive
    train_labels: np.ndarray   # (50000,) int64
    test_images: np.ndarray    # (10000, 32, 32, 3) uint8
    test_labels: np.ndarray    # (10000,) int64
    label_names: tuple[str, ...]


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise ArchiveError(f"unexpected object {module}.{name} in a CIFAR-10 batch; the archive is not genuine")
        return super().find_class(module, name)


def sha256_of(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _unpickle(payload: bytes, member: str) -> dict:
    try:
        obj = _NumpyOnlyUnpickler(io.BytesIO(payload), encoding="latin1").load()
    except ArchiveError:
        raise
    except Exception as error:  # a truncated or foreign pickle: report which member
        raise ArchiveError(f"{member} is not a readable CIFAR-10 batch ({type(error).__name__}: {error})") from None
    if not isinstance(obj, dict):
        raise ArchiveError(f"{member} holds a {type(obj).__name__}, not the dict of a CIFAR-10 batch")
    return obj


def _batch_arrays(batch: dict, member: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        data, labels = batch["data"], batch["labels"]
    except KeyError as missing:
        raise ArchiveError(f"{member} has no {missing} entry") from None
    data = np.asarray(data)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != ROW_BYTES:
        raise ArchiveError(f"{member}: data must be uint8 rows of {ROW_BYTES} bytes, got {data.dtype} {data.shape}")
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (len(data),) or labels.min(initial=0) < 0 or labels.max(initial=0) > 9:
        raise ArchiveError(f"{member}: needs one label 0-9 per image, got {labels.shape} for {len(data)} images")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def read_archive(path: str | Path) -> Cifar10Arrays:
    """The five training batches (in order) and the test batch of a CIFAR-10 python archive."""
    path = Path(path)
    if not path.is_file():
        raise ArchiveError(f"{path} not found; download it from the URL in course_config.OFFICIAL_ARCHIVE_URL")
    wanted = (*TRAIN_BATCHES, TEST_BATCH, META)
    payloads: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                if member.name in wanted and member.isfile():
                    payloads[member.name] = tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as error:
        raise ArchiveError(f"{path} is not a readable .tar.gz ({error}); download it again") from None
    missing = [name for name in wanted if name not in payloads]
    if missing:
        raise ArchiveError(f"{path} lacks {', '.join(missing)}; it is not the CIFAR-10 python archive")

    train = [_batch_arrays(_unpickle(payloads[m], m), m) for m in TRAIN_BATCHES]
    test_images, test_labels = _batch_arrays(_unpickle(payloads[TEST_BATCH], TEST_BATCH), TEST_BATCH)
    meta = _unpickle(payloads[META], META)
    names = tuple(str(name) for name in meta.get("label_names", ()))
    if len(names) != 10:
        raise ArchiveError(f"{META} must list 10 label names, got {len(names)}")
    return Cifar10Arrays(
        train_images=np.concatenate([images for images, _ in train]),
        train_labels=np.concatenate([labels for _, labels in train]),
        test_images=test_images,
        test_labels=test_labels,
        label_names=names,
    )
