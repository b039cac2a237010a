"""A submission: find its notebooks and predictions.csv, and extract the notebooks' definitions.

Extraction only parses (DESIGN.md, "Extract, don't execute"): the student's code runs later, in the
grading child. It uses the same ``tools/notebook_defs.py`` that ships to students, loaded by path so the
kit needs no second copy of it.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

import course_config

from course_config import GRADED_NOTEBOOKS   # keys of course_config.NOTEBOOKS some part grades

course_config.use_student_tools()
from tools import notebook_defs  # noqa: E402 (the students' own reader of notebooks, found the one way)


@dataclass
class Submission:
    root: Path
    notebooks: dict[str, Path] = field(default_factory=dict)   # notebook key -> path, for those present
    predictions: Path | None = None
    problems: list[str] = field(default_factory=list)          # for the student's feedback


# What browsers, LMS exports, Jupyter's "Duplicate" and Colab add to a file name: " (1)", "-1", "_copy",
# "-Copy1", " copy 2" at the end of the stem, "Copy of " before it. Case is ignored too.
_ADDED_SUFFIX = re.compile(r"(\s*\(\d+\)|[-_ ]copy(\s*\d+)?|[-_]\d+)$", re.IGNORECASE)
_ADDED_PREFIX = re.compile(r"^copy of ", re.IGNORECASE)
_IGNORED_PARTS = {".ipynb_checkpoints", "__MACOSX", "__pycache__"}
_KIT_FILES = {"sample_predictions.csv"}   # shipped with the release: never a near-miss of anything
_SCAN_LIMIT = 5_000                        # files looked at below a submission's folder
_LISTED = 5                                # unrecognised files named in the feedback
_PROBLEMS_PER_NOTEBOOK = 20                # extraction problem lines of one notebook in the feedback
_shown = notebook_defs.shown_name          # a student-chosen name as a message shows it: printable, <= 100 chars


def _base_name(name: str) -> str:
    """``Copy of ResNet-CIFAR10 (1).IPYNB`` -> ``resnet-cifar10.ipynb``: the name without what downloads add."""
    stem, dot, suffix = name.rpartition(".")
    stem = _ADDED_PREFIX.sub("", (stem if dot else name).strip())
    while (shorter := _ADDED_SUFFIX.sub("", stem).strip()) != stem:
        stem = shorter
    return f"{stem}{dot}{suffix if dot else ''}".lower()


def _files(root: Path) -> list[Path]:
    """Notebooks and CSV files below ``root`` (relative paths, shallowest first); links, checkpoints, macOS
    resource forks and hidden files never count."""
    found = []
    for count, path in enumerate(root.rglob("*")):
        if count >= _SCAN_LIMIT:
            break
        relative = path.relative_to(root)
        if (path.suffix.lower() in (".ipynb", ".csv") and path.is_file() and not path.is_symlink()
                and not _IGNORED_PARTS & set(relative.parts) and not any(p.startswith(".") for p in relative.parts)):
            found.append(relative)
    return sorted(found, key=lambda p: (len(p.parts), str(p)))


def _pick(name: str, files: list[Path], problems: list[str]) -> tuple[Path | None, list[Path]]:
    """The file to grade as ``name`` and the candidates considered: the exact name at the top, else the one
    exact name in the shallowest sub-folder, else the one file whose name differs only by what downloads add
    (with a note asking for the exact name). Two candidates are never guessed between."""
    exact = [f for f in files if f.name == name]
    near = [f for f in files if f.name != name and _base_name(f.name) == name.lower()]
    candidates = [f for f in exact if len(f.parts) == len(exact[0].parts)] if exact else near
    if len(candidates) > 1:
        shown = ", ".join(_shown(f) for f in candidates[:_LISTED])
        problems.append(f"found {len(candidates)} files that could be {name} ({shown}): none was graded, so its "
                        f"parts score 0; submit exactly one file named {name}")
        return None, candidates
    if not candidates:
        return None, []
    chosen = candidates[0]
    if chosen.name != name:
        problems.append(f"graded {_shown(chosen)} as {name}: please name it exactly {name} next time")
    elif len(chosen.parts) > 1:
        problems.append(f"graded {_shown(chosen)} as {name} (found in a sub-folder)")
    return chosen, candidates


def _unrecognised(files: list[Path], missing: list[str]) -> list[str]:
    """One line per file that looks like a missing one (the first few), one line for the other files nobody
    graded."""
    lines, others = [], []
    for path in files:
        match = len(lines) < _LISTED and difflib.get_close_matches(_base_name(path.name), missing, n=1, cutoff=0.6)
        if match:
            lines.append(f"found {_shown(path)}: rename it to {match[0]} (it was not graded)")
        else:
            others.append(_shown(path))
    if others:
        more = f" and {len(others) - _LISTED} more" if len(others) > _LISTED else ""
        lines.append(f"also found, not graded: {', '.join(others[:_LISTED])}{more}")
    return lines


def find_submission(root: str | Path) -> Submission:
    """The notebooks and predictions.csv of a submission folder, with a note for every file found under
    another name, every ambiguity and every notebook or CSV file that was not graded."""
    root = Path(root)
    submission = Submission(root)
    files = _files(root)
    expected = {**course_config.NOTEBOOKS, "predictions": course_config.PREDICTIONS_FILENAME}
    considered, missing = set(), []
    for key, name in expected.items():
        found, candidates = _pick(name, files, submission.problems)
        considered.update(candidates)
        if found is not None:
            if key == "predictions":
                submission.predictions = root / found
            else:
                submission.notebooks[key] = root / found
        elif not candidates and (key in GRADED_NOTEBOOKS or key == "predictions"):
            missing.append(name)
    leftover = [p for p in files if p not in considered and p.name not in _KIT_FILES]
    submission.problems += _unrecognised(leftover, missing)
    submission.problems += [f"{name} is missing: its parts score 0" for name in missing
                            if name != course_config.PREDICTIONS_FILENAME]
    return submission


def extract_modules(submission: Submission, out_dir: Path) -> dict[str, Path]:
    """Write ``out_dir/<key>.py`` for every graded notebook that was submitted; problems go to the submission.

    This runs in the grading process itself, so reading is bounded by course_config's NOTEBOOK_MAX_* limits:
    a notebook over one is not graded and a cell over NOTEBOOK_MAX_CELL_BYTES is skipped, each with a note
    naming the limit and the fix; a notebook's first few problem lines are kept."""
    out_dir.mkdir(parents=True, exist_ok=True)
    modules = {}
    for key in GRADED_NOTEBOOKS:
        if key not in submission.notebooks:
            continue
        name = course_config.NOTEBOOKS[key]
        try:
            extraction = notebook_defs.extract(
                submission.notebooks[key], max_bytes=course_config.NOTEBOOK_MAX_BYTES,
                max_brackets=course_config.NOTEBOOK_MAX_BRACKETS, max_code_bytes=course_config.NOTEBOOK_MAX_CODE_BYTES,
                max_cell_bytes=course_config.NOTEBOOK_MAX_CELL_BYTES)
            source = extraction.source()
        except ValueError as error:   # NotebookTooLarge or not a notebook: the message names the file
            submission.problems.append(str(error))
            continue
        except (RecursionError, MemoryError) as error:   # not expected below the limits; never the grader's end
            submission.problems.append(f"{name} could not be read ({type(error).__name__})")
            continue
        problems = extraction.problems
        if len(problems) > _PROBLEMS_PER_NOTEBOOK:
            problems = problems[:_PROBLEMS_PER_NOTEBOOK - 1] + [
                f"and {len(problems) - _PROBLEMS_PER_NOTEBOOK + 1} more problems, not shown"]
        submission.problems += [f"{name}: {problem}" for problem in problems]
        path = out_dir / f"{key}.py"
        path.write_text(source, encoding="utf-8")
        modules[key] = path
    return modules
