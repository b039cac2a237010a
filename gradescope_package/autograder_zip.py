"""Package the autograder for Gradescope: ``autograder.zip`` with ``setup.sh`` and ``run_autograder``.

    python -m gradescope_package.autograder_zip build --out build/gradescope/autograder.zip [--labels LABELS.csv]

The zip holds only what grading needs: ``course_config.py``, ``requirements.txt``, the ``common`` package (the
command-line convention, the predictions library, the reports), the ``autograder`` package (the grader alone:
course data, release publishing and this packaging live in packages of their own, so the whole package is
exactly what grading needs),
the student ``tools/`` package (``source/hw2/tools``: the grader loads ``notebook_defs.py`` from there
and student modules import ``tools``), the two scripts rendered from ``gradescope_package/scripts/``,
and the held-out labels at ``LABELS_IN_ZIP``. Never a notebook: the source notebooks hold the solutions.

The labels sit in ``private/``, outside ``autograder/`` and ``source/``, which are the only kit folders
the grading sandbox mounts. Staff upload the zip; Gradescope never shows it to students.

The zip is deterministic (sorted entries, fixed timestamps and modes): the same kit and labels give the
same bytes. The build refuses (one line, exit 1) a missing or invalid labels file, a script that
``bash -n`` rejects, and a packed file holding a notebook or an nbgrader solution marker.
"""
from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import course_config
from common import cli, predictions
from publishing.leak_check import MARKERS

REPO_ROOT = course_config.REPO_ROOT
SCRIPTS_DIR = Path(__file__).resolve().parent / "scripts"
SCRIPTS = ("setup.sh", "run_autograder")                    # at the zip's root, as Gradescope requires
LABELS_DIR_IN_ZIP = "private"
LABELS_IN_ZIP = f"{LABELS_DIR_IN_ZIP}/test_labels_{course_config.TERM}.csv"
VENV = "/opt/hw2-venv"                                       # where setup.sh puts the requirements
PIP_VERSION = "23.2.1"                                       # the pip of the kit's own .venv (Python 3.11.7)
WALL_LIMIT_MARGIN_S = 180                                    # imports, extraction and scoring around the suites
DEFAULT_OUT = REPO_ROOT / "build" / "gradescope" / "autograder.zip"

_TOP_LEVEL = ("course_config.py", "requirements.txt")
# The grader is the whole autograder package (nothing else of the kit lives there) and the common package below
# it, plus the student tools/ package: the grader loads notebook_defs.py from it and student modules import tools.
_WHOLE_FOLDERS = ("autograder", "common", f"source/{course_config.ASSIGNMENT_ID}/tools")
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)                          # the earliest time a zip entry can hold


class BuildError(cli.StaffError):
    """The zip cannot be built; the message says what to fix."""


def kit_files() -> list[str]:
    """Every kit file the zip holds (relative POSIX paths, sorted), the scripts and labels aside."""
    files = set(_TOP_LEVEL)
    for folder in _WHOLE_FOLDERS:
        files |= {p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / folder).rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
    return sorted(files)


def render_script(name: str) -> str:
    """A script of scripts/ with its @@PLACEHOLDERS@@ filled in; BuildError if bash -n fails."""
    text = (SCRIPTS_DIR / name).read_text(encoding="utf-8")
    values = {"VENV": VENV, "PIP_VERSION": PIP_VERSION, "LABELS": LABELS_IN_ZIP, "LABELS_DIR": LABELS_DIR_IN_ZIP,
              "WALL_LIMIT_S": str(course_config.GRADING_TIMEOUT_S + WALL_LIMIT_MARGIN_S)}
    for key, value in values.items():
        text = text.replace(f"@@{key}@@", value)
    if "@@" in text:
        raise BuildError(f"{SCRIPTS_DIR / name} has an unknown @@PLACEHOLDER@@; the known ones are {sorted(values)}")
    check = subprocess.run(["bash", "-n"], input=text, capture_output=True, text=True)
    if check.returncode != 0:
        first = (check.stderr.strip().splitlines() or ["bash -n failed"])[0]
        raise BuildError(f"{SCRIPTS_DIR / name} is not valid bash ({first}); fix the template and build again")
    return text


def _check_clean(name: str, data: bytes) -> None:
    if name.endswith(".ipynb"):
        raise BuildError(f"{name} is a notebook; the zip must never hold one (the source notebooks hold the solutions)")
    marker = MARKERS.search(data.decode("utf-8", "replace"))
    if marker:
        raise BuildError(f"{name} holds the nbgrader marker '{marker.group(0)}'; no solution may ship in the zip")


def entries(labels_csv: Path) -> list[tuple[str, bytes, int]]:
    """(name in the zip, content, Unix mode) of every entry, sorted by name; BuildError on any problem."""
    try:
        predictions.load_labels(labels_csv)
    except predictions.LabelsError as error:
        raise BuildError(f"{error}; the zip needs the term's held-out labels") from None
    items = [(name, render_script(name).encode("utf-8"), 0o755) for name in SCRIPTS]
    items += [(name, (REPO_ROOT / name).read_bytes(), 0o644) for name in kit_files()]
    for name, data, _ in items:
        _check_clean(name, data)
    items.append((LABELS_IN_ZIP, Path(labels_csv).read_bytes(), 0o600))
    return sorted(items)


def build(out: Path, labels_csv: Path) -> list[str]:
    """Write the zip to ``out``; returns the names of its entries."""
    items = entries(labels_csv)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, data, mode in items:
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.external_attr = (0o100000 | mode) << 16            # a regular file with this mode
            info.create_system = 3                                  # Unix, so unzip restores the mode
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data, compresslevel=9)
    partial.replace(out)
    return [name for name, _, _ in items]


def main(argv: list[str] | None = None) -> int:
    parser = cli.Parser(prog="python -m gradescope_package.autograder_zip", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("build", help="write autograder.zip for Gradescope")
    command.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default {DEFAULT_OUT.relative_to(REPO_ROOT)}")
    command.add_argument("--labels", type=Path, default=None,
                         help="held-out labels CSV (default: course_config.labels_csv_path())")
    args = parser.parse_args(argv)
    try:
        names = build(args.out, args.labels or course_config.labels_csv_path())
    except BuildError as problem:
        return cli.error(str(problem))
    size_kb = args.out.stat().st_size / 1024
    print(f"wrote {args.out} ({len(names)} files, {size_kb:.0f} kB; labels at {LABELS_IN_ZIP}). "
          "Upload it on the assignment's Configure Autograder page (base image Ubuntu 22.04).")
    return cli.EXIT_DONE


if __name__ == "__main__":
    cli.run(main)
