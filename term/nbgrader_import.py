"""Put a graded class into nbgrader's gradebook without running a notebook, with the grader's scores.

    python -m term import-nbgrader COURSE --results AUTOGRADED_ROOT [--db-url URL]

``COURSE`` is an nbgrader course directory (``source/hw2/``, ``submitted/<student>/hw2/``);
``AUTOGRADED_ROOT`` is where ``grade-all`` wrote ``<student>/hw2/results.json``.

1. ``nbgrader autograde hw2 --create`` with its Execute preprocessor disabled: nbgrader records every
   submission, restores locked cells and writes ``autograded/<student>/hw2/``, but no student code runs
   (nbgrader's own autograde would execute every training cell, outside any sandbox). Students already
   autograded are skipped, so hand grades are never touched by a rerun.
2. Every autograded part's test cell (``<part>_tests``, see ``publishing/handout_points.py``) gets the part's
   points from results.json: its ``auto_score``, or for a bonus part its ``extra_credit`` (the cell carries 0
   points). Without execution nbgrader would give a test cell full points, so a student without results
   gets 0 there, never nbgrader's default. A TA's own score for a cell (``manual_score``) always wins in
   nbgrader and is never written here. A part the grader could not judge (``needs manual grading``: code
   torch.export cannot capture) scores 0 and its cell is marked as needing a manual grade, so formgrader lists
   it for a TA beside the answer cells until one grades it.
3. The grader's feedback for each part becomes the output of that test cell in the autograded notebook, so
   formgrader shows it and ``nbgrader generate_feedback`` puts it in the student's HTML.
Running it again is safe: the same results give the same gradebook and notebooks.
"""
from __future__ import annotations

import json
import logging
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

import course_config
from common import cli
from autograder.results import Results
from term.nbgrader import default_db_url, run_nbgrader

log = logging.getLogger(__name__)
ASSIGNMENT = course_config.ASSIGNMENT_ID
NO_RESULTS = "no autograder results for this submission (run `python -m autograder grade-all` first): 0 points"


def test_cells() -> dict[str, tuple[str, str, bool]]:
    """part -> (its test cell's grade_id, the notebook's name without .ipynb as nbgrader names it, bonus or not)."""
    return {part: (grade_id, Path(course_config.NOTEBOOKS[key]).stem, bonus)
            for part, (grade_id, key, bonus) in course_config.PART_TEST_CELLS.items()}


_FAILED_STUDENT = re.compile(r"There was an error processing assignment '[^']*' for student '([^']*)'")


def students_nbgrader_must_not_read(course: Path) -> list[str]:
    """Students whose folder nbgrader's parser must not see: a notebook over the grader's own
    NOTEBOOK_MAX_BYTES (nbgrader reads every byte, in the staff's process), or a name with a comma (nbgrader's
    exclusion list is comma-separated)."""
    skipped = []
    for folder in sorted((course / "submitted").iterdir()):
        notebooks = (folder / ASSIGNMENT).glob("*.ipynb") if folder.is_dir() else ()
        if "," in folder.name or any(nb.stat().st_size > course_config.NOTEBOOK_MAX_BYTES for nb in notebooks):
            skipped.append(folder.name)
    return skipped


def run_autograde_without_executing(course: Path, db_url: str) -> list[str]:
    """nbgrader autograde for every submitted student, its Execute preprocessor off; returns the students it
    did not or could not process (an oversized notebook, one that is not valid JSON): the class goes on
    without them."""
    skipped = students_nbgrader_must_not_read(course)
    done = run_nbgrader("autograde", ASSIGNMENT, "--create", "--Execute.enabled=False", "--log-level=WARN",
                        f"--CourseDirectory.root={course.resolve()}", f"--CourseDirectory.db_url={db_url}",
                        f"--CourseDirectory.student_id_exclude={','.join(s for s in skipped if ',' not in s)}",
                        cwd=course)
    failed = sorted(set(_FAILED_STUDENT.findall(done.stdout + done.stderr)) | set(skipped))
    if done.returncode != 0 and not failed:
        raise cli.StaffError(f"nbgrader autograde failed (exit {done.returncode}): "
                             f"{(done.stderr or done.stdout).strip().splitlines()[-1:]}")
    for student in failed:
        log.warning("%s: nbgrader could not read a notebook of this submission; it is not in formgrader", student)
    return failed


def load_results(results_root: Path, student: str) -> Results | None:
    """The student's results.json from grade-all, or None when there is none (or it cannot be read)."""
    path = results_root / student / ASSIGNMENT / "results.json"
    try:
        return Results.load(path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as problem:
        log.warning("%s: %s is unreadable (%s); its parts get 0", student, path, type(problem).__name__)
        return None


def part_feedback(results: Results | None, part: str) -> str:
    """What the test cell of ``part`` shows the student: the grader's verdict for that part."""
    if results is None:
        return NO_RESULTS
    points = course_config.AUTOGRADED_POINTS[part]
    earned = results.part_points()[part]
    scored = [t for t in results.tests if t.part == part and t.scored]
    lines = [f"hw2 autograder: {earned:g} / {points:g} points for {part}"
             + (" (bonus: extra credit)" if part in course_config.BONUS_PARTS else "")]
    lines += [line for test in scored for line in test.output.splitlines()]
    return "\n".join(lines) + "\n"


def _write_outputs(notebook_path: Path, outputs: dict[str, str]) -> None:
    """Set the test cells' outputs (grade_id -> text) in an autograded notebook nbgrader left read-only."""
    notebook = json.loads(notebook_path.read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id in outputs and cell["cell_type"] == "code":
            cell["outputs"] = [{"name": "stdout", "output_type": "stream", "text": outputs[grade_id]}]
    mode = notebook_path.stat().st_mode
    notebook_path.chmod(mode | stat.S_IWUSR)
    notebook_path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    notebook_path.chmod(mode)


@dataclass
class ImportSummary:
    students: int = 0
    without_results: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)   # nbgrader autograde failed on them

    def line(self) -> str:
        missing = f"; no results for {', '.join(self.without_results)} (0 autograded points)" if self.without_results else ""
        broken = (f"; nbgrader could not read a notebook of {', '.join(self.unreadable)}: grade those answers "
                  "by hand outside formgrader (final-grades lists them)" if self.unreadable else "")
        return f"nbgrader gradebook: autograded points of {self.students} students written{missing}{broken}"


def write_scores(course: Path, results_root: Path, db_url: str) -> ImportSummary:
    """Write every student's autograded points into the gradebook and their feedback into the autograded
    notebooks."""
    from nbgrader.api import Gradebook, MissingEntry

    cells, summary = test_cells(), ImportSummary()
    with Gradebook(db_url) as gradebook:
        for submission in gradebook.find_assignment(ASSIGNMENT).submissions:
            student = submission.student.id
            results = load_results(results_root, student)
            earned = results.part_points() if results else {}
            manual = results.needs_manual if results else {}
            outputs: dict[str, dict[str, str]] = {}
            for part, (grade_id, notebook, bonus) in cells.items():
                try:
                    grade = gradebook.find_grade(grade_id, notebook, ASSIGNMENT, student)
                except MissingEntry:
                    raise cli.StaffError(f"the gradebook has no cell {grade_id} in {notebook}: regenerate the "
                                         "assignment (nbgrader generate_assignment) from this kit's source/") from None
                points = float(earned.get(part, 0.0))
                grade.auto_score, grade.extra_credit = (0.0, points) if bonus else (points, None)
                # a part the grader could not judge waits for a TA, as an answer cell does, until one grades it
                grade.needs_manual_grade = part in manual and grade.manual_score is None
                outputs.setdefault(notebook, {})[grade_id] = part_feedback(results, part)
            gradebook.db.commit()
            for notebook, texts in outputs.items():
                path = course / "autograded" / student / ASSIGNMENT / f"{notebook}.ipynb"
                if path.is_file():
                    _write_outputs(path, texts)
            summary.students += 1
            if results is None:
                summary.without_results.append(student)
    return summary


def check_course(course: Path, results_root: Path) -> None:
    if not (course / "submitted").is_dir():
        raise cli.StaffError(f"{course} has no submitted/ folder: give the nbgrader course directory")
    if not results_root.is_dir():
        raise cli.StaffError(f"{results_root} does not exist: run `python -m autograder grade-all` first")
    if results_root.resolve() == (course / "autograded").resolve():
        raise cli.StaffError(f"{results_root} is nbgrader's own autograded/ folder: run grade-all with another "
                             "--out (e.g. COURSE/autograder_results), or nbgrader skips every student")


def import_class(course: Path, results_root: Path, db_url: str | None = None) -> ImportSummary:
    check_course(course, results_root)
    db_url = db_url or default_db_url(course)
    unreadable = run_autograde_without_executing(course, db_url)
    summary = write_scores(course, results_root, db_url)
    summary.unreadable = unreadable
    return summary
