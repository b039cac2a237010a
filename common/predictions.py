"""The predictions library: parse a student's ``predictions.csv`` strictly, score it against the held-out
labels, grade a file or a tree of them. The command is ``grade_predictions.py``; the autograder scores
predictions with this library in its trusted process (``load_labels``, ``parse_predictions``, ``score``,
``grade_file``, ``grade_tree``).

The format is strict: header ``Id,Label``, one row ``Id,Label`` per test image (any order), plain ASCII
integers only. Tolerated: a UTF-8 BOM, CRLF line ends, spaces/tabs around fields, blank lines. Every
problem is reported as ONE line that names the line number and says what to fix.
"""
from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import course_config
from common.reports import PredictionsRow, write_class

HEADER = ("Id", "Label")
MAX_POINTS = float(course_config.AUTOGRADED_POINTS["predictions"])
_UTF8_BOM = b"\xef\xbb\xbf"
_BLANKS = " \t"

# The fast path: one possessive regex over the whole file accepts exactly the well-formed files whose
# numbers have at most 9 digits (so they fit int64); numpy then reads the numbers. Anything it rejects
# goes through _parse_slow, which alone defines validity and words the error message.
_FAST = re.compile(
    rb"(?:[ \t]*+\r?\n)*+[ \t]*+Id[ \t]*+,[ \t]*+Label[ \t]*+"
    rb"(?:\r?\n[ \t]*+(?:\d{1,9}+[ \t]*+,[ \t]*+\d{1,9}+[ \t]*+)?+)*+"
)
_DIGITS_ONLY = bytes(c if 0x30 <= c <= 0x39 else 0x20 for c in range(256))  # bytes.translate table
_INTEGER = re.compile(r"[0-9]+")
_NEGATIVE = re.compile(r"-[0-9]+")


class InvalidPredictions(ValueError):
    """The predictions file cannot be scored; the message is one line saying what to fix."""


class LabelsError(Exception):
    """The held-out labels file is missing or invalid (an instructor-side problem)."""


# --------------------------------------------------------------------------------------------------
# Reading and parsing
# --------------------------------------------------------------------------------------------------
def _show(text: str, limit: int = 40) -> str:
    """Quote user content for a message: ASCII-escaped (so it is one printable line) and shortened."""
    return ascii(text if len(text) <= limit else text[:limit] + "...")


def read_capped(path, cap: int = course_config.PREDICTIONS_MAX_BYTES) -> bytes:
    """The bytes of a regular file of at most ``cap`` bytes; a larger one is rejected without reading it.

    stat first (a FIFO or device would block or never end), then read at most cap + 1 bytes in case
    the file grows between the stat and the read."""
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise InvalidPredictions("not a regular file; submit predictions.csv as a plain file")
    if info.st_size > cap:
        raise InvalidPredictions(_too_large(info.st_size, cap))
    with open(path, "rb") as handle:
        data = handle.read(cap + 1)
    if len(data) > cap:
        raise InvalidPredictions(_too_large(len(data), cap))
    return data


def _too_large(size: int, cap: int) -> str:
    return (f"file is {size:,} bytes, over the {cap:,}-byte limit; a 10,000-row predictions.csv is "
            "about 80 kB: write only the Id,Label rows")


def parse_predictions(source, ids_expected: int) -> np.ndarray:
    """Labels indexed by Id (int64 array of length ``ids_expected``) from a path or the file's bytes.

    Raises InvalidPredictions unless the file has exactly one row for every Id 0..ids_expected-1."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if len(data) > course_config.PREDICTIONS_MAX_BYTES:
            raise InvalidPredictions(_too_large(len(data), course_config.PREDICTIONS_MAX_BYTES))
    else:
        data = read_capped(source)
    return _parse(data, ids_expected)


def load_labels(path) -> np.ndarray:
    """The held-out label of every test Id (the file's rows define the Ids 0..N-1); raises LabelsError."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise LabelsError(f"held-out labels not found at {path}; pass --labels or set "
                          f"${course_config.ENV_LABELS_CSV}") from None
    except OSError as err:
        raise LabelsError(f"cannot read the labels file {path}: {err.strerror}") from None
    try:
        labels = _parse(data, None)
    except InvalidPredictions as err:
        raise LabelsError(f"labels file {path} is invalid: {err}") from None
    if labels.size == 0:
        raise LabelsError(f"labels file {path} has a header but no rows")
    return labels


def _parse(data: bytes, ids_expected: int | None) -> np.ndarray:
    """Validate and read an Id,Label file; ``ids_expected`` None means 'as many Ids as rows'."""
    body = data[len(_UTF8_BOM):] if data.startswith(_UTF8_BOM) else data
    rows = body.count(b",") - 1  # once _FAST matched, one comma is the header's and one is each row's
    if rows > 0 and _FAST.fullmatch(body):
        # np.fromstring reads a blank string as [0]: hence rows > 0 and the length check.
        numbers = np.fromstring(body.translate(_DIGITS_ONLY), dtype=np.int64, sep=" ")
        ids, labels = numbers[0::2], numbers[1::2]
        n = rows if ids_expected is None else ids_expected
        if (len(numbers) == 2 * rows == 2 * n and labels.max() < course_config.NUM_CLASSES
                and ids.max() < n and (np.bincount(ids, minlength=n) == 1).all()):
            by_id = np.empty(n, dtype=np.int64)
            by_id[ids] = labels
            return by_id
    return _parse_slow(data, ids_expected)


def _parse_slow(data: bytes, ids_expected: int | None) -> np.ndarray:
    """Line by line, stopping at the first problem with a message naming its line. Defines validity."""
    text = _decode(data)
    bare_cr = re.search(r"\r(?!\n)", text)
    if bare_cr:
        line = text.count("\n", 0, bare_cr.start()) + 1
        raise InvalidPredictions(f"line {line}: bare CR (carriage return) line ending; "
                                 "save the file with LF or CRLF line endings")
    rows: list[tuple[int, str, int]] = []  # (line number, Id digits without leading zeros, Label)
    header_seen = False
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r").strip(_BLANKS)
        if not line:
            continue
        if header_seen:
            rows.append((number, *_parse_row(number, line)))
        else:
            _check_header(number, line)
            header_seen = True
    if not header_seen:
        raise InvalidPredictions("file is empty; write the header Id,Label and one row per test image")
    return _by_id(rows, len(rows) if ids_expected is None else ids_expected)


def _decode(data: bytes) -> str:
    if not data:
        raise InvalidPredictions("file is empty; write the header Id,Label and one row per test image")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InvalidPredictions("file is UTF-16 encoded (it starts with a UTF-16 byte-order mark); "
                                 "save it as UTF-8")
    nul = data.find(b"\0")
    if nul >= 0:
        raise InvalidPredictions(f"line {_line_of(data, nul)}: binary content (NUL byte); "
                                 "predictions.csv must be a plain-text CSV file")
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        raise InvalidPredictions(
            f"line {_line_of(data, err.start)}: not UTF-8 (byte 0x{data[err.start]:02X}); "
            "save the file as UTF-8 with plain ASCII digits") from None


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _wrong_delimiter(number: int, line: str) -> InvalidPredictions | None:
    for name, char in (("semicolons", ";"), ("tabs", "\t")):
        if char in line:
            return InvalidPredictions(f"line {number}: fields are separated by {name}, not commas; "
                                      "write comma-separated Id,Label")
    return None


def _check_header(number: int, line: str) -> None:
    fields = [field.strip(_BLANKS) for field in line.split(",")]
    if tuple(fields) == HEADER:
        return
    if '"' in line:
        raise InvalidPredictions(f"line {number}: quoted header {_show(line)}; "
                                 "write it as Id,Label without quotes")
    if len(fields) == 1 and _wrong_delimiter(number, line):
        raise _wrong_delimiter(number, line)
    if _INTEGER.fullmatch(fields[0]):
        raise InvalidPredictions(f"missing header: line {number} is data ({_show(line)}); "
                                 "add the line Id,Label at the top")
    if len(fields) > 2:
        raise InvalidPredictions(f"line {number}: header has {len(fields)} columns ({_show(line)}); "
                                 "expected exactly Id,Label: remove the extra columns")
    raise InvalidPredictions(f"line {number}: wrong header {_show(line)}; expected exactly Id,Label "
                             "(case-sensitive)")


def _parse_row(number: int, line: str) -> tuple[str, int]:
    """(Id digits without leading zeros, Label) of one data row; the Id stays a string so that an
    absurdly long one is reported, not converted."""
    if '"' in line:
        raise InvalidPredictions(f"line {number}: quoted field in {_show(line)}; "
                                 "write plain integers without quotes")
    fields = [field.strip(_BLANKS) for field in line.split(",")]
    if len(fields) == 1:
        raise _wrong_delimiter(number, line) or InvalidPredictions(
            f"line {number}: too few fields in {_show(line)}; each row must be Id,Label")
    if len(fields) > 2:
        raise InvalidPredictions(f"line {number}: {len(fields)} fields in {_show(line)}; each row must be "
                                 "exactly Id,Label: remove extra columns and trailing commas")
    raw_id, raw_label = fields
    classes = f"0..{course_config.NUM_CLASSES - 1}"
    if not _INTEGER.fullmatch(raw_id):
        what = "is negative" if _NEGATIVE.fullmatch(raw_id) else "is not a plain integer"
        raise InvalidPredictions(f"line {number}: Id {_show(raw_id)} {what}; write the test image Id "
                                 "with ASCII digits 0-9 only")
    if _NEGATIVE.fullmatch(raw_label) or (_INTEGER.fullmatch(raw_label) and
                                          (len(raw_label.lstrip("0")) > 3 or
                                           int(raw_label) >= course_config.NUM_CLASSES)):
        raise InvalidPredictions(f"line {number}: Label {_show(raw_label)} is out of range; "
                                 f"write a class {classes}")
    if not _INTEGER.fullmatch(raw_label):
        raise InvalidPredictions(f"line {number}: Label {_show(raw_label)} is not a plain integer; write "
                                 f"the class index {classes} in ASCII digits (e.g. 7, not 7.0 or a name)")
    return raw_id.lstrip("0") or "0", int(raw_label)


def _by_id(rows: list[tuple[int, str, int]], n: int) -> np.ndarray:
    """Check the rows hold every Id 0..n-1 exactly once; the labels indexed by Id."""
    if not rows and n:
        raise InvalidPredictions(f"no prediction rows after the header (all {n} test Ids missing); "
                                 f"write one row Id,Label for every Id 0..{n - 1}")
    first_line: dict[str, int] = {}
    duplicates: list[tuple[str, int, int]] = []
    for number, id_, _ in rows:
        if id_ in first_line:
            duplicates.append((id_, first_line[id_], number))
        else:
            first_line[id_] = number
    if duplicates:
        id_, first, again = duplicates[0]
        raise InvalidPredictions(f"line {again}: duplicate Id {_show(id_, 20)} (first on line {first}); "
                                 f"{len(duplicates)} duplicate row(s) in all: keep one row per Id")
    extra = [(id_, line) for id_, line in first_line.items() if len(id_) > 18 or int(id_) >= n]
    if extra:
        id_, line = extra[0]
        one_based = len(extra) == 1 and id_ == str(n) and "0" not in first_line and len(first_line) == n
        hint = "; the Ids look 1-based: number them from 0" if one_based else ""
        raise InvalidPredictions(f"line {line}: extra Id {_show(id_, 20)} is not a test image Id "
                                 f"(valid Ids are 0..{n - 1}); {len(extra)} extra Id(s) in all: remove "
                                 f"those rows{hint}")
    if len(first_line) != n:
        missing = [id_ for id_ in range(n) if str(id_) not in first_line]
        shown = ", ".join(map(str, missing[:5])) + (", ..." if len(missing) > 5 else "")
        raise InvalidPredictions(f"missing Ids: {len(missing)} of {n} test Ids have no row ({shown}); "
                                 f"write one row for every Id 0..{n - 1}")
    by_id = np.empty(n, dtype=np.int64)
    for _, id_, label in rows:
        by_id[int(id_)] = label
    return by_id


# --------------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Score:
    accuracy: float
    points: float
    max_points: float
    per_class_accuracy: tuple  # recall per true class; None for a class absent from the labels
    confusion: np.ndarray      # confusion[true, predicted], NUM_CLASSES x NUM_CLASSES
    correct: int
    total: int


def score(pred: np.ndarray, labels: np.ndarray) -> Score:
    """Accuracy, points from course_config.prediction_points and per-class recall of pred vs labels."""
    pred, labels = np.asarray(pred, dtype=np.int64), np.asarray(labels, dtype=np.int64)
    k = course_config.NUM_CLASSES
    if pred.shape != labels.shape or labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"pred and labels must be equal-length non-empty 1-D arrays, "
                         f"got shapes {pred.shape} and {labels.shape}")
    if min(pred.min(), labels.min()) < 0 or max(pred.max(), labels.max()) >= k:
        raise ValueError(f"classes must lie in 0..{k - 1}")
    confusion = np.bincount(labels * k + pred, minlength=k * k).reshape(k, k)
    correct = int(np.trace(confusion))
    accuracy = correct / labels.size
    per_class = tuple(float(confusion[c, c] / row) if row else None
                      for c, row in enumerate(confusion.sum(axis=1)))
    return Score(accuracy, course_config.prediction_points(accuracy), MAX_POINTS, per_class,
                 confusion, correct, int(labels.size))


@dataclass(frozen=True)
class GradeResult:
    file: str
    status: str                 # 'scored' | 'invalid' | 'missing' | 'error'
    message: str
    score: Score | None = None

    @property
    def points(self) -> float:
        return self.score.points if self.score else 0.0

    def to_json(self) -> dict:
        s = self.score
        return {
            "file": self.file, "status": self.status,
            "accuracy": s.accuracy if s else None, "points": self.points, "max_points": MAX_POINTS,
            "per_class_accuracy": list(s.per_class_accuracy) if s else None,
            "confusion_matrix": s.confusion.tolist() if s else None, "message": self.message,
        }


def grade_file(path, labels: np.ndarray) -> GradeResult:
    """Score one file; an unreadable or invalid file is a result with its message, never an exception."""
    if not os.path.lexists(path):
        return GradeResult(str(path), "missing", f"no {course_config.PREDICTIONS_FILENAME} submitted")
    try:
        result = score(parse_predictions(path, len(labels)), labels)
    except InvalidPredictions as err:
        return GradeResult(str(path), "invalid", str(err))
    except OSError as err:
        return GradeResult(str(path), "invalid", f"cannot read the file: {err.strerror}")
    return GradeResult(str(path), "scored", f"scored {result.total} predictions", result)


# --------------------------------------------------------------------------------------------------
# A tree of submissions
# --------------------------------------------------------------------------------------------------
def find_submissions(root, exclude=()) -> list[tuple[str, Path]]:
    """(student, path) pairs: nbgrader's ``ROOT/<student>/<assignment>/predictions.csv`` when ROOT has
    student folders, else ``ROOT/<student>.csv``. A path need not exist (the student submitted none)."""
    root = Path(root)
    entries = [entry for entry in sorted(root.iterdir()) if not entry.name.startswith(".")]
    folders = [entry for entry in entries if entry.is_dir()]
    if folders:
        return [(folder.name, folder / course_config.ASSIGNMENT_ID / course_config.PREDICTIONS_FILENAME)
                for folder in folders]
    skip = {Path(path).resolve() for path in exclude}
    return [(entry.stem, entry) for entry in entries
            if entry.suffix.lower() == ".csv" and entry.resolve() not in skip]


def _grade_submission(root: Path, path: Path, labels: np.ndarray) -> GradeResult:
    """grade_file, refusing links that lead out of ROOT (a link to the held-out labels would score 100 %)."""
    if os.path.lexists(path) and (path.is_symlink() or not path.resolve().is_relative_to(root.resolve())):
        return GradeResult(str(path), "invalid", f"{path.name} is a symbolic link; submit "
                                                 f"{course_config.PREDICTIONS_FILENAME} as a plain file")
    try:
        return grade_file(path, labels)
    except Exception as err:  # a grader bug must not stop the batch; the row says so
        return GradeResult(str(path), "error", f"grader error ({type(err).__name__}: {err}); "
                                               "tell the instructor")


def grade_tree(root, labels: np.ndarray, out, progress: bool = True) -> list[PredictionsRow]:
    """Grade every submission under ROOT; writes the gradebook CSV at ``out`` and its histogram PNG."""
    from tqdm import tqdm

    root, out = Path(root), Path(out)
    submissions = find_submissions(root, exclude=[out])
    rows = []
    for student, path in tqdm(submissions, desc="grading", unit="file", disable=not progress):
        result = _grade_submission(root, path, labels)
        rows.append(PredictionsRow(student, result.score.accuracy if result.score else None, result.points,
                                   result.status, result.message))
    rows.sort(key=lambda row: row.student)
    write_class(rows, PredictionsRow, out, f"{course_config.ASSIGNMENT_ID} predictions.csv: {len(rows)} students "
                "(invalid and missing count as 0)", MAX_POINTS)
    return rows
