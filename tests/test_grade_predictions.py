"""grade_predictions.py: strict validation, scoring, the one-file CLI and batch mode, on real files."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import course_config
from common import predictions as gp
from common.predictions import InvalidPredictions
from common.reports import PredictionsRow, histogram_path, predictions_summary

REPO = course_config.REPO_ROOT   # where grade_predictions.py, the command, lives
N_IDS = 200


# ---------------------------------------------------------------------------------------------- helpers
def csv_bytes(ids, labels, header: str = "Id,Label", eol: str = "\n") -> bytes:
    lines = [header] + [f"{i},{label}" for i, label in zip(ids, labels)]
    return (eol.join(lines) + eol).encode()


def run_cli(*args, env_extra=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HW2_")}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "grade_predictions.py", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def assert_one_error_line(proc: subprocess.CompletedProcess, *words: str) -> str:
    lines = proc.stderr.splitlines()
    assert "Traceback" not in proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    for word in words:
        assert word.lower() in lines[0].lower(), lines[0]
    return lines[0]


# --------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def labels() -> np.ndarray:
    return np.random.default_rng(2026).integers(0, 10, N_IDS)


@pytest.fixture(scope="module")
def pred(labels) -> np.ndarray:
    """Predictions that are right about 70 % of the time."""
    rng = np.random.default_rng(7)
    return np.where(rng.random(N_IDS) < 0.7, labels, rng.integers(0, 10, N_IDS))


@pytest.fixture
def labels_csv(tmp_path, labels) -> Path:
    path = tmp_path / "test_labels.csv"
    path.write_bytes(csv_bytes(range(N_IDS), labels))
    return path


@pytest.fixture
def good_bytes(pred) -> bytes:
    return csv_bytes(range(N_IDS), pred)


# ------------------------------------------------------------------------------------ invalid submissions
def _replace_line(data: bytes, index: int, new: str) -> bytes:
    lines = data.split(b"\n")
    lines[index] = new.encode()
    return b"\n".join(lines)


# (case id, how to break a valid file, words the one-line message must contain)
BAD_CASES = [
    ("missing-ids", lambda d: b"\n".join(d.split(b"\n")[:-4]) + b"\n", ["missing", "3 of 200"]),
    ("extra-id", lambda d: d + b"200,3\n", ["extra id", "line 202"]),
    ("one-based-ids", lambda d: csv_bytes(range(1, N_IDS + 1), [1] * N_IDS), ["1-based"]),
    ("duplicate-id", lambda d: _replace_line(d, 5, "3,1"), ["duplicate", "line 6"]),
    ("wrong-header-case", lambda d: _replace_line(d, 0, "id,label"), ["header", "'id,label'"]),
    ("wrong-header-name", lambda d: _replace_line(d, 0, "Id,Prediction"), ["header", "Prediction"]),
    ("missing-header", lambda d: b"\n".join(d.split(b"\n")[1:]), ["missing header"]),
    ("extra-column-header", lambda d: _replace_line(d, 0, "Id,Label,Prob"), ["header", "3 columns"]),
    ("extra-column-row", lambda d: _replace_line(d, 9, "8,1,0.5"), ["line 10", "3 fields"]),
    ("trailing-comma", lambda d: _replace_line(d, 9, "8,1,"), ["line 10", "trailing comma"]),
    ("too-few-fields", lambda d: _replace_line(d, 9, "8"), ["line 10", "too few fields"]),
    ("label-float", lambda d: _replace_line(d, 3, "2,7.0"), ["line 4", "'7.0'", "not a plain integer"]),
    ("label-word", lambda d: _replace_line(d, 3, "2,cat"), ["line 4", "'cat'", "not a plain integer"]),
    ("label-empty", lambda d: _replace_line(d, 3, "2,"), ["line 4", "label ''"]),
    ("label-plus", lambda d: _replace_line(d, 3, "2,+5"), ["line 4", "'+5'"]),
    ("label-underscore", lambda d: _replace_line(d, 3, "2,5_0"), ["line 4", "'5_0'"]),
    ("label-unicode-digit", lambda d: _replace_line(d, 3, "2,\u0665"), ["line 4", "\\u0665"]),
    ("label-fullwidth-digit", lambda d: _replace_line(d, 3, "2,\uff15"), ["line 4", "ascii digits"]),
    ("id-float", lambda d: _replace_line(d, 3, "2.0,1"), ["line 4", "Id '2.0'"]),
    ("id-negative", lambda d: _replace_line(d, 3, "-2,1"), ["line 4", "negative"]),
    ("label-negative", lambda d: _replace_line(d, 3, "2,-1"), ["line 4", "out of range"]),
    ("label-too-big", lambda d: _replace_line(d, 3, "2,10"), ["line 4", "out of range", "0..9"]),
    ("label-huge", lambda d: _replace_line(d, 3, "2," + "9" * 5000), ["line 4", "out of range"]),
    ("id-huge", lambda d: _replace_line(d, 3, "9" * 5000 + ",1"), ["line 4", "extra id"]),
    ("empty-file", lambda d: b"", ["empty"]),
    ("blank-file", lambda d: b" \n\r\n\t\n", ["empty"]),
    ("header-only", lambda d: b"Id,Label\n", ["no prediction rows"]),
    ("nul-byte", lambda d: d[:50] + b"\0" + d[50:], ["binary", "NUL"]),
    ("latin-1", lambda d: d + "# é\n".encode("latin-1"), ["UTF-8", "line 202"]),
    ("utf-16", lambda d: d.decode().encode("utf-16"), ["UTF-16", "save it as UTF-8"]),
    ("semicolons", lambda d: d.replace(b",", b";"), ["semicolons", "line 1"]),
    ("tabs", lambda d: d.replace(b",", b"\t"), ["tabs"]),
    ("quoted-fields", lambda d: _replace_line(d, 2, '1,"3"'), ["line 3", "quoted", "plain integers"]),
    ("quoted-header", lambda d: _replace_line(d, 0, '"Id","Label"'), ["quoted header"]),
    ("bare-cr", lambda d: d.replace(b"\n", b"\r"), ["bare CR"]),
    ("one-bare-cr", lambda d: _replace_line(d, 4, "3,1\r3"), ["line 5", "bare CR"]),
]
CLI_CASES = {"missing-ids", "duplicate-id", "missing-header", "label-float", "nul-byte", "utf-16",
             "semicolons", "bare-cr"}


@pytest.mark.parametrize("case, mutate, words", BAD_CASES, ids=[case[0] for case in BAD_CASES])
def test_invalid_file_gives_one_line_naming_the_problem(case, mutate, words, good_bytes):
    with pytest.raises(InvalidPredictions) as info:
        gp.parse_predictions(mutate(good_bytes), N_IDS)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert message and "\n" not in message and "\r" not in message
    for word in words:
        assert word.lower() in message.lower(), message


@pytest.mark.parametrize("case, mutate, words", [c for c in BAD_CASES if c[0] in CLI_CASES],
                         ids=sorted(CLI_CASES, key=[c[0] for c in BAD_CASES].index))
def test_cli_exits_2_with_one_error_line_on_invalid_file(case, mutate, words, good_bytes, labels_csv,
                                                         tmp_path):
    path = tmp_path / "predictions.csv"
    path.write_bytes(mutate(good_bytes))
    proc = run_cli(path, "--labels", labels_csv)
    assert proc.returncode == 2
    assert_one_error_line(proc, *words)


def test_slow_path_alone_gives_the_same_message(good_bytes):
    """The fast path only accelerates: its rejects go through the slow pass, which words the message."""
    for _, mutate, _ in BAD_CASES:
        data = mutate(good_bytes)
        with pytest.raises(InvalidPredictions) as fast:
            gp.parse_predictions(data, N_IDS)
        if len(data) <= course_config.PREDICTIONS_MAX_BYTES:
            with pytest.raises(InvalidPredictions) as slow:
                gp._parse_slow(data, N_IDS)
            assert str(slow.value) == str(fast.value)


# ----------------------------------------------------------------------------- oversize and odd files
def test_oversize_sparse_file_is_rejected_without_reading_it(tmp_path, labels_csv):
    path = tmp_path / "predictions.csv"
    with open(path, "wb") as handle:
        handle.truncate(2 * 1024**3)  # 2 GB, sparse: costs no disk, but reading it would take seconds
    start = time.perf_counter()
    with pytest.raises(InvalidPredictions, match="over the 1,048,576-byte limit"):
        gp.parse_predictions(path, N_IDS)
    assert time.perf_counter() - start < 0.5
    proc = run_cli(path, "--labels", labels_csv)
    assert proc.returncode == 2
    assert_one_error_line(proc, "2,147,483,648 bytes")


def test_file_one_byte_over_the_cap_is_rejected(tmp_path):
    path = tmp_path / "predictions.csv"
    path.write_bytes(b"Id,Label\n" + b" " * (course_config.PREDICTIONS_MAX_BYTES - 8))
    with pytest.raises(InvalidPredictions, match="limit"):
        gp.parse_predictions(path, N_IDS)
    with pytest.raises(InvalidPredictions, match="limit"):
        gp.parse_predictions(path.read_bytes(), N_IDS)


def test_fifo_is_rejected_without_blocking(tmp_path):
    path = tmp_path / "predictions.csv"
    os.mkfifo(path)
    with pytest.raises(InvalidPredictions, match="not a regular file"):
        gp.parse_predictions(path, N_IDS)


# ------------------------------------------------------------------------------------ valid variants
def _shuffled(pred) -> bytes:
    order = np.random.default_rng(3).permutation(N_IDS)
    return csv_bytes(order, pred[order])


def _spaced(pred) -> bytes:
    rows = [f" {i}\t, {label} " if i % 2 else f"\t{i} ,\t{label}" for i, label in enumerate(pred)]
    return ("  Id ,\tLabel \n" + "\n".join(rows) + "\n").encode()


def _blank_lines(pred) -> bytes:
    rows = [f"{i},{label}\n" + ("\n \t\n" if i % 17 == 0 else "") for i, label in enumerate(pred)]
    return ("\n\nId,Label\n\n" + "".join(rows) + "\n\n").encode()


VALID_VARIANTS = {
    "plain": lambda pred: csv_bytes(range(N_IDS), pred),
    "utf8-bom": lambda pred: b"\xef\xbb\xbf" + csv_bytes(range(N_IDS), pred),
    "crlf": lambda pred: csv_bytes(range(N_IDS), pred, eol="\r\n"),
    "no-final-newline": lambda pred: csv_bytes(range(N_IDS), pred).rstrip(b"\n"),
    "spaces-and-tabs": _spaced,
    "shuffled-rows": _shuffled,
    "blank-lines": _blank_lines,
    "leading-zeros": lambda pred: csv_bytes([f"{i:05d}" for i in range(N_IDS)], [f"0{p}" for p in pred]),
    "bom-crlf-shuffled": lambda pred: b"\xef\xbb\xbf" + _shuffled(pred).replace(b"\n", b"\r\n"),
}


@pytest.mark.parametrize("variant", VALID_VARIANTS)
def test_tolerated_variants_score_the_same(variant, pred, labels, tmp_path):
    path = tmp_path / "predictions.csv"
    path.write_bytes(VALID_VARIANTS[variant](pred))
    parsed = gp.parse_predictions(path, N_IDS)
    np.testing.assert_array_equal(parsed, pred)
    np.testing.assert_array_equal(gp._parse_slow(path.read_bytes(), N_IDS), pred)
    assert gp.grade_file(path, labels).score.accuracy == gp.score(pred, labels).accuracy


# ------------------------------------------------------------------------------------------- scoring
def test_score_on_a_known_small_case():
    labels = np.array([0, 0, 1, 1, 2, 2, 3, 3, 4, 4])
    pred = np.array([0, 1, 1, 1, 2, 0, 3, 3, 4, 9])
    result = gp.score(pred, labels)
    assert result.accuracy == pytest.approx(0.7)
    assert (result.correct, result.total) == (7, 10)
    assert result.points == pytest.approx(7.5)  # 6 at 60 %, 9 at 80 %: halfway
    assert result.max_points == course_config.AUTOGRADED_POINTS["predictions"]
    assert result.per_class_accuracy == (0.5, 1.0, 0.5, 1.0, 0.5, None, None, None, None, None)
    assert result.confusion.shape == (10, 10) and result.confusion.sum() == 10
    assert (result.confusion[0, 1], result.confusion[2, 0], result.confusion[4, 9]) == (1, 1, 1)


@pytest.mark.parametrize("accuracy, points", [(0.0, 0.0), (0.1, 0.0), (0.6, 6.0), (0.9, 12.0), (1.0, 12.0)])
def test_points_follow_the_course_curve(accuracy, points):
    labels = np.zeros(100, dtype=int)
    pred = np.where(np.arange(100) < round(accuracy * 100), 0, 1)
    assert gp.score(pred, labels).points == pytest.approx(points)


def test_score_refuses_mismatched_arrays():
    with pytest.raises(ValueError):
        gp.score(np.zeros(3, int), np.zeros(4, int))
    with pytest.raises(ValueError):
        gp.score(np.full(3, 10), np.zeros(3, int))


def test_ten_thousand_ids(tmp_path):
    rng = np.random.default_rng(10_000)
    labels = rng.integers(0, 10, 10_000)
    pred = np.where(rng.random(10_000) < 0.9, labels, (labels + 1) % 10)
    labels_path, pred_path = tmp_path / "labels.csv", tmp_path / "predictions.csv"
    labels_path.write_bytes(csv_bytes(range(10_000), labels))
    order = rng.permutation(10_000)
    pred_path.write_bytes(csv_bytes(order, pred[order]))
    loaded = gp.load_labels(labels_path)
    np.testing.assert_array_equal(loaded, labels)
    result = gp.grade_file(pred_path, loaded)
    assert result.status == "scored"
    assert result.score.accuracy == pytest.approx((pred == labels).mean())
    pred_path.write_bytes(csv_bytes(order, pred[order])[:-2] + b"x\n")
    result = gp.grade_file(pred_path, loaded)
    assert (result.status, result.points) == ("invalid", 0.0)
    assert result.message.startswith("line 10001: Label 'x'")


# ----------------------------------------------------------------------------------------- the CLI
def test_cli_prints_accuracy_points_and_per_class(tmp_path, labels_csv, good_bytes, pred, labels):
    path = tmp_path / "predictions.csv"
    path.write_bytes(good_bytes)
    proc = run_cli(path, "--labels", labels_csv)
    assert proc.returncode == 0, proc.stderr
    expected = gp.score(pred, labels)
    assert f"accuracy {expected.accuracy:.2%}" in proc.stdout
    assert f"points {expected.points:.2f} / 12" in proc.stdout
    assert proc.stdout.count("  class ") == 10
    assert "confusion" not in proc.stdout and proc.stderr == ""


def test_cli_verbose_adds_the_confusion_matrix(tmp_path, labels_csv, good_bytes, pred, labels):
    path = tmp_path / "predictions.csv"
    path.write_bytes(good_bytes)
    proc = run_cli(path, "--labels", labels_csv, "--verbose")
    assert proc.returncode == 0
    table = proc.stdout.split("confusion matrix")[1].splitlines()[2:]
    matrix = np.array([[int(v) for v in row.split()[1:]] for row in table])
    np.testing.assert_array_equal(matrix, gp.score(pred, labels).confusion)


def test_cli_json(tmp_path, labels_csv, good_bytes, pred, labels):
    path = tmp_path / "predictions.csv"
    path.write_bytes(good_bytes)
    proc = run_cli(path, "--labels", labels_csv, "--json")
    assert proc.returncode == 0
    report = json.loads(proc.stdout)
    expected = gp.score(pred, labels)
    assert report["status"] == "scored" and report["file"] == str(path)
    assert report["accuracy"] == pytest.approx(expected.accuracy)
    assert report["points"] == pytest.approx(expected.points) and report["max_points"] == 12
    assert report["per_class_accuracy"] == pytest.approx(list(expected.per_class_accuracy))
    assert report["confusion_matrix"] == expected.confusion.tolist()
    assert report["message"]


def test_cli_json_for_an_invalid_file(tmp_path, labels_csv):
    path = tmp_path / "predictions.csv"
    path.write_text("Id,Label\n0,7.0\n")
    proc = run_cli(path, "--labels", labels_csv, "--json")
    assert proc.returncode == 2
    report = json.loads(proc.stdout)
    assert (report["status"], report["points"], report["accuracy"]) == ("invalid", 0, None)
    assert "'7.0'" in report["message"]
    assert_one_error_line(proc, "'7.0'")


def test_cli_reads_the_labels_path_from_the_config(tmp_path, labels_csv, good_bytes):
    path = tmp_path / "predictions.csv"
    path.write_bytes(good_bytes)
    proc = run_cli(path, env_extra={course_config.ENV_LABELS_CSV: str(labels_csv)})
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("labels_content, words", [
    (None, ["labels not found"]),
    (b"Id,Label\n0,1\n0,2\n", ["labels file", "duplicate"]),
    (b"Id,Label\n0,1\n2,2\n", ["labels file", "extra id"]),
    (b"Id,Label\n", ["labels file", "no rows"]),
    (b"Id,Label\n0,11\n", ["labels file", "out of range"]),
])
def test_labels_file_problems_exit_1(labels_content, words, tmp_path, good_bytes):
    labels_path, path = tmp_path / "labels.csv", tmp_path / "predictions.csv"
    path.write_bytes(good_bytes)
    if labels_content is not None:
        labels_path.write_bytes(labels_content)
    proc = run_cli(path, "--labels", labels_path)
    assert proc.returncode == 1
    assert_one_error_line(proc, *words)
    with pytest.raises(gp.LabelsError):
        gp.load_labels(labels_path)


@pytest.mark.parametrize("args", [[], ["--bogus"], ["a.csv", "--batch", "."], ["--batch", "."], ["--json"]],
                         ids=["nothing", "unknown-option", "file-and-batch", "batch-root-missing",
                              "json-only"])
def test_bad_arguments_exit_1(args, labels_csv, tmp_path):
    if args == ["--batch", "."]:
        args = ["--batch", tmp_path / "no-such-folder", "--labels", labels_csv]
    proc = run_cli(*args)
    assert proc.returncode == 1
    assert_one_error_line(proc)


def test_a_predictions_path_that_does_not_exist_is_a_bad_argument(tmp_path, labels_csv):
    proc = run_cli(tmp_path / "nope.csv", "--labels", labels_csv)
    assert proc.returncode == 1
    assert_one_error_line(proc, "no such file")


# ---------------------------------------------------------------------------------------- batch mode
@pytest.fixture
def nbgrader_tree(tmp_path, pred) -> Path:
    """submitted/<student>/hw2/predictions.csv: alice and carol valid, bob broken, dave without a file."""
    root = tmp_path / "submitted"
    files = {"alice": csv_bytes(range(N_IDS), pred), "bob": b"Id,Label\n0,cat\n",
             "carol": csv_bytes(range(N_IDS), (pred + 1) % 10)}
    for student, data in files.items():
        folder = root / student / course_config.ASSIGNMENT_ID
        folder.mkdir(parents=True)
        (folder / course_config.PREDICTIONS_FILENAME).write_bytes(data)
    (root / "dave" / course_config.ASSIGNMENT_ID).mkdir(parents=True)
    return root


@pytest.fixture
def flat_tree(tmp_path, pred) -> Path:
    root = tmp_path / "csvs"
    root.mkdir()
    (root / "alice.csv").write_bytes(csv_bytes(range(N_IDS), pred))
    (root / "bob.csv").write_bytes(b"Id,Label\n0,cat\n")
    (root / "carol.csv").write_bytes(csv_bytes(range(N_IDS), (pred + 1) % 10))
    (root / "notes.txt").write_text("not a submission")
    return root


def _read_gradebook(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("layout", ["nbgrader_tree", "flat_tree"])
def test_batch_cli_writes_gradebook_and_histogram(layout, request, tmp_path, labels_csv, pred, labels):
    root = request.getfixturevalue(layout)
    out = tmp_path / "grades" / "gradebook.csv"
    proc = run_cli("--batch", root, "--labels", labels_csv, "--out", out)
    assert proc.returncode == 0, proc.stderr
    rows = _read_gradebook(out)
    students = ["alice", "bob", "carol"] + (["dave"] if layout == "nbgrader_tree" else [])
    assert [row["student"] for row in rows] == students
    assert list(rows[0]) == list(PredictionsRow.COLUMNS)
    alice, bob = rows[0], rows[1]
    assert alice["status"] == "scored"
    assert float(alice["accuracy"]) == pytest.approx(gp.score(pred, labels).accuracy)
    assert (bob["status"], float(bob["points"]), bob["accuracy"]) == ("invalid", 0.0, "")
    assert "line 2: Label 'cat'" in bob["message"]
    if layout == "nbgrader_tree":
        assert (rows[3]["status"], float(rows[3]["points"])) == ("missing", 0.0)
    png = histogram_path(out)
    assert png.read_bytes().startswith(b"\x89PNG")
    assert "scored" in proc.stdout and "invalid" in proc.stdout and "median" in proc.stdout
    assert "grading" in proc.stderr  # the tqdm bar


def test_grade_tree_api_rows(nbgrader_tree, tmp_path, labels):
    rows = gp.grade_tree(nbgrader_tree, labels, tmp_path / "gb.csv", progress=False)
    assert [(row.student, row.status) for row in rows] == [
        ("alice", "scored"), ("bob", "invalid"), ("carol", "scored"), ("dave", "missing")]
    summary = predictions_summary(rows)
    assert summary.splitlines()[0] == "4 students: 2 scored, 1 invalid, 1 missing"


def test_batch_refuses_a_symlink_to_the_labels(nbgrader_tree, tmp_path, labels_csv, labels):
    """A submission linking to the held-out labels would otherwise score 100 %."""
    target = nbgrader_tree / "bob" / course_config.ASSIGNMENT_ID / course_config.PREDICTIONS_FILENAME
    target.unlink()
    target.symlink_to(labels_csv)
    rows = gp.grade_tree(nbgrader_tree, labels, tmp_path / "gb.csv", progress=False)
    bob = rows[1]
    assert (bob.status, bob.points) == ("invalid", 0.0) and "symbolic link" in bob.message


def test_batch_does_not_grade_its_own_gradebook(flat_tree, labels):
    out = flat_tree / "gradebook.csv"
    gp.grade_tree(flat_tree, labels, out, progress=False)
    rows = gp.grade_tree(flat_tree, labels, out, progress=False)
    assert [row.student for row in rows] == ["alice", "bob", "carol"]
