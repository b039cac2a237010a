"""Load the definitions of a notebook without running it.

    from tools.notebook_defs import load_definitions
    lab3 = load_definitions("resnet-cifar10.ipynb")
    model = lab3.ResNet20()

Only the top-level ``import`` statements, ``def``s, ``class``es and assignments of literal constants
(``EPOCHS = 30``, ``SIZES = [16, 32, 64]``) of the code cells are kept; everything else (training loops,
downloads, prints, plots) is dropped, so loading a training notebook takes a moment however long its
training is. IPython magics (``%matplotlib inline``) and shell lines (``!pip install ...``) are removed;
a cell that is still not valid Python is reported and skipped. Cells run in notebook order, so a later
definition wins, as it would in the kernel. Definitions must therefore not rely on variables that
the notebook computes (``device = torch.device(...)``); pass such values in as arguments.

The course autograder reads submissions the same way.
"""
from __future__ import annotations

import ast
import json
import re
import types
from dataclasses import dataclass, field
from pathlib import Path

_KEPT_STATEMENTS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
# Cell magics whose body is Python; any other cell magic (%%bash, %%html, ...) drops the cell.
_PYTHON_CELL_MAGICS = {"time", "timeit", "capture", "prun"}
_LINE_MAGIC_OR_SHELL = re.compile(r"^(\s*)(?:[A-Za-z_][\w, ]*=\s*)?[%!]")
_HELP_LINE = re.compile(r"^(\s*)[\w.]+\?\??\s*$")


@dataclass
class Extraction:
    """The kept statements of every code cell, and what could not be read."""
    notebook: str
    cells: list[tuple[int, ast.Module]] = field(default_factory=list)   # (code cell number, kept statements)
    problems: list[str] = field(default_factory=list)

    def source(self) -> str:
        """The kept definitions as one Python module (for reading, or writing to a .py file)."""
        parts = [f"# extracted from {self.notebook}: imports, defs, classes and literal constants only"]
        for number, module in self.cells:
            parts.append(f"\n# --- code cell {number} ---\n{ast.unparse(module)}")
        return "\n".join(parts) + "\n"


def code_cells(notebook: str | Path) -> list[str]:
    """The sources of a notebook's code cells, in order."""
    try:
        document = json.loads(Path(notebook).read_text(encoding="utf-8"))
        cells = document["cells"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{notebook} is not a readable Jupyter notebook ({error})") from None
    sources = []
    for cell in cells:
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            source = cell.get("source", "")
            sources.append("".join(source) if isinstance(source, list) else str(source))
    return sources


def strip_ipython(source: str) -> str | None:
    """Python source of a cell with magics and shell lines blanked; None for a non-Python cell magic."""
    lines = source.split("\n")
    first = lines[0].strip() if lines else ""
    if first.startswith("%%"):
        magic = first[2:].split()
        if not magic or magic[0] not in _PYTHON_CELL_MAGICS:
            return None
        lines[0] = ""
    kept = []
    for line in lines:
        match = _LINE_MAGIC_OR_SHELL.match(line) or _HELP_LINE.match(line)
        kept.append(f"{match.group(1)}pass" if match else line)  # 'pass' keeps an indented block valid
    return "\n".join(kept)


def _is_literal_constant(node: ast.stmt) -> bool:
    if isinstance(node, ast.Assign):
        targets, value = node.targets, node.value
    elif isinstance(node, ast.AnnAssign) and node.value is not None:
        targets, value = [node.target], node.value
    else:
        return False
    if not all(isinstance(target, ast.Name) for target in targets):
        return False
    try:
        ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _kept(node: ast.stmt) -> bool:
    return isinstance(node, _KEPT_STATEMENTS) or _is_literal_constant(node)


def extract(notebook: str | Path) -> Extraction:
    """Parse every code cell and keep its definitions; nothing is executed."""
    extraction = Extraction(Path(notebook).name)
    for number, raw in enumerate(code_cells(notebook), start=1):
        source = strip_ipython(raw)
        if source is None or not source.strip():
            continue
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError) as error:  # ValueError: NUL bytes in the source
            line = getattr(error, "lineno", None)
            where = f" line {line}" if line else ""
            extraction.problems.append(f"code cell {number}{where}: {getattr(error, 'msg', error)}; cell skipped")
            continue
        kept = [node for node in tree.body if _kept(node)]
        if kept:
            extraction.cells.append((number, ast.Module(body=kept, type_ignores=[])))
    return extraction


def load_definitions(notebook: str | Path, module_name: str | None = None) -> types.ModuleType:
    """Run the kept definitions of ``notebook`` into a fresh module and return it.

    Problems (unparsable cells) are listed in the module's ``__extraction_problems__``."""
    extraction = extract(notebook)
    module = types.ModuleType(module_name or Path(notebook).stem.replace("-", "_"))
    module.__file__ = str(notebook)
    module.__extraction_problems__ = extraction.problems
    for number, tree in extraction.cells:
        exec(compile(tree, f"{extraction.notebook} (code cell {number})", "exec"), module.__dict__)
    return module
