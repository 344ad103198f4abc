"""Read-only views of analysed layers that rules need: conv geometry (costs of proposed
changes come from :mod:`archlint.analyses.rewrite`, not from here)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from archlint.ops import registry
from archlint.ops.conv import conv_class, resolve_pads
from archlint.ops.registry import OpCall
from archlint.report import LayerRecord, Report
from archlint.units import human_time  # noqa: F401  (re-exported for the rules)


@dataclass(slots=True)
class ConvView:
    """A conv layer's geometry: ``x [N, Ci, *in]``, weight ``[Co, Ci/G, *k]``, output ``[N, Co, *out]``.
    Rules only read it (not frozen: one is built per conv, and a frozen one costs three times as much)."""

    record: LayerRecord
    n: int
    ci: int
    co: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    pads_begin: tuple[int, ...]
    pads_end: tuple[int, ...]
    groups: int
    in_spatial: tuple[int, ...]
    out_spatial: tuple[int, ...]
    has_bias: bool

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def source(self) -> tuple[str, int] | None:
        return self.record.source

    @property
    def k_area(self) -> int:
        return math.prod(self.kernel)

    @property
    def out_positions(self) -> int:
        return self.n * math.prod(self.out_spatial)

    @property
    def in_elements(self) -> int:
        return self.n * self.ci * math.prod(self.in_spatial)

    @property
    def out_elements(self) -> int:
        return self.out_positions * self.co

    @property
    def conv_class(self) -> str:
        """``dense``, ``grouped`` or ``depthwise`` (the registry's conv class)."""
        return conv_class({"groups": self.groups}, (self.n, self.ci))

    def kernel_text(self) -> str:
        return "x".join(str(k) for k in self.kernel)


def conv_views(report: Report) -> Iterator[ConvView]:
    """The report's conv layers as :class:`ConvView`s; built once per report (several
    rules walk them)."""
    key = (id(report.layers), len(report.layers))
    cached = report.__dict__.get("_conv_views")
    if cached is None or cached[0] != key:
        cached = (key, list(_build_conv_views(report)))
        report.__dict__["_conv_views"] = cached
    return iter(cached[1])


def _build_conv_views(report: Report) -> Iterator[ConvView]:
    graph = report.graph
    if graph is None:
        return
    for rec in report.layers:
        if not registry.get(rec.kind).is_conv or rec.macs is None:
            continue
        layer = graph.layer(rec.name)
        x = graph.shape(layer.inputs[0])
        w = graph.shape(layer.inputs[1]) if len(layer.inputs) > 1 else None
        y = rec.output_shape
        if x is None or w is None or y is None or len(x) < 3 or len(w) != len(x) or len(y) != len(x):
            continue
        attrs = layer.attrs
        nd = len(x) - 2
        begins, ends = resolve_pads(OpCall(attrs, [x, w], [y]))
        yield ConvView(rec, x[0], x[1], w[0], tuple(attrs.get("kernel") or w[2:]),
                       tuple(attrs.get("stride") or [1] * nd), tuple(attrs.get("dilation") or [1] * nd),
                       tuple(begins), tuple(ends), int(attrs.get("groups", 1)), tuple(x[2:]), tuple(y[2:]),
                       len(layer.inputs) > 2 and bool(layer.inputs[2]))


def human(n: float) -> str:
    from archlint.units import human as _human
    return _human(n)
