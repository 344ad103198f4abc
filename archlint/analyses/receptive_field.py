"""Receptive field of every tensor with respect to each spatial model input, over the
whole graph (Araujo, Norris & Sim, "Computing Receptive Fields of Convolutional Neural
Networks", Distill 2019), exact per output position where resampling makes it vary.

Each op kind's transfer lives in the registry (``OpKind.rf_fn``); merges (add, concat,
...) join the branches' fields and record whether the branches were aligned.
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
from archlint.ops.rf import AxisRF, Field, Num, Phase


@dataclass(frozen=True, slots=True)
class RFRecord:
    """A layer's receptive field with respect to one input, for reports.

    Per spatial axis (exact ints or fractions): ``size`` the field's size, ``stride`` the
    effective stride ``S`` and ``padding`` the effective padding ``P``; output unit ``u`` sees
    ``[u*S - P, u*S - P + size - 1]``.

    When resampling (nearest or linear upsampling, a transposed conv, PixelShuffle, uneven
    adaptive pooling) makes the field depend on the output position, ``period`` holds each
    axis's period ``T`` (1 where it does not vary) and ``phases`` the exact ``(start, end)`` of
    units ``0 .. T-1`` (``None``: a unit that sees no input); unit ``u = q*T + φ`` sees
    ``[q*T*S + start_φ, q*T*S + end_φ]``. ``size`` is then the largest field over the
    positions, and ``[u*S - P, u*S - P + cover - 1]`` (``cover`` per axis) is a bound that
    contains every unit's exact interval; a note says the field varies. Without variation
    ``period``, ``phases`` and ``cover`` are empty.

    ``is_global``: the unit depends on the whole input; ``size`` is then the input's size and
    ``stride``/``padding`` are empty (no local field is left to describe).
    ``input_size``: the input's spatial size.
    """

    input: str
    size: tuple[Num, ...]
    stride: tuple[Num, ...]
    padding: tuple[Num, ...]
    is_global: bool
    aligned: bool
    notes: tuple[str, ...]
    input_size: tuple[int, ...]
    period: tuple[int, ...] = ()
    phases: tuple[tuple[Phase, ...], ...] = ()
    cover: tuple[Num, ...] = ()

    @classmethod
    def from_field(cls, input_name: str, field: Field, input_size: Sequence[int]) -> RFRecord:
        size = tuple(input_size)
        if field.is_global:
            return cls(input_name, size, (), (), True, field.aligned, field.notes, size)
        axes = field.axes
        record = cls(input_name, tuple(a.size for a in axes), tuple(a.stride for a in axes),
                     tuple(a.padding for a in axes), False, field.aligned, field.notes, size)
        if not field.varies:
            return record
        period = tuple(a.period for a in axes)
        return cls(record.input, record.size, record.stride, record.padding, False, field.aligned,
                   field.notes + (f"field varies with output position (period {_period_text(period)})",), size, period,
                   tuple(a.phases or ((-a.padding, a.size - 1 - a.padding),) for a in axes),
                   tuple(a.cover for a in axes))

    @property
    def varies(self) -> bool:
        """Whether the field depends on the output position beyond the shift ``u*S``."""
        return bool(self.period)

    def interval(self, axis: int, u: int) -> Phase:
        """The exact input interval ``(start, end)`` output unit ``u`` sees along ``axis``."""
        if self.is_global:
            return 0, self.input_size[axis] - 1
        stride = self.stride[axis]
        if not self.period:
            start = u * stride - self.padding[axis]
            return start, start + self.size[axis] - 1
        return AxisRF(self.size[axis], stride, self.padding[axis], self.phases[axis]).interval(u)

    @property
    def centres(self) -> tuple[tuple[Fraction | None, ...], ...]:
        """Per axis, the centre offset of each phase's interval, ``(start_φ + end_φ)/2 - φS``
        (one value, ``-P + (r-1)/2``, when the field does not vary): a merge is aligned when
        its branches agree on these over the common period."""
        if self.is_global:
            return ()
        if not self.period:
            return tuple((Fraction(r - 1, 2) - p,) for r, p in zip(self.size, self.padding))
        return tuple(tuple(None if ph is None else Fraction(ph[0] + ph[1], 2) - i * s for i, ph in enumerate(phases))
                     for phases, s in zip(self.phases, self.stride))

    def alignment_text(self) -> str:
        """What a merge compares, for messages: ``stride 4x4, centre offset 3/2x3/2``; where the
        field varies, each axis's centre offsets over the period as a range:
        ``stride 4, centre offset [-1..0] (varies with position, period 2)``."""
        if self.is_global:
            return "global"
        axes = []
        for centres in self.centres:
            present = [c for c in centres if c is not None]
            lo, hi = min(present), max(present)
            axes.append(_fmt(lo) if lo == hi else f"[{_fmt(lo)}..{_fmt(hi)}]")
        text = f"stride {'x'.join(_fmt(s) for s in self.stride)}, centre offset {'x'.join(axes)}"
        return text + f" (varies with position, period {_period_text(self.period)})" if self.period else text

    def to_dict(self) -> dict[str, Any]:
        """JSON form. Global: ``input``, ``global``, ``notes``, ``input_size`` only. A varying
        field adds ``period``, ``phases`` (per axis, ``[start, end]`` of units ``0 .. T-1``,
        ``null`` for a unit that sees nothing) and ``cover``."""
        if self.is_global:
            return {"input": self.input, "global": True, "notes": list(self.notes),
                    "input_size": list(self.input_size)}
        d: dict[str, Any] = {"input": self.input, "size": [_num(x) for x in self.size],
                             "stride": [_num(x) for x in self.stride], "padding": [_num(x) for x in self.padding]}
        if self.period:
            d["period"] = list(self.period)
            d["phases"] = [[None if p is None else [_num(p[0]), _num(p[1])] for p in axis] for axis in self.phases]
            d["cover"] = [_num(x) for x in self.cover]
        d.update({"global": False, "aligned": self.aligned, "notes": list(self.notes),
                  "input_size": list(self.input_size)})
        return d

    def short(self) -> str:
        """Table text: ``11x11 s4``, ``global``, ``15 s1/2`` (sizes rounded up), and the period
        when the field varies with the output position: ``5x5 s1 (period 2)``."""
        if self.is_global:
            return "global"
        if not self.size:
            return "-"
        sizes = [_ceil(x) for x in self.size]
        strides = {_num(x) for x in self.stride}
        size_text = "x".join(str(s) for s in sizes)
        stride_text = "x".join(str(_num(x)) for x in self.stride) if len(strides) > 1 else str(strides.pop())
        if self.period:
            return f"{size_text} s{stride_text} (period {_period_text(self.period)})"
        return f"{size_text} s{stride_text}"


def _num(x: Num) -> int | str:
    """Whole numbers as ints, others as ``"1/2"`` strings (exact)."""
    if type(x) is int:
        return x
    x = Fraction(x)
    return int(x) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


def _period_text(period: tuple[int, ...]) -> str:
    """``2`` when every axis has period 2, ``2x1`` otherwise."""
    return str(period[0]) if len(set(period)) == 1 else "x".join(map(str, period))


def _fmt(x: Num) -> str:
    return str(_num(x))


def _ceil(x: Num) -> int:
    return -(-Fraction(x).numerator // Fraction(x).denominator)


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

    field: Field | None = Field(tuple(AxisRF(1, 1, 0) for _ in range(ndim)), tuple(range(2, 2 + ndim)))
    for k, s, d, p in zip(kernels, strides, dilations, paddings):
        assert field is not None  # uniform windows always see their input
        field = rfops.window(field, axes(k), axes(s), axes(p), axes(d))
    assert field is not None
    return RFRecord.from_field("design", field, ())
