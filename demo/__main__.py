"""`make demo`: the kit's main job end to end on a small synthetic CIFAR-10, in build/demo/.

Each step runs the real command an instructor or TA would type (printed before it runs):
the student release (nbgrader + leak check) -> synthetic archive -> course data set -> a student loading
it with tools.dataset -> scoring predictions files one by one and as a batch -> the gradebook ->
autograding a small class (reference solution, a buggy sample, the release stubs) and its code-similarity
check -> the same class in nbgrader's gradebook without running a notebook, a TA's hand grade, final grades ->
a one-epoch run of the reference ResNet-20 trainer (solutions/), its predictions.csv scored like a student's.
"""
from __future__ import annotations

import csv
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import course_config

REPO = course_config.REPO_ROOT
DEMO = Path("build") / "demo"  # relative to the repository root, where every command runs
ARCHIVE = DEMO / "cifar-10-python.tar.gz"
COURSE_DATA = DEMO / "course_data"
LABELS = DEMO / "private" / f"test_labels_{course_config.TERM}_demo.csv"
SUBMISSIONS = DEMO / "submissions"
GRADEBOOK = DEMO / "predictions_gradebook.csv"
SUBMITTED = DEMO / "submitted"
AUTOGRADED = DEMO / "autograded"
NBGRADER_COURSE = DEMO / "nbgrader_course"   # an nbgrader course directory: source/, submitted/, gradebook.db
BUGGY_SAMPLE_CHANGES = ("simplenn-conv1-padding", "swish-is-sigmoid", "colab-setup-cell")
SAMPLE_PREDICTIONS = REPO / "source" / course_config.ASSIGNMENT_ID / "sample_predictions.csv"
REFERENCE = DEMO / "reference"
# A quick CPU run of the reference trainer: 1,024 images at batch 32 (32 steps, enough for BatchNorm's
# running statistics to settle in one epoch), no flip TTA (it would double the 10,000 test predictions).
REFERENCE_QUICK_RUN = ("--epochs", "1", "--device", "cpu", "--train-subset", "1024", "--batch-size", "32", "--no-tta")


def _step(title: str) -> None:
    print(f"\n=== {title} " + "=" * max(0, 86 - len(title)), flush=True)


def _run(*args: str, expect: int = 0) -> None:
    command = [sys.executable, *args]
    print("$ python " + " ".join(shlex.quote(str(a)) for a in args), flush=True)
    code = subprocess.run(command, cwd=REPO).returncode
    if code != expect:
        raise SystemExit(f"demo: the command above exited {code}, expected {expect}")


def _student_loads_the_data() -> None:
    """What a student's notebook does, pointed at the demo build instead of the course server."""
    os.environ["HW2_DATA_SOURCE"] = str(COURSE_DATA / "manifest.json")
    course_config.use_student_tools()
    from tools.dataset import CIFAR10  # noqa: E402 (the student package, as the notebooks import it)
    root = DEMO / "student_data"
    shutil.rmtree(root, ignore_errors=True)
    splits = {mode: CIFAR10(root, mode=mode) for mode in ("train", "val", "test")}
    for mode, data in splits.items():
        print(f"  tools.dataset.CIFAR10(mode={mode!r}): {len(data):>6,} images"
              + ("" if data.targets is None else f", labels {np.bincount(data.targets).tolist()}"))
    image, label = splits["train"][0]
    print(f"  train[0] = ({type(image).__name__} {image.size}, {label}); classes {CIFAR10.classes[:3]}...")


def _write_submissions() -> None:
    """Three students: the sample file (every label 7), a strong model, and a broken file."""
    shutil.rmtree(SUBMISSIONS, ignore_errors=True)
    SUBMISSIONS.mkdir(parents=True)
    shutil.copyfile(SAMPLE_PREDICTIONS, SUBMISSIONS / "alice_sample.csv")
    labels = np.loadtxt(LABELS, delimiter=",", skiprows=1, dtype=np.int64)[:, 1]
    rng = np.random.default_rng(0)
    wrong = rng.random(len(labels)) < 0.07
    strong = np.where(wrong, (labels + rng.integers(1, 10, len(labels))) % 10, labels)
    order = rng.permutation(len(labels))  # any row order is fine
    (SUBMISSIONS / "bob_resnet20.csv").write_text(
        "Id,Label\n" + "".join(f"{i},{strong[i]}\n" for i in order), encoding="utf-8")
    broken = ["Id,Label"] + [f"{i},{strong[i]}" for i in range(len(labels))]
    broken[4242] = "4241,cat"
    (SUBMISSIONS / "carol_broken.csv").write_text("\n".join(broken) + "\n", encoding="utf-8")


def _write_class_submissions() -> None:
    """nbgrader's submitted/ tree: the reference solution, the reference with two classic mistakes (and a Colab
    set-up cell, which costs nothing), the stubs."""
    from fixtures import corpus  # the autograder's proving corpus knows how to plant realistic mistakes

    shutil.rmtree(SUBMITTED, ignore_errors=True)
    shutil.rmtree(AUTOGRADED, ignore_errors=True)
    changes = [m for m in (*corpus.MUTANTS, *corpus.VARIANTS) if m.id in BUGGY_SAMPLE_CHANGES]

    def plant(key, notebook):
        for change in changes:
            if change.notebook == key:
                change.apply(notebook)

    hw2 = course_config.ASSIGNMENT_ID
    corpus.build_submission(SUBMITTED / "reference" / hw2, predictions=SUBMISSIONS / "bob_resnet20.csv")
    corpus.build_submission(SUBMITTED / "buggy_sample" / hw2, predictions=SAMPLE_PREDICTIONS, edit=plant)
    corpus.build_submission(SUBMITTED / "release_stubs" / hw2, folder=corpus.RELEASE_DIR)


def _nbgrader_course() -> None:
    """The course directory nbgrader expects: source/ (generate_assignment fills gradebook.db) and the class."""
    from publishing.release import generate

    shutil.rmtree(NBGRADER_COURSE, ignore_errors=True)
    shutil.copytree(REPO / "source", NBGRADER_COURSE / "source", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(SUBMITTED, NBGRADER_COURSE / "submitted")
    generate(course_root=NBGRADER_COURSE, db_dir=NBGRADER_COURSE)
    print(f"nbgrader course in {NBGRADER_COURSE}/: source/, submitted/ (the class of step 7), gradebook.db")


def _hand_grade() -> None:
    """What a TA does in formgrader, through nbgrader's own API."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{(NBGRADER_COURSE / 'gradebook.db').resolve()}") as gradebook:
        answer = gradebook.find_grade("tf_1", "true-false", course_config.ASSIGNMENT_ID, "reference")
        answer.manual_score, answer.needs_manual_grade = 3.0, False
        gradebook.find_grade("lab1_h", "simplenn-cifar10", course_config.ASSIGNMENT_ID, "reference").extra_credit = 4.0
        gradebook.db.commit()
    print("TA (formgrader, here through nbgrader.api.Gradebook): reference gets 3 / 3 on statement 1.1 "
          "and 4 points of extra credit on Lab 1 (h)")


def _print_columns(csv_path: Path, columns) -> None:
    with open(csv_path, newline="", encoding="utf-8") as handle:
        rows = [[row[column] for column in columns] for row in csv.DictReader(handle)]
    rows.insert(0, list(columns))
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns) - 1)]
    print(f"\n{csv_path} (summary columns; one column per handout item too):")
    for row in rows:
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])


def _print_table(csv_path: Path) -> None:
    with open(csv_path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    print(f"\n{csv_path}:")
    for row in rows:
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])


def main() -> int:
    started = time.perf_counter()
    os.chdir(REPO)
    DEMO.mkdir(parents=True, exist_ok=True)

    _step("0. Instructor: regenerate the student release from source/ and check it for leaks")
    _run("-m", "publishing.release")

    _step("1. A synthetic cifar-10-python.tar.gz in the official format (no real CIFAR-10 here)")
    _run("-m", "fixtures.synthetic_cifar10", str(ARCHIVE), "--train-per-class", "500", "--test-per-class", "1000")

    _step("2. Instructor: build the term's course data set (demo secret, labels kept private)")
    _run("-m", "course_data.build", str(ARCHIVE), "--out", str(COURSE_DATA), "--labels-out", str(LABELS),
         "--base-url", str(COURSE_DATA), "--demo-secret", "--allow-unofficial")

    _step("3. Student: tools.dataset downloads, checks and loads the course zips")
    _student_loads_the_data()

    _step("4. TA: score one predictions.csv (a strong model, 7 % of labels wrong)")
    _write_submissions()
    _run("grade_predictions.py", str(SUBMISSIONS / "bob_resnet20.csv"), "--labels", str(LABELS))

    _step("5. TA: a broken file is refused with one line and exit status 2")
    _run("grade_predictions.py", str(SUBMISSIONS / "carol_broken.csv"), "--labels", str(LABELS), expect=2)

    _step("6. TA: score the whole folder into a gradebook (the batch goes on past the broken file)")
    _run("grade_predictions.py", "--batch", str(SUBMISSIONS), "--labels", str(LABELS), "--out", str(GRADEBOOK))
    _print_table(GRADEBOOK)

    _step("7. Autograder: grade the reference solution, a buggy sample and the release stubs")
    _write_class_submissions()
    _run("-m", "autograder", "grade-all", str(SUBMITTED), "--out", str(AUTOGRADED), "--labels", str(LABELS),
         "--jobs", "2")
    _print_table(AUTOGRADED / "gradebook.csv")
    print(f"\nfeedback of the buggy sample ({AUTOGRADED / 'buggy_sample' / 'hw2' / 'feedback.md'}):")
    print((AUTOGRADED / "buggy_sample" / course_config.ASSIGNMENT_ID / "feedback.md").read_text(encoding="utf-8"))

    _step("7b. Staff: the code-similarity check grade-all ran (the buggy sample is the reference solution with two "
          "planted mistakes: a copy)")
    print((AUTOGRADED / "similarity" / "similarity.md").read_text(encoding="utf-8"))

    _step("8. nbgrader: the class into the gradebook without running a notebook, a TA's grade, final grades")
    _nbgrader_course()
    _run("-m", "term", "import-nbgrader", str(NBGRADER_COURSE), "--results", str(AUTOGRADED))
    _hand_grade()
    final = NBGRADER_COURSE / "final"
    _run("-m", "term", "final-grades", str(NBGRADER_COURSE), "--results", str(AUTOGRADED), "--out", str(final))
    _print_columns(final / "final_grades.csv", ("student", "autograded", "manual", "bonus", "total", "ungraded", "flags"))

    _step("9. Instructor: one epoch of the reference ResNet-20 (fast pipeline, CPU), its predictions scored")
    step_started = time.perf_counter()
    shutil.rmtree(REFERENCE, ignore_errors=True)
    _run("-m", "solutions.train_resnet20", "--pipeline", "fast", *REFERENCE_QUICK_RUN,
         "--data-source", str(COURSE_DATA / "manifest.json"), "--data-root", str(REFERENCE / "data"),
         "--out", str(REFERENCE))
    _run("grade_predictions.py", str(REFERENCE / "predictions.csv"), "--labels", str(LABELS))
    print(f"(step 9 took {time.perf_counter() - step_started:.0f} s; the full recipe: "
          "python -m solutions.train_resnet20 --pipeline fast, 40 epochs on a GPU)")

    print(f"demo finished in {time.perf_counter() - started:.0f} s; everything it wrote is under {DEMO}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
