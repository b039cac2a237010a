"""Where each child of a grading runs and what it sees: the two stages (export: student code; judge: the hidden
suites), their pytest command lines, the layout of a student process spawned per submission, and the
environments of every child, built once here."""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import course_config
from course_config import GRADED_NOTEBOOKS, SUITE_PARTS
from autograder import sandbox, warm_judge
from autograder.student_side import protocol

KIT_DIR = warm_judge.KIT_DIR   # the autograder package


@dataclass(frozen=True)
class Stage:
    """One kind of child: which test files it runs (``<prefix><part>.py`` in ``folder``, a package folder of
    the kit) and whether student code runs in it."""
    name: str
    folder: str                  # below autograder/
    prefix: str
    student_code: bool


EXPORT = Stage("export", "student_side/exports", "export_", True)   # a child of the zygote, with bwrap
JUDGE = Stage("judge", "suites", "test_", False)                    # a child of the warm judge


@dataclass
class Layout:
    """Where everything is for a student process spawned per submission (the subprocess fallback, or bwrap where
    the zygote cannot isolate its children), as it sees it, and the host folders it may write."""
    tests: Path
    student: Path
    programs: Path
    report: Path
    home: Path
    python_path: list[Path]
    mounts: list[sandbox.Mount]
    writable: list[Path]


def spawned_layout(private: Path, student_dir: Path, programs: Path, use_bwrap: bool,
                   user: int | None) -> Layout:
    """The layout of a student process spawned per submission (usually, with bwrap, it is a zygote's child)."""
    (private / "report").mkdir()
    (private / "home").mkdir()
    if user is not None:   # the fallback's child runs as another user: let it reach its own folders only
        for folder in (private, private / "report", private / "home"):
            os.chown(folder, user, user)
        student_dir.chmod(0o755)
    if not use_bwrap:
        return Layout(KIT_DIR / EXPORT.folder, student_dir, programs, private / "report" / "report.json",
                      private / "home", [course_config.REPO_ROOT, warm_judge.STUDENT_PACKAGE_DIR], [],
                      [programs, private / "report", private / "home"])
    grading = Path("/grading")
    mounts = [*warm_judge.student_kit_mounts(), sandbox.Mount(student_dir, grading / "student"),
              sandbox.Mount(programs, grading / "programs", writable=True),
              sandbox.Mount(private / "report", grading / "report", writable=True)]
    return Layout(warm_judge.KIT_INSIDE / EXPORT.folder, grading / "student", grading / "programs",
                  grading / "report" / "report.json", Path("/tmp"),
                  [warm_judge.KIT_INSIDE.parent, warm_judge.STUDENT_PACKAGE_INSIDE], mounts,
                  [programs, private / "report"])


def _base_env() -> dict:
    """What every child's environment starts from: this interpreter's bin/ first on PATH, no pytest plugins
    but the kit's, no display, one thread (the suites use tiny batches: one thread is as fast, and parallel
    gradings do not fight over cores), and the locale and GPU choice of the grader."""
    return {"PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"]),
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1"} | {name: os.environ[name] for name in ("CUDA_VISIBLE_DEVICES", "LANG", "LC_ALL")
                                       if name in os.environ}


def _notebook_names() -> str:
    return json.dumps({key: course_config.NOTEBOOKS[key] for key in GRADED_NOTEBOOKS})


def judging_env(student: Path, programs: Path, manifest: Path, report: Path, device: str, probe_seed: int,
                unloadable: list[str]) -> dict:
    """What one judging reads (paths as the judge sees them), on top of ``judge_env``."""
    return {protocol.STUDENT_DIR: str(student), protocol.PROGRAMS_DIR: str(programs),
            protocol.MANIFEST: str(manifest), protocol.REPORT_PATH: str(report), protocol.GRADING_DEVICE: device,
            protocol.PROBE_SEED: str(probe_seed),
            protocol.UNLOADABLE: json.dumps(unloadable), protocol.NOTEBOOK_NAMES: _notebook_names()}


def student_env(student: Path, report: Path, programs: Path, home: Path, device: str, probe_seed: int,
                broken_modules: dict, skipped_statements: dict) -> dict:
    """What the student process reads (paths as it sees them)."""
    return {"HOME": str(home), "TMPDIR": str(home),
            protocol.STUDENT_DIR: str(student), protocol.REPORT_PATH: str(report),
            protocol.PROGRAMS_DIR: str(programs), protocol.GRADING_DEVICE: device,
            protocol.PROBE_SEED: str(probe_seed),
            protocol.NOTEBOOK_NAMES: _notebook_names(),
            protocol.BROKEN_MODULES: json.dumps(broken_modules),
            protocol.SKIPPED_STATEMENTS: json.dumps(skipped_statements)}


def spawned_env(layout: Layout, nonce_fd: int, student: dict) -> dict:
    """The whole environment of a student process spawned per submission (``student``: ``student_env``'s)."""
    return _base_env() | {"PYTHONPATH": os.pathsep.join(str(p) for p in layout.python_path),
                          "PYTHONDONTWRITEBYTECODE": "1", protocol.NONCE_FD: str(nonce_fd), **student}


def judge_env() -> dict:
    """The warm judge's environment (each judging adds its own HW2_* names). No PYTHON* names: the judge runs
    Python in isolated mode, which would ignore them."""
    return _base_env() | {"HOME": "/"}


def pytest_args(stage: Stage, tests: Path, parts: list[str]) -> list[str]:
    """pytest's arguments for ``parts`` of ``stage``, its files in ``tests`` (as the child sees that folder)."""
    return [*(str(tests / f"{stage.prefix}{part}.py") for part in parts), "-c", str(tests / "pytest.ini"),
            "--rootdir", str(tests), "-q", "-p", "no:cacheprovider", "-p", "autograder.student_side.report_plugin"]


def exported_parts() -> list[str]:
    """The parts with an export file of their own (``student_side/exports/export_<part>.py``). A part without one
    is judged on the programs other parts export (a new check of SimpleNN needs no new export)."""
    folder = KIT_DIR / EXPORT.folder
    return [part for part in SUITE_PARTS if (folder / f"{EXPORT.prefix}{part}.py").is_file()]
