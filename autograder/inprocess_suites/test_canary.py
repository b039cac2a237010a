"""Canaries: every test here MUST FAIL. They run after all the graded tests, in the same process.

A genuine run reports each of them failed. A submission that forges passes (a patched pytest reporter, an
``assert`` that never fires, ``torch.allclose``/``pytest.approx``/``isinstance`` replaced by something
that always agrees, a rewritten report) makes a canary pass or vanish, and the parent flags the whole
submission as ``tampered``. Each canary uses one of the primitives the graded suites rely on, and the last
one compares those primitives with the originals this module saw at collection, before any student code
was loaded: replacing any of them is flagged even when the replacement behaves.
"""
from __future__ import annotations

import builtins

import _pytest.reports
import _pytest.runner
import pytest
import torch
from torch import nn

_BUILTINS = ("isinstance", "issubclass", "len", "sum", "abs", "all", "any", "min", "max", "round", "type",
             "hasattr", "getattr", "range", "zip", "float", "int", "bool", "str", "repr", "AssertionError")


def _primitives() -> dict[str, object]:
    found = {f"builtins.{name}": getattr(builtins, name) for name in _BUILTINS}
    found.update({
        "torch.allclose": torch.allclose, "torch.equal": torch.equal, "torch.isclose": torch.isclose,
        "torch.nn.Module.__call__": nn.Module.__call__,
        "torch.nn.Module.parameters": nn.Module.parameters, "torch.Tensor.numel": torch.Tensor.numel,
        "torch.Tensor.__eq__": torch.Tensor.__eq__, "pytest.approx": pytest.approx, "pytest.raises": pytest.raises,
        "pytest.fail": pytest.fail, "_pytest.runner.call_and_report": _pytest.runner.call_and_report,
        "_pytest.runner.CallInfo.from_call": _pytest.runner.CallInfo.__dict__["from_call"],
    })
    for name in ("passed", "failed", "skipped", "from_item_and_call"):
        found[f"_pytest.reports.TestReport.{name}"] = _pytest.reports.TestReport.__dict__.get(
            name, getattr(_pytest.reports.BaseReport, name, None))
    return found


_ORIGINALS = _primitives()


def test_plain_assert():
    """a plain assert"""
    assert 1 + 1 == 3


def test_pytest_fail():
    """pytest.fail"""
    pytest.fail("canary")


def test_torch_allclose():
    """torch.allclose"""
    assert torch.allclose(torch.zeros(3), torch.ones(3))


def test_torch_equal():
    """torch.equal"""
    assert torch.equal(torch.zeros(3), torch.ones(3))


def test_pytest_approx():
    """pytest.approx"""
    assert 1.0 == pytest.approx(2.0)


def test_pytest_raises():
    """pytest.raises"""
    with pytest.raises(ValueError):
        pass


def test_builtins():
    """isinstance, len and sum"""
    assert isinstance(1, str) or len([1]) == 2 or sum([1, 2]) == 4


def test_module_forward():
    """an nn.Module forward and parameter count"""
    layer = nn.Linear(2, 1)
    assert sum(p.numel() for p in layer.parameters()) == 4


def test_primitives_are_untouched():
    """the graded suites' primitives are the originals"""
    replaced = [name for name, now in _primitives().items() if now is not _ORIGINALS[name]]
    assert replaced, "every primitive is the original (the expected failure)"
    print("replaced:", ", ".join(replaced))
