"""What the similarity check compares: per student, the code of each graded object (with the helper classes and
functions it uses) and each notebook's remaining code (the training code), read from the notebooks as the grader
finds them (near-miss file names included); per reference file, its whole code.

Code every student was given is not theirs: each unit is also cut from the release notebooks, and the check
(``compare.py``) drops what they share. Imports are left out. Units are read as text, never run.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import course_config
from autograder.similarity.fingerprints import Fingerprints, of_source
from autograder.submission import find_submission, notebook_defs

TRAINING = "training"   # the unit of a notebook's code outside its graded objects: "training: <notebook>"
REFERENCE_SUFFIXES = (".py", ".ipynb")
MAX_REFERENCE_BYTES = 2 * 1024 * 1024   # a larger reference file is skipped (with a line saying so)


@dataclass
class Unit:
    owner: str            # a student's id, or "reference: <file>"
    part: str             # "ResNet20", "training: resnet-cifar10.ipynb", or "file" for a reference
    source: str
    fingerprints: Fingerprints = field(init=False)

    def __post_init__(self):
        self.fingerprints = of_source(self.source)


def _segment(lines: list[str], node: ast.stmt) -> str:
    """A top-level statement's source (whole lines: a top-level statement starts its line)."""
    return "".join(lines[node.lineno - 1:node.end_lineno or node.lineno])


def _statements(cells: list[str]) -> list[tuple[ast.stmt, str]]:
    """Every top-level statement of the code cells (IPython lines removed; a cell that does not parse, or is
    over ``notebook_defs.MAX_CELL_BYTES``, is skipped), with its source text."""
    found = []
    for cell in cells:
        code = notebook_defs.strip_ipython(cell)
        if code is None or len(code.encode("utf-8", "replace")) > notebook_defs.MAX_CELL_BYTES:
            continue
        try:
            tree = ast.parse(code)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        lines = code.splitlines(keepends=True)
        found += [(node, _segment(lines, node)) for node in tree.body]
    return found


def _referenced(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def split_units(cells: list[str], objects: tuple[str, ...], notebook: str) -> dict[str, str]:
    """``{object: its code and its helpers', "training: <notebook>": the rest}`` of one notebook's code cells.
    A later definition of a name wins, as in the kernel, unless it is a class that extends its earlier self
    (``class SimpleNN(SimpleNN)``, a method added in a later cell): then the earlier definition is part of it. A helper is any top-level
    definition an object's code names (transitively)."""
    statements = [(node, text) for node, text in _statements(cells)
                  if not isinstance(node, (ast.Import, ast.ImportFrom))]
    definitions: dict[str, list[int]] = {}   # name -> the positions of its definitions still in use
    for position, (node, _) in enumerate(statements):
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            builds_on_earlier = node.name in definitions and isinstance(node, ast.ClassDef) \
                and any(node.name in _referenced(base) for base in node.bases)
            definitions[node.name] = (definitions[node.name] if builds_on_earlier else []) + [position]
    units, used = {}, set()
    for name in objects:
        if name not in definitions:
            continue
        todo, mine = [name], []
        while todo:
            current = todo.pop()
            if current in mine or current not in definitions:
                continue
            mine.append(current)
            for position in definitions[current]:
                todo += sorted(_referenced(statements[position][0]) & set(definitions))
        units[name] = "\n\n".join(statements[position][1] for helper in mine for position in definitions[helper])
        used.update(mine)
    rest = [text for node, text in statements   # an overridden definition of an object or helper is neither
            if not (isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in used)]
    if rest:
        units[f"{TRAINING}: {notebook}"] = "\n\n".join(rest)
    return units


def notebook_units(notebooks: dict[str, Path]) -> tuple[dict[str, str], list[str]]:
    """The units of a submission's notebooks (notebook key -> path), and one line per notebook not read."""
    units, problems = {}, []
    for key, path in notebooks.items():
        name = course_config.NOTEBOOKS[key]
        try:
            cells = notebook_defs.code_cells(path)
        except ValueError as error:   # NotebookTooLarge is one; the message names the notebook or not
            problems.append(str(error) if str(error).startswith(name) else f"{name}: {error}")
            continue
        if sum(len(cell.encode("utf-8", "replace")) for cell in cells) > notebook_defs.MAX_CODE_BYTES:
            problems.append(f"{name}: over {notebook_defs.MAX_CODE_BYTES // 2**20} MB of code, not compared")
            continue
        units.update(split_units(cells, course_config.SIMILARITY_OBJECTS.get(key, ()), name))
    return units, problems


def student_units(student: str, folder: Path) -> tuple[list[Unit], list[str]]:
    """A student's units, from their submission folder as the grader finds it."""
    submission = find_submission(folder)
    keys = {key: path for key, path in submission.notebooks.items() if key in course_config.SUBMITTED_NOTEBOOKS}
    units, problems = notebook_units(keys)
    return [Unit(student, part, text) for part, text in units.items()], [f"{student}: {p}" for p in problems]


def release_units(release: Path) -> dict[str, Fingerprints]:
    """The fingerprints of what the release gave every student, per unit."""
    notebooks = {key: release / course_config.NOTEBOOKS[key] for key in course_config.SUBMITTED_NOTEBOOKS
                 if (release / course_config.NOTEBOOKS[key]).is_file()}
    units, _ = notebook_units(notebooks)
    return {part: of_source(text) for part, text in units.items()}


def reference_units(folders: list[Path]) -> tuple[list[Unit], list[str]]:
    """One unit per ``.py`` or ``.ipynb`` file below the reference folders (its whole code), and one line per
    file that cannot be read (not UTF-8, too large, not a notebook)."""
    units, problems = [], []
    for folder in folders:
        if not folder.is_dir():
            problems.append(f"reference folder {folder} does not exist: skipped")
            continue
        for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in REFERENCE_SUFFIXES
                           and p.is_file() and not p.is_symlink()):
            shown = f"{folder.name}/{path.relative_to(folder)}"
            if path.stat().st_size > MAX_REFERENCE_BYTES:
                problems.append(f"reference {shown}: over {MAX_REFERENCE_BYTES // 2**20} MB, skipped")
                continue
            try:
                if path.suffix.lower() == ".ipynb":
                    code = "\n\n".join(c for c in map(notebook_defs.strip_ipython, notebook_defs.code_cells(path)) if c)
                else:
                    code = path.read_bytes().decode("utf-8")
            except UnicodeDecodeError:
                problems.append(f"reference {shown}: not UTF-8 text, skipped")
                continue
            except ValueError as error:
                problems.append(f"reference {shown}: {error}")
                continue
            units.append(Unit(f"reference: {shown}", "file", code))
    return units, problems
