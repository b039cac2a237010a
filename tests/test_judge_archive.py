"""The judge reads a student-made ``.pt2`` as hostile input (autograder/judge/archive.py).

``torch.export.load`` would run code from a forged archive in several ways (pickled sample inputs with a
``weights_only=False`` fallback, pickled weights, any ``torch.*`` name as a node target, ``guards_code``
compiled into Python, shape expressions handed to ``sympy.sympify``). Each test forges one of them into a
real exported program, as a student's patched ``torch.export.save`` would, and checks that the judge refuses
it or never runs it. Fast: one tiny export per module.
"""
from __future__ import annotations

import json
import os
import pickle
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

from autograder.judge import archive
from autograder.judge.archive import ProgramTooLarge, UnsafeProgram, clean_archive, load_program


class _Plant:
    """Unpickling this creates a file: proof that code from the archive ran."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    program = torch.export.export(nn.Sequential(nn.Linear(3, 2), nn.ReLU()), (torch.randn(4, 3),),
                                  dynamic_shapes=({0: torch.export.Dim.AUTO},), strict=False)
    path = tmp_path_factory.mktemp("program") / "model.pt2"
    torch.export.save(program, path)
    return path


def _forge(source: Path, dest: Path, edit) -> Path:
    """A copy of ``source`` with ``edit(inner name, bytes) -> bytes`` applied to every entry."""
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(dest, "w") as out:
        for entry in original.infolist():
            inner = entry.filename.split("/", 1)[1]
            out.writestr(entry.filename, edit(inner, original.read(entry)))
    return dest


def _edit_json(name: str, change):
    def edit(inner, data):
        if inner.endswith(name):
            document = json.loads(data)
            change(document)
            return json.dumps(document).encode()
        return data
    return edit


def test_a_real_program_loads_and_runs(exported):
    module = load_program(exported)
    out = module(torch.randn(5, 3))
    assert out.shape == (5, 2) and (out >= 0).all()


def test_pickled_sample_inputs_are_never_unpickled(exported, tmp_path):
    planted = tmp_path / "planted"
    payload = pickle.dumps(_Plant(str(planted)))
    forged = _forge(exported, tmp_path / "forged.pt2",
                    lambda inner, data: payload if inner.startswith("data/sample_inputs/") else data)
    with pytest.raises(Exception):   # torch itself would unpickle it (weights_only=False fallback)
        torch.export.load(forged)
    assert planted.exists(), "the forgery is real: torch.export.load ran code from the archive"
    planted.unlink()
    load_program(forged)(torch.randn(2, 3))
    assert not planted.exists()


def test_pickled_weights_are_refused(exported, tmp_path):
    def pickled(document):
        for payload in document["config"].values():
            payload["use_pickle"] = True
    forged = _forge(exported, tmp_path / "forged.pt2", _edit_json("_weights_config.json", pickled))
    with pytest.raises(UnsafeProgram, match="pickled"):
        clean_archive(forged)


@pytest.mark.parametrize("target", ["torch.save", "torch.ops.mylib.steal.default", "builtins.exec",
                                    "torch.ops.aten._print.default"])
def test_a_node_target_that_is_no_allowed_aten_op_is_refused(exported, tmp_path, target):
    def retarget(document):
        document["graph_module"]["graph"]["nodes"][0]["target"] = target
    forged = _forge(exported, tmp_path / "forged.pt2", _edit_json("models/model.json", retarget))
    with pytest.raises(UnsafeProgram, match="outside the judge.s allowed ops"):
        clean_archive(forged)


def test_guards_code_is_dropped_never_compiled(exported, tmp_path):
    planted = tmp_path / "planted"

    def inject(document):
        document["guards_code"] = [f"__import__('os').mkdir({str(planted)!r}) or True"]
    forged = _forge(exported, tmp_path / "forged.pt2", _edit_json("models/model.json", inject))
    load_program(forged)(torch.randn(2, 3))
    assert not planted.exists()


def test_a_shape_expression_that_is_code_is_refused(exported, tmp_path):
    def inject(document):
        def walk(value):
            if isinstance(value, dict):
                for key, item in value.items():
                    if key == "expr_str":
                        value[key] = "__import__('os').getcwd()"
                    walk(item)
            elif isinstance(value, list):
                for item in value:
                    walk(item)
        walk(document)
        document["range_constraints"]["__import__('os')"] = {"min_val": 0, "max_val": 1}
    forged = _forge(exported, tmp_path / "forged.pt2", _edit_json("models/model.json", inject))
    with pytest.raises(UnsafeProgram, match="shape expression"):
        clean_archive(forged)


def test_extra_files_big_files_and_non_archives_are_refused(exported, tmp_path, monkeypatch):
    extra = tmp_path / "extra.pt2"
    with zipfile.ZipFile(exported) as original, zipfile.ZipFile(extra, "w") as out:
        root = original.namelist()[0].split("/")[0]
        for entry in original.infolist():
            out.writestr(entry.filename, original.read(entry))
        out.writestr(f"{root}/data/aotinductor/model/model.so", b"\x7fELF")
    with pytest.raises(UnsafeProgram, match="unexpected file"):
        clean_archive(extra)
    not_zip = tmp_path / "junk.pt2"
    not_zip.write_bytes(os.urandom(1000))
    with pytest.raises(UnsafeProgram, match="not a .pt2 archive"):
        clean_archive(not_zip)
    monkeypatch.setattr(archive, "MAX_FILE_BYTES", 1000)
    with pytest.raises(ProgramTooLarge, match="over the"):   # an honest model could be big: not a forgery
        clean_archive(exported)


def test_links_and_fifos_are_refused_without_being_followed_or_opened(exported, tmp_path):
    link = tmp_path / "link.pt2"
    link.symlink_to(exported)
    with pytest.raises(UnsafeProgram, match="regular file"):
        clean_archive(link)
    fifo = tmp_path / "fifo.pt2"
    os.mkfifo(fifo)
    with pytest.raises(UnsafeProgram, match="not a regular file"):   # returns at once: nothing blocks on it
        clean_archive(fifo)


class _Held(nn.Module):
    """Parameters a module holds: tied (one tensor, two names), unused by ``forward``, frozen."""

    def __init__(self):
        super().__init__()
        self.first, self.second, self.unused = nn.Linear(3, 3), nn.Linear(3, 3), nn.Linear(3, 5)
        self.frozen = nn.Linear(3, 3).requires_grad_(False)
        self.second.weight = self.first.weight

    def forward(self, x):
        return self.second(self.first(x)) + self.frozen(x)


def test_the_program_holds_the_modules_trainable_parameters(tmp_path):
    """The checks' 'has N trainable parameters' counts what the module holds, used in forward or not; saving
    duplicates a tied weight, the judge makes it one parameter again (one count, one gradient)."""
    module = _Held()
    expected = sum(p.numel() for p in module.parameters() if p.requires_grad)
    assert expected == 9 + 3 + 3 + 15 + 5
    program = torch.export.export(module, (torch.randn(4, 3),), strict=False)
    torch.export.save(program, tmp_path / "held.pt2")
    loaded = load_program(tmp_path / "held.pt2")
    assert sum(p.numel() for p in loaded.parameters() if p.requires_grad) == expected
    assert loaded.get_parameter("first.weight") is loaded.get_parameter("second.weight")
    loaded(torch.randn(4, 3)).sum().backward()
    assert loaded.get_parameter("first.weight").grad is not None
    assert loaded.get_parameter("unused.weight").grad is None and not loaded.get_parameter("frozen.weight").requires_grad


def test_node_metadata_the_checks_do_not_read_is_dropped(exported, tmp_path):
    """torch's loader resolves source_fn_stack names into torch attributes or extension operators: never
    handed to it. The module stack and the student process's marks stay (the checks read them)."""
    def mark(document):
        node = document["graph_module"]["graph"]["nodes"][0]
        node["metadata"].update(source_fn_stack="linear,torch.save", torch_fn="save;torch.save",
                                custom=json.dumps({"hw2_call": "Swish#1"}))
    forged = _forge(exported, tmp_path / "forged.pt2", _edit_json("models/model.json", mark))
    (first, *_) = [node for node in load_program(forged).graph.nodes if node.op == "call_function"]
    assert "source_fn_stack" not in first.meta and "torch_fn" not in first.meta
    assert first.meta["custom"] == {"hw2_call": "Swish#1"} and first.meta.get("nn_module_stack")
