"""Fixtures of the hidden suites: the student's exported programs, loaded and run by the judge.

The judge never imports student code. The student process exported every object a check needs
(``autograder/student_side/exports``) into ``$HW2_PROGRAMS_DIR``; the manifest ``$HW2_MANIFEST`` (written by
the parent once the export is over) says which parts the judge decides and which exports failed and why.
``program("SimpleNN")`` returns a fresh ``Program`` on the grading device, or fails the test with the student's error; ``run(program, *inputs)`` runs it and fails the
test with one sentence when it raises. Probes are drawn from ``$HW2_PROBE_SEED``, chosen after the export.

Only the programs of ``probes.PROGRAMS`` are ever read, each as hostile data (``judge/archive.py``), and the
report says which one is loading, so a program that holds the judge too long is blamed, not the kit.

Every test's docstring (first line) is its check's name in the report, prefixed by its part id, the file
name's ``test_<part id>.py``. ``@pytest.mark.deduction(share)`` is the share of the part that failing the
check costs (see autograder/rubric.py).
"""
from __future__ import annotations

import ast
import json
import os
import time
from pathlib import Path

import pytest
import torch

from autograder import expectations
from autograder.judge.archive import ProgramTooLarge, UnsafeProgram, load_program
from autograder.judge.program import Program, op_name
from autograder.student_side import protocol, report_plugin
from autograder.student_side.probes import PROGRAM_IDS

_loaded: dict[str, object] = {}   # program id -> its module as loaded (each check gets a copy), or why there is none
# Programs loaded while the export was still running: program id -> (file's mtime and size, its module or None
# when that file did not load). Used only if the file has not changed since, and only once the manifest
# says the export succeeded: a head start, never a verdict.
_early: dict[str, tuple[tuple[float, int], object]] = {}
_SETTLED_S = 0.3   # a program file untouched this long is complete (torch.export.save writes it in one go)
_NOTEBOOK_NAMES: dict[str, str] = protocol.json_env(protocol.NOTEBOOK_NAMES)


def pytest_configure(config):
    config.addinivalue_line("markers", "deduction(share): the share of its part that failing this check costs")


def grading_device() -> torch.device:
    return torch.device(os.environ.get(protocol.GRADING_DEVICE, "cpu"))


@pytest.fixture
def device() -> torch.device:
    return grading_device()


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(int(os.environ.get(protocol.PROBE_SEED, "0")))


def _manifest() -> dict:
    """programs.json, once the parent has written it (the judge starts beside the export and waits here)."""
    path = Path(os.environ[protocol.MANIFEST])
    if not path.is_file():
        with report_plugin.timed("wait"):
            while not path.is_file():
                _load_early(Path(os.environ[protocol.PROGRAMS_DIR]))
                time.sleep(0.02)
    return json.loads(path.read_text(encoding="utf-8"))


def _stamp(path: Path) -> tuple[float, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime, stat.st_size


def _load_early(folder: Path) -> None:
    """Load the programs the export has finished writing (each file tried once per version of it), but not one
    that held an earlier judging of this submission too long."""
    for program_id in sorted(PROGRAM_IDS - set(json.loads(os.environ.get(protocol.UNLOADABLE) or "[]"))):
        path = folder / f"{program_id}{protocol.PROGRAM_SUFFIX}"
        stamp = _stamp(path)
        if stamp is None or time.time() - stamp[0] < _SETTLED_S or _early.get(program_id, (None,))[0] == stamp:
            continue
        report_plugin.mark_program(program_id)
        try:
            with report_plugin.timed(f"program {program_id}"):
                _early[program_id] = (stamp, load_program(path))
        except Exception:   # noqa: BLE001 - refused or broken: program() loads it again and says why
            _early[program_id] = (stamp, None)
        finally:
            report_plugin.mark_program(None)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session, config, items):
    """Only the parts the parent hands to the judge (the others failed to export or go in-process)."""
    judged = set(_manifest()["parts"])
    kept = [item for item in items if protocol.part_of(item.nodeid) in judged]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept


def program(program_id: str) -> Program:
    """A fresh copy of the exported program ``program_id``; fails the test when there is none."""
    if program_id not in _loaded:
        entry = _manifest()["programs"].get(program_id)
        path = protocol.program_path(program_id)
        if entry is None or not entry.get("exported"):
            _loaded[program_id] = (entry or {}).get("message") or "the object this check needs was not built"
        elif program_id not in PROGRAM_IDS or not path.is_file():
            _loaded[program_id] = "the exported program is missing"
        elif _early.get(program_id, (None, None))[1] is not None and _early[program_id][0] == _stamp(path):
            _loaded[program_id] = _early[program_id][1]
        else:
            report_plugin.mark_program(program_id)
            try:
                with report_plugin.timed(f"program {program_id}"):
                    _loaded[program_id] = load_program(path)
            except UnsafeProgram as error:
                _loaded[program_id] = f"the exported program was refused: {error}"
            except ProgramTooLarge as error:
                _loaded[program_id] = f"the exported program is too large to judge: {error}"
            except Exception as error:   # noqa: BLE001 - a forged archive may break torch's loader anywhere
                _loaded[program_id] = f"the exported program does not load ({type(error).__name__})"
            finally:
                report_plugin.mark_program(None)
    loaded = _loaded[program_id]
    if isinstance(loaded, str):
        pytest.fail(loaded, pytrace=False)
    return Program.of(program_id, loaded, grading_device())


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}{': ' + text.splitlines()[0] if text else ''}"


def _fail(program_: Program, inputs: tuple, error: BaseException, what: str | None):
    text = str(error)
    hint = ""
    if "device" in text and grading_device().type == "cuda":
        hint = " (does forward create tensors on the CPU? create them on x.device)"
    elif "Guard failed" in text or "Expected input" in text:
        hint = " (the export fixed this size: does forward hard-code a batch size or a shape?)"
    first = inputs[0] if inputs else None
    shape = f" on an input of shape {tuple(first.shape)}" if isinstance(first, torch.Tensor) else ""
    pytest.fail(f"{what or program_.id} failed{shape}{hint}: {_first_line(error)}", pytrace=False)


def run(program_: Program, *inputs, what: str | None = None):
    """``program_(*inputs)``; an error fails the test with one sentence (a device mismatch says so)."""
    try:
        return program_(*inputs)
    except Exception as error:   # noqa: BLE001 - the program is the student's: any failure is theirs
        _fail(program_, inputs, error, what)


def trace(program_: Program, *inputs, what: str | None = None):
    """``program_.trace(*inputs)`` (the output and every value computed), failing the test as ``run`` does."""
    try:
        return program_.trace(*inputs)
    except Exception as error:   # noqa: BLE001
        _fail(program_, inputs, error, what)


def backward(loss: torch.Tensor, what: str) -> None:
    try:
        loss.backward()
    except Exception as error:   # noqa: BLE001
        pytest.fail(f"backward through {what} raised {_first_line(error)}", pytrace=False)


def images(n: int) -> torch.Tensor:
    return torch.randn(n, 3, 32, 32, device=grading_device())


def trainable_parameters(program_: Program) -> int:
    return sum(p.numel() for p in program_.parameters().values() if p.requires_grad)


def student_source(key: str) -> ast.Module | None:
    """The extracted module ``key`` parsed (read as text, never run); None when it was not submitted."""
    path = Path(os.environ[protocol.STUDENT_DIR]) / f"{key}.py"
    if not path.is_file():
        return None
    return ast.parse(path.read_text(encoding="utf-8"))


# ---- helpers several suites share ---------------------------------------------------------------------
def conv_layers(program_: Program) -> list[tuple[int, int, tuple, tuple, tuple]]:
    """(in, out, kernel, stride, padding) of every conv call, in execution order."""
    layers = []
    for node in program_.calls("conv2d"):
        weight = program_.tensor(Program.argument(node, "weight"))
        shape = tuple(weight.shape) if weight is not None else tuple(node.args[1].meta["val"].shape)
        groups = Program.argument(node, "groups")
        padding = Program.argument(node, "padding")
        padding = tuple(padding) if isinstance(padding, (list, tuple)) else padding
        stride = Program.argument(node, "stride")
        stride = tuple(stride) if isinstance(stride, (list, tuple)) else stride
        dilation = Program.argument(node, "dilation")
        dilation = _pair(tuple(dilation) if isinstance(dilation, (list, tuple)) else dilation)
        layers.append((shape[1] * groups, shape[0], tuple(shape[2:]), _pair(stride),
                       _padding(_pair(padding), tuple(shape[2:]), dilation)))
    return layers


def _padding(padding, kernel: tuple, dilation) -> tuple | str:
    """``padding="valid"`` is no padding, ``"same"`` (stride 1) pads each side by dilation * (kernel - 1) / 2
    (rounded down): as numbers, so a correct layer written either way passes."""
    if padding == "valid":
        return (0, 0)
    if padding == "same" and all(isinstance(n, int) for n in (*kernel, *dilation)):
        return tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation))
    return padding


def _pair(value):
    if isinstance(value, tuple) and len(value) == 1:
        return value * 2
    return value if isinstance(value, (tuple, str)) else (value, value)


def linear_layers(program_: Program) -> list[tuple[int, int]]:
    """(in_features, out_features) of every linear call, in execution order."""
    layers = []
    for node in program_.calls("linear"):
        weight = program_.tensor(Program.argument(node, "weight"))
        shape = tuple(weight.shape) if weight is not None else tuple(node.args[1].meta["val"].shape)
        layers.append((shape[1], shape[0]))
    return layers


def assert_simplenn_layers(program_: Program) -> None:
    """SimpleNN's layers (shared by the SimpleNN and SimpleNNBN suites)."""
    expectations.assert_simplenn_layers(conv_layers(program_), linear_layers(program_))


def assert_simplenn_bn_parameters(program_: Program) -> None:
    """SimpleNNBN's parameter count, which SimpleNNSwish shares."""
    expectations.assert_simplenn_bn_parameters(trainable_parameters(program_))


_SAME_VALUE = {"alias", "clone", "contiguous"}


def batchnorm_fed_by_each_conv(program_: Program) -> list[tuple[tuple, int | None]]:
    """Every conv call's (in, out, kernel) paired with the width of the BatchNorm that receives exactly its
    output (through nothing but copies), or None."""
    pairs = []
    for node, layer in zip(program_.calls("conv2d"), conv_layers(program_)):
        width = None
        frontier = [node]
        while frontier and width is None:
            current = frontier.pop()
            for user in current.users:
                name = op_name(user)
                if name in _SAME_VALUE:
                    frontier.append(user)
                elif name == "batch_norm" and user.args[0] is current:
                    width = _batchnorm_width(program_, user)
                    break
        pairs.append(((layer[0], layer[1], layer[2]), width))
    return pairs


def convs_without_their_batchnorm(pairs: list[tuple[tuple, int | None]]) -> list[str]:
    """From ``batchnorm_fed_by_each_conv``'s pairs, what every conv lacking a BatchNorm of its width gets, conv
    calls named in order: ["none after conv1 (3->8) and conv2 (8->16)", "BatchNorm2d(8) after conv3 (8->16)"]."""
    none, wrong_width = [], []
    for index, ((in_channels, out_channels, _), width) in enumerate(pairs):
        conv = f"conv{index + 1} ({in_channels}->{out_channels})"
        if width is None:
            none.append(conv)
        elif width != out_channels:
            wrong_width.append(f"BatchNorm2d({width}) after {conv}")
    return ([f"none after {expectations.listing(none, expectations.MESSAGE_CHARS // 2)}"] if none else []) + wrong_width


def _batchnorm_width(program_: Program, node) -> int | None:
    for name in ("running_mean", "weight"):
        tensor = program_.tensor(Program.argument(node, name))
        if tensor is not None:
            return int(tensor.shape[0])
    value = node.args[0].meta.get("val")
    return int(value.shape[1]) if value is not None and value.dim() > 1 else None
