"""Export tests: each builds one object a hidden check needs and saves it as a ``torch.export`` program.

One test per program; its function name, less ``test_``, is the program id (``<id>.pt2`` in
``$HW2_PROGRAMS_DIR``). A test fails with the student's error when building or running the object fails
(the judge then fails every check that needs it, with that message), and with ``protocol.UNEXPORTABLE_PREFIX``
and the construct that blocked the export when the object runs but cannot be exported (the part is then
graded in-process and marked ``unverified``). Nothing here decides a verdict: the judge runs its own probes.

Models are exported in train mode with a dynamic batch dimension; the judge derives eval mode by switching
the program's BatchNorm and dropout calls, and chooses its own batch sizes and inputs.
"""
from __future__ import annotations

import contextlib

import pytest
import torch
import torch.fx.traceback

from autograder.student_side import protocol
from autograder.student_side.probes import EXAMPLE_BATCH, SWISH_CALL
from autograder.student_side.student_code import call_student, grading_device, where_in_student_code


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


def batch_dynamic() -> tuple:
    """Dynamic shapes of one input whose first dimension (the batch) may change."""
    return ({0: torch.export.Dim.AUTO},)


def all_dynamic(rank: int) -> tuple:
    return ({dim: torch.export.Dim.AUTO for dim in range(rank)},)
