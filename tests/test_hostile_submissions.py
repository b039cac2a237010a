"""The hostile corpus (tests/hostile.py) graded as one class by the real ``grade-all`` CLI, in the sandbox.

One batch: an honest student and every attack. It must complete, every attack must end with the right
low score and a clear status, the honest student must keep full marks, and nothing outside the sandbox
may be touched (the sentinel folder, the results folder, the TCP server on the host's loopback).
The attacks that try to escape need bubblewrap (``apt-get install bubblewrap``; CI installs it); without
it this file is skipped, and the subprocess fallback is covered by the safe attacks further down.
"""
from __future__ import annotations

import csv
import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import course_config
from autograder import sandbox
from autograder.results import Results
from fixtures import corpus
from tests.hostile import ATTACKS, SUITE_PARTS, Attack

# One worker grades the whole class (pytest-xdist would otherwise build the module fixture once per worker);
# the tests that grade classes of their own run wherever a worker is free.
ON_THE_CLASS = pytest.mark.xdist_group("hostile-class")

HW2 = course_config.ASSIGNMENT_ID
PARTS = (*SUITE_PARTS, "predictions")
PART_TIMEOUT_S = 10       # the attacks' endless loops cost this, not the course's 30 s
MEMORY_MB = 2000          # the honest suites peak at ~0.9 GB resident


class _ListeningServer:
    """A TCP server on the host's loopback that records whether anything ever connected."""

    def __init__(self):
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.connections += 1
            connection.close()


def _build_class(root: Path, labels_csv: Path, attacks, paths: dict) -> Path:
    submitted = root / "submitted"
    corpus.build_submission(submitted / "honest" / HW2, predictions=labels_csv)
    for attack in attacks:
        def edit(key, nb, attack=attack):
            if key == attack.notebook:
                attack.apply(nb, **paths)
        dest = submitted / attack.id / HW2
        corpus.build_submission(dest, folder=corpus.RELEASE_DIR if attack.base == "release" else corpus.SOURCE_DIR,
                                predictions=labels_csv, edit=edit)
        if attack.huge_predictions:
            with open(dest / course_config.PREDICTIONS_FILENAME, "a", encoding="utf-8") as handle:
                handle.write("0,0\n" * (course_config.PREDICTIONS_MAX_BYTES // 4 + 1000))
    return submitted


def _grade_all(submitted: Path, out: Path, labels_csv: Path, *extra: str) -> subprocess.CompletedProcess:
    jobs = () if "--jobs" in extra else ("--jobs", "2")
    return subprocess.run([sys.executable, "-m", "autograder", "grade-all", str(submitted), "--out", str(out),
                           "--labels", str(labels_csv), "--device", "cpu", *jobs,
                           "--part-timeout", str(PART_TIMEOUT_S), "--memory-mb", str(MEMORY_MB), *extra],
                          cwd=course_config.REPO_ROOT, capture_output=True, text=True, timeout=900)


def _expected_points(attack: Attack, result: dict) -> dict[str, float]:
    full = {part: float(course_config.AUTOGRADED_POINTS[part]) for part in PARTS}
    if attack.base == "release":
        full.update({part: 0.0 for part in SUITE_PARTS if part not in attack.scores})
    if "tampered" in attack.status:
        full = {part: 0.0 for part in PARTS}
    return {part: 0.0 if part in attack.loses else points for part, points in full.items()}


def _assert_graded_as_expected(attack: Attack, out: Path) -> dict:
    result = json.loads((out / attack.id / HW2 / "results.json").read_text(encoding="utf-8"))
    assert result["extra_data"]["status"] in attack.status, (attack.id, result["extra_data"])
    assert Results.from_gradescope(result).part_points() == _expected_points(attack, result), (attack.id, Results.from_gradescope(result).part_points(), result["output"])
    text = json.dumps(result)
    assert "LEAKED" not in text, attack.id
    assert not [t for t in result["tests"] if len(t["output"]) > 300 * 12], "a scored row lists a few short causes"
    assert "deduction(" not in text and "def test_" not in text, "no hidden suite text reaches the results"
    assert len(text.encode()) < 128 * 1024, f"{attack.id}: results.json is {len(text.encode()):,} bytes"
    feedback = (out / attack.id / HW2 / "feedback.md").read_bytes()
    assert len(feedback) <= 16 * 1024 and b"deduction(" not in feedback
    assert bool(result["extra_data"]["review"]) == attack.reviewed, (attack.id, result["extra_data"]["review"])
    return result


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory, course_data):
    if sandbox.bwrap_problem():
        pytest.skip(f"the escape attacks need the bwrap sandbox: {sandbox.bwrap_problem()}")
    root = tmp_path_factory.mktemp("hostile")
    labels_csv = course_data[1]
    sentinel = root / "sentinel"
    sentinel.mkdir()
    (sentinel / "precious.txt").write_text("do not delete", encoding="utf-8")
    server = _ListeningServer()
    out = root / "autograded"
    paths = {"labels": str(labels_csv), "other": str(root / "submitted" / "honest" / HW2), "sentinel": str(sentinel),
             "out": str(out / "write-results-and-feedback" / HW2), "port": server.port}
    submitted = _build_class(root, labels_csv, ATTACKS, paths)
    completed = _grade_all(submitted, out, labels_csv)
    return {"completed": completed, "out": out, "sentinel": sentinel, "server": server, "submitted": submitted}


@ON_THE_CLASS
def test_the_batch_completes_and_the_honest_student_keeps_full_marks(graded_class):
    completed, out = graded_class["completed"], graded_class["out"]
    assert completed.returncode == 0, completed.stderr[-2000:]
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    assert set(rows) == {"honest", *(attack.id for attack in ATTACKS)}
    assert float(rows["honest"]["total"]) == sum(course_config.AUTOGRADED_POINTS.values())
    assert rows["honest"]["status"] == "graded"
    for attack in ATTACKS:
        expected = "graded" if attack.status == ("ok",) else attack.status
        assert rows[attack.id]["status"] in expected, (attack.id, rows[attack.id])


@ON_THE_CLASS
@pytest.mark.parametrize("attack", ATTACKS, ids=lambda attack: attack.id)
def test_each_attack_gets_the_right_low_score_and_status(graded_class, attack):
    result = _assert_graded_as_expected(attack, graded_class["out"])
    assert result["extra_data"]["sandbox"] == "bwrap"
    if "tampered" in attack.status:
        assert result["score"] == 0
        assert result["extra_data"]["staff_message"].startswith("flagged as tampered")
        assert "flagged for review" in (graded_class["out"] / attack.id / HW2 / "feedback.md").read_text()
    for part in attack.loses:
        reasons = " ".join(t["output"] for t in result["tests"] if t["tags"] == [part])
        if "needs manual grading" in attack.status and part in result["extra_data"]["needs_manual_grading"]:
            assert "a TA will grade this part by hand" in reasons, reasons
        elif attack.status != ("ok",) and not {"tampered", "needs manual grading"} & set(attack.status):
            assert any(word in reasons for word in ("seconds", " s ", "MB", "processes", "exited")), reasons
    if "needs manual grading" in attack.status:
        assert set(result["extra_data"]["needs_manual_grading"]) == {"simplenn"}, result["extra_data"]


@ON_THE_CLASS
def test_nothing_outside_the_sandbox_is_touched(graded_class):
    assert (graded_class["sentinel"] / "precious.txt").read_text(encoding="utf-8") == "do not delete"
    assert sorted(p.name for p in graded_class["sentinel"].iterdir()) == ["precious.txt"]
    assert graded_class["server"].connections == 0
    forged = graded_class["out"] / "write-results-and-feedback" / HW2
    assert sorted(p.name for p in forged.iterdir()) == ["feedback.md", "results.json"]
    assert json.loads((forged / "results.json").read_text())["extra_data"]["status"] == "ok"
    assert (graded_class["submitted"] / "honest" / HW2 / course_config.NOTEBOOKS["simplenn"]).is_file()


def _results(out: Path, student: str) -> dict:
    result = json.loads((out / student / HW2 / "results.json").read_text(encoding="utf-8"))
    extra = result["extra_data"]
    return {"points": Results.from_gradescope(result).part_points(), "status": extra["status"],
            "staff_message": extra["staff_message"], "problems": extra["problems"], "review": extra["review"],
            "needs_manual_grading": extra["needs_manual_grading"],
            "checks": {t["name"]: (t["status"], t["output"]) for t in result["tests"]}}


def test_an_attacker_between_two_honest_students_changes_nothing_for_them(tmp_path, course_data):
    """grade-all --jobs 1: one warm judge serves the class in turn (the attacker's forged program once made the
    judge run its code, which zeroed the two honest students graded after it). Each honest student's results
    are those of grading the reference solution alone (test_autograder_corpus.py): every point, status ok, no
    note, no finding; and the two are identical."""
    if sandbox.bwrap_problem():
        pytest.skip(f"the attacks need the bwrap sandbox: {sandbox.bwrap_problem()}")
    labels_csv = course_data[1]
    attacker = next(attack for attack in ATTACKS if attack.id == "forged-program-maps-a-file")
    submitted = tmp_path / "submitted"
    corpus.build_submission(submitted / "a-honest" / HW2, predictions=labels_csv)
    corpus.build_submission(submitted / "b-attacker" / HW2, predictions=labels_csv,
                            edit=lambda key, nb: attack_edit(attacker, key, nb))
    corpus.build_submission(submitted / "c-honest" / HW2, predictions=labels_csv)
    completed = _grade_all(submitted, tmp_path / "class", labels_csv, "--jobs", "1")
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert _results(tmp_path / "class", "b-attacker")["status"] == "tampered"
    first, second = (_results(tmp_path / "class", honest) for honest in ("a-honest", "c-honest"))
    assert first == second
    full = {part: float(points) for part, points in course_config.AUTOGRADED_POINTS.items()}
    assert (first["points"], first["status"], first["staff_message"], first["problems"], first["review"],
            first["needs_manual_grading"]) == (full, "ok", None, [], [], {})
    assert all(status == "passed" for status, _ in first["checks"].values())


def attack_edit(attack: Attack, key: str, nb) -> None:
    if key == attack.notebook:
        attack.apply(nb)


SAFE_ATTACKS = [a for a in ATTACKS if a.id in ("os-exit-in-forward", "endless-loop-at-import", "memory-bomb",
                                               "monkeypatch-torch", "rewrite-the-report", "atexit-handler",
                                               "report-recursion-bomb")]


def test_the_subprocess_fallback_contains_the_safe_attacks(tmp_path, course_data):
    """Without bubblewrap: the same limits, report checks and reruns (no file-system or network isolation)."""
    labels_csv = course_data[1]
    submitted = _build_class(tmp_path, labels_csv, SAFE_ATTACKS, {})
    completed = _grade_all(submitted, tmp_path / "out", labels_csv, "--sandbox", "subprocess")
    assert completed.returncode == 0, completed.stderr[-2000:]
    for attack in SAFE_ATTACKS:
        result = _assert_graded_as_expected(attack, tmp_path / "out")
        assert result["extra_data"]["sandbox"] == "subprocess"
