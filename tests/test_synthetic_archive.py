"""The synthetic archive is the official CIFAR-10 python format, so the real reading code is tested."""
from __future__ import annotations

import hashlib
import pickle
import tarfile

import numpy as np
import pytest
from torchvision.datasets import CIFAR10 as TorchvisionCIFAR10

from course_data.cifar_archive import read_archive
from fixtures.synthetic_cifar10 import LABEL_NAMES, write_archive


class _UncheckedTorchvisionCIFAR10(TorchvisionCIFAR10):
    """torchvision's own reader, minus the MD5s of the real files."""
    train_list = [[f"data_batch_{i}", None] for i in range(1, 6)]
    test_list = [["test_batch", None]]
    meta = {"filename": "batches.meta", "key": "label_names", "md5": None}


@pytest.fixture(scope="module")
def extracted(synthetic_archive, tmp_path_factory):
    folder = tmp_path_factory.mktemp("extracted")
    with tarfile.open(synthetic_archive) as tar:
        tar.extractall(folder, filter="data")
    return folder


def test_archive_has_the_official_member_layout(synthetic_archive):
    with tarfile.open(synthetic_archive) as tar:
        names = set(tar.getnames())
    expected = {f"cifar-10-batches-py/{name}" for name in
                ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
                 "test_batch", "batches.meta", "readme.html"]}
    assert expected <= names


def test_batches_are_python2_protocol2_pickles_with_str_keys(extracted):
    raw = (extracted / "cifar-10-batches-py" / "data_batch_1").read_bytes()
    assert raw.startswith(b"\x80\x02}")                       # protocol 2, a dict
    assert b"U\x04data" in raw and b"U\x06labels" in raw       # SHORT_BINSTRING keys, as cPickle wrote them
    assert b"cnumpy.core.multiarray\n_reconstruct\n" in raw   # numpy 1.x global names
    batch = pickle.loads(raw, encoding="bytes")
    assert set(batch) == {b"batch_label", b"labels", b"data", b"filenames"}
    assert batch[b"data"].dtype == np.uint8 and batch[b"data"].shape[1] == 3072


def test_torchvision_reads_the_synthetic_archive(extracted):
    train = _UncheckedTorchvisionCIFAR10(str(extracted), train=True, download=False)
    test = _UncheckedTorchvisionCIFAR10(str(extracted), train=False, download=False)
    assert (len(train), len(test)) == (2000, 500)
    assert train.classes == list(LABEL_NAMES)
    image, label = train[0]
    assert image.size == (32, 32) and 0 <= label <= 9


def test_rows_are_channel_major_like_the_official_data(synthetic_archive, extracted):
    arrays = read_archive(synthetic_archive)
    with open(extracted / "cifar-10-batches-py" / "data_batch_1", "rb") as handle:
        row = pickle.load(handle, encoding="latin1")["data"][0]
    image = arrays.train_images[0]
    assert row[0] == image[0, 0, 0] and row[1024] == image[0, 0, 1] and row[2048] == image[0, 0, 2]
    assert row[1] == image[0, 1, 0] and row[32] == image[1, 0, 0]


def test_classes_are_balanced_and_images_differ_by_class(synthetic_archive):
    arrays = read_archive(synthetic_archive)
    assert np.bincount(arrays.train_labels).tolist() == [200] * 10
    assert np.bincount(arrays.test_labels).tolist() == [50] * 10
    mean_colour = np.stack([arrays.train_images[arrays.train_labels == c].mean(axis=(0, 1, 2)) for c in range(10)])
    distances = np.linalg.norm(mean_colour[:, None] - mean_colour[None], axis=-1)
    assert distances[~np.eye(10, dtype=bool)].min() > 20, "classes must be told apart by colour at least"


def test_same_arguments_give_identical_bytes_and_sizes_vary(tmp_path):
    first = write_archive(tmp_path / "a.tar.gz", train_per_class=3, test_per_class=2, seed=5)
    second = write_archive(tmp_path / "b.tar.gz", train_per_class=3, test_per_class=2, seed=5)
    assert hashlib.sha256(first.read_bytes()).digest() == hashlib.sha256(second.read_bytes()).digest()
    arrays = read_archive(first)
    assert (len(arrays.train_labels), len(arrays.test_labels)) == (30, 20)
