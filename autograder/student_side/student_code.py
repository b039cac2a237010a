"""The student's extracted notebooks, loaded in the student process, and calls into them that fail a test with
one sentence instead of a traceback.

The parent extracts each submitted notebook into ``$HW2_STUDENT_DIR/<notebook key>.py``. A test asks for a
student object with ``student_object("simplenn", "SimpleNN")`` or builds one with
``build("resnet", "ResNet20", num_classes=10)``; a missing notebook, a missing name, a stub still raising
NotImplementedError or a crash all fail the test with one clear sentence.

A module is loaded statement by statement (``tools.notebook_defs.run_statements``): a statement that fails
(an import the grading image lacks, a class body that raises) is skipped and reported once, and only the
tests that need what it defines fail. Statements that stopped an earlier run (an endless loop, ``os._exit``)
arrive in ``$HW2_SKIPPED_STATEMENTS`` and are skipped with that reason.
"""
from __future__ import annotations

import os
import sys
import traceback
import types
from pathlib import Path

import pytest
import torch

from autograder.student_side import protocol, report_plugin
from tools import notebook_defs

NOTEBOOK_NAMES: dict[str, str] = protocol.json_env(protocol.NOTEBOOK_NAMES)
_loaded: dict[str, object] = {}
_statements: dict[str, list[notebook_defs.Statement]] = {}
_BROKEN_MODULES: dict[str, str] = protocol.json_env(protocol.BROKEN_MODULES)
_SKIPPED_STATEMENTS: dict[str, dict[str, str]] = protocol.json_env(protocol.SKIPPED_STATEMENTS)


def _student_dir() -> Path:
    return Path(os.environ[protocol.STUDENT_DIR])


def _cell_of(key: str, line: int) -> int | None:
    """The notebook code cell of line ``line`` of the extracted module ``key``."""
    for statement in _statements.get(key, ()):
        if statement.node.lineno <= line <= (statement.node.end_lineno or statement.node.lineno):
            return statement.cell
    return None


def where_in_student_code(error: BaseException) -> str:
    """' (simplenn-cifar10.ipynb, code cell 5: `x = ...`)' for the innermost frame of ``error`` in student code,
    '' when none is."""
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        path = Path(frame.filename)
        if path.suffix == ".py" and path.parent == _student_dir() and path.stem in NOTEBOOK_NAMES:
            cell = _cell_of(path.stem, frame.lineno)
            place = NOTEBOOK_NAMES[path.stem] + (f", code cell {cell}" if cell else "")
            return f" ({place}: `{frame.line}`)" if frame.line else f" ({place})"
    return ""


def short_error(error: BaseException) -> str:
    """'ValueError: message (simplenn-cifar10.ipynb, code cell 5: `x = ...`)' from the innermost frame in
    student code."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}{': ' + message if message else ''}{where_in_student_code(error)}"


def _load(key: str, path: Path):
    """The module of ``path`` loaded statement by statement; its skipped statements go to the report."""
    module = types.ModuleType(f"student_{key}")
    module.__file__ = str(path)
    sys.modules[module.__name__] = module
    report_plugin.mark_loading(key)
    try:
        _statements[key] = notebook_defs.parse_extracted(path.read_text(encoding="utf-8"))
        problems = notebook_defs.run_statements(
            _statements[key], module.__dict__, NOTEBOOK_NAMES[key], filename=str(path),
            skip=_SKIPPED_STATEMENTS.get(key), on_statement=lambda statement: report_plugin.mark_loading(
                key, statement.where))
    except BaseException as error:  # SystemExit and KeyboardInterrupt included: a test must not end the run
        return f"{NOTEBOOK_NAMES[key]} does not load: {short_error(error)}"
    finally:
        report_plugin.mark_loading(None)
    report_plugin.add_problems(key, [f"{NOTEBOOK_NAMES[key]}: {problem}" for problem in problems])
    return module


def student_module(key: str):
    """The student's extracted notebook ``key``; fails the test when it was not submitted or does not load."""
    if key not in _loaded:
        path = _student_dir() / f"{key}.py"
        if not path.is_file():
            _loaded[key] = f"{NOTEBOOK_NAMES[key]} was not submitted"
        elif key in _BROKEN_MODULES:
            _loaded[key] = f"{NOTEBOOK_NAMES[key]} does not load: {_BROKEN_MODULES[key]}"
        else:
            with report_plugin.timed(f"load {key}"):
                _loaded[key] = _load(key, path)
    result = _loaded[key]
    if isinstance(result, str):
        pytest.fail(result, pytrace=False)
    return result


def student_object(key: str, name: str):
    """A class or function the student must define under ``name`` in notebook ``key``."""
    module = student_module(key)
    if not hasattr(module, name):
        pytest.fail(f"{name} is not defined in {NOTEBOOK_NAMES[key]} (the autograder imports it by this name: "
                    "do not rename it)", pytrace=False)
    value = getattr(module, name)
    if not notebook_defs.is_available(value):
        pytest.fail(str(value.error()), pytrace=False)
    return value


def call_student(what: str, function, *args, **kwargs):
    """Call student code; a stub or a crash fails the test with one sentence instead of a traceback."""
    try:
        return function(*args, **kwargs)
    except NotImplementedError:
        pytest.fail(f"{what} is not implemented yet (it raises NotImplementedError)", pytrace=False)
    except BaseException as error:
        if isinstance(error, pytest.fail.Exception):
            raise
        hint = ""   # first, so that cutting a long message to one line never drops it
        if grading_device().type == "cuda" and "device" in str(error):
            hint = " on the GPU (does it create tensors on the CPU? create them on x.device)"
        pytest.fail(f"{what} raised{hint} {short_error(error)}", pytrace=False)


def grading_device() -> torch.device:
    return torch.device(os.environ.get(protocol.GRADING_DEVICE, "cpu"))


def build(key: str, name: str, *args, **kwargs):
    """``name(*args, **kwargs)`` from notebook ``key``, as a module on the grading device."""
    cls = student_object(key, name)
    model = call_student(f"{name}()", cls, *args, **kwargs)
    if not isinstance(model, torch.nn.Module):
        pytest.fail(f"{name}() must be a torch.nn.Module, got {type(model).__name__}", pytrace=False)
    return model.to(grading_device())


def forward(model, x, what: str = "forward"):
    return call_student(f"{type(model).__name__}.{what}", model, x)
