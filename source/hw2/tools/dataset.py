"""The course's CIFAR-10 for HW2.

    from tools.dataset import CIFAR10
    train_set = CIFAR10(root="./data", mode="train", download=True, transform=transform_train)

This is not torchvision's CIFAR-10: the course builds its own split (45,000 train / 5,000 val / 10,000
test) and relabels the classes with a secret permutation, so labels here do not match the public data
set, and ``classes`` only gives neutral names. The test split has no labels: ``test_set[i]`` is the image
whose Id is ``i`` in ``predictions.csv``.

The zip is downloaded (or copied from a local path) once, its SHA-256 checked, and extracted once into
``root``; later constructions load the extracted arrays directly. Images are kept in memory as uint8
arrays and returned as PIL images, so torchvision transforms apply and ``DataLoader(num_workers>0)`` works.

Where the zips come from, first match wins:

1. ``$HW2_DATA_SOURCE``: for course staff trying a build before publishing (the builder's manifest.json, or
   a folder holding the zips);
2. ``local_data.txt`` beside the notebooks (the folder above ``tools/``): one line, the folder holding the
   course's zips, for a class whose server keeps the data in a shared folder (set once, read by every
   notebook; a relative path is relative to that file). The SHA-256s come from the folder's manifest.json
   when it has one, else from ``tools/data_source.py``;
3. the course's web address in ``tools/data_source.py``.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import Dataset
from tqdm import tqdm

from . import data_source

ENV_DATA_SOURCE = "HW2_DATA_SOURCE"
LOCAL_DATA_FILE = "local_data.txt"
MODES = {"train": "trainval", "val": "trainval", "test": "test"}
MEMBERS = {
    "trainval": ("train_images.npy", "train_labels.npy", "val_images.npy", "val_labels.npy"),
    "test": ("test_images.npy",),
}
IMAGE_SHAPE = (32, 32, 3)
NUM_CLASSES = 10
_COMPLETE_MARKER = ".extracted-sha256"


class DatasetError(RuntimeError):
    """The course data cannot be used as it is; the message says what to do."""


def _local_data_file() -> Path:
    return Path(__file__).resolve().parent.parent / LOCAL_DATA_FILE


def _read_manifest(manifest: Path, named_by: str) -> dict:
    try:
        return json.loads(manifest.read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError) as error:
        raise DatasetError(f"{manifest} (named by {named_by}) is not a readable data manifest ({error}); "
                           "name the folder that holds the course's zips instead") from None


def _from_folder(folder: Path, named_by: str) -> dict:
    """The course's files as found in ``folder``: its own manifest's checksums, or the published ones."""
    if not folder.is_dir():
        raise DatasetError(f"{folder} (named by {named_by}) is not a folder: name the folder that holds "
                           f"{data_source.FILES['trainval']['filename']}, or remove {named_by} to download the "
                           "course's data")
    manifest = folder / "manifest.json"
    files = _read_manifest(manifest, named_by) if manifest.is_file() else data_source.FILES
    return {kind: {**info, "url": str(folder / info["filename"]), "named_by": named_by}
            for kind, info in files.items()}


def _data_files() -> dict:
    """The course's files (filename, url, sha256) from the first data source that is set."""
    named = os.environ.get(ENV_DATA_SOURCE)
    if named:
        path, named_by = Path(named).expanduser(), f"${ENV_DATA_SOURCE}"
    else:
        local = _local_data_file()
        lines = [line.strip() for line in local.read_text(encoding="utf-8", errors="replace").splitlines()
                 if line.strip() and not line.strip().startswith("#")] if local.is_file() else []
        if not lines:
            return data_source.FILES
        path, named_by = (local.parent / Path(lines[0]).expanduser()), LOCAL_DATA_FILE
    if path.is_file():
        return _read_manifest(path, named_by)
    return _from_folder(path, named_by)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _fetch(url: str, destination: Path) -> None:
    """Download an http(s) URL, or copy a local path, to ``destination`` (atomically)."""
    partial = destination.with_name(destination.name + ".part")
    try:
        if url.startswith(("http://", "https://")):
            with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out, \
                    tqdm(total=int(response.headers.get("Content-Length") or 0) or None, unit="B",
                         unit_scale=True, desc=f"downloading {destination.name}") as progress:
                while block := response.read(1 << 20):
                    out.write(block)
                    progress.update(len(block))
        else:
            source = Path(url[len("file://"):] if url.startswith("file://") else url).expanduser()
            shutil.copyfile(source, partial)
        os.replace(partial, destination)
    except (urllib.error.URLError, OSError) as error:
        partial.unlink(missing_ok=True)
        raise DatasetError(f"could not get {url} ({getattr(error, 'reason', error)}): check the network, or "
                           f"download the file yourself and put it at {destination}") from None


def _extract(zip_path: Path, folder: Path, members: tuple[str, ...], sha256: str) -> None:
    """Extract the expected members into ``folder`` via a temporary folder, then mark it complete."""
    staging = Path(tempfile.mkdtemp(prefix=".extracting-", dir=zip_path.parent))
    try:
        with zipfile.ZipFile(zip_path) as archive:
            names = set(archive.namelist())
            missing = [name for name in members if name not in names]
            if missing:
                raise DatasetError(f"{zip_path} lacks {', '.join(missing)}: it is not a course data zip; "
                                   "delete it and run again with download=True")
            for name in members:  # only the known names: nothing else in the zip is written anywhere
                with archive.open(name) as source, open(staging / name, "wb") as out:
                    shutil.copyfileobj(source, out, length=1 << 20)
        (staging / _COMPLETE_MARKER).write_text(sha256, encoding="utf-8")
        staging.chmod(0o755)  # mkdtemp makes it private; the data may live in a folder a class shares
        shutil.rmtree(folder, ignore_errors=True)
        try:
            os.replace(staging, folder)
        except OSError:  # another process (a second notebook, say) finished the same extraction first
            if not _is_extracted(folder, sha256):
                raise
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile) as error:
        raise DatasetError(f"{zip_path} is not a valid zip file ({error}): the download is corrupt or incomplete; "
                           "delete it and run again with download=True") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _is_extracted(folder: Path, sha256: str) -> bool:
    marker = folder / _COMPLETE_MARKER
    return marker.is_file() and marker.read_text(encoding="utf-8").strip() == sha256


def prepare(root: str | Path, kind: str, download: bool = True) -> Path:
    """The folder holding the extracted arrays of ``kind`` ('trainval' or 'test'), fetching it if needed."""
    info = _data_files()[kind]
    root = Path(root).expanduser()
    zip_path = root / info["filename"]
    folder = root / Path(info["filename"]).stem
    expected = info["sha256"]
    if expected and _is_extracted(folder, expected):
        return folder
    if not expected:
        raise DatasetError(f"the course data is not published yet (no SHA-256 of {info['filename']} in "
                           f"tools/data_source.py): if the course gave you its zips in a folder, write that folder "
                           f"in {LOCAL_DATA_FILE} beside the notebooks; else ask the course staff")
    if not zip_path.is_file() and info.get("named_by") and not Path(info["url"]).is_file():
        raise DatasetError(f"{info['filename']} is not in {Path(info['url']).parent} (named by {info['named_by']}): "
                           "name the folder that holds the course's zips")
    if zip_path.is_file() and download and _sha256(zip_path) != expected:
        print(f"{zip_path} does not match the course's SHA-256 (an old or broken copy): downloading it again")
        zip_path.unlink()
    if not zip_path.is_file():
        if not download:
            raise DatasetError(f"{zip_path} not found: pass download=True, or copy {info['filename']} into {root}")
        root.mkdir(parents=True, exist_ok=True)
        _fetch(info["url"], zip_path)
    actual = _sha256(zip_path)
    if actual != expected:
        raise DatasetError(f"SHA-256 of {zip_path} is {actual[:16]}..., expected {expected[:16]}...: the file is "
                           "corrupt, incomplete or from another term; delete it and run again with download=True"
                           + (" (the download itself gave this file: tell the course staff)" if download else ""))
    _extract(zip_path, folder, MEMBERS[kind], expected)
    return folder


def _load(path: Path, dtype: type, ndim: int) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise DatasetError(f"{path} is unreadable ({error}): delete {path.parent} and run again") from None
    if array.dtype != dtype or array.ndim != ndim:
        raise DatasetError(f"{path} holds {array.dtype} with {array.ndim} dims, expected {np.dtype(dtype)} with "
                           f"{ndim}: delete {path.parent} and run again")
    return array


class CIFAR10(Dataset):
    """The course split of CIFAR-10: ``mode`` is 'train', 'val' or 'test'.

    ``dataset[i]`` is ``(image, target)`` for train and val and ``image`` alone for test, ``image`` being a
    32x32 RGB PIL image (or whatever ``transform`` returns) and ``target`` an int in 0..9 (or whatever
    ``target_transform`` returns). ``data`` holds the uint8 (N, 32, 32, 3) array, ``targets`` the labels
    (None for test).
    """

    classes = tuple(f"class_{i}" for i in range(NUM_CLASSES))

    def __init__(self, root, mode: str = "train", download: bool = True, transform=None, target_transform=None):
        if mode not in MODES:
            raise ValueError(f"mode must be 'train', 'val' or 'test', got {mode!r}")
        self.root, self.mode = Path(root), mode
        self.transform, self.target_transform = transform, target_transform
        folder = prepare(root, MODES[mode], download)
        self.data = _load(folder / f"{mode}_images.npy", np.uint8, 4)
        self.targets = None if mode == "test" else _load(folder / f"{mode}_labels.npy", np.int64, 1)
        if self.data.shape[1:] != IMAGE_SHAPE or (self.targets is not None and len(self.targets) != len(self.data)):
            raise DatasetError(f"{folder} holds arrays of unexpected shapes: delete it and run again")

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        image = Image.fromarray(self.data[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.targets is None:
            return image
        target = int(self.targets[index])
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def __repr__(self) -> str:
        return f"CIFAR10(mode={self.mode!r}, {len(self)} images, root={str(self.root)!r})"
