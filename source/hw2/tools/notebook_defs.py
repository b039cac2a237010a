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

Reading is bounded, whatever the notebook holds: a notebook file over ``MAX_NOTEBOOK_BYTES`` (or with over
``MAX_NOTEBOOK_BRACKETS`` JSON objects and lists) is refused unread, one whose code cells hold over
``MAX_CODE_BYTES`` of code is refused unparsed (``NotebookTooLarge``, with the fix in its message); a code cell
over ``MAX_CELL_BYTES``, or nested too deeply for Python to read, is reported and skipped. Outputs never count.

The course autograder reads submissions the same way.
"""
from __future__ import annotations

import ast
import json
import os
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
_NAME_SHOWN = 100     # characters of a file name quoted in a message

# Limits on reading a notebook (the course autograder passes its own, from course_config.py). A course
# notebook is under 100 KB with its outputs cleared and holds under 30 KB of code in cells under 5 KB;
# parsing costs about 250-500 bytes of memory per byte of code, so these keep a hostile notebook's cost to
# a few hundred MB and a few seconds.
MAX_NOTEBOOK_BYTES = 64 * 1024 * 1024    # the .ipynb file, outputs included: larger files are not read
MAX_NOTEBOOK_BRACKETS = 1_000_000        # '{' and '[' in the file, a bound on its JSON objects and lists
MAX_CODE_BYTES = 1024 * 1024             # the code of all code cells together (UTF-8)
MAX_CELL_BYTES = 256 * 1024              # the code of one code cell: a larger cell is skipped
_CLEAR_OUTPUTS = "clear its outputs (Kernel > Restart & Clear Output) and submit it again"


class NotebookTooLarge(ValueError):
    """A notebook over a reading limit; the message names the limit and the fix."""


def shown_name(name: object, limit: int = _NAME_SHOWN) -> str:
    """A file name (or any text a student chose) as it may appear in a message: control, format and other
    non-printable characters (newlines, bidirectional overrides) become '?', and a name over ``limit``
    characters keeps its start and its end around '...'."""
    def printable(text: str) -> str:
        return "".join(c if c.isprintable() else "?" for c in text)

    text = str(name)
    if len(text) <= limit:
        return printable(text)
    head = (limit - 3) // 3
    return f"{printable(text[:head])}...{printable(text[head + 3 - limit:])}"


def _unit(limit: int) -> tuple[int, str]:
    if limit >= 1024 * 1024:
        return 1024 * 1024, "MB"
    return (1024, "KB") if limit >= 1024 else (1, "bytes")


def _size(count: int, limit: int) -> str:
    """``count`` bytes (over ``limit``) in MB, KB or bytes, with the decimals that show it is over."""
    unit, name = _unit(max(count, limit))
    for decimals in range(0 if count >= 10 * unit else 1, 3):
        text = f"{count / unit:.{decimals}f}"
        if float(text) * unit > limit:
            break
    return f"{text} {name}"


def _limit(limit: int) -> str:
    unit, name = _unit(limit)
    return f"{limit / unit:.4g} {name}"


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


def code_cells(notebook: str | Path, *, max_bytes: int = MAX_NOTEBOOK_BYTES,
               max_brackets: int = MAX_NOTEBOOK_BRACKETS) -> list[str]:
    """The sources of a notebook's code cells, in order. Raises NotebookTooLarge, before parsing any JSON, for
    a file over ``max_bytes`` or with over ``max_brackets`` '{' and '[' (each JSON object or list costs the
    reader ~70 bytes of memory however little text it takes), and ValueError for anything not a notebook."""
    name = shown_name(Path(notebook).name)
    try:
        with open(notebook, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            data = b"" if size > max_bytes else handle.read(max_bytes + 1)   # no more, if it grows meanwhile
    except OSError as error:
        raise ValueError(f"{name} is not a readable Jupyter notebook ({error.strerror or error})") from None
    if max(size, len(data)) > max_bytes:
        raise NotebookTooLarge(f"{name} is {_size(max(size, len(data)), max_bytes)}, over the {_limit(max_bytes)} "
                               f"limit: {_CLEAR_OUTPUTS}")
    if data.count(b"{") + data.count(b"[") > max_brackets:
        raise NotebookTooLarge(f"{name} holds over {max_brackets:,} JSON objects and lists (its outputs, most "
                               f"likely), too many to read: {_CLEAR_OUTPUTS}")
    try:
        text = data.decode("utf-8")
        del data   # the bytes, the text and the document are the reader's memory: hold two at a time
        document = json.loads(text)
        del text
        cells = document["cells"]
        if not isinstance(cells, list):
            raise TypeError("'cells' is not a list")
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{name} is not a readable Jupyter notebook ({_shorten(str(error))})") from None
    except RecursionError:
        raise ValueError(f"{name} is not a readable Jupyter notebook (its JSON is nested too deeply)") from None
    sources = []
    for cell in cells:
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            source = cell.get("source", "")
            if isinstance(source, list) and all(isinstance(part, str) for part in source):
                source = "".join(source)
            if not isinstance(source, str):
                raise ValueError(f"{name} is not a readable Jupyter notebook (code cell {len(sources) + 1}'s "
                                 f"source is not text)")
            sources.append(source)
    return sources


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def strip_ipython(source: str) -> str | None:
    """Python source of a cell with magics and shell lines blanked; None for a non-Python cell magic. A cell
    that is valid Python as it is stays as it is (``"%d" \\n % n`` inside brackets is an operator, not a magic)."""
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
    # Nothing to blank, or plain Python (a line starting with % or ! continues an expression there): as it is.
    # Parsed only when a line looks like a magic: every other cell is parsed once, by whoever reads it.
    if kept == lines or _parses("\n".join(lines)):
        return "\n".join(lines)
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


def _utf8_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def extract(notebook: str | Path, *, max_bytes: int = MAX_NOTEBOOK_BYTES,
            max_brackets: int = MAX_NOTEBOOK_BRACKETS, max_code_bytes: int = MAX_CODE_BYTES,
            max_cell_bytes: int = MAX_CELL_BYTES) -> Extraction:
    """Parse every code cell and keep its definitions; nothing is executed.

    Raises NotebookTooLarge when the file breaks ``max_bytes`` or ``max_brackets`` (see ``code_cells``) or
    when its code cells of at most ``max_cell_bytes`` hold over ``max_code_bytes`` together; a larger cell, or
    one nested too deeply for Python's parser, is a problem line and is skipped."""
    name = shown_name(Path(notebook).name)
    extraction = Extraction(name)
    sources = code_cells(notebook, max_bytes=max_bytes, max_brackets=max_brackets)
    sizes = [_utf8_size(source) for source in sources]
    total = sum(size for size in sizes if size <= max_cell_bytes)
    if total > max_code_bytes:
        raise NotebookTooLarge(f"{name} holds {_size(total, max_code_bytes)} of code in its code cells, over the "
                               f"{_limit(max_code_bytes)} limit: keep data out of code cells (read it from a "
                               f"file) and submit it again")
    for number, (raw, size) in enumerate(zip(sources, sizes), start=1):
        if size > max_cell_bytes:
            extraction.problems.append(f"code cell {number}: {_size(size, max_cell_bytes)} of code, over the "
                                       f"{_limit(max_cell_bytes)} limit of one cell (keep data out of code "
                                       f"cells); cell skipped")
            continue
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
        except (RecursionError, MemoryError):   # what Python 3.11's parser raises for deep nesting
            extraction.problems.append(f"code cell {number}: nested too deeply for Python's parser; cell skipped")
            continue
        for node in tree.body:
            if not _kept(node):
                continue
            statement = Statement(number, _first_line_of(node), node)
            try:   # a statement too deep to write back out (say, a sum of 1,000 terms) is reported, not kept
                ast.unparse(node)
            except RecursionError:
                extraction.problems.append(f"{statement.where}: nested too deeply to read; statement skipped")
                continue
            extraction.statements.append(statement)
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
