"""Bodies of ONNX control flow (``If`` branches, ``Loop``/``Scan`` bodies) as their own graphs.

Each body is a subgraph that may read tensors of the enclosing graph. It is wrapped into a
model whose inputs are its formal inputs (typed from the node's actual inputs where the body
leaves them open) and the outer tensors it reads (typed from the outer graph's shape
inference), and translated like any model. The op kinds in :mod:`archlint.ops.control_flow`
cost them; the weights stored in a body are parameters of the model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import onnx
from onnx import helper

from archlint.errors import ArchlintError
from archlint.ir import ModelGraph

CONTROL_FLOW = ("If", "Loop", "Scan")
BODY_MARK = "archlint.body"  # metadata of a body wrapped as a model: its inputs are not the model's

_SCALAR_INT = helper.make_tensor_type_proto(onnx.TensorProto.INT64, [])
_SCALAR_BOOL = helper.make_tensor_type_proto(onnx.TensorProto.BOOL, [])

Translate = Callable[[onnx.ModelProto, str], ModelGraph]


def attach(graph: ModelGraph, model: onnx.ModelProto, label: str, translate: Translate) -> None:
    """Give each ``If``/``Loop``/``Scan`` layer of ``graph`` (translated from ``model``, after
    shape inference) its translated bodies; a body that cannot be translated is left out, so
    the layer is listed as not costed."""
    g = model.graph
    body_of_another = any(p.key == BODY_MARK for p in model.metadata_props)
    types: dict[str, onnx.TypeProto] = {vi.name: vi.type for vi in (*g.input, *g.value_info, *g.output)}
    inits = {i.name: i for i in g.initializer}
    for init in g.initializer:
        types.setdefault(init.name, helper.make_tensor_type_proto(init.data_type, list(init.dims)))
    for node in g.node:
        if node.op_type not in CONTROL_FLOW or node.domain not in ("", "ai.onnx"):
            continue
        out = next((o for o in node.output if o), None)
        if out is None or out not in graph.producer:
            continue
        layer = graph.layer(graph.producer[out])
        context = _Context(model, types, inits, f"{label}: {node.op_type} '{layer.name}'", translate)
        attrs = {a.name: a.g for a in node.attribute if a.type == onnx.AttributeProto.GRAPH}
        if node.op_type == "If":
            branches = {name: context.body(attrs[name], []) for name in ("then_branch", "else_branch") if name in attrs}
            layer.attrs = {"branches": branches} if len(branches) == 2 and all(branches.values()) else {}
            if node.input and not body_of_another:  # a body's inputs are not the model's: nothing to name
                layer.attrs["depends_on"], layer.attrs["fixed_upstream"] = _inputs_upstream(g, node.input[0])
        elif node.op_type == "Loop":
            layer.attrs = {"body": context.body(attrs["body"], [_SCALAR_INT, _SCALAR_BOOL, *node.input[2:]]),
                           "trips": _loop_trips(node, graph)}
        else:
            layer.attrs = _scan(node, attrs["body"], context, types)
        for sub in (*layer.attrs.get("branches", {}).values(), layer.attrs.get("body")):
            if isinstance(sub, ModelGraph):
                for w in sub.params:
                    graph.add_tensor(w, sub.tensors[w].shape, sub.tensors[w].dtype)
                    graph.params.add(w)


def _inputs_upstream(g: onnx.GraphProto, tensor: str) -> tuple[list[str], list[str]]:
    """The model inputs whose values ``tensor`` is computed from (an ``If`` condition's: what
    ``--input-value`` can fix), in the graph's input order; and the inputs already fixed with
    ``--input-value`` that it is computed from (when the condition still did not fold)."""
    from archlint.frontends.onnx_values import VALUE_MARK
    producer = {o: n for n in g.node for o in n.output if o}
    inputs = [i.name for i in g.input if i.name not in {init.name for init in g.initializer}]
    fixed = [init.name for init in g.initializer if init.doc_string == VALUE_MARK]
    seen, stack = set(), [tensor]
    while stack:
        t = stack.pop()
        if t in seen:
            continue
        seen.add(t)
        node = producer.get(t)
        if node is not None and node.op_type not in ("Shape", "Size"):  # a shape is fixed by --input-shape
            stack.extend(i for i in node.input if i)
    return [name for name in inputs if name in seen], [name for name in fixed if name in seen]


def _loop_trips(node: onnx.NodeProto, graph: ModelGraph) -> int | None:
    """``M`` when it is a constant; None when it is absent or computed from data."""
    if not node.input or not node.input[0]:
        return None
    value = graph.constants.get(node.input[0])
    return int(value[0]) if value and len(value) == 1 else None


def _scan(node: onnx.NodeProto, body: onnx.GraphProto, context: _Context,
          types: dict[str, onnx.TypeProto]) -> dict[str, Any]:
    """A Scan runs its body once per slice of its scan inputs along ``scan_input_axes``
    (default 0): the trip count is that axis's length, the body's scan inputs the slice."""
    n_scan = next((a.i for a in node.attribute if a.name == "num_scan_inputs"), 0)
    n_state = len(node.input) - n_scan
    axes = next((list(a.ints) for a in node.attribute if a.name == "scan_input_axes"), [0] * n_scan)
    formal: list[Any] = list(node.input[:n_state])
    trips = None
    for name, axis in zip(node.input[n_state:], axes):
        dims = _dims(types.get(name))
        if dims is None:
            formal.append(None)
            continue
        axis = axis % len(dims)
        trips = dims[axis]
        formal.append(helper.make_tensor_type_proto(types[name].tensor_type.elem_type, dims[:axis] + dims[axis + 1:]))
    return {"body": context.body(body, formal), "trips": trips}


def _dims(t: onnx.TypeProto | None) -> list[int] | None:
    if t is None or not t.tensor_type.HasField("shape"):
        return None
    dims = t.tensor_type.shape.dim
    return [d.dim_value for d in dims] if all(d.HasField("dim_value") for d in dims) else None


class _Context:
    def __init__(self, model: onnx.ModelProto, types: dict[str, onnx.TypeProto],
                 inits: dict[str, onnx.TensorProto], label: str, translate: Translate) -> None:
        self.model, self.types, self.inits, self.label, self.translate = model, types, inits, label, translate

    def body(self, body: onnx.GraphProto, actual: list[Any]) -> ModelGraph | None:
        """The body translated, or None. ``actual``: per formal input, the outer tensor name
        (or TypeProto) whose type it takes when the body declares no static shape."""
        g = onnx.GraphProto()
        g.CopyFrom(body)
        for vi, act in zip(g.input, actual):
            if _dims(vi.type) is None and act is not None:
                t = act if isinstance(act, onnx.TypeProto) else self.types.get(act)
                if t is not None:
                    vi.type.CopyFrom(t)
        defined = {i.name for i in g.input} | {i.name for i in g.initializer}
        defined |= {o for n in g.node for o in n.output}
        for name in dict.fromkeys(i for n in g.node for i in n.input if i and i not in defined):
            if name in self.inits:
                g.initializer.append(self.inits[name])
            elif name in self.types:
                g.input.append(helper.make_value_info(name, self.types[name]))
            else:
                return None
        for o in g.output:
            o.type.tensor_type.ClearField("shape")
        sub = helper.make_model(g, opset_imports=list(self.model.opset_import), ir_version=self.model.ir_version)
        helper.set_model_props(sub, {BODY_MARK: self.label})
        try:
            return self.translate(sub, self.label)
        except (ArchlintError, ValueError, KeyError, TypeError, IndexError):
            return None
