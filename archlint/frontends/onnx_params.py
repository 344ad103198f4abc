"""Which tensors of an ONNX graph are parameters.

A parameter is a parameter wherever it is stored: an initializer, the value of a
``Constant`` node, a ``ConstantOfShape`` of a constant shape (paddle2onnx writes weights
as Constant nodes), or any of these seen through ops that only re-present a stored tensor
(``DequantizeLinear`` of a quantized weight, ``Cast``, ``Reshape``, ``Transpose``,
``Squeeze``/``Unsqueeze``/``Flatten``, ``Identity``). Each such tensor has a *source*: the
stored tensor it comes from, which is what a layer lists as its weight, so that a weight
read by several layers, or through several transposes, counts once.

Tensors computed from the model's input (YOLOv8's anchor grid, built from ``Shape`` of a
feature map and folded into constants by :mod:`onnx_fold` once the input size is fixed) have
no source: they are never parameters, so the parameter count cannot depend on the input size.
Sources are found on the graph as written, before any folding.

Which inputs of a layer claim their source as a parameter is decided by the op's input
roles (:mod:`onnx_ops`): any stored float tensor in a ``weight`` or ``bias`` role, and a
stored float tensor of more than one element in a ``data`` role; integer tensors too for
quantized ops (``QLinearConv``'s int8 weight and int32 bias).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import onnx
from onnx import TensorProto, helper

from archlint.frontends.onnx_ops import PARAM_ROLES, OnnxOp
from archlint.frontends.onnx_values import VALUE_MARK

FLOAT_TYPES = frozenset({TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16, TensorProto.DOUBLE})
# Ops whose output is their first input re-presented: a stored tensor stays stored through them.
PASS_THROUGH = frozenset({"DequantizeLinear", "Cast", "CastLike", "Reshape", "Transpose", "Squeeze", "Unsqueeze",
                          "Flatten", "Identity"})


@dataclass(frozen=True, slots=True)
class Source:
    """The stored tensor a tensor comes from: its name, element count, and whether the
    tensor read (not necessarily the stored one: ``DequantizeLinear`` makes int8 float) is float."""

    root: str
    numel: int
    floating: bool


def stored(name: str, dims: list[int] | tuple[int, ...], data_type: int) -> Source:
    return Source(name, math.prod(dims), data_type in FLOAT_TYPES)


class Sources:
    """Sources of the tensors of one graph, found in one pass over its nodes in topological
    order (:meth:`visit` each node before the nodes reading its outputs)."""

    def __init__(self) -> None:
        self.of: dict[str, Source] = {}
        self.initializers: set[str] = set()

    def initializer(self, init: onnx.TensorProto) -> None:
        if init.doc_string == VALUE_MARK:  # an input's value fixed with --input-value: not stored in the model
            return
        self.of[init.name] = stored(init.name, tuple(init.dims), init.data_type)
        self.initializers.add(init.name)

    def visit(self, node: onnx.NodeProto, constants: dict[str, list[int | float]]) -> None:
        """Record the source of the node's output when it is stored or re-presents a stored tensor."""
        op, outputs = node.op_type, node.output
        if not outputs or not outputs[0] or node.domain not in ("", "ai.onnx"):
            return
        out = outputs[0]
        if op == "Constant":
            found = _constant_source(node, out)
            if found is not None:
                self.of[out] = found
        elif op == "ConstantOfShape":
            dims = constants.get(node.input[0]) if node.input else None
            if dims is not None:
                value = next((a.t for a in node.attribute if a.name == "value"), None)
                self.of[out] = Source(out, math.prod(int(d) for d in dims),
                                      value is None or value.data_type in FLOAT_TYPES)
        elif op in PASS_THROUGH and node.input and node.input[0] in self.of:
            src = self.of[node.input[0]]
            if op == "Identity" and node.input[0] in self.initializers and src.floating:
                # TorchScript stores equal parameters once and re-creates the others with
                # Identity: each output is a parameter of its own.
                self.of[out] = Source(out, src.numel, True)
            elif op == "DequantizeLinear":
                self.of[out] = Source(src.root, src.numel, True)
            elif op == "Cast":
                to = next((a.i for a in node.attribute if a.name == "to"), None)
                self.of[out] = Source(src.root, src.numel, to in FLOAT_TYPES)
            else:
                self.of[out] = src

    def claims(self, record: OnnxOp | None, op_type: str, inputs: list[str]) -> list[str]:
        """The stored tensors this node reads as parameters (module docstring); an op that only
        re-presents its input claims nothing (its reader does)."""
        of = self.of
        if op_type in PASS_THROUGH or of.keys().isdisjoint(inputs):
            return []
        out: list[str] = []
        for position, name in enumerate(inputs):
            src = of.get(name)
            if src is None:
                continue
            role = record.role(position) if record is not None else "data"
            usable = src.floating or (record is not None and record.quantized)
            if usable and (role in PARAM_ROLES or (role == "data" and src.numel > 1)):
                out.append(src.root)
        return out


def _constant_source(node: onnx.NodeProto, out: str) -> Source | None:
    """A Constant's stored value: a tensor, or a float / list of floats."""
    for attr in node.attribute:
        if attr.name == "value" and attr.type == onnx.AttributeProto.TENSOR:
            return stored(out, tuple(attr.t.dims), attr.t.data_type)
        if attr.name in ("value_float", "value_floats"):
            value = helper.get_attribute_value(attr)
            return Source(out, len(value) if isinstance(value, list) else 1, True)
    return None
