"""The course data builder: split, relabelling, determinism, refusals and the manifest."""
from __future__ import annotations

import hashlib
import io
import json
import pickle
import subprocess
import sys
import tarfile
import zipfile

import numpy as np
import pytest

import course_config
from course_data.build import BuildError, build, label_permutation, stratified_split
from course_data.cifar_archive import ArchiveError, read_archive
from tests.conftest import REPO_ROOT, TEST_PER_CLASS, TRAIN_PER_CLASS


def _npz(zip_path) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(zip_path) as archive:
        return {name[:-4]: np.load(io.BytesIO(archive.read(name)), allow_pickle=False) for name in archive.namelist()}


def _labels_csv(path) -> np.ndarray:
    lines = path.read_text().splitlines()
    assert lines[0] == "Id,Label"
    ids, labels = np.array([[int(v) for v in line.split(",")] for line in lines[1:]]).T
    assert ids.tolist() == list(range(len(ids)))
    return labels


def _original_index(images: np.ndarray, originals: np.ndarray) -> np.ndarray:
    """For each image, the index of the identical image among ``originals`` (the test images are distinct)."""
    lookup = {image.tobytes(): i for i, image in enumerate(originals)}
    return np.array([lookup[image.tobytes()] for image in images])


@pytest.fixture(scope="module")
def built(course_data):
    out, labels_csv, manifest = course_data
    files = manifest["files"]
    return {
        "trainval": _npz(out / files["trainval"]["filename"]),
        "test": _npz(out / files["test"]["filename"]),
        "labels": _labels_csv(labels_csv),
        "manifest": manifest,
    }


def test_split_sizes_and_stratification(built):
    trainval = built["trainval"]
    per_class_val = round(course_config.VAL_FRACTION * TRAIN_PER_CLASS)
    assert np.bincount(trainval["val_labels"]).tolist() == [per_class_val] * 10
    assert np.bincount(trainval["train_labels"]).tolist() == [TRAIN_PER_CLASS - per_class_val] * 10
    assert built["test"]["test_images"].shape == (10 * TEST_PER_CLASS, 32, 32, 3)
    assert built["manifest"]["counts"] == {"train": 10 * (TRAIN_PER_CLASS - per_class_val),
                                           "val": 10 * per_class_val, "test": 10 * TEST_PER_CLASS}


def test_arrays_have_the_documented_dtypes_and_no_test_labels(built):
    trainval = built["trainval"]
    assert set(trainval) == {"train_images", "train_labels", "val_images", "val_labels"}
    assert set(built["test"]) == {"test_images"}
    assert trainval["train_images"].dtype == np.uint8 and trainval["train_images"].shape[1:] == (32, 32, 3)
    assert trainval["train_labels"].dtype == np.int64


def test_official_sizes_give_45000_train_and_500_val_per_class():
    labels = np.repeat(np.arange(10), 5000)
    train, val = stratified_split(labels, course_config.VAL_FRACTION, course_config.SPLIT_SEED)
    assert (len(train), len(val)) == (45_000, 5_000)
    assert np.bincount(labels[val]).tolist() == [500] * 10
    assert not np.intersect1d(train, val).size


def test_train_and_val_are_the_original_training_images_relabelled(built, synthetic_archive):
    original = read_archive(synthetic_archive)
    permutation = label_permutation(course_config.DEMO_SECRET, course_config.TERM)
    trainval = built["trainval"]
    images = np.concatenate([trainval["train_images"], trainval["val_images"]])
    labels = np.concatenate([trainval["train_labels"], trainval["val_labels"]])
    index = _original_index(images, original.train_images)
    assert sorted(index.tolist()) == list(range(len(original.train_labels))), "every image once, none twice"
    assert np.array_equal(labels, permutation[original.train_labels[index]])


@pytest.mark.parametrize("secret", ["a", "b", course_config.DEMO_SECRET, "term secret with spaces", "x" * 200])
@pytest.mark.parametrize("term", ["fall2026", "spring2027"])
def test_label_permutation_has_no_fixed_point(secret, term):
    permutation = label_permutation(secret, term)
    assert sorted(permutation.tolist()) == list(range(10))
    assert not np.any(permutation == np.arange(10))


def test_permutations_differ_between_secrets():
    drawn = {tuple(label_permutation(f"secret-{i}", "fall2026")) for i in range(50)}
    assert len(drawn) > 40


def test_test_images_are_shuffled_under_new_ids(built, synthetic_archive):
    original = read_archive(synthetic_archive)
    index = _original_index(built["test"]["test_images"], original.test_images)
    assert sorted(index.tolist()) == list(range(len(index)))
    assert np.mean(index == np.arange(len(index))) < 0.05, "Ids must not follow the original order"


def test_original_cifar10_labels_score_at_most_ten_percent(built, synthetic_archive, course_data, tmp_path):
    """A perfect model of the public CIFAR-10 (the handout's "cheating") scores near chance or below."""
    original = read_archive(synthetic_archive)
    index = _original_index(built["test"]["test_images"], original.test_images)
    oracle = tmp_path / "oracle.csv"
    oracle.write_text("Id,Label\n" + "".join(f"{i},{original.test_labels[j]}\n" for i, j in enumerate(index)))
    result = subprocess.run([sys.executable, "grade_predictions.py", str(oracle), "--labels", str(course_data[1]),
                             "--json"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert json.loads(result.stdout)["accuracy"] <= 0.10


def test_same_archive_and_secret_give_byte_identical_outputs(synthetic_archive, course_data, tmp_path):
    _, _, first = course_data
    again = build(synthetic_archive, tmp_path / "out", tmp_path / "labels.csv", course_config.DEMO_SECRET,
                  allow_unofficial=True, base_url=str(tmp_path / "out"))
    for kind in ("trainval", "test"):
        assert again["files"][kind]["sha256"] == first["files"][kind]["sha256"]
    assert again["labels_csv"]["sha256"] == first["labels_csv"]["sha256"]


def test_another_secret_changes_labels_and_test_order(synthetic_archive, course_data, tmp_path):
    _, _, first = course_data
    other = build(synthetic_archive, tmp_path / "out", tmp_path / "labels.csv", "another-secret",
                  allow_unofficial=True)
    assert other["files"]["test"]["sha256"] != first["files"]["test"]["sha256"]
    assert other["labels_csv"]["sha256"] != first["labels_csv"]["sha256"]


def test_manifest_lists_the_sha256_of_every_output_and_nothing_secret(course_data):
    out, labels_csv, manifest = course_data
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk == manifest
    for info in manifest["files"].values():
        assert hashlib.sha256((out / info["filename"]).read_bytes()).hexdigest() == info["sha256"]
    assert hashlib.sha256(labels_csv.read_bytes()).hexdigest() == manifest["labels_csv"]["sha256"]
    assert course_config.DEMO_SECRET not in json.dumps(manifest)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [info["filename"] for info in manifest["files"].values()] + ["manifest.json"])


def test_unofficial_archive_needs_the_override(synthetic_archive, tmp_path):
    result = subprocess.run([sys.executable, "-m", "course_data.build", str(synthetic_archive),
                             "--out", str(tmp_path / "out"), "--labels-out", str(tmp_path / "l.csv"), "--demo-secret"],
                            cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "--allow-unofficial" in result.stderr
    assert not (tmp_path / "out").exists()


def test_demo_secret_is_refused_for_the_official_archive(synthetic_archive, tmp_path, monkeypatch):
    monkeypatch.setattr(course_config, "OFFICIAL_ARCHIVE_SHA256", hashlib.sha256(synthetic_archive.read_bytes()).hexdigest())
    with pytest.raises(BuildError, match="demo secret"):
        build(synthetic_archive, tmp_path / "out", tmp_path / "labels.csv", course_config.DEMO_SECRET)


def test_official_archive_must_give_the_official_counts(synthetic_archive, tmp_path, monkeypatch):
    monkeypatch.setattr(course_config, "OFFICIAL_ARCHIVE_SHA256", hashlib.sha256(synthetic_archive.read_bytes()).hexdigest())
    with pytest.raises(BuildError, match="45000"):
        build(synthetic_archive, tmp_path / "out", tmp_path / "labels.csv", "a-real-secret")


def test_labels_are_never_written_next_to_the_published_zips(synthetic_archive, tmp_path):
    with pytest.raises(BuildError, match="published"):
        build(synthetic_archive, tmp_path / "out", tmp_path / "out" / "labels.csv", "s", allow_unofficial=True)


def test_secret_comes_from_the_environment_or_fails_clearly(monkeypatch, tmp_path):
    monkeypatch.setenv("HW2_PRIVATE_DIR", str(tmp_path))
    monkeypatch.delenv("HW2_LABEL_SECRET", raising=False)
    with pytest.raises(course_config.ConfigError, match="HW2_LABEL_SECRET"):
        course_config.label_secret()
    (tmp_path / "label_secret.txt").write_text("from-the-file\n")
    assert course_config.label_secret() == "from-the-file"
    monkeypatch.setenv("HW2_LABEL_SECRET", "from-the-env")
    assert course_config.label_secret() == "from-the-env"


def _tar_with(tmp_path, members: dict[str, bytes]):
    path = tmp_path / "doctored.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return path


def test_a_pickle_that_would_run_code_is_refused_unexecuted(synthetic_archive, tmp_path):
    class Exploit:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    with tarfile.open(synthetic_archive) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}
    members["cifar-10-batches-py/data_batch_3"] = pickle.dumps({"data": Exploit()}, protocol=2)
    with pytest.raises(ArchiveError, match="not genuine"):
        read_archive(_tar_with(tmp_path, members))
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("damage", ["truncated", "not a tar", "missing batch"])
def test_a_damaged_archive_gives_a_clear_error(synthetic_archive, tmp_path, damage):
    if damage == "truncated":
        path = tmp_path / "cut.tar.gz"
        path.write_bytes(synthetic_archive.read_bytes()[:100_000])
    elif damage == "not a tar":
        path = tmp_path / "page.tar.gz"
        path.write_bytes(b"<html>404 Not Found</html>")
    else:
        path = _tar_with(tmp_path, {"cifar-10-batches-py/data_batch_1": b""})
    with pytest.raises(ArchiveError) as error:
        read_archive(path)
    assert "\n" not in str(error.value)
