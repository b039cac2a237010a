"""A static review of a submission's notebook code, for staff only: the lines worth a human look.

It never changes a score and never reaches the student's feedback (the sandbox and the report checks stop
attacks; this points a TA at what to read). It parses the extracted definitions (imports, defs, classes,
literal constants: all that the grader runs) and never executes them. Flagged:

* reaching the grader: ``gc``, ``inspect``, ``sys.modules``, ``sys._getframe`` (and ``_current_frames``,
  ``settrace``, ``setprofile``, ``addaudithook``, ``meta_path``), the stack functions of ``traceback``
  (``extract_stack``, ``walk_stack``...), the attributes ``f_back f_globals f_locals f_builtins tb_frame
  gi_frame`` ("frame access (f_back)") and ``__globals__ __builtins__ __code__ __subclasses__`` (also through
  ``getattr``); a "builtins write" (assignment, ``del``, ``setattr``); "setattr on a module":
  ``setattr``/``delattr`` on an imported name or ``sys.modules[...]``, ``del mod.x``, ``mod.x = <not a
  literal>`` (``cudnn.benchmark = True`` sets a flag to a literal: ordinary); ``getattr``/``setattr``/
  ``delattr`` of an imported module with a computed name ("getattr on a module with a computed name": the
  name hides what is reached; but ``getattr(nn, activation)`` and the like on ``torch.nn``, its
  ``functional``, ``torch.optim`` and ``torchvision``'s ``transforms`` and ``models`` are ordinary);
* code that knows it is being exported, so that the graded program is not the model trained:
  ``torch.compiler``, ``torch._dynamo``, and any ``is_exporting``, ``is_compiling``, ``is_dynamo_compiling``,
  ``is_fx_tracing`` or ``is_tracing`` ("export detection (is_exporting)");
* running other code: ``importlib``, ``pytest``/``_pytest``, ``ctypes``, ``__import__``, calls of the
  built-ins ``eval``, ``exec``, ``compile`` (not ``model.eval()`` or ``torch.compile``); ``subprocess``,
  ``socket``, ``pty``, ``multiprocessing``, ``signal``, ``atexit``; threads (``threading``, ``_thread``,
  ``concurrent.futures``: an attack walked ``gc`` from a background thread); the dangerous members of ``os``
  (``system exec* spawn* fork kill _exit abort popen open remove unlink rmdir chmod chown setuid``...);
* a path outside the notebook's folder given to ``open``, ``io.open``, a file function of ``os`` or any
  ``shutil`` call: starting with ``/``, ``~`` or a drive, with a ``..`` part, or built from ``os.environ``,
  ``getenv``, ``expanduser``, ``expandvars``, ``Path.home`` or ``tempfile``;
* "code in a class body": anything but defs, classes, assignments, ``pass`` and a docstring. A class body
  runs when the definitions load, so attacks hide code there (top-level code is never extracted).

Never flagged, because honest notebooks do it: ``os.path``, ``os.getcwd``, ``os.makedirs`` and
``os.listdir`` of a path inside the folder, ``os.environ`` (``set_seed`` writes ``PYTHONHASHSEED``);
``import gc`` used only for ``gc.collect()``, ``importlib`` only to ``reload``, ``multiprocessing`` only for
``cpu_count()``; an ``open`` of a literal relative path (``'./saved_model/log.txt'``) or of a computed one
(``os.path.join(save_dir, name)``: where it points is only known by running it). An endless loop or a
memory bomb is the sandbox's business.

One finding per (notebook, construct, where), at most ``MAX_FINDINGS`` per notebook, then "... N more"; a
statement too deeply nested to walk is one finding too. ``review_notebook`` gives exact lines;
``review_source`` counts them in the extracted text from the statement's start, so inside a statement with
comments, odd blank lines or wrapped expressions it may be a few lines off.

    python -m autograder.review SUBMISSION_DIR_OR_NOTEBOOK...
"""
from __future__ import annotations

import ast
import builtins
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from autograder.submission import notebook_defs

MAX_FINDINGS = 50
_MODULES = {name: name for name in ("gc", "inspect", "importlib", "ctypes", "pytest", "subprocess", "socket", "pty",
                                    "signal", "multiprocessing", "threading", "atexit", "torch.compiler",
                                    "torch._dynamo")}
_MODULES |= {"_pytest": "pytest", "_thread": "threading", "concurrent.futures": "threading"}
_STACK = {"extract_stack", "walk_stack", "format_stack", "print_stack", "StackSummary"}
_EXPORT_DETECTION = {"is_exporting", "is_compiling", "is_dynamo_compiling", "is_fx_tracing", "is_tracing"}
# Modules whose members a model picks by name (``getattr(nn, activation)()``): reading them is ordinary.
_LAYER_CATALOGS = {"torch.nn", "torch.nn.functional", "torch.optim", "torch.optim.lr_scheduler",
                   "torchvision.transforms", "torchvision.models"}
_HARMLESS = {"gc.collect", "importlib.reload", "multiprocessing.cpu_count"}
_SYS = {"modules", "_getframe", "_current_frames", "settrace", "setprofile", "addaudithook", "meta_path"}
_OS = re.compile(r"system|exec\w*|spawn\w*|posix_spawn\w*|fork\w*|kill\w*|_exit|abort|popen|open|remove|removedirs"
                 r"|unlink|rmdir|chmod|chown|lchown|set[e]?[ug]id|truncate|chroot")
_FRAME = {"f_back", "f_globals", "f_locals", "f_builtins", "tb_frame", "gi_frame"}
_DUNDERS = {"__globals__", "__builtins__", "__code__", "__subclasses__"}
_PATH_CALLS = {"open", "io.open", "os.listdir", "os.scandir", "os.walk", "os.makedirs", "os.mkdir", "os.rename",
               "os.replace", "os.chdir", "os.stat"}
_ESCAPES = ("os.environ", "os.getenv", "os.path.expanduser", "os.path.expandvars", "pathlib.Path.home", "tempfile")
_CLASS_BODY = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign, ast.Pass)


@dataclass(frozen=True)
class Finding:
    notebook: str     # the notebook's file name
    where: str        # "code cell C, line L" ("" for the closing "... N more")
    construct: str    # what was seen, in a few words ("gc", "os.system", "code in a class body")

    def line(self) -> str:
        return f"{self.notebook}{', ' + self.where if self.where else ''}: {self.construct}"


def _aliases(nodes: list[ast.AST]) -> dict[str, str]:
    """Every name an import binds anywhere in the notebook -> the dotted name it stands for."""
    names = {}
    for node in (part for top in nodes for part in ast.walk(top)):
        if isinstance(node, ast.Import):
            names.update((a.asname, a.name) if a.asname else (a.name.split(".")[0],) * 2 for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.update((a.asname or a.name, f"{node.module}.{a.name}") for a in node.names if a.name != "*")
    return names


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """``o.system`` -> "os.system" after ``import os as o``; None unless the root is imported or a built-in."""
    if isinstance(node, ast.Attribute):
        root = _dotted(node.value, aliases)
        return f"{root}.{node.attr}" if root else None
    if isinstance(node, ast.Name):
        return aliases.get(node.id) or (node.id if hasattr(builtins, node.id) or node.id == "__builtins__" else None)
    if (isinstance(node, ast.Call) and _dotted(node.func, aliases) in ("__import__", "importlib.import_module")
            and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
        return node.args[0].value   # __import__("os")
    return None


def _named(dotted: str | None, quiet: frozenset[str] = frozenset()) -> str | None:
    """The construct a dotted name is (a flagged module or member); a ``quiet`` module only through a member."""
    if not dotted or dotted in _HARMLESS or dotted in quiet:
        return None
    module = next((m for m in _MODULES if dotted == m or dotted.startswith(m + ".")), None)
    head, _, member = dotted.partition(".")
    member = member.split(".")[0]
    if ((head == "sys" and member in _SYS) or (head == "os" and member and _OS.fullmatch(member))
            or (head == "traceback" and member in _STACK)):
        return f"{head}.{member}"
    return _MODULES.get(module)


def _quiet(nodes: list[ast.AST], aliases: dict[str, str]) -> frozenset[str]:
    """The modules of ``_HARMLESS`` whose every use in the kept code is a harmless member (``gc.collect()``)."""
    used, harmless = [], []
    for node in (part for top in nodes for part in ast.walk(top)):
        if isinstance(node, ast.Name) and node.id in aliases:
            used.append(aliases[node.id])
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            harmless += [aliases[node.value.id]] if f"{aliases[node.value.id]}.{node.attr}" in _HARMLESS else []
    return frozenset(m for m in {h.split(".")[0] for h in _HARMLESS} if used.count(m) == harmless.count(m))


def _literal(node: ast.AST | None) -> bool:
    try:
        ast.literal_eval(node)
        return True
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False


def _escapes(path: ast.AST, aliases: dict[str, str]) -> bool:
    """Whether a path expression leaves the notebook's folder: judged by the string it starts with (``f"/x/{n}"``,
    ``"/x" + n``, ``os.path.join("/x", n)``), its ``..`` parts and where its values come from."""
    start = path
    while not isinstance(start, ast.Constant):
        if isinstance(start, ast.JoinedStr) and start.values:
            start = start.values[0]
        elif isinstance(start, ast.BinOp) and isinstance(start.op, (ast.Add, ast.Div)):
            start = start.left
        elif (isinstance(start, ast.Call) and start.args
              and _dotted(start.func, aliases) in ("os.path.join", "pathlib.Path", "str")):
            start = start.args[0]
        else:
            break
    text = start.value if isinstance(start, ast.Constant) and isinstance(start.value, str) else ""
    return bool(text.startswith(("/", "\\", "~")) or re.match(r"[A-Za-z]:[\\/]", text)) or any(
        (isinstance(part, ast.Constant) and isinstance(part.value, str) and ".." in re.split(r"[\\/]", part.value))
        or (_dotted(part, aliases) or "").startswith(_ESCAPES) for part in ast.walk(path))


def _write(target: ast.AST, value: ast.AST | None, aliases: dict[str, str], patched: bool = False) -> str | None:
    """What a write to (an attribute of) ``target`` patches, if worth a look; ``value`` None: a ``del``."""
    base = target
    while isinstance(base, (ast.Attribute, ast.Subscript)):
        base = base.value
    whole = _dotted(target.value if isinstance(target, ast.Subscript) else target, aliases) or ""
    if (isinstance(base, ast.Name) and base.id == "__builtins__") or whole.split(".")[0] == "builtins":
        return "builtins write"
    imported = ((isinstance(base, ast.Name) and base.id in aliases) or (isinstance(base, ast.Call) and whole)
                or (isinstance(base, ast.Subscript) and _dotted(base.value, aliases) == "sys.modules"))
    if (patched or isinstance(target, ast.Attribute)) and imported and not _literal(value):
        return "setattr on a module"
    return None


def _module_aliases(aliases: dict[str, str]) -> dict[str, str]:
    """The imported names that stand for modules (``import torch``, ``from torch import nn``), not for
    classes or functions: ``getattr(self.layers, name)`` or ``getattr(nn, "ReLU")`` are ordinary."""
    return {name: dotted for name, dotted in aliases.items()
            if not dotted.split(".")[-1][:1].isupper() and dotted.split(".")[-1] not in ("getattr", "setattr")}


def _is_sys_modules(node: ast.AST, aliases: dict[str, str]) -> bool:
    return isinstance(node, ast.Subscript) and _dotted(node.value, aliases) == "sys.modules"


def _call(call: ast.Call, aliases: dict[str, str]) -> Iterator[tuple[int, str]]:
    name = _dotted(call.func, aliases) or ""
    if isinstance(call.func, ast.Name) and call.func.id in ("eval", "exec", "compile") and name == call.func.id:
        yield call.lineno, name
    if name in ("setattr", "delattr") and call.args and (construct := _write(call.args[0], None, aliases, True)):
        yield call.lineno, construct
    if name in ("getattr", "setattr", "delattr", "hasattr") and len(call.args) > 1:
        attribute = getattr(call.args[1], "value", None)
        if attribute in _FRAME or attribute in _DUNDERS:
            yield call.lineno, f"frame access ({attribute})" if attribute in _FRAME else attribute
        if attribute in _EXPORT_DETECTION:
            yield call.lineno, f"export detection ({attribute})"
        module = _dotted(call.args[0], _module_aliases(aliases)) or (
            "sys.modules" if _is_sys_modules(call.args[0], aliases) else None)
        if (name != "hasattr" and module and not isinstance(call.args[1], ast.Constant)
                and not (name == "getattr" and module in _LAYER_CATALOGS)):
            yield call.lineno, f"{name} on a module with a computed name"
    if (name in _PATH_CALLS or name.startswith("shutil.")) and call.args and _escapes(call.args[0], aliases):
        yield call.lineno, f"{name} outside the notebook's folder"


def _scan(node: ast.AST, aliases: dict[str, str], quiet: frozenset[str]) -> Iterator[tuple[int, str]]:
    """(line, construct) for every flagged construct in one statement, lines as the node has them."""
    for part in ast.walk(node):
        line = getattr(part, "lineno", 0)
        if isinstance(part, ast.Import):
            yield from ((line, c) for alias in part.names if (c := _named(alias.name, quiet)))
        elif isinstance(part, ast.ImportFrom) and part.module and not part.level:
            yield from ((line, c) for alias in part.names
                        if (c := _named(part.module, quiet) or _named(f"{part.module}.{alias.name}")))
        elif isinstance(part, ast.Name) and part.id in ("__builtins__", "__import__"):
            yield line, part.id
        elif isinstance(part, ast.Attribute):
            if part.attr in _FRAME or part.attr in _DUNDERS:
                yield line, f"frame access ({part.attr})" if part.attr in _FRAME else part.attr
            if part.attr in _EXPORT_DETECTION:
                yield line, f"export detection ({part.attr})"
            if construct := _named(_dotted(part, aliases)):
                yield line, construct
        elif isinstance(part, ast.Call):
            yield from _call(part, aliases)
        elif isinstance(part, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            deleting = isinstance(part, ast.Delete)
            value = None if deleting else (part.value or ast.Constant(None))   # an AnnAssign may have no value
            for group in (part.targets if isinstance(part, (ast.Assign, ast.Delete)) else [part.target]):
                for target in ast.walk(group) if isinstance(group, (ast.Tuple, ast.List)) else [group]:
                    if isinstance(target, (ast.Attribute, ast.Subscript, ast.Name)) and target.ctx.__class__ in (
                            ast.Store, ast.Del) and (construct := _write(target, value, aliases)):
                        yield target.lineno, construct
        elif isinstance(part, ast.ClassDef):
            for statement in part.body:
                docstring = isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
                if not (isinstance(statement, _CLASS_BODY) or docstring):
                    yield statement.lineno, "code in a class body"


def _review(notebook: str, statements: list[tuple[int, ast.AST, Callable[[int], int]]]) -> list[Finding]:
    """``statements``: (cell, node, line_of): a construct on line n of the node is on line_of(n) of its cell."""
    aliases = _aliases([node for _, node, _ in statements])
    quiet = _quiet([node for _, node, _ in statements], aliases)
    found: dict[tuple[str, str], Finding] = {}
    for cell, node, line_of in statements:
        try:
            scanned = sorted(_scan(node, aliases, quiet))
        except RecursionError:   # an attribute chain a thousand names long: no honest code has one
            scanned = [(node.lineno, "too deeply nested to review")]
        for line, construct in scanned:
            finding = Finding(notebook, f"code cell {cell}, line {line_of(line)}", construct)
            found.setdefault((finding.where, construct), finding)
    findings = list(found.values())
    if len(findings) > MAX_FINDINGS:
        findings = findings[:MAX_FINDINGS] + [Finding(notebook, "", f"... {len(findings) - MAX_FINDINGS} more")]
    return findings


def _cell_lines(text: list[str], start: int, first: int) -> Callable[[int], int]:
    """Text line -> cell line, for a statement on text line ``start`` and cell line ``first``. ast.unparse drops
    blank lines and comments but writes one blank line before every def and class: one right after a line
    ending in ":" is not counted (PEP 8 code has none there, and one between methods)."""
    lines, line = {}, first
    for number in range(start, len(text) + 1):
        lines[number] = line
        line += not (number < len(text) and not text[number].strip() and text[number - 1].rstrip().endswith(":"))
    return lambda number: lines.get(number, number - start + first)


def review_source(source: str, notebook: str) -> list[Finding]:
    """The findings of an extracted module text (``Extraction.source()``) of the notebook named ``notebook``."""
    text, statements = source.split("\n"), []
    for statement in notebook_defs.parse_extracted(source):
        node = statement.node
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", ())])
        statements.append((statement.cell, node, _cell_lines(text[:node.end_lineno or start], start, statement.line)))
    return _review(notebook, statements)


def review_notebook(path: str | Path) -> list[Finding]:
    """The findings of a notebook file, extracted here (exact lines)."""
    extraction = notebook_defs.extract(path)
    return _review(extraction.notebook, [(s.cell, s.node, lambda line: line) for s in extraction.statements])


def review_modules(student_dir: Path, names: dict[str, str]) -> list[Finding]:
    """The findings of ``student_dir/<key>.py`` (extracted modules) for every key of ``names`` (key -> notebook
    file name) whose module is there."""
    findings = []
    for key, notebook in names.items():
        path = Path(student_dir) / f"{key}.py"
        if path.is_file():
            try:
                findings += review_source(path.read_text(encoding="utf-8"), notebook)
            except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
                reason = f"extracted module could not be reviewed ({type(error).__name__})"
                findings.append(Finding(notebook, "", reason))
    return findings


def main(argv: list[str] | None = None) -> int:
    from common.cli import Parser
    from autograder.submission import find_submission

    parser = Parser(prog="python -m autograder.review", description="The static review of notebooks, for staff.")
    parser.add_argument("paths", nargs="*", default=["."], help="notebooks or submission folders (default: .)")
    for argument in parser.parse_args(argv).paths:
        path = Path(argument)
        for notebook in [path] if path.is_file() else list(find_submission(path).notebooks.values()):
            try:
                lines = [finding.line() for finding in review_notebook(notebook)] or ["nothing to review"]
            except (ValueError, RecursionError, MemoryError) as error:
                lines = [f"could not be read: {error}"]
            print("\n".join(line if line.startswith(notebook.name) else f"{notebook.name}: {line}" for line in lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
