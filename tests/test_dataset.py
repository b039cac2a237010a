"""tools.dataset.CIFAR10, as a student uses it: download, verify, extract once, load, iterate, learn."""
from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch
import torchvision.transforms as T
from PIL import Image
from torch.utils.data import DataLoader

import course_config
from publishing import data_source as data_source_file
from tools import dataset as tools_dataset
from tools.dataset import CIFAR10, DatasetError
from tests.conftest import REPO_ROOT

NORMALIZE = T.Compose([T.ToTensor(), T.Normalize(course_config.CIFAR10_MEAN, course_config.CIFAR10_STD)])


def _write_manifest(path, files: dict) -> str:
    path.write_text(json.dumps({"files": files}))
    return str(path)


@pytest.mark.parametrize("mode, size", [("train", 1800), ("val", 200), ("test", 500)])
def test_each_mode_has_its_split_and_returns_pil_images(data_source, tmp_path, mode, size):
    data = CIFAR10(tmp_path, mode=mode)
    assert len(data) == size and data.data.shape == (size, 32, 32, 3) and data.data.dtype == np.uint8
    item = data[0]
    image = item if mode == "test" else item[0]
    assert isinstance(image, Image.Image) and image.size == (32, 32) and image.mode == "RGB"
    if mode != "test":
        assert isinstance(item[1], int) and 0 <= item[1] <= 9
    assert len(CIFAR10.classes) == 10


def test_transforms_apply_to_image_and_target(data_source, tmp_path):
    data = CIFAR10(tmp_path, mode="val", transform=NORMALIZE, target_transform=lambda y: y + 100)
    image, target = data[3]
    assert isinstance(image, torch.Tensor) and image.shape == (3, 32, 32)
    assert target == int(data.targets[3]) + 100


def test_unknown_mode_is_rejected():
    with pytest.raises(ValueError, match="'train', 'val' or 'test'"):
        CIFAR10("unused", mode="validation")


def test_zip_is_extracted_once_and_not_needed_afterwards(data_source, tmp_path):
    first = CIFAR10(tmp_path, mode="train")
    filename = data_source["files"]["trainval"]["filename"]
    (tmp_path / filename).unlink()   # a second construction must not hash or extract the zip again
    second = CIFAR10(tmp_path, mode="val", download=False)
    assert len(second) == 200 and np.array_equal(first.data[:5], CIFAR10(tmp_path, "train", download=False).data[:5])


def test_downloads_over_http(course_data, tmp_path, monkeypatch):
    out, _, manifest = course_data
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(out))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        files = {kind: dict(info, url=f"http://127.0.0.1:{server.server_port}/{info['filename']}")
                 for kind, info in manifest["files"].items()}
        monkeypatch.setenv("HW2_DATA_SOURCE", _write_manifest(tmp_path / "manifest.json", files))
        data = CIFAR10(tmp_path / "root", mode="test")
    finally:
        server.shutdown()
    assert len(data) == 500
    assert not list((tmp_path / "root").glob("*.part")), "no partial download is left behind"


def test_unreachable_url_fails_clearly(course_data, tmp_path, monkeypatch):
    _, _, manifest = course_data
    files = {kind: dict(info, url="http://127.0.0.1:9/nothing.zip") for kind, info in manifest["files"].items()}
    monkeypatch.setenv("HW2_DATA_SOURCE", _write_manifest(tmp_path / "manifest.json", files))
    with pytest.raises(DatasetError, match="could not get .* put it at"):
        CIFAR10(tmp_path / "root", mode="train")


def test_missing_file_without_download_says_what_to_do(data_source, tmp_path):
    with pytest.raises(DatasetError, match="not found: pass download=True"):
        CIFAR10(tmp_path, mode="train", download=False)


def test_wrong_checksum_is_refused(data_source, tmp_path):
    trainval, test = data_source["files"]["trainval"], data_source["files"]["test"]
    shutil.copyfile(data_source["files"]["test"]["url"], tmp_path / trainval["filename"])  # the wrong zip
    with pytest.raises(DatasetError, match="SHA-256 .* corrupt, incomplete or from another term"):
        CIFAR10(tmp_path, mode="train", download=False)
    assert test["filename"] != trainval["filename"]


def test_a_stale_copy_is_downloaded_again(data_source, tmp_path):
    """A zip left over from another term (or a broken download) is replaced when download=True."""
    trainval = data_source["files"]["trainval"]
    (tmp_path / trainval["filename"]).write_bytes(b"an old term's zip")
    assert len(CIFAR10(tmp_path, mode="val")) == 200
    assert hashlib.sha256((tmp_path / trainval["filename"]).read_bytes()).hexdigest() == trainval["sha256"]


def test_corrupt_zip_is_refused_even_with_a_matching_checksum(course_data, tmp_path, monkeypatch):
    _, _, manifest = course_data
    garbage = b"PK\x03\x04 this is not really a zip" * 100
    name = manifest["files"]["trainval"]["filename"]
    (tmp_path / name).write_bytes(garbage)
    files = dict(manifest["files"], trainval=dict(manifest["files"]["trainval"],
                                                  sha256=hashlib.sha256(garbage).hexdigest()))
    monkeypatch.setenv("HW2_DATA_SOURCE", _write_manifest(tmp_path / "manifest.json", files))
    with pytest.raises(DatasetError, match="not a valid zip file"):
        CIFAR10(tmp_path, mode="train")
    assert not (tmp_path / name.removesuffix(".zip")).exists(), "nothing half-extracted is left"


def test_unpublished_checksum_is_explained(course_data, tmp_path, monkeypatch):
    _, _, manifest = course_data
    files = {kind: dict(info, sha256=None) for kind, info in manifest["files"].items()}
    monkeypatch.setenv("HW2_DATA_SOURCE", _write_manifest(tmp_path / "manifest.json", files))
    with pytest.raises(DatasetError, match="not published yet"):
        CIFAR10(tmp_path, mode="train")


def _student_run(folder, code: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh Python in ``folder``, an assignment folder with its own copy of ``tools/``, as a
    notebook there runs it (no $HW2_DATA_SOURCE)."""
    env = {name: value for name, value in os.environ.items() if name != tools_dataset.ENV_DATA_SOURCE}
    return subprocess.run([sys.executable, "-c", code], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture
def assignment_folder(tmp_path):
    folder = tmp_path / "hw2"
    shutil.copytree(REPO_ROOT / "release" / course_config.ASSIGNMENT_ID / "tools", folder / "tools",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return folder


_LOAD_TRAIN = "from tools.dataset import CIFAR10; print(len(CIFAR10('data', mode='train')))"


def test_a_data_folder_named_once_in_local_data_txt_serves_every_notebook(course_data, assignment_folder):
    published = course_data[0]   # the zips and the builder's manifest.json, as staff would copy them
    shared = assignment_folder.parent / "shared" / "hw2-data"
    shutil.copytree(published, shared)
    (assignment_folder / tools_dataset.LOCAL_DATA_FILE).write_text("# the course's folder\n../shared/hw2-data\n")
    result = _student_run(assignment_folder, _LOAD_TRAIN)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["1800"]
    assert (assignment_folder / "data").is_dir(), "the zips are copied and extracted under the notebooks' root"


def test_a_wrong_local_data_folder_is_one_line_naming_the_file(assignment_folder):
    (assignment_folder / tools_dataset.LOCAL_DATA_FILE).write_text("/no/such/folder\n")
    result = _student_run(assignment_folder, _LOAD_TRAIN)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("tools.dataset.DatasetError: /no/such/folder (named by local_data.txt) is not a folder"), last


def test_a_folder_without_the_zips_says_so(course_data, assignment_folder, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    shutil.copyfile(course_data[0] / "manifest.json", empty / "manifest.json")
    (assignment_folder / tools_dataset.LOCAL_DATA_FILE).write_text(f"{empty}\n")
    result = _student_run(assignment_folder, _LOAD_TRAIN)
    last = result.stderr.strip().splitlines()[-1]
    assert f"is not in {empty} (named by local_data.txt)" in last, last


def test_with_no_data_source_and_nothing_published_the_error_says_what_to_do(assignment_folder):
    """The release's tools/data_source.py before the staff publish the data: no checksums yet."""
    if tools_dataset.data_source.FILES["trainval"]["sha256"]:
        pytest.skip("the course data is published: the course's address serves it")
    result = _student_run(assignment_folder, _LOAD_TRAIN)
    last = result.stderr.strip().splitlines()[-1]
    assert "the course data is not published yet" in last and "local_data.txt" in last, last


def test_generated_data_source_matches_course_config():
    assert data_source_file.DATA_SOURCE.is_current(), "run `python -m publishing.data_source write` and commit it"
    assert tools_dataset.data_source.FILES == course_config.course_data_files()


def test_dataloader_with_workers_yields_every_image_once(data_source, tmp_path):
    data = CIFAR10(tmp_path, mode="val", transform=NORMALIZE)
    seen, labels = 0, []
    for images, targets in DataLoader(data, batch_size=64, shuffle=False, num_workers=2):
        assert images.shape[1:] == (3, 32, 32) and images.dtype == torch.float32
        seen += len(images)
        labels.append(targets)
    assert seen == len(data)
    assert torch.equal(torch.cat(labels), torch.from_numpy(data.targets))


def test_a_small_cnn_learns_the_synthetic_data_through_the_real_pipeline(data_source, tmp_path, learning_seed):
    """The synthetic images carry class signal: two short epochs take a small CNN far above chance."""
    torch.manual_seed(learning_seed)
    augment = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), NORMALIZE])
    train = DataLoader(CIFAR10(tmp_path, "train", transform=augment), batch_size=64, shuffle=True, num_workers=2)
    val = DataLoader(CIFAR10(tmp_path, "val", transform=NORMALIZE), batch_size=100)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(4),
        torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(), torch.nn.Linear(32, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(2):
        for images, targets in train:
            loss = torch.nn.functional.cross_entropy(model(images), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        correct = sum((model(images).argmax(1) == targets).sum().item() for images, targets in val)
    assert correct / len(val.dataset) > 0.5


def test_the_learning_marker_selects_the_learning_tests():
    """``make test-learning`` (``-m learning``) runs the learning tests: the mark is set before ``-m`` deselects."""
    result = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "learning",
                             "-p", "no:cacheprovider", "--learning-seeds", "0,1", f"{__file__}"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    selected = [line for line in result.stdout.splitlines() if "::" in line]
    assert [line.rsplit("[", 1)[-1] for line in selected] == ["seed0]", "seed1]"], result.stdout[-2000:]
