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

Each kept statement runs on its own: one that fails (``from google.colab import drive`` where there is
no Colab, a class body that raises) is reported and skipped, and the names it would have bound stand
for "unavailable" (``Unavailable``): only code that really uses them fails, with a message saying which
line was skipped and why. A failed redefinition leaves the earlier definition in place, as in the kernel.

The course autograder reads submissions the same way.
"""
from __future__ import annotations

import ast
import json
import re
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping

_KEPT_STATEMENTS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
# Cell magics whose body is Python; any other cell magic (%%bash, %%html, ...) drops the cell.
_PYTHON_CELL_MAGICS = {"time", "timeit", "capture", "prun"}
_LINE_MAGIC_OR_SHELL = re.compile(r"^(\s*)(?:[A-Za-z_][\w, ]*=\s*)?[%!]")
_HELP_LINE = re.compile(r"^(\s*)[\w.]+\?\??\s*$")
# The comment that Extraction.source() writes above every statement, read back by parse_extracted().
_POSITION = re.compile(r"# code cell (\d+), line (\d+)")
_CODE_SHOWN = 80      # characters of a skipped statement's first line quoted in a message
_REASON_SHOWN = 200   # characters of an exception message quoted in a message


class UnavailableName(NameError):
    """Code used a name whose definition was skipped; the message says which line was skipped and why."""

    def __init__(self, unavailable: str, cause: str, via: str | None = None):
        needs = f" (it needs {via})" if via else ""
        super().__init__(f"{unavailable} is not available{needs}: {cause}")
        self.unavailable, self.cause = unavailable, cause


class Unavailable:
    """What a name is bound to when the statement defining it failed (an import the environment lacks, a
    class body that raised). Looking up an attribute gives another stand-in; calling it, subclassing it,
    iterating or indexing it raises UnavailableName naming the skipped line and why (``cause``: always the
    first failure, not a chain of them), so only code that really uses the name fails."""

    __slots__ = ("_name", "_cause", "_via")

    def __init__(self, name: str, cause: str, via: str | None = None):
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_cause", cause)
        object.__setattr__(self, "_via", via)

    def error(self) -> UnavailableName:
        return UnavailableName(self._name, self._cause, self._via)

    def _fail(self, *args, **kwargs):
        raise self.error()

    __call__ = __iter__ = __getitem__ = __setitem__ = __len__ = __enter__ = __mro_entries__ = _fail
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __matmul__ = _fail
    __lt__ = __le__ = __gt__ = __ge__ = __neg__ = _fail

    def __setattr__(self, name, value):
        self._fail()

    def __getattr__(self, attribute: str):
        if attribute.startswith("__"):   # protocol probes (copy, pickle, inspect) see an ordinary object
            raise AttributeError(attribute)
        return Unavailable(f"{self._name}.{attribute}", self._cause)

    def __repr__(self) -> str:
        return f"<unavailable {self._name}>"


def is_available(value) -> bool:
    return not isinstance(value, Unavailable)


@dataclass(frozen=True)
class Statement:
    """One kept top-level statement and where it stands in the notebook."""
    cell: int       # code cell number (1-based, code cells only)
    line: int       # line within that cell (1-based)
    node: ast.stmt

    @property
    def where(self) -> str:
        return f"code cell {self.cell}, line {self.line}"

    def first_line(self) -> str:
        """The statement's first line (a definition's ``class``/``def`` line, not its decorators), shortened."""
        lines = ast.unparse(self.node).splitlines()
        text = next((line for line in lines if not line.startswith("@")), lines[0])
        return text if len(text) <= _CODE_SHOWN else text[:_CODE_SHOWN - 3] + "..."


@dataclass
class Extraction:
    """The kept statements of every code cell, and what could not be read."""
    notebook: str
    statements: list[Statement] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def source(self) -> str:
        """The kept definitions as one Python module (for reading, or writing to a .py file). A comment above
        every statement says where it came from; ``parse_extracted`` reads them back."""
        parts = [f"# extracted from {self.notebook}: imports, defs, classes and literal constants only"]
        for statement in self.statements:
            parts.append(f"# code cell {statement.cell}, line {statement.line}\n{ast.unparse(statement.node)}")
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


def _first_line_of(node: ast.stmt) -> int:
    """Where a statement starts in its source: a decorated definition starts at its first decorator."""
    return min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", ())])


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
            where = f", line {line}" if line else ""
            extraction.problems.append(f"code cell {number}{where}: {getattr(error, 'msg', error)}; cell skipped")
            continue
        extraction.statements += [Statement(number, _first_line_of(node), node) for node in tree.body if _kept(node)]
    return extraction


def parse_extracted(source: str) -> list[Statement]:
    """The statements of an ``Extraction.source()`` text, each with the notebook position its comment gives
    (line numbers of the nodes are those of the text, so tracebacks and ``inspect`` can read it)."""
    lines = source.split("\n")
    statements = []
    for node in ast.parse(source).body:
        start = _first_line_of(node)
        match = _POSITION.fullmatch(lines[start - 2].strip()) if start >= 2 else None
        cell, line = (int(match.group(1)), int(match.group(2))) if match else (0, start)
        statements.append(Statement(cell, line, node))
    return statements


def _bound_names(node: ast.stmt) -> list[str]:
    """The names a kept statement binds in the module."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return [alias.asname or alias.name.split(".")[0] for alias in node.names if alias.name != "*"]
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    return [target.id for target in targets if isinstance(target, ast.Name)]


def _shorten(text: str, limit: int = _REASON_SHOWN) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def describe_failure(error: BaseException) -> str:
    """Why a statement failed, in one short line."""
    if isinstance(error, ModuleNotFoundError) and error.name:
        return f"no module named {error.name!r} in the grading environment"
    if isinstance(error, SystemExit):
        return f"it raised SystemExit({error.code!r}) (sys.exit / exit())"
    message = str(error).strip()
    return _shorten(f"{type(error).__name__}: {message}" if message else type(error).__name__)


@dataclass(frozen=True)
class _Failure:
    reason: str                  # why the statement was skipped, for its problem line
    cause: str | None = None     # the first failure behind it, when it only needed an unavailable name
    via: str | None = None       # that unavailable name


def _execute(statement: Statement, namespace: dict, filename: str) -> _Failure | None:
    code = compile(ast.Module(body=[statement.node], type_ignores=[]), filename, "exec")
    try:
        exec(code, namespace)
    except UnavailableName as error:   # it uses a name whose own definition was skipped earlier
        return _Failure(f"it needs {error.unavailable}, which is not available", error.cause, error.unavailable)
    except BaseException as error:  # SystemExit included: a definition must not end the loading
        return _Failure(describe_failure(error))
    return None


def run_statements(statements: Iterable[Statement], namespace: dict, label: str, *, filename: str | None = None,
                   skip: Mapping[str, str] | None = None,
                   on_statement: Callable[[Statement], None] | None = None) -> list[str]:
    """Execute each statement into ``namespace`` on its own; returns one problem line per statement that failed.

    ``label`` names the notebook in messages; ``filename`` is what tracebacks show (default: the notebook
    and the cell). ``skip`` maps ``Statement.where`` to a reason for statements not to run at all (the
    autograder passes those that stopped an earlier grading run and reports them itself): their names are
    unavailable with that reason, and they get no problem line. ``on_statement`` is told before each runs.
    """
    skip = skip or {}
    problems: list[str] = []
    defined_at: dict[str, str] = {}
    missing = object()
    for statement in statements:
        names = _bound_names(statement.node)
        before = {name: namespace.get(name, missing) for name in names}
        if statement.where in skip:
            failure = _Failure(skip[statement.where])
        else:
            if on_statement is not None:
                on_statement(statement)
            failure = _execute(statement, namespace, filename or f"{label} ({statement.where})")
        if failure is None:
            defined_at.update((name, statement.where) for name in names)
            continue
        code = statement.first_line()
        cause = failure.cause or f"`{code}` ({label}, {statement.where}) was skipped: {failure.reason}"
        kept = []
        for name in names:
            if before[name] is missing and namespace.get(name, missing) is missing:
                namespace[name] = Unavailable(name, cause, failure.via)
            elif before[name] is not missing and namespace.get(name) is before[name] and name in defined_at:
                kept.append(f"{name} of {defined_at[name]}")
        if statement.where not in skip:
            earlier = f" (the earlier {', '.join(kept)} is used instead)" if kept else ""
            problems.append(f"{statement.where}: `{code}` skipped: {failure.reason}{earlier}")
    return problems


def load_definitions(notebook: str | Path, module_name: str | None = None) -> types.ModuleType:
    """Run the kept definitions of ``notebook`` into a fresh module and return it.

    Problems (unparsable cells, skipped statements) are listed in the module's ``__extraction_problems__``."""
    extraction = extract(notebook)
    module = types.ModuleType(module_name or Path(notebook).stem.replace("-", "_"))
    module.__file__ = str(notebook)
    module.__extraction_problems__ = list(extraction.problems)
    module.__extraction_problems__ += run_statements(extraction.statements, module.__dict__, extraction.notebook)
    return module
