"""Fold small shape computations so that onnx's shape inference can finish.

Exporters compute target shapes at run time (``Shape -> Gather -> Concat -> Reshape``,
``ConstantOfShape -> Equal -> Where -> Expand`` for a class token). onnx's data
propagation covers only part of these ops. Once the input shapes are fixed, every such
chain is a constant: this evaluates it with numpy (small tensors only) and replaces
the chain by initializers, then shape inference is run again.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from archlint.frontends.onnx_params import FLOAT_TYPES
from archlint.frontends.onnx_values import VALUE_MARK

MAX_ELEMENTS = 4096  # shape arithmetic is tiny; never evaluate real data


def _attr(node: onnx.NodeProto, name: str, default: Any = None) -> Any:
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _axes(node: onnx.NodeProto, ins: list[np.ndarray]) -> list[int] | None:
    axes = _attr(node, "axes")
    if axes is None and len(ins) > 1:
        axes = ins[1].tolist()
    return axes


def _unsqueeze(node: onnx.NodeProto, ins: list[np.ndarray]) -> np.ndarray:
    x, given = ins[0], _axes(node, ins) or []
    axes = sorted(a % (x.ndim + len(given)) for a in given)
    for a in axes:
        x = np.expand_dims(x, a)
    return x


def _squeeze(node: onnx.NodeProto, ins: list[np.ndarray]) -> np.ndarray:
    axes = _axes(node, ins)
    return np.squeeze(ins[0], axis=tuple(axes) if axes is not None else None)


def _slice(node: onnx.NodeProto, ins: list[np.ndarray]) -> np.ndarray:
    x = ins[0]
    starts, ends = ins[1].tolist(), ins[2].tolist()
    axes = ins[3].tolist() if len(ins) > 3 else list(range(len(starts)))
    steps = ins[4].tolist() if len(ins) > 4 else [1] * len(starts)
    index = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        index[a] = slice(s, e, st)
    return x[tuple(index)]


def _reshape(node: onnx.NodeProto, ins: list[np.ndarray]) -> np.ndarray:
    x, shape = ins[0], ins[1].tolist()
    shape = [x.shape[i] if d == 0 and not _attr(node, "allowzero", 0) else d for i, d in enumerate(shape)]
    return x.reshape(shape)


def _div(node: onnx.NodeProto, ins: list[np.ndarray]) -> np.ndarray:
    a, b = ins
    if np.issubdtype(a.dtype, np.integer):
        return np.trunc(a / b).astype(a.dtype)
    return a / b


def _constant_of_shape(node: onnx.NodeProto, ins: list[np.ndarray]) -> np.ndarray:
    value = _attr(node, "value")
    fill = numpy_helper.to_array(value).reshape(-1) if value is not None else np.zeros(1, np.float32)
    return np.full(tuple(ins[0].tolist()), fill[0], dtype=fill.dtype)


def _cast(node: onnx.NodeProto, ins: list[np.ndarray]) -> np.ndarray:
    return ins[0].astype(helper.tensor_dtype_to_np_dtype(_attr(node, "to")))


EVAL: dict[str, Callable[[onnx.NodeProto, list[np.ndarray]], np.ndarray]] = {
    "Identity": lambda n, i: i[0],
    "Cast": _cast,
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Concat": lambda n, i: np.concatenate(i, axis=_attr(n, "axis", 0)),
    "Gather": lambda n, i: np.take(i[0], i[1], axis=_attr(n, "axis", 0)),
    "Slice": _slice,
    "Reshape": _reshape,
    "Add": lambda n, i: i[0] + i[1],
    "Sub": lambda n, i: i[0] - i[1],
    "Mul": lambda n, i: i[0] * i[1],
    "Div": _div,
    "Mod": lambda n, i: np.mod(i[0], i[1]),
    "Neg": lambda n, i: -i[0],
    "Abs": lambda n, i: np.abs(i[0]),
    "Equal": lambda n, i: np.equal(i[0], i[1]),
    "Less": lambda n, i: np.less(i[0], i[1]),
    "Greater": lambda n, i: np.greater(i[0], i[1]),
    "GreaterOrEqual": lambda n, i: np.greater_equal(i[0], i[1]),
    "LessOrEqual": lambda n, i: np.less_equal(i[0], i[1]),
    "Not": lambda n, i: np.logical_not(i[0]),
    "And": lambda n, i: np.logical_and(i[0], i[1]),
    "Or": lambda n, i: np.logical_or(i[0], i[1]),
    "Xor": lambda n, i: np.logical_xor(i[0], i[1]),
    "Where": lambda n, i: np.where(i[0], i[1], i[2]),
    "Min": lambda n, i: np.minimum.reduce(i),
    "Max": lambda n, i: np.maximum.reduce(i),
    "ConstantOfShape": _constant_of_shape,
    "Range": lambda n, i: np.arange(i[0].item(), i[1].item(), i[2].item(), dtype=i[0].dtype),
    "Expand": lambda n, i: np.broadcast_to(i[0], np.broadcast_shapes(i[0].shape, tuple(i[1].tolist()))).copy(),
    "Floor": lambda n, i: np.floor(i[0]),
    "Ceil": lambda n, i: np.ceil(i[0]),
    "Sqrt": lambda n, i: np.sqrt(i[0]),
    "ReduceProd": lambda n, i: np.prod(i[0], keepdims=bool(_attr(n, "keepdims", 1))),
    "Transpose": lambda n, i: np.transpose(i[0], _attr(n, "perm")),
}


def _result_size(op: str, ins: list[np.ndarray]) -> int:
    """An upper bound on the result's element count, checked before evaluating, so that a
    ConstantOfShape([2**62]) in a hostile file is never allocated."""
    if op == "ConstantOfShape":
        dims = ins[0].reshape(-1).tolist()
        return int(np.prod([max(int(d), 0) for d in dims], dtype=object)) if dims else 1
    if op == "Expand":
        dims = [max(int(d), 1) for d in ins[1].reshape(-1).tolist()]
        return int(np.prod(dims + list(ins[0].shape), dtype=object))
    if op == "Range":
        start, limit, delta = (float(x.reshape(-1)[0]) for x in ins[:3])
        return int(abs((limit - start) / delta)) + 1 if delta else MAX_ELEMENTS + 1
    if op == "Reshape":
        return int(ins[0].size)
    return max((int(x.size) for x in ins), default=0) * 2


def _shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    out = {}
    for vi in list(model.graph.input) + list(model.graph.value_info) + list(model.graph.output):
        tt = vi.type.tensor_type
        if tt.HasField("shape") and all(d.HasField("dim_value") for d in tt.shape.dim):
            out[vi.name] = [d.dim_value for d in tt.shape.dim]
    for init in model.graph.initializer:
        out[init.name] = list(init.dims)
    return out


def _evaluate(node: onnx.NodeProto, shapes: dict[str, list[int]], known: dict[str, np.ndarray]) -> Any:
    """The node's output value when it is a constant, a shape or size of a known shape, or an
    :data:`EVAL` op of known inputs (small results only); None otherwise."""
    try:
        if node.op_type == "Constant":
            t = _attr(node, "value")
            if not isinstance(t, onnx.TensorProto) or t.data_location == onnx.TensorProto.EXTERNAL \
                    or math.prod(t.dims) > MAX_ELEMENTS:
                return None  # a weight (emptied when the file was read): never decoded
            return numpy_helper.to_array(t)
        if node.op_type == "Shape" and node.input[0] in shapes:
            dims = shapes[node.input[0]]
            start, end = _attr(node, "start", 0), _attr(node, "end", len(dims))
            return np.array(dims[start:end], dtype=np.int64)
        if node.op_type == "Size" and node.input[0] in shapes:
            return np.array(int(np.prod(shapes[node.input[0]])), dtype=np.int64)
        if node.op_type in EVAL and node.input and all(i in known for i in node.input if i):
            ins = [known[i] for i in node.input if i]
            if _result_size(node.op_type, ins) > MAX_ELEMENTS:
                return None
            return EVAL[node.op_type](node, ins)
    except Exception:
        return None
    return None


def inline_constant_ifs(model: onnx.ModelProto) -> bool:
    """Replace each ``If`` whose condition is a constant (an initializer or Constant node, maybe
    folded from shape arithmetic by :func:`fold`) by the nodes of the branch it takes, its
    outputs renamed through Identity nodes; the branch's initializers join the graph. In place;
    True if any was inlined."""
    g = model.graph
    values: dict[str, Any] = {}
    for init in g.initializer:
        if init.data_location != onnx.TensorProto.EXTERNAL and math.prod(init.dims) == 1:
            values[init.name] = init
    for node in g.node:
        if node.op_type == "Constant" and node.output:
            t = _attr(node, "value")
            if isinstance(t, onnx.TensorProto) and math.prod(t.dims) == 1:
                values[node.output[0]] = t
    nodes: list[onnx.NodeProto] = []
    changed = False
    for node in g.node:
        cond = values.get(node.input[0]) if node.op_type == "If" and node.input else None
        if cond is None or node.domain not in ("", "ai.onnx"):
            nodes.append(node)
            continue
        branch = _attr(node, "then_branch" if bool(numpy_helper.to_array(cond).reshape(-1)[0]) else "else_branch")
        nodes.extend(branch.node)
        g.initializer.extend(branch.initializer)
        for out, inner in zip(node.output, branch.output):
            if out:
                nodes.append(helper.make_node("Identity", [inner.name], [out], name=f"{node.name or out}/output"))
        changed = True
    if changed:
        del g.node[:]
        g.node.extend(nodes)
    return changed


def _may_be_weight(tensor: onnx.TensorProto) -> bool:
    """A float tensor of more than one element, not a value given with ``--input-value``."""
    return tensor.data_type in FLOAT_TYPES and math.prod(tensor.dims) > 1 and tensor.doc_string != VALUE_MARK


def _feeds_data(g: onnx.GraphProto) -> set[str]:
    """Tensors whose values reach, through ops that folding evaluates, an input of another op in
    a data, weight or bias role (or a graph output): a float constant among them may be a weight
    (silero VAD's LSTM bias: Constant -> Slice -> Concat -> LSTM); one that only reaches settings
    (a Resize's scales built by a Concat of two Constants) is shape arithmetic."""
    from archlint.frontends.onnx_ops import SETTING_ROLES, lookup
    feeds = {o.name for o in g.output}
    for node in reversed(g.node):
        record = lookup(node.domain, node.op_type)
        if node.op_type in EVAL and node.domain in ("", "ai.onnx") and not any(o in feeds for o in node.output):
            continue
        for position, name in enumerate(node.input):
            if name and (record is None or record.role(position) not in SETTING_ROLES):
                feeds.add(name)
    return feeds


def fold(model: onnx.ModelProto, cache: dict[str, np.ndarray] | None = None) -> bool:
    """Replace constant shape computations by initializers, in place. True if any folded.
    ``cache``: initializer values decoded by an earlier round on the same model (names are
    never reused), so that the thousands folded are not decoded again each round."""
    cache = {} if cache is None else cache
    g = model.graph
    shapes = _shapes(model)
    known: dict[str, np.ndarray] = {}
    # Float tensors of more than one element may be parameters, stored as initializers or in
    # Constant nodes (silero VAD's LSTM biases, sliced and concatenated): never fold them away.
    weights = {i.name for i in g.initializer if _may_be_weight(i)}
    data = _feeds_data(g)
    weights.update(node.output[0] for node in g.node if node.op_type == "Constant" and node.output
                   and node.output[0] in data
                   and any(a.name == "value" and a.type == onnx.AttributeProto.TENSOR and _may_be_weight(a.t)
                           for a in node.attribute))
    for init in g.initializer:
        # a weight's value is never needed: no node reading one is folded
        if init.name not in weights and math.prod(init.dims) <= MAX_ELEMENTS \
                and init.data_location != onnx.TensorProto.EXTERNAL:
            value = cache.get(init.name)
            if value is None:
                try:
                    value = cache[init.name] = numpy_helper.to_array(init)
                except Exception:
                    continue
            known[init.name] = value
    folded: list[onnx.NodeProto] = []
    for node in g.node:
        if node.domain not in ("", "ai.onnx") or len(node.output) != 1 or any(i in weights for i in node.input):
            continue
        value = _evaluate(node, shapes, known)
        if value is None or np.asarray(value).size > MAX_ELEMENTS:
            continue
        known[node.output[0]] = np.asarray(value)
        folded.append(node)
    if not [n for n in folded if n.op_type != "Constant"]:
        return False
    folded_ids = {id(n) for n in folded}
    keep = [n for n in g.node if id(n) not in folded_ids]
    del g.node[:]
    g.node.extend(keep)
    existing = {i.name for i in g.initializer}
    folded_names = {n.output[0] for n in folded}
    stale = [vi for vi in g.value_info if vi.name not in folded_names]
    del g.value_info[:]
    g.value_info.extend(stale)
    for n in folded:
        name = n.output[0]
        if name not in existing:
            # not np.ascontiguousarray, which makes a scalar 1-D (a Gather by a scalar index then
            # gave [56] for 56, and the Unsqueeze after it a 2-D shape vector)
            g.initializer.append(numpy_helper.from_array(np.array(known[name], order="C"), name))
    return True
