"""The judge's closed op set (autograder/judge/allowed_ops.py): what a program may call and what it may write.

Every forged program here is one a student could hand over by patching ``torch.export.save`` (the kit's code
is public). Where torch itself would run the forgery, the test first shows that it does (the attack is
real), then that the judge refuses it before torch reads a byte. The reference solution's programs, exported as
the student process exports them, must need nothing outside the set; every corpus variant (the generic ResNet
among them) and mutant is graded without a refusal in test_autograder_corpus.py.
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

from autograder.judge import allowed_ops
from autograder.judge.archive import UnsafeProgram, clean_archive, load_program
from autograder.student_side import protocol
from fixtures import corpus


def _writes_first_argument(schema) -> bool:
    return bool(schema.arguments) and schema.arguments[0].alias_info is not None and schema.arguments[0].alias_info.is_write


# Ops whose result may share the input's memory although their schema does not say so.
_ALIASING_WITHOUT_ANNOTATION = {"_unsafe_view.default", "type_as.default"}


@pytest.mark.parametrize("group", ["PURE", "VIEWS", "IN_PLACE"])
def test_every_allowed_op_exists_and_is_of_its_kind(group):
    """Checked against torch's own schemas, so a renamed overload or a misfiled op fails here."""
    wrong = []
    for name in sorted(getattr(allowed_ops, group)):
        packet, overload = name.split(".")
        schema = getattr(getattr(torch.ops.aten, packet), overload)._schema
        writes = any(a.alias_info is not None and a.alias_info.is_write for a in schema.arguments)
        aliases = any(r.alias_info is not None for r in schema.returns)
        kind = ("IN_PLACE" if _writes_first_argument(schema) else "writes another argument" if writes
                else "VIEWS" if aliases or name in _ALIASING_WITHOUT_ANNOTATION else "PURE")
        if kind != group:
            wrong.append(f"{name}: {kind}")
    assert not wrong, wrong
    assert not allowed_ops.PURE & allowed_ops.VIEWS and not allowed_ops.VIEWS & allowed_ops.IN_PLACE


def _archive(module: nn.Module, *args) -> tuple[zipfile.ZipFile, dict, str]:
    program = torch.export.export(module, args, strict=False)
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    archive = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    name = next(n for n in archive.namelist() if n.endswith("models/model.json"))
    return archive, json.loads(archive.read(name)), name


def _write(archive: zipfile.ZipFile, model: dict, name: str, path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as out:
        for entry in archive.infolist():
            out.writestr(entry.filename, json.dumps(model) if entry.filename == name else archive.read(entry))
    return path


def _nodes(model: dict) -> list[dict]:
    return model["graph_module"]["graph"]["nodes"]


class _Zeros(nn.Module):
    def forward(self, x):
        scratch = torch.zeros(16, dtype=torch.uint8)
        scratch.add_(65)
        return x + scratch.sum()


def test_a_program_that_maps_a_file_is_refused(tmp_path):
    """aten.from_file(shared=True) creates a file and maps it: the in-place add then writes into it."""
    planted = tmp_path / "planted.py"
    archive, model, name = _archive(_Zeros(), torch.randn(2, 3))
    zeros = _nodes(model)[0]
    assert zeros["target"] == "torch.ops.aten.zeros.default"
    zeros["target"] = "torch.ops.aten.from_file.default"
    zeros["inputs"] = [{"name": "filename", "arg": {"as_string": str(planted)}, "kind": 1},
                       {"name": "shared", "arg": {"as_bool": True}, "kind": 1},
                       {"name": "size", "arg": {"as_int": 16}, "kind": 1}, *zeros["inputs"][1:]]
    forged = _write(archive, model, name, tmp_path / "forged.pt2")
    torch.export.load(forged).module()(torch.randn(2, 3))
    assert planted.read_bytes() == b"A" * 16, "the forgery is real: torch runs it and writes the file"
    planted.unlink()
    with pytest.raises(UnsafeProgram, match="'from_file.default', which is outside the judge's allowed ops"):
        load_program(forged)
    assert not planted.exists()


class _Honest(nn.Module):
    """What honest programs write: in-place ReLU and ``out += x`` on computed values, BatchNorm's buffers."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn, self.relu = nn.Conv2d(3, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(inplace=True)

    def forward(self, x):
        out = self.relu(self.bn(self.conv(x)))
        out += x
        return out


class _InPlaceSwish(nn.Module):
    def forward(self, x):
        return x.mul_(torch.sigmoid(x))


@pytest.mark.parametrize("module, shape", [(_Honest(), (2, 3, 4, 4)), (_InPlaceSwish(), (5,))],
                         ids=["computed-values-and-batchnorm", "an-input-in-place"])
def test_what_honest_programs_write_is_accepted(module, shape, tmp_path):
    program = torch.export.export(module.train(), (torch.randn(shape),), strict=False)
    torch.export.save(program, tmp_path / "honest.pt2")
    names = {str(node.target) for node in program.graph.nodes if node.op == "call_function"}
    assert names & {"aten.relu_.default", "aten.add_.Tensor", "aten.mul_.Tensor"}, names
    load_program(tmp_path / "honest.pt2")(torch.randn(shape))


class _Affine(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 3)
        self.register_buffer("calls", torch.zeros(3))

    def forward(self, x):
        return self.linear(x) + self.calls.sum() * 0


def _in_place(model: dict, target: str, written: str, op: str = "torch.ops.aten.add_.Tensor") -> None:
    """Insert ``written = op(written, 1)`` first (through a view when ``target`` names one)."""
    inserted = []
    if target == "view":
        inserted.append({"target": "torch.ops.aten.view.default", "name": "viewed",
                         "inputs": [{"name": "self", "arg": {"as_tensor": {"name": written}}, "kind": 1},
                                    {"name": "size", "arg": {"as_ints": [-1]}, "kind": 1}],
                         "outputs": [{"as_tensor": {"name": "viewed"}}], "metadata": {}})
        written = "viewed"
    inserted.append({"target": op, "name": "written",
                     "inputs": [{"name": "self", "arg": {"as_tensor": {"name": written}}, "kind": 1},
                                {"name": "other", "arg": {"as_int": 1}, "kind": 1}],
                     "outputs": [{"as_tensor": {"name": "written"}}], "metadata": {}})
    _nodes(model)[:0] = inserted
    values = model["graph_module"]["graph"]["tensor_values"]
    values["viewed"] = values["written"] = values[inserted[0]["inputs"][0]["arg"]["as_tensor"]["name"]]


@pytest.mark.parametrize("case, match", [
    ("parameter", "writes a parameter"), ("view", "writes a parameter"), ("buffer-read", "writes a buffer that the"),
    ("copy", "'copy_.default', which is outside"), ("fill", "'fill_.Scalar', which is outside")])
def test_writes_into_weights_or_state_are_refused(case, match, tmp_path):
    """A program that rewrites its weights would undo the judge's edits (every residual-branch conv zeroed);
    one that counts its calls in a buffer would answer a check's second call differently."""
    archive, model, name = _archive(_Affine(), torch.randn(2, 3))
    if case in ("parameter", "view"):
        _in_place(model, case, "p_linear_weight")
    elif case == "buffer-read":
        _in_place(model, case, "b_calls")
    elif case == "copy":
        _in_place(model, case, "p_linear_weight", op="torch.ops.aten.copy_.default")
    else:
        _in_place(model, case, "p_linear_weight", op="torch.ops.aten.fill_.Scalar")
    forged = _write(archive, model, name, tmp_path / "forged.pt2")
    if case == "parameter":
        module = torch.export.load(forged).module()
        before = module.linear.weight.detach().clone()
        with torch.no_grad():   # as the judge runs the shortcut check, whose weight edits this would undo
            module(torch.randn(2, 3))
        assert torch.equal(module.linear.weight.detach(), before + 1), "the forgery is real: torch runs it"
    with pytest.raises(UnsafeProgram, match=match):
        clean_archive(forged)


def test_batchnorm_running_statistics_must_not_be_parameters(tmp_path):
    archive, model, name = _archive(nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3)).train(), torch.randn(4, 3))
    (norm,) = [node for node in _nodes(model) if node["target"] == "torch.ops.aten.batch_norm.default"]
    for item in norm["inputs"]:
        if item["name"] == "running_mean":
            item["arg"] = {"as_tensor": {"name": "p_0_bias"}}
    with pytest.raises(UnsafeProgram, match="batch_norm.default \\(its running statistics\\)' writes a parameter"):
        clean_archive(_write(archive, model, name, tmp_path / "forged.pt2"))


@pytest.mark.parametrize("kind", ["custom_obj", "token"])
def test_inputs_other_than_tensors_and_constants_are_refused(kind, tmp_path):
    archive, model, name = _archive(nn.Linear(3, 3), torch.randn(2, 3))
    model["graph_module"]["signature"]["input_specs"].append({kind: {"arg": {"name": "smuggled"}}})
    with pytest.raises(UnsafeProgram, match=f"'{kind}' input"):
        clean_archive(_write(archive, model, name, tmp_path / "forged.pt2"))


def _export_like_the_student_process(edit, tmp_path, monkeypatch) -> list[Path]:
    """Every program of the source notebooks (``edit``, if any, applied), exported by the export tests' code."""
    from autograder.student_side.exports import export_l1, export_resnet20, export_simplenn, export_simplenn_bn
    from autograder.student_side.exports import export_swish
    from autograder.student_side.probes import RESNET_CLASSES, SWISH_INPUTS, SWISH_FLOAT64, L1_PROGRAMS
    from tools.notebook_defs import load_definitions

    submission = corpus.build_submission(tmp_path / "submission", edit=edit)
    modules = {key: load_definitions(submission / corpus.course_config.NOTEBOOKS[key])
               for key in ("simplenn", "simplenn_dev", "resnet")}
    monkeypatch.setattr("autograder.student_side.student_code.student_object",
                        lambda key, name: getattr(modules[key], name))
    for module in (export_l1, export_resnet20, export_simplenn, export_simplenn_bn, export_swish):
        monkeypatch.setattr(module, "student_object", lambda key, name: getattr(modules[key], name), raising=False)
    programs = tmp_path / "programs"
    programs.mkdir()
    monkeypatch.setenv(protocol.PROGRAMS_DIR, str(programs))
    export_simplenn.test_SimpleNN("SimpleNN")
    export_simplenn_bn.test_SimpleNNBN("SimpleNNBN")
    for program_id in SWISH_INPUTS:
        export_swish.test_Swish(program_id)
    export_swish.test_Swish_float64(SWISH_FLOAT64)
    export_swish.test_SimpleNNSwish("SimpleNNSwish")
    for program_id in RESNET_CLASSES:
        export_resnet20.test_ResNet20(program_id)
    for program_id in L1_PROGRAMS:
        export_l1.test_l1_penalty(program_id)
    return sorted(programs.glob("*.pt2"))


def test_the_reference_programs_need_nothing_outside_the_set(tmp_path, monkeypatch):
    """The reference solution's 14 programs; every corpus variant (the generic ResNet(block, num_blocks) among
    them) and mutant is graded in test_autograder_corpus.py, which asserts that no program was refused."""
    paths = _export_like_the_student_process(None, tmp_path, monkeypatch)
    assert len(paths) == 14
    for path in paths:
        clean_archive(path)   # raises UnsafeProgram naming the op
