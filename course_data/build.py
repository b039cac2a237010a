"""Build the term's course data set from the official CIFAR-10 archive (instructors only).

    python -m course_data.build cifar-10-python.tar.gz [--out build/course_data]

The "special preprocessing" of the handout:
  * 45,000 train / 5,000 val images from the five training batches, stratified (VAL_FRACTION of every
    class, 500 per class) with the public SPLIT_SEED;
  * the 10,000 test images shuffled under new Ids (Id = row of ``test_images.npy``), order drawn from
    the secret;
  * every label remapped by a permutation of the 10 classes drawn from the term's secret, with no fixed
    point, so a model trained on the public CIFAR-10 labels scores 0 % on the course test set.
    This stops a downloaded pretrained model from scoring; it does not stop a determined student who
    matches test images against the public test set and learns the permutation from the train set.

Outputs: ``<out>/cifar10_trainval_<term>.zip`` (train_/val_ images and labels as .npy, uint8 HWC and
int64), ``<out>/cifar10_test_<term>.zip`` (test_images.npy, no labels), ``<out>/manifest.json`` (SHA-256
and size of every output, nothing secret) and the held-out labels CSV at ``--labels-out`` (default
``course_config.labels_csv_path()``, outside the repository). The same archive and secret give
byte-identical outputs.
"""
from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

import course_config
from common import cli
from course_data.cifar_archive import ArchiveError, Cifar10Arrays, read_archive, sha256_of

OFFICIAL_COUNTS = {"train": 45_000, "val": 5_000, "test": 10_000}
_ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)


class BuildError(ValueError):
    """The build cannot go on; the message says what to fix."""


@dataclass(frozen=True)
class CourseSplit:
    train_images: np.ndarray
    train_labels: np.ndarray
    val_images: np.ndarray
    val_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray   # course label of each test Id; private

    def counts(self) -> dict[str, int]:
        return {"train": len(self.train_labels), "val": len(self.val_labels), "test": len(self.test_labels)}


def _secret_rng(secret: str, term: str, purpose: str) -> np.random.Generator:
    seed = hashlib.sha256(f"{term}\0{purpose}\0{secret}".encode()).digest()
    return np.random.default_rng(int.from_bytes(seed, "big"))


def label_permutation(secret: str, term: str, num_classes: int = course_config.NUM_CLASSES) -> np.ndarray:
    """``course_label = permutation[original_label]``: a derangement drawn from the secret."""
    rng = _secret_rng(secret, term, "label-permutation")
    while True:
        permutation = rng.permutation(num_classes)
        if not np.any(permutation == np.arange(num_classes)):
            return permutation


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, val indices), both sorted; each class gives round(val_fraction * its count) to val."""
    rng = np.random.default_rng(seed)
    val = []
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        val.append(members[: round(val_fraction * len(members))])
    val_index = np.sort(np.concatenate(val))
    train_index = np.setdiff1d(np.arange(len(labels)), val_index, assume_unique=True)
    return train_index, val_index


def make_course_split(arrays: Cifar10Arrays, secret: str, term: str = course_config.TERM) -> CourseSplit:
    permutation = label_permutation(secret, term)
    train_index, val_index = stratified_split(arrays.train_labels, course_config.VAL_FRACTION,
                                              course_config.SPLIT_SEED)
    test_order = _secret_rng(secret, term, "test-order").permutation(len(arrays.test_labels))
    return CourseSplit(
        train_images=arrays.train_images[train_index],
        train_labels=permutation[arrays.train_labels[train_index]].astype(np.int64),
        val_images=arrays.train_images[val_index],
        val_labels=permutation[arrays.train_labels[val_index]].astype(np.int64),
        test_images=arrays.test_images[test_order],
        test_labels=permutation[arrays.test_labels[test_order]].astype(np.int64),
    )


def write_npy_zip(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """A zip of ``<name>.npy`` members with fixed timestamps, so equal arrays give equal bytes."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIMESTAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, buffer.getvalue(), compresslevel=6)


def write_labels_csv(path: Path, labels: np.ndarray) -> None:
    rows = "".join(f"{i},{label}\n" for i, label in enumerate(labels.tolist()))
    path.write_text("Id,Label\n" + rows, encoding="utf-8")


def _url_for(base: str, filename: str) -> str:
    if base.startswith(("http://", "https://")):
        return base.rstrip("/") + "/" + filename
    return str((Path(base).expanduser().resolve() / filename))


def _check_labels_destination(labels_out: Path, out_dir: Path) -> None:
    labels_out = labels_out.resolve()
    published = [out_dir.resolve(), course_config.REPO_ROOT / "release", course_config.REPO_ROOT / "source"]
    for folder in published:
        if labels_out.is_relative_to(folder):
            raise BuildError(f"refusing to write the held-out labels to {labels_out}: it is inside {folder}, "
                             "which is published; pass --labels-out outside it (default: the private dir)")


def build(archive: Path, out_dir: Path, labels_out: Path, secret: str, *, allow_unofficial: bool = False,
          base_url: str = course_config.COURSE_DATA_BASE_URL, term: str = course_config.TERM,
          progress: bool = False) -> dict:
    """Build the course zips, the labels CSV and the manifest; returns the manifest."""
    archive_sha = sha256_of(archive) if archive.is_file() else None
    official = archive_sha == course_config.OFFICIAL_ARCHIVE_SHA256
    if archive_sha is not None and not official and not allow_unofficial:
        raise BuildError(f"{archive} is not the official CIFAR-10 archive (SHA-256 {archive_sha[:12]}..., expected "
                         f"{course_config.OFFICIAL_ARCHIVE_SHA256[:12]}...): download it again from "
                         f"{course_config.OFFICIAL_ARCHIVE_URL}, or pass --allow-unofficial for a test archive")
    if official and secret == course_config.DEMO_SECRET:
        raise BuildError("the demo secret is public and must not build a real term's data: set $HW2_LABEL_SECRET "
                         "or write a secret to the private dir's label_secret.txt")
    _check_labels_destination(labels_out, out_dir)

    steps = tqdm(total=4, desc="building course data", unit="step", disable=not progress)
    steps.set_postfix_str("reading the archive")
    arrays = read_archive(archive)
    steps.update()
    split = make_course_split(arrays, secret, term)
    if official and split.counts() != OFFICIAL_COUNTS:
        raise BuildError(f"the official archive gave {split.counts()}, expected {OFFICIAL_COUNTS}; "
                         "check VAL_FRACTION in course_config.py")

    out_dir.mkdir(parents=True, exist_ok=True)
    labels_out.parent.mkdir(parents=True, exist_ok=True)
    filenames = {"trainval": f"cifar10_trainval_{term}.zip", "test": f"cifar10_test_{term}.zip"}
    steps.set_postfix_str(f"writing {filenames['trainval']}")
    write_npy_zip(out_dir / filenames["trainval"], {
        "train_images": split.train_images, "train_labels": split.train_labels,
        "val_images": split.val_images, "val_labels": split.val_labels,
    })
    steps.update()
    steps.set_postfix_str(f"writing {filenames['test']}")
    write_npy_zip(out_dir / filenames["test"], {"test_images": split.test_images})
    steps.update()
    steps.set_postfix_str("writing the labels and the manifest")
    write_labels_csv(labels_out, split.test_labels)

    manifest = {
        "term": term,
        "source_archive": {"filename": archive.name, "sha256": archive_sha, "official": official},
        "counts": split.counts(),
        "files": {
            kind: {"filename": name, "url": _url_for(base_url, name), "sha256": sha256_of(out_dir / name),
                   "bytes": (out_dir / name).stat().st_size}
            for kind, name in filenames.items()
        },
        "labels_csv": {"sha256": sha256_of(labels_out)},
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    steps.update()
    steps.close()
    return manifest


def _summary(manifest: dict, out_dir: Path, labels_out: Path) -> str:
    counts = manifest["counts"]
    files = manifest["files"]
    lines = [
        f"course data for term {manifest['term']} "
        f"({'official' if manifest['source_archive']['official'] else 'UNOFFICIAL test'} archive): "
        f"{counts['train']:,} train / {counts['val']:,} val / {counts['test']:,} test",
        *(f"  {out_dir / f['filename']}  {f['bytes'] / 1e6:.1f} MB  sha256 {f['sha256']}" for f in files.values()),
        f"  {out_dir / 'manifest.json'}",
        f"  held-out labels (private): {labels_out}",
    ]
    if manifest["source_archive"]["official"]:
        lines += ["Paste into course_config.py, then regenerate the release:",
                  "COURSE_DATA_SHA256 = {",
                  *(f'    "{kind}": "{f["sha256"]}",' for kind, f in files.items()),
                  "}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = cli.Parser(description="Build the term's course CIFAR-10 data set (instructors only).")
    parser.add_argument("archive", type=Path, help="the official cifar-10-python.tar.gz")
    parser.add_argument("--out", type=Path, default=course_config.REPO_ROOT / "build" / "course_data",
                        help="folder for the two zips and manifest.json (default: build/course_data)")
    parser.add_argument("--labels-out", type=Path, default=None,
                        help="where to write the held-out labels CSV (default: course_config.labels_csv_path())")
    parser.add_argument("--base-url", default=course_config.COURSE_DATA_BASE_URL,
                        help="URL (or local folder) the zips will be served from; recorded in the manifest")
    parser.add_argument("--demo-secret", action="store_true", help="use the public demo secret (demo and tests only)")
    parser.add_argument("--allow-unofficial", action="store_true",
                        help="accept an archive whose SHA-256 is not the official one (synthetic test archives)")
    args = parser.parse_args(argv)
    try:
        secret = course_config.DEMO_SECRET if args.demo_secret else course_config.label_secret()
        labels_out = args.labels_out or course_config.labels_csv_path()
        manifest = build(args.archive, args.out, labels_out, secret,
                         allow_unofficial=args.allow_unofficial, base_url=args.base_url, progress=True)
    except (BuildError, ArchiveError, course_config.ConfigError) as problem:
        return cli.error(str(problem))
    print(_summary(manifest, args.out, labels_out))
    return cli.EXIT_DONE


if __name__ == "__main__":
    cli.run(main)
