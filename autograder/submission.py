"""A submission: find its notebooks and predictions.csv, and extract the notebooks' definitions.

Extraction only parses (DESIGN.md, "Extract, don't execute"): the student's code runs later, in the
grading child. It uses the same ``tools/notebook_defs.py`` that ships to students, loaded by path so the
kit needs no second copy of it.
"""
from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path

import course_config

GRADED_NOTEBOOKS = ("simplenn", "simplenn_dev", "resnet")   # keys of course_config.NOTEBOOKS with hidden suites
_DEFS_PATH = course_config.REPO_ROOT / "source" / course_config.ASSIGNMENT_ID / "tools" / "notebook_defs.py"


def _load_notebook_defs():
    spec = importlib.util.spec_from_file_location("hw2_notebook_defs", _DEFS_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


notebook_defs = _load_notebook_defs()


@dataclass
class Submission:
    root: Path
    notebooks: dict[str, Path] = field(default_factory=dict)   # notebook key -> path, for those present
    predictions: Path | None = None
    problems: list[str] = field(default_factory=list)          # for the student's feedback


def _find(root: Path, name: str) -> Path | None:
    """``root/name``, else the shallowest ``name`` below root; symbolic links never count."""
    direct = root / name
    if direct.is_file() and not direct.is_symlink():
        return direct
    matches = sorted((p for p in root.rglob(name) if p.is_file() and not p.is_symlink()
                      and ".ipynb_checkpoints" not in p.parts), key=lambda p: (len(p.parts), str(p)))
    return matches[0] if matches else None


def find_submission(root: str | Path) -> Submission:
    root = Path(root)
    submission = Submission(root)
    for key, name in course_config.NOTEBOOKS.items():
        path = _find(root, name)
        if path is not None:
            submission.notebooks[key] = path
        elif key in GRADED_NOTEBOOKS:
            submission.problems.append(f"{name} is missing: its parts score 0")
    submission.predictions = _find(root, course_config.PREDICTIONS_FILENAME)
    return submission


def extract_modules(submission: Submission, out_dir: Path) -> dict[str, Path]:
    """Write ``out_dir/<key>.py`` for every graded notebook that was submitted; problems go to the submission."""
    out_dir.mkdir(parents=True, exist_ok=True)
    modules = {}
    for key in GRADED_NOTEBOOKS:
        if key not in submission.notebooks:
            continue
        name = course_config.NOTEBOOKS[key]
        try:
            extraction = notebook_defs.extract(submission.notebooks[key])
        except (ValueError, RecursionError, MemoryError) as error:
            submission.problems.append(f"{name} could not be read: {str(error)[:200]}")
            continue
        submission.problems += [f"{name}: {problem}" for problem in extraction.problems]
        path = out_dir / f"{key}.py"
        path.write_text(extraction.source(), encoding="utf-8")
        modules[key] = path
    return modules
