"""Export tests: each builds one object a hidden check needs and saves it as a ``torch.export`` program.

One test per program; its parameter is the program id (``<id>.pt2`` in ``$HW2_PROGRAMS_DIR``, one of
``probes.PROGRAMS``). A test fails with the student's error when building or running the object fails (the
judge then fails every check that needs it, with that message); with ``protocol.UNEXPORTABLE_PREFIX`` and the
construct that blocked the export when the object runs but cannot be exported; and with
``protocol.MISMATCH_PREFIX`` when the saved program computes something else than the live object on the same
inputs, in train or eval mode (code that changes while torch.export runs, ``torch.compiler.is_exporting()``:
the model graded would not be the model trained). Either of the last two puts the part up for manual grading
by a TA. Nothing here decides a verdict: the judge runs its own probes, and this process can only lose points
by what it claims.

Models are exported in train mode with a dynamic batch dimension; the judge derives eval mode by switching
the program's BatchNorm and dropout calls (``graph_modes``), and chooses its own batch sizes and inputs.
"""
from __future__ import annotations

import contextlib

import pytest
import torch
import torch.fx.traceback
from torch.utils import _pytree as pytree

from autograder.student_side import graph_modes, protocol
from autograder.student_side.probes import EXAMPLE_BATCH, SWISH_CALL
from autograder.student_side.student_code import call_student, grading_device, where_in_student_code


def _skip_the_canonical_form_test() -> None:
    """``torch.export.save`` deep-copies and canonicalizes every program only to test that its canonical form is
    well defined, and throws the result away (``serialize.py``: "Test canonical form is well defined"): a third
    of saving a ResNet-20. The file written is the same without it."""
    from torch._export.serde import serialize

    serialize.canonicalize = lambda program, constants=None: program


_skip_the_canonical_form_test()


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)


def images(n: int = EXAMPLE_BATCH) -> torch.Tensor:
    return torch.randn(n, 3, 32, 32, device=grading_device())


def _blocker(error: BaseException) -> str:
    """What in the student's code stopped torch.export, and where, in words a student can act on (short: the
    student sees it as one line)."""
    text = f"{type(error).__name__} {error}"
    if "data-dependent" in text or "DataDependent" in text:
        hint = "control flow on a tensor's values (an if, a loop or a number taken from a tensor)"
    elif "numpy" in text:
        hint = "numpy inside the computation"
    else:
        first = str(error).strip().splitlines()[0][:80] if str(error).strip() else ""
        hint = f"a construct torch.export cannot trace ({type(error).__name__}{': ' + first if first else ''})"
    return f"{hint}{where_in_student_code(error)}"


@contextlib.contextmanager
def annotated_calls(cls: type):
    """Every call of an instance of ``cls`` during the export marks its nodes ``{SWISH_CALL: "<name>#<k>"}``
    (instances created inside ``forward`` included, which torch.export's module stack does not see)."""
    original, count = cls.__call__, [0]

    def call(self, *args, **kwargs):
        count[0] += 1
        with torch.fx.traceback.annotate({SWISH_CALL: f"{cls.__name__}#{count[0]}"}):
            return original(self, *args, **kwargs)

    cls.__call__ = call
    try:
        yield
    finally:
        del cls.__call__


@contextlib.contextmanager
def data_as_detach():
    """``tensor.data`` read as ``tensor.detach()`` while exporting: the same values without autograd (which
    torch.export cannot trace as such), so a penalty built on ``p.data`` is exported and shows its missing
    gradient to the judge instead of failing the export."""
    torch.Tensor.data = property(lambda self: self.detach(), torch._C.TensorBase.data.__set__)
    try:
        yield
    finally:
        del torch.Tensor.data


def export_program(program_id: str, what: str, module: torch.nn.Module, args: tuple, *,
                   dynamic: tuple | None = None, annotate: type | None = None, data_detached: bool = False) -> None:
    """Run ``module(*args)`` (a failure is the student's, with its message), then export and save it."""
    call_student(what, module, *args)
    hooks = [torch.fx.traceback.preserve_node_meta()]
    if annotate is not None:
        hooks.append(annotated_calls(annotate))
    if data_detached:
        hooks.append(data_as_detach())
    try:
        with contextlib.ExitStack() as stack:
            for hook in hooks:
                stack.enter_context(hook)
            program = torch.export.export(module, args, dynamic_shapes=dynamic, strict=False)
    except Exception as error:   # noqa: BLE001 - whatever stops the export is reported, not raised
        pytest.fail(f"{protocol.UNEXPORTABLE_PREFIX}{what}: {_blocker(error)}", pytrace=False)
    torch.export.save(program, protocol.program_path(program_id))
    difference = _difference(module, program.module(), args)
    if difference:
        pytest.fail(f"{protocol.MISMATCH_PREFIX}{what} ({difference}): does it behave differently while "
                    "torch.export runs (torch.compiler.is_exporting)?", pytrace=False)


# The same ATen kernels on the same inputs: only the order of float additions may differ.
_RTOL, _ATOL = 1e-4, 1e-5


def _difference(live: torch.nn.Module, exported: torch.fx.GraphModule, args: tuple) -> str | None:
    """Where the live object and its exported program differ on fresh inputs shaped like ``args``, in eval
    and in train mode (train mode is skipped for a program with dropout: its masks need not match); None when
    they agree. Eval first: neither mode's result depends on what the other did to BatchNorm's statistics."""
    torch.manual_seed(1)
    probe = pytree.tree_map(lambda a: torch.randn_like(a).requires_grad_(a.requires_grad)
                            if isinstance(a, torch.Tensor) else a, args)
    modes = [False] if graph_modes.random_calls(exported) else [False, True]
    for training in modes:
        mode = "train mode" if training else "eval mode"
        graph_modes.set_training(exported, training)
        live.train(training)
        outputs = []
        for run in (live, exported):
            inputs = pytree.tree_map(lambda a: a.detach().clone().requires_grad_(a.requires_grad)
                                     if isinstance(a, torch.Tensor) else a, probe)
            try:
                outputs.append(pytree.tree_flatten(run(*inputs)))
            except Exception as error:   # noqa: BLE001 - it ran while exporting: a failure now is a difference
                return f"{mode}: {'the live object' if run is live else 'the program'} raised {type(error).__name__}"
        (live_leaves, live_spec), (program_leaves, program_spec) = outputs
        if live_spec != program_spec:
            return f"{mode}: the outputs have another structure"
        for a, b in zip(live_leaves, program_leaves):
            if isinstance(a, torch.Tensor) != isinstance(b, torch.Tensor):
                return f"{mode}: the outputs have another structure"
            if not isinstance(a, torch.Tensor):
                if a != b:
                    return f"{mode}: {a!r:.40} against {b!r:.40}"
            elif a.shape != b.shape or a.dtype != b.dtype:
                return f"{mode}: shape {tuple(a.shape)} against {tuple(b.shape)}"
            elif not torch.allclose(a.detach(), b.detach(), rtol=_RTOL, atol=_ATOL, equal_nan=True):
                gap = (a.detach().double() - b.detach().double()).abs().nan_to_num(float("inf")).max().item()
                return f"{mode}: outputs differ by up to {gap:.3g}"
    return None


def batch_dynamic() -> tuple:
    """Dynamic shapes of one input whose first dimension (the batch) may change."""
    return ({0: torch.export.Dim.AUTO},)


def all_dynamic(rank: int) -> tuple:
    return ({dim: torch.export.Dim.AUTO for dim in range(rank)},)
