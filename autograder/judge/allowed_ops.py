"""The judge's closed op set: the only calls an exported program may make (the one home of the list).

A student-made ``.pt2`` is hostile data. ``torch.export`` graphs can hold any ATen op, and some of them reach
outside the tensor world (``aten.from_file`` maps a file, ``shared=True`` even creates one; ``set_`` swaps
storages; ``_print`` writes) or write where the judge keeps its probes and weights (``copy_``/``fill_`` into a
parameter or a constant). So the judge accepts a program only when every call is an op named below, by
overload, and ``check_graph`` refuses anything else, naming the op (``judge/archive.py`` calls it on the
serialized graph, before torch reads a byte of the archive).

The programs are kept in torch.export's training IR, not decomposed to core ATen: the hidden checks read
``conv2d``, ``linear`` and ``batch_norm`` calls, which the decomposition would turn into ``convolution``,
``addmm`` and ``_native_batch_norm_legit_functional``. The list holds what models of this homework produce in
that IR (convolution, normalization, pooling, linear algebra, activations, arithmetic, views, reductions,
padding, concatenation, tensor factories, dropout), generously: an honest student's unusual but pure op must
not flag a submission. Not in it, and refused: files, storages, printing, asserts, random tensors in
``forward``, uninitialized tensors (``empty``: whatever the judge's memory held before, a channel out through a
check's message), copies into other tensors, custom and ``prims`` ops, higher-order ops (nested graphs).

Three kinds, each a test checks against torch's own schemas (``tests/test_judge_ops.py``):

* ``PURE``: a new tensor (or a size) from the inputs; nothing is written, nothing aliases.
* ``VIEWS``: the result may share the input's memory (``view``, ``slice``, ``t``, ``detach``, ...).
* ``IN_PLACE``: writes its first argument (``relu_`` of ``nn.ReLU(inplace=True)``, ``add_`` of ``out += x``,
  BatchNorm's ``num_batches_tracked.add_(1)``).

What a program writes is checked too, through any chain of views. An in-place call, or a train-mode
``batch_norm`` updating the running statistics it is given, may write a value the graph computed, a user input
(an honest in-place Swish writes its input; the judge's own check catches it) or a buffer whose only readers
are other in-place calls and BatchNorm's running-statistics arguments (BatchNorm's buffers). Never a parameter,
a lifted constant, or a buffer the computation reads: the judge edits weights (every residual-branch conv
zeroed), and a program that rewrote them, or counted its own calls in a buffer, would fool its checks.

``SIZE_OPERATORS`` are the Python operators export uses on symbolic sizes (a dynamic batch).
"""
from __future__ import annotations

import re

PURE = frozenset({
    # convolution, linear algebra
    "conv1d.default", "conv2d.default", "conv3d.default", "conv2d.padding", "conv1d.padding", "conv3d.padding",
    "convolution.default", "conv_transpose1d.default", "conv_transpose2d.input", "conv_transpose3d.input",
    "linear.default", "addmm.default", "mm.default", "bmm.default", "matmul.default", "einsum.default",
    "baddbmm.default", "addmv.default", "mv.default", "dot.default", "outer.default", "bilinear.default",
    # normalization
    "batch_norm.default", "layer_norm.default", "group_norm.default", "instance_norm.default",
    # pooling, resizing
    "max_pool1d.default", "max_pool2d.default", "max_pool3d.default", "max_pool2d_with_indices.default",
    "avg_pool1d.default", "avg_pool2d.default", "avg_pool3d.default", "adaptive_avg_pool1d.default",
    "adaptive_avg_pool2d.default", "adaptive_avg_pool3d.default", "adaptive_max_pool1d.default",
    "adaptive_max_pool2d.default", "upsample_nearest2d.vec", "upsample_bilinear2d.vec", "pixel_shuffle.default",
    # activations, softmax, dropout
    "relu.default", "relu6.default", "hardtanh.default", "leaky_relu.default", "elu.default", "selu.default",
    "celu.default", "gelu.default", "silu.default", "mish.default", "sigmoid.default", "tanh.default",
    "softplus.default", "hardsigmoid.default", "hardswish.default", "prelu.default", "threshold.default",
    "log_sigmoid.default", "glu.default", "softmax.int", "log_softmax.int", "logit.default",
    "dropout.default", "feature_dropout.default", "alpha_dropout.default", "feature_alpha_dropout.default",
    # arithmetic and elementwise maths
    "add.Tensor", "add.Scalar", "sub.Tensor", "sub.Scalar", "rsub.Tensor", "rsub.Scalar", "mul.Tensor",
    "mul.Scalar", "div.Tensor", "div.Scalar", "div.Tensor_mode", "div.Scalar_mode", "floor_divide.default",
    "floor_divide.Scalar", "remainder.Tensor", "remainder.Scalar", "fmod.Tensor", "fmod.Scalar", "neg.default",
    "abs.default", "sign.default", "sgn.default", "exp.default", "exp2.default", "expm1.default", "log.default",
    "log2.default", "log10.default", "log1p.default", "sqrt.default", "rsqrt.default", "square.default",
    "reciprocal.default", "pow.Tensor_Scalar", "pow.Tensor_Tensor", "pow.Scalar", "sin.default", "cos.default",
    "tan.default", "atan.default", "atan2.default", "erf.default", "floor.default", "ceil.default",
    "round.default", "round.decimals", "trunc.default", "frac.default", "clamp.default", "clamp.Tensor",
    "clamp_min.default", "clamp_max.default", "clip.default", "maximum.default", "minimum.default",
    "where.self", "where.ScalarOther", "where.ScalarSelf", "where.Scalar", "lerp.Scalar", "lerp.Tensor",
    "addcmul.default", "addcdiv.default", "hypot.default", "logaddexp.default", "masked_fill.Scalar",
    "masked_fill.Tensor", "nan_to_num.default", "isnan.default", "isinf.default", "isfinite.default",
    # comparison and logic
    "eq.Tensor", "eq.Scalar", "ne.Tensor", "ne.Scalar", "lt.Tensor", "lt.Scalar", "le.Tensor", "le.Scalar",
    "gt.Tensor", "gt.Scalar", "ge.Tensor", "ge.Scalar", "logical_and.default", "logical_or.default",
    "logical_not.default", "logical_xor.default", "bitwise_and.Tensor", "bitwise_or.Tensor",
    "bitwise_not.default",
    # reductions
    "sum.default", "sum.dim_IntList", "mean.default", "mean.dim", "prod.default", "prod.dim_int",
    "amax.default", "amin.default", "max.default", "max.dim", "max.other", "min.default", "min.dim",
    "min.other", "argmax.default", "argmin.default", "std.default", "std.dim", "std.correction", "var.default",
    "var.dim", "var.correction", "var_mean.correction", "std_mean.correction", "logsumexp.default",
    "norm.Scalar", "norm.ScalarOpt_dim", "linalg_vector_norm.default", "frobenius_norm.dim", "all.default",
    "all.dim", "any.default", "any.dim", "cumsum.default", "cumprod.default", "count_nonzero.default",
    # new tensors: joining, padding, indexing, copies, factories
    "cat.default", "stack.default", "hstack.default", "vstack.default", "pad.default", "constant_pad_nd.default",
    "reflection_pad2d.default", "replication_pad2d.default", "repeat.default", "tile.default", "roll.default",
    "flip.default", "repeat_interleave.self_int", "index_select.default", "gather.default", "index.Tensor",
    "one_hot.default", "embedding.default", "clone.default", "_to_copy.default", "lift_fresh_copy.default",
    "zeros.default", "zeros_like.default", "ones.default", "ones_like.default", "full.default",
    "full_like.default", "new_zeros.default", "new_ones.default", "new_full.default", "scalar_tensor.default",
    "arange.default", "arange.start",
    "arange.start_step", "linspace.default", "eye.default", "tril.default", "triu.default",
    # sizes of a dynamic shape, a number read from a tensor (``loss.item()``)
    "sym_size.int", "sym_numel.default", "sym_stride.int", "item.default", "_local_scalar_dense.default",
})

VIEWS = frozenset({
    "view.default", "_unsafe_view.default", "reshape.default", "view_as.default", "reshape_as.default",
    "flatten.using_ints", "unflatten.int", "squeeze.default", "squeeze.dim", "squeeze.dims", "unsqueeze.default",
    "permute.default", "transpose.int", "t.default", "movedim.int", "expand.default", "expand_as.default",
    "slice.Tensor", "select.int", "narrow.default", "unbind.int", "split.Tensor", "split_with_sizes.default",
    "chunk.default", "tensor_split.sections", "unfold.default", "diagonal.default", "alias.default",
    "detach.default", "contiguous.default", "to.dtype", "to.device", "to.dtype_layout", "to.other",
    "type_as.default", "real.default",
})

IN_PLACE = frozenset({
    "relu_.default", "add_.Tensor", "add_.Scalar", "sub_.Tensor", "sub_.Scalar", "mul_.Tensor", "mul_.Scalar",
    "div_.Tensor", "div_.Scalar", "sigmoid_.default", "tanh_.default", "hardtanh_.default", "leaky_relu_.default",
    "elu_.default", "silu_.default", "hardswish_.default", "hardsigmoid_.default", "threshold_.default",
    "clamp_.default", "clamp_min_.default", "clamp_max_.default", "neg_.default", "abs_.default", "exp_.default",
    "dropout_.default", "feature_dropout_.default",
})

SIZE_OPERATORS = frozenset(f"_operator.{name}" for name in (
    "getitem", "add", "sub", "mul", "floordiv", "truediv", "mod", "neg", "eq", "ne", "lt", "le", "gt", "ge", "and_",
    "or_", "pow"))

_ATEN = re.compile(r"torch\.ops\.aten\.(\w+\.\w+)")
# BatchNorm's running statistics: the arguments through which a mutated buffer may still be read.
_RUNNING_STATISTICS = {("batch_norm.default", "running_mean"), ("batch_norm.default", "running_var")}
_INPUT_KINDS = {"parameter", "buffer", "tensor_constant", "user_input", "constant_input"}
_OUTPUT_KINDS = {"user_output", "buffer_mutation", "user_input_mutation"}


class RefusedOp(ValueError):
    """The graph makes a call outside the closed op set; the message names it."""


def aten_name(target: object) -> str | None:
    """``"torch.ops.aten.conv2d.default"`` -> ``"conv2d.default"``; None for anything else."""
    match = _ATEN.fullmatch(target) if isinstance(target, str) else None
    return match.group(1) if match else None


def _tensor_names(argument: object) -> list[str]:
    """The tensor names a serialized argument refers to (``as_tensor``, ``as_tensors``, optional ones)."""
    if not isinstance(argument, dict):
        return []
    names = []
    for key, value in argument.items():
        if key == "as_tensor" and isinstance(value, dict):
            names.append(value.get("name"))
        elif key in ("as_tensors", "as_optional_tensors") and isinstance(value, list):
            names += [item.get("name") if "name" in item else (item.get("as_tensor") or {}).get("name")
                      for item in value if isinstance(item, dict)]
    return [name for name in names if isinstance(name, str)]


def _spec(entry: object, kinds: set[str], what: str) -> tuple[str, str | None]:
    """(kind, tensor name) of one input or output spec of the graph's signature; RefusedOp for other kinds."""
    if not isinstance(entry, dict) or len(entry) != 1:
        raise RefusedOp(f"the program's {what} signature is malformed")
    kind, body = next(iter(entry.items()))
    if kind not in kinds:
        raise RefusedOp(f"the program has a {str(kind)[:40]!r} {what}, which the judge does not accept")
    argument = body.get("arg") if isinstance(body, dict) else None
    names = _tensor_names(argument) or ([argument["name"]] if isinstance(argument, dict)
                                        and isinstance(argument.get("name"), str) else [])
    return kind, names[0] if names else None


def check_graph(graph_module: dict) -> None:
    """Refuse (RefusedOp) a serialized graph that calls anything outside the closed op set, or writes in place
    to what it must not (see the module's docstring)."""
    graph = graph_module.get("graph") if isinstance(graph_module, dict) else None
    nodes = graph.get("nodes") if isinstance(graph, dict) else None
    signature = graph_module.get("signature") if isinstance(graph_module, dict) else None
    if not isinstance(nodes, list) or not isinstance(signature, dict):
        raise RefusedOp("the program's graph is malformed")
    kinds: dict[str, str] = {}   # tensor name -> input kind, for the graph's inputs
    for entry in signature.get("input_specs") or []:
        kind, name = _spec(entry, _INPUT_KINDS, "input")
        if name is not None:
            kinds[name] = kind
    for entry in signature.get("output_specs") or []:
        _spec(entry, _OUTPUT_KINDS, "output")
    root: dict[str, str] = {}        # tensor name -> the tensor whose memory it may share (views followed)
    readers: dict[str, list[tuple[str, str]]] = {}   # root tensor -> (op, argument name) of every call reading it
    written: dict[str, str] = {}     # root tensor -> the first call that writes it (in place, or running statistics)
    for node in nodes:
        target = node.get("target") if isinstance(node, dict) else None
        if target in SIZE_OPERATORS:
            continue
        op = aten_name(target)
        if op is None or op not in PURE | VIEWS | IN_PLACE:
            raise RefusedOp(f"the graph calls {str(op or target)[:80]!r}, which is outside the judge's allowed ops")
        inputs = [item for item in node.get("inputs") or [] if isinstance(item, dict)]
        for item in inputs:
            for name in _tensor_names(item.get("arg")):
                reader = (op, str(item.get("name")))
                readers.setdefault(root.get(name, name), []).append(reader)
                if reader in _RUNNING_STATISTICS:
                    written.setdefault(root.get(name, name), f"{op} (its running statistics)")
        first = next(iter(_tensor_names(inputs[0].get("arg"))), None) if inputs else None
        if op in IN_PLACE:
            if first is None:
                raise RefusedOp(f"the in-place call {op!r} writes no tensor")
            written.setdefault(root.get(first, first), op)
        for output in node.get("outputs") or []:
            for name in _tensor_names(output):
                root[name] = root.get(first, first) if op in VIEWS | IN_PLACE and first is not None else name
    for tensor, op in written.items():
        kind = kinds.get(tensor)
        if kind in ("parameter", "tensor_constant"):
            raise RefusedOp(f"the call {op!r} writes a {kind.replace('tensor_', '')} of the program in place")
        if kind == "buffer" and not all(reader[0] in IN_PLACE or reader in _RUNNING_STATISTICS
                                        for reader in readers.get(tensor, [])):
            raise RefusedOp(f"the call {op!r} writes a buffer that the computation reads")
