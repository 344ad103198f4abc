"""Receptive field of every tensor with respect to each spatial model input, over the
whole graph (Araujo, Norris & Sim, Distill 2019; REFERENCE.md section 3).

Each op kind's transfer lives in the registry (``OpKind.rf_fn``); merges (add, concat,
...) keep the larger field and record whether the branches were aligned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from archlint.analyses.shapes import call_of
from archlint.ir import ModelGraph
from archlint.ops import REGISTRY, OpCall, UnknownShape
from archlint.ops import rf as rfops
from archlint.ops.rf import AxisRF, Field


@dataclass(frozen=True, slots=True)
class RFRecord:
    """A layer's receptive field with respect to one input, for reports.

    ``size``, ``stride``, ``padding`` per spatial axis (exact fractions), ``is_global``
    when the unit depends on the whole input, ``input_size`` the input's spatial size.
    """

    input: str
    size: tuple[Fraction, ...]
    stride: tuple[Fraction, ...]
    padding: tuple[Fraction, ...]
    is_global: bool
    aligned: bool
    notes: tuple[str, ...]
    input_size: tuple[int, ...]

    @classmethod
    def from_field(cls, input_name: str, field: Field, input_size: Sequence[int]) -> RFRecord:
        return cls(input_name, tuple(a.size for a in field.axes), tuple(a.stride for a in field.axes),
                   tuple(a.padding for a in field.axes), field.is_global, field.aligned, field.notes,
                   tuple(input_size))

    def to_dict(self) -> dict[str, Any]:
        return {"input": self.input, "size": [_num(x) for x in self.size], "stride": [_num(x) for x in self.stride],
                "padding": [_num(x) for x in self.padding], "global": self.is_global, "aligned": self.aligned,
                "notes": list(self.notes), "input_size": list(self.input_size)}

    def short(self) -> str:
        """Table text: ``11x11 s4``, ``global`` or ``15 s1/2`` (sizes rounded up)."""
        if self.is_global:
            return "global"
        if not self.size:
            return "-"
        sizes = [_ceil(x) for x in self.size]
        strides = {_num(x) for x in self.stride}
        size_text = "x".join(str(s) for s in sizes)
        stride_text = "x".join(str(_num(x)) for x in self.stride) if len(strides) > 1 else str(strides.pop())
        return f"{size_text} s{stride_text}"


def _num(x: Fraction | int) -> int | str:
    """Whole numbers as ints, others as ``"1/2"`` strings (exact)."""
    if type(x) is int:
        return x
    return int(x) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


def _ceil(x: Fraction) -> int:
    return -(-x.numerator // x.denominator)


def spatial_inputs(graph: ModelGraph) -> list[str]:
    """Model inputs laid out ``N, C, *spatial`` (rank 3 to 5)."""
    return [t for t in graph.inputs if (s := graph.shape(t)) is not None and 3 <= len(s) <= 5]


def propagate(graph: ModelGraph, input_name: str, start: Field | None = None,
              calls: Sequence[OpCall] | None = None) -> dict[str, Field | None]:
    """Field of every tensor with respect to ``input_name``. ``calls``: the layers'
    :class:`OpCall`s in ``graph.layers()`` order, when already built."""
    shape = graph.shape(input_name)
    fields: dict[str, Field | None] = {input_name: start or Field.identity(len(shape or ()))}
    get = fields.get
    order = graph.layers()
    for layer, call in zip(order, calls if calls is not None else [None] * len(order)):
        ins = [get(t) if t else None for t in layer.inputs]
        if ins.count(None) == len(ins):
            continue
        entry = REGISTRY.get(layer.kind)
        out: Field | None
        if entry is None or entry.rf_fn is None:
            present = rfops.merge(ins)
            out = rfops.make_global(present, f"unknown op {layer.op}: field not tracked") if present else None
        else:
            try:
                out = entry.rf_fn(call if call is not None else call_of(graph, layer), ins)
            except (UnknownShape, TypeError, ValueError, IndexError, KeyError, ZeroDivisionError):
                present = rfops.merge(ins)
                out = rfops.make_global(present, f"field not computable at {layer.op}") if present else None
        for t in layer.outputs:
            fields[t] = out
    return fields


def compute(graph: ModelGraph, calls: Sequence[OpCall] | None = None) -> list[list[RFRecord]]:
    """Per layer, in ``graph.layers()`` order: its first output's field with respect to each
    spatial input (an empty list where it depends on none)."""
    order = graph.layers()
    records: list[list[RFRecord]] = [[] for _ in order]
    for name in spatial_inputs(graph):
        size = (graph.shape(name) or ())[2:]
        get = propagate(graph, name, calls=calls).get
        made: dict[int, RFRecord] = {}  # layers sharing one Field object share its record
        for layer, found in zip(order, records):
            field = get(layer.outputs[0]) if layer.outputs else None
            if field is not None:
                record = made.get(id(field))
                if record is None:
                    record = made[id(field)] = RFRecord.from_field(name, field, size)
                found.append(record)
    return records


def receptive_field(kernels: Sequence[int | Sequence[int]], strides: Sequence[int | Sequence[int]] | None = None,
                    dilations: Sequence[int | Sequence[int]] | None = None,
                    paddings: Sequence[int | Sequence[int]] | None = None) -> RFRecord:
    """The classic chain formula as a design helper, returning the same record as the
    graph analysis: ``receptive_field(kernels=[3, 3, 3])`` has size 7, stride 1.

    Each entry may be an int (same on every axis) or a per-axis sequence. Padding
    defaults to 0 (it only moves the field: ``P``).
    """
    n = len(kernels)
    strides = strides if strides is not None else [1] * n
    dilations = dilations if dilations is not None else [1] * n
    paddings = paddings if paddings is not None else [0] * n
    if not (len(strides) == len(dilations) == len(paddings) == n):
        raise ValueError("kernels, strides, dilations and paddings must have the same length")
    ndim = max([len(k) for k in (*kernels, *strides, *dilations, *paddings) if not isinstance(k, int)] or [1])

    def axes(v: int | Sequence[int]) -> list[int]:
        return [v] * ndim if isinstance(v, int) else list(v)

    field = Field(tuple(AxisRF(1, 1, 0) for _ in range(ndim)), tuple(range(2, 2 + ndim)))
    for k, s, d, p in zip(kernels, strides, dilations, paddings):
        field = rfops.window(field, axes(k), axes(s), axes(p), axes(d))
    return RFRecord.from_field("design", field, ())
