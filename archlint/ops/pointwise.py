"""Ops that work element by element or per position: activations, normalisation,
elementwise arithmetic, softmax, casts, reductions."""

from __future__ import annotations

from typing import Any, TypedDict

from archlint.ir import Shape
from archlint.ops import rf
from archlint.ops.registry import AxisAttrs, OpCall, broadcast, kind, numel


class NormAttrs(TypedDict, total=False):
    """``norm``: which normalisation (``batch``, ``layer``, ``group``, ``instance``, ...), when known."""

    norm: str


class ReduceAttrs(TypedDict, total=False):
    """``axes``: None reduces every axis; an empty list reduces none."""

    axes: list[int] | None
    keepdims: bool


class IdentityAttrs(TypedDict, total=False):
    """``quantization``: ``quantize`` (ONNX QuantizeLinear) or ``dequantize`` (DequantizeLinear)
    when the layer converts between float and a quantized integer type."""

    quantization: str


def _quantization(attrs: dict[str, Any]) -> str | None:
    """The layer's ``quantization`` attribute: a quantize or dequantize boundary, or None."""
    return attrs.get("quantization")


def _is_batch_norm(attrs: dict[str, Any]) -> bool:
    """BatchNorm subtracts a per-channel mean: a bias added just before it cancels."""
    return attrs.get("norm") == "batch"


def _same_as_input(call: OpCall) -> list[Shape]:
    """The output has the input's shape."""
    return [call.x]


def _passthrough(call: OpCall, fields: list[rf.Field | None]) -> rf.Field | None:
    """No spatial change: the field of the input (the union, when several are merged)."""
    return rf.merge(fields)


ACTIVATION = kind("activation", "Elementwise nonlinearity (ReLU, GELU, Sigmoid, SiLU, ...).", flops_per_output=True,
                  examples=("Relu", "nn.ReLU", "F.gelu"), spatially_pointwise=True)
ACTIVATION.shape(_same_as_input)
ACTIVATION.rf(_passthrough)

NORM = kind("norm", "Normalisation (BatchNorm, LayerNorm, GroupNorm, InstanceNorm, LRN).", flops_per_output=True,
            examples=("BatchNormalization", "nn.BatchNorm2d", "nn.LayerNorm"), spatially_pointwise=True,
            attrs=NormAttrs, absorbs_bias_fn=_is_batch_norm)
NORM.shape(_same_as_input)
NORM.rf(_passthrough)

ELEMENTWISE = kind("elementwise", "Broadcasting arithmetic (Add, Mul, Sub, Div, Pow, Where, ...).",
                   flops_per_output=True, examples=("Add", "operator.add", "torch.mul"), variadic=True,
                   spatially_pointwise=True)


@ELEMENTWISE.shape
def elementwise_shape(call: OpCall) -> list[Shape]:
    """numpy broadcasting of every input's shape."""
    shapes = [s for s in call.in_shapes if s is not None]
    if len(shapes) != len(call.in_shapes):
        return [call.x] if len(call.in_shapes) == 1 else []
    return [broadcast(*shapes)]


@ELEMENTWISE.rf
def elementwise_rf(call: OpCall, fields: list[rf.Field | None]) -> rf.Field | None:
    """A merge point: the union of the inputs' fields, alignment recorded (:func:`archlint.ops.rf.merge`)."""
    return rf.merge(fields)


SOFTMAX = kind("softmax", "Softmax / LogSoftmax along one axis.", flops_per_output=True,
               examples=("Softmax", "F.softmax"), attrs=AxisAttrs)
SOFTMAX.shape(_same_as_input)


@SOFTMAX.rf
def softmax_rf(call: OpCall, fields: list[rf.Field | None]) -> rf.Field | None:
    """Softmax along a spatial axis normalises over all positions: global. Otherwise no change."""
    field = rf.merge(fields)
    if field is None or call.in_shapes[0] is None:
        return field
    axis = call.attr("axis", -1) % len(call.in_shapes[0])
    return rf.make_global(field, "softmax over positions") if axis in field.dims else field


IDENTITY = kind("identity", "No arithmetic: Identity, Dropout, Cast, contiguous copies.",
                examples=("Identity", "Dropout", "Cast"), moves_data=False, hidden=True, spatially_pointwise=True,
                attrs=IdentityAttrs, quant_boundary_fn=_quantization)
IDENTITY.shape(_same_as_input)
IDENTITY.rf(_passthrough)

REDUCE = kind("reduce", "Reduction over some axes (ReduceMean, sum, max, ...).",
              examples=("ReduceMean", "torch.mean", "torch.sum"), attrs=ReduceAttrs)


@REDUCE.flops
def reduce_flops(call: OpCall, macs: int) -> int:
    """``numel(x)``: every input element is accumulated once."""
    return numel(call.x)


@REDUCE.rf
def reduce_rf(call: OpCall, fields: list[rf.Field | None]) -> rf.Field | None:
    """Reducing a spatial axis gives a global field; reducing others changes nothing.
    ``axes=None`` means every axis."""
    field = fields[0] if fields else None
    if field is None or field.is_global or call.in_shapes[0] is None:
        return field
    rank = len(call.in_shapes[0])
    axes = call.attr("axes")
    axes = set(range(rank)) if axes is None else {a % rank for a in axes}
    if axes & set(field.dims):
        return rf.make_global(field)
    if not call.attr("keepdims", True):
        dims = tuple(d - sum(1 for a in axes if a < d) for d in field.dims)
        return rf.Field(field.axes, dims, field.is_global, field.aligned, field.notes)
    return field
