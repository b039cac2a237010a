"""Fixtures of the hidden suites: the student's extracted modules and the grading device.

The parent process extracts each submitted notebook into ``$HW2_STUDENT_DIR/<notebook key>.py``
(``simplenn``, ``simplenn_dev``, ``resnet``; see course_config.NOTEBOOKS) and runs these suites in a
child process. A test asks for a student object with ``student_object("simplenn", "SimpleNN")`` or
builds one with ``build("resnet", "ResNet20", num_classes=10)``; a missing notebook, a missing name, a
stub still raising NotImplementedError or a crash all fail the test with one clear sentence.

A module is loaded statement by statement (``tools.notebook_defs.run_statements``): a statement that fails
(an import the grading image lacks, a class body that raises) is skipped and reported once, and only the
tests that need what it defines fail. Statements that stopped an earlier grading run (an endless loop,
``os._exit``) arrive in ``$HW2_SKIPPED_STATEMENTS`` and are skipped with that reason.

Every test's docstring (first line) is its check's name in the report, prefixed by its part id, the file
name's ``test_<part id>.py``. ``@pytest.mark.deduction(share)`` is the share of the part that failing the
check costs (see autograder/rubric.py).
"""
from __future__ import annotations

import json
import os
import sys
import traceback
import types
from pathlib import Path

import pytest
import torch

from autograder.suites import report_plugin
from tools import notebook_defs

NOTEBOOK_NAMES = {
    "simplenn": "simplenn-cifar10.ipynb",
    "simplenn_dev": "simplenn-cifar10-dev.ipynb",
    "resnet": "resnet-cifar10.ipynb",
}
_loaded: dict[str, object] = {}
_statements: dict[str, list[notebook_defs.Statement]] = {}
# Modules whose loading stopped an earlier grading run before any statement ran, and statements that did
# (an endless loop, os._exit, a memory bomb in a class body): the parent passes the reasons.
_BROKEN_MODULES: dict[str, str] = json.loads(os.environ.get("HW2_BROKEN_MODULES", "{}"))
_SKIPPED_STATEMENTS: dict[str, dict[str, str]] = json.loads(os.environ.get("HW2_SKIPPED_STATEMENTS", "{}"))


def pytest_configure(config):
    config.addinivalue_line("markers", "deduction(share): the share of its part that failing this check costs")


def _student_dir() -> Path:
    return Path(os.environ["HW2_STUDENT_DIR"])


def _cell_of(key: str, line: int) -> int | None:
    """The notebook code cell of line ``line`` of the extracted module ``key``."""
    for statement in _statements.get(key, ()):
        if statement.node.lineno <= line <= (statement.node.end_lineno or statement.node.lineno):
            return statement.cell
    return None


def _short_error(error: BaseException) -> str:
    """'ValueError: message (simplenn-cifar10.ipynb, code cell 5: `x = ...`)' from the innermost frame in
    student code."""
    where = ""
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        path = Path(frame.filename)
        if path.suffix == ".py" and path.parent == _student_dir() and path.stem in NOTEBOOK_NAMES:
            cell = _cell_of(path.stem, frame.lineno)
            place = NOTEBOOK_NAMES[path.stem] + (f", code cell {cell}" if cell else "")
            where = f" ({place}: `{frame.line}`)" if frame.line else f" ({place})"
            break
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}{': ' + message if message else ''}{where}"


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
        return f"{NOTEBOOK_NAMES[key]} does not load: {_short_error(error)}"
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
        pytest.fail(f"{what} raised {_short_error(error)}", pytrace=False)


def build(key: str, name: str, *args, **kwargs):
    """``name(*args, **kwargs)`` from notebook ``key``, as a module on the grading device."""
    cls = student_object(key, name)
    model = call_student(f"{name}()", cls, *args, **kwargs)
    if not isinstance(model, torch.nn.Module):
        pytest.fail(f"{name}() must be a torch.nn.Module, got {type(model).__name__}", pytrace=False)
    return model.to(grading_device())


def grading_device() -> torch.device:
    return torch.device(os.environ.get("HW2_GRADING_DEVICE", "cpu"))


def forward(model, x, what: str = "forward"):
    return call_student(f"{type(model).__name__}.{what}", model, x)


def trainable_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.fixture
def device() -> torch.device:
    return grading_device()


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)


def assert_simplenn_layers(model) -> None:
    """SimpleNN's layers (shared by the SimpleNN and SimpleNNBN suites): convs 5x5 3->8 and 3x3 8->16,
    stride 1, no padding, and Linear 576->120->84->10."""
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    got = [(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding) for c in convs]
    expected = [(3, 8, (5, 5), (1, 1), (0, 0)), (8, 16, (3, 3), (1, 1), (0, 0))]
    assert got == expected, f"expected convs (in, out, kernel, stride, padding) {expected}, got {got}"
    linears = [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert linears == [(576, 120), (120, 84), (84, 10)], f"expected Linear 576->120->84->10, got {linears}"


SIMPLENN_BN_PARAMETERS = (82_078, 82_054)   # with conv biases / with bias=False convs before the BNs


def assert_simplenn_bn_parameters(model) -> None:
    """SimpleNNBN's parameter count, which SimpleNNSwish shares."""
    count = trainable_parameters(model)
    assert count in SIMPLENN_BN_PARAMETERS, (
        f"expected 82,078 trainable parameters (82,054 if the convs have bias=False), got {count:,}")


def batchnorm_fed_by_each_conv(model, x) -> list[tuple[torch.nn.Conv2d, torch.nn.BatchNorm2d | None]]:
    """One train-mode forward of ``x``; every conv call paired with the BatchNorm2d that received exactly
    its output, or None. Copies are compared, so an in-place op between conv and BN shows."""
    conv_outputs, norm_inputs = [], []
    for conv in (m for m in model.modules() if isinstance(m, torch.nn.Conv2d)):
        conv.register_forward_hook(lambda module, args, output: conv_outputs.append((module, output.detach().clone())))
    for norm in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        norm.register_forward_pre_hook(lambda module, args: norm_inputs.append((module, args[0].detach().clone())))
    forward(model.train(), x)
    pairs = []
    for conv, output in conv_outputs:
        fed = [norm for norm, received in norm_inputs
               if received.shape == output.shape and torch.equal(received, output)]
        pairs.append((conv, fed[0] if fed else None))
    return pairs
