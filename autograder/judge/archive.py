"""Read a student-made ``.pt2`` file as hostile input, and load only what is safe.

``torch.export.load`` trusts its archive: it unpickles sample inputs (falling back to ``weights_only=False``),
pickled weights and custom objects, turns any ``torch.*`` name in the graph into a call, compiles the
program's ``guards_code`` into Python and hands shape expressions to ``sympy.sympify`` (an ``eval``). A
forged archive could run code in the judge through any of them. So before torch sees a byte, ``load_program``
checks the zip (size, entries), the weights and constants configs (no pickles, no custom objects), every
call of the graph (the judge's closed op set, ``allowed_ops``: no nested graphs, nothing that reaches files or
writes weights) and every shape expression (a closed vocabulary), drops the sample inputs, the guards and the
node metadata the checks do not read, and loads the cleaned copy from memory.
"""
from __future__ import annotations

import io
import json
import os
import re
import stat
import zipfile
from pathlib import Path

from autograder.judge import allowed_ops
from autograder.student_side.protocol import PROGRAM_MAX_BYTES

MAX_FILE_BYTES = PROGRAM_MAX_BYTES   # a ResNet-20 program is 1.4 MB
MAX_UNPACKED_BYTES = 2 * PROGRAM_MAX_BYTES
MAX_ENTRIES = 4_000
# A ResNet-20 program has about 100 calls; loading one takes ~10 ms per node on the CPU, so this bounds the
# load of one program to seconds (a 20,000-node program once held the judge for minutes).
MAX_NODES = 1_000
# Shape expressions: sympy's vocabulary for sizes, and symbols such as s77 or u0.
_EXPRESSION_WORDS = {"Symbol", "Integer", "Rational", "Float", "positive", "integer", "real", "nonnegative", "True",
                     "False", "oo", "Max", "Min", "Mod", "PythonMod", "FloorDiv", "CeilDiv", "CleanDiv", "Eq", "Ne",
                     "Lt", "Le", "Gt", "Ge", "And", "Or", "Not", "Abs", "Pow", "Mul", "Add", "FloorToInt",
                     "CeilToInt", "TruncToInt", "TruncToFloat", "ToFloat", "IntTrueDiv", "FloatTrueDiv",
                     "PowByNatural", "FloatPow", "RoundToInt", "RoundDecimal", "Identity", "LShift", "RShift",
                     "BitwiseFn_bitwise_and", "BitwiseFn_bitwise_or", "Piecewise", "ITE", "sqrt", "log", "exp"}
_EXPRESSION = re.compile(r"[A-Za-z0-9_ ()+\-*/,.=<>!'%]*")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SYMBOL = re.compile(r"[a-z]+[0-9]+")
# Node metadata the judge reads (which module a call ran in, the student process's marks); torch's loader turns
# others (source_fn_stack) into torch attributes or extension operators by name.
_KEPT_METADATA = {"nn_module_stack", "custom"}
_FIXED_ENTRIES = {"archive_format", "archive_version", ".data/version", "byteorder", ".data/serialization_id"}


class UnsafeProgram(ValueError):
    """The archive is not one ``torch.export.save`` writes for a plain model; the message says what is wrong.
    Only a forgery does this: the submission is flagged."""


class ProgramTooLarge(ValueError):
    """The program is bigger than anything the judge has to judge (an honest model could be): the checks that
    need it fail, saying so; nothing is flagged."""


def _check_expression(text: str) -> None:
    if "__" in text or not _EXPRESSION.fullmatch(text):
        raise UnsafeProgram("a shape expression holds characters no size expression has")
    for word in _WORD.findall(text):
        if word not in _EXPRESSION_WORDS and not _SYMBOL.fullmatch(word):
            raise UnsafeProgram(f"a shape expression uses {word[:40]!r}")


def _walk(value, on_dict) -> None:
    stack = [value]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            on_dict(current)
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)


def _check_model(model: dict) -> dict:
    graph = model.get("graph_module", {}).get("graph", {})
    nodes = graph.get("nodes", [])
    if not isinstance(nodes, list):
        raise UnsafeProgram("the program's graph is malformed")
    if len(nodes) > MAX_NODES:
        raise ProgramTooLarge(f"its graph has {len(nodes):,} calls, more than the {MAX_NODES:,} the judge loads")
    try:
        allowed_ops.check_graph(model.get("graph_module"))
    except allowed_ops.RefusedOp as refused:
        raise UnsafeProgram(str(refused)) from None

    def check(entry: dict) -> None:
        if "as_graph" in entry or "as_custom_obj" in entry:
            raise UnsafeProgram("the graph holds a nested graph or a custom object")
        if isinstance(entry.get("expr_str"), str):
            _check_expression(entry["expr_str"])

    _walk(model, check)
    for symbol in model.get("range_constraints", {}):
        _check_expression(symbol)
    for node in nodes:   # only the metadata the checks read: torch resolves others into objects by name
        metadata = node.get("metadata") if isinstance(node, dict) else None
        if isinstance(metadata, dict):
            node["metadata"] = {key: value for key, value in metadata.items() if key in _KEPT_METADATA}
    return dict(model, guards_code=[])


def _check_payloads(config: dict, what: str) -> None:
    for name, payload in config.get("config", {}).items():
        if not isinstance(payload, dict) or payload.get("use_pickle") is not False:
            raise UnsafeProgram(f"{what} {str(name)[:60]!r} is pickled")
        if what == "constant" and not str(payload.get("path_name", "")).startswith("tensor_"):
            raise UnsafeProgram(f"constant {str(name)[:60]!r} is not a tensor")


def clean_archive(path: Path) -> bytes:
    """The bytes of a safe copy of the ``.pt2`` at ``path``; UnsafeProgram when it cannot be made safe."""
    return _clean(path)[0]


def _clean(path: Path) -> tuple[bytes, dict]:
    """A safe copy of the archive, and its weights' configuration (which parameters share one tensor)."""
    try:   # one open, never through a link, never blocking on a FIFO; then only that file is read
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK), "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise UnsafeProgram("the program is not a regular file")
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise UnsafeProgram(f"the program cannot be read as a regular file ({type(error).__name__})") from None
    if len(data) > MAX_FILE_BYTES:
        raise ProgramTooLarge(f"the file is over the {MAX_FILE_BYTES // 2**20} MB limit")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise UnsafeProgram(f"the program is not a .pt2 archive ({type(error).__name__})") from None
    if len(entries) > MAX_ENTRIES or sum(e.file_size for e in entries) > MAX_UNPACKED_BYTES:
        raise ProgramTooLarge("its archive is too large once unpacked")
    roots = {entry.filename.split("/", 1)[0] for entry in entries}
    if len(roots) != 1:
        raise UnsafeProgram("the program's archive has more than one root folder")
    root = roots.pop()
    model_name = None
    for entry in entries:
        inner = entry.filename[len(root) + 1:]
        match = re.fullmatch(r"models/(\w+)\.json", inner)
        if match:
            if model_name is not None:
                raise UnsafeProgram("the archive holds more than one program")
            model_name = match.group(1)
        elif not (inner in _FIXED_ENTRIES or re.fullmatch(r"data/(weights|constants)/[\w.]+", inner)
                  or re.fullmatch(r"data/sample_inputs/\w+\.pt", inner)):
            raise UnsafeProgram(f"the archive holds an unexpected file {inner[:80]!r}")
    if model_name is None:
        raise UnsafeProgram("the archive holds no program")
    try:
        model = _check_model(json.loads(archive.read(f"{root}/models/{model_name}.json")))
        weights = json.loads(archive.read(f"{root}/data/weights/{model_name}_weights_config.json"))
        constants = json.loads(archive.read(f"{root}/data/constants/{model_name}_constants_config.json"))
    except (KeyError, ValueError, AttributeError, TypeError, RecursionError, MemoryError) as error:
        if isinstance(error, (UnsafeProgram, ProgramTooLarge)):
            raise
        raise UnsafeProgram(f"the program's description cannot be read ({type(error).__name__})") from None
    _check_payloads(weights, "weight")
    _check_payloads(constants, "constant")
    cleaned = io.BytesIO()
    with zipfile.ZipFile(cleaned, "w", zipfile.ZIP_STORED) as out:
        for entry in entries:
            inner = entry.filename[len(root) + 1:]
            if inner == f"models/{model_name}.json":
                out.writestr(entry.filename, json.dumps(model))
            elif inner.startswith("data/sample_inputs/"):
                out.writestr(entry.filename, b"")
            else:
                out.writestr(entry.filename, archive.read(entry))
    return cleaned.getvalue(), weights


def _shared_parameters(weights: dict) -> list[list[str]]:
    """Groups of parameter names saved as one tensor (a module's tied parameters: ``fc2.weight = fc1.weight``)."""
    groups: dict[str, list[str]] = {}
    for name, payload in weights.get("config", {}).items():
        if isinstance(payload, dict) and payload.get("is_param") and isinstance(payload.get("path_name"), str):
            groups.setdefault(payload["path_name"], []).append(str(name))
    return [names for names in groups.values() if len(names) > 1]


def remember_schema_hints() -> None:
    """torch's deserializer asks ``typing.get_type_hints`` for the hints of its schema dataclasses once per
    value it reads (thousands per program, ~40 % of loading a ResNet-20): give it a memo of the answers. Only
    its own module's ``typing`` is replaced; the hints of a class never change."""
    from torch._export.serde import serialize

    if getattr(serialize.typing, "_hw2_memo", False):
        return
    memo: dict = {}
    real = serialize.typing.get_type_hints

    def get_type_hints(obj, globalns=None, localns=None, include_extras=False):
        key = (obj, id(globalns), id(localns), include_extras)
        if key not in memo:
            memo[key] = real(obj, globalns, localns, include_extras)
        return memo[key]

    remembered = type(serialize.typing)("typing")
    remembered.__dict__.update(vars(serialize.typing), get_type_hints=get_type_hints, _hw2_memo=True)
    serialize.typing = remembered
    for value in vars(serialize.schema).values():   # answered once, in the warm judge, before it forks
        if isinstance(value, type) and value.__module__ == serialize.schema.__name__:
            try:
                get_type_hints(value, globalns=vars(serialize.schema))
            except Exception:   # noqa: BLE001 - a class torch never asks about: asked, if ever, when loading
                continue


def load_program(path: Path):
    """The module (``ExportedProgram.module()``) of a student-made ``.pt2``, loaded from a checked, cleaned copy.
    Parameters the student's module shared are one parameter again (saving duplicates them), so that the
    program holds what the module held: its parameter count, and one gradient for a tied weight."""
    import torch

    remember_schema_hints()
    data, weights = _clean(path)
    module = torch.export.load(io.BytesIO(data)).module()
    for names in _shared_parameters(weights):
        try:
            first = module.get_parameter(names[0])
            for name in names[1:]:
                other = module.get_parameter(name)
                if (other.shape, other.dtype, other.stride()) == (first.shape, first.dtype, first.stride()):
                    owner, _, attribute = name.rpartition(".")
                    setattr(module.get_submodule(owner), attribute, first)
        except (AttributeError, KeyError):   # a name the program does not hold: nothing to tie
            continue
    return module
