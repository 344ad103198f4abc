"""The data behind every chart, shared by ``Report.plot`` (matplotlib), the HTML report's
inline SVG and ``_repr_html_``, so all three show the same series.

- Receptive field: per layer with a spatial field, the largest side ``max_axis(size)``
  (rounded up), with the input's largest side drawn beside it. A global unit (it sees
  the whole input, e.g. after global pooling) has no size (``None``): the charts draw it
  in a band of its own labelled ``global``, above the sizes, never at the input size.
- Cost: MACs and params per layer (layers that move data; shape arithmetic left out).
- Roofline: per layer with FLOPs, arithmetic intensity ``I = FLOPs / bytes`` and the
  estimated throughput ``FLOPs / est_time``; the roof is ``min(peak(dtype), I * bandwidth)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

KINDS = ("rf", "cost", "macs", "params", "roofline")


@dataclass(frozen=True)
class RFSeries:
    names: list[str]
    sizes: list[int | None]  # None: a global field
    is_global: list[bool]
    input_size: int | None

    @property
    def top(self) -> int:
        """The largest finite side or the input size, whichever is larger (the y range)."""
        return max([s for s in self.sizes if s is not None] + [self.input_size or 0, 1])


# a layer name longer than this is shortened on a chart axis to its last characters (the
# whole name stays in the tooltip)
LABEL_CHARS = 28
# at most this many layer labels on an axis: every k-th layer beyond it
MAX_LABELS = 30


def short_label(name: str) -> str:
    """``name``, or its last ``LABEL_CHARS - 1`` characters after an ellipsis."""
    return name if len(name) <= LABEL_CHARS else "\u2026" + name[-(LABEL_CHARS - 1):]


def label_positions(count: int) -> list[int]:
    """Indices of the layers labelled on an axis of ``count`` layers (every k-th)."""
    step = max(1, math.ceil(count / MAX_LABELS))
    return list(range(0, count, step))


@dataclass(frozen=True)
class CostSeries:
    names: list[str]
    macs: list[int]
    params: list[int]


@dataclass(frozen=True)
class RooflineSeries:
    names: list[str]
    intensity: list[float]
    throughput: list[float]
    peak: float
    bandwidth: float
    profile: str
    dtype: str

    @property
    def ridge(self) -> float:
        """Intensity where the memory roof meets the compute roof: ``peak / bandwidth``."""
        return self.peak / self.bandwidth

    def roof(self, intensity: float) -> float:
        return min(self.peak, intensity * self.bandwidth)


def shown_layers(report: Any) -> list[Any]:
    """The layers the charts and the default table show: data-moving ones, plus any that could not be costed."""
    return [r for r in report.layers if not r.plumbing or r.uncounted]


def rf_series(report: Any) -> RFSeries:
    names: list[str] = []
    sizes: list[int | None] = []
    glob: list[bool] = []
    input_size = None
    for rec in shown_layers(report):
        if not rec.rf or not rec.rf[0].size:
            continue
        field = rec.rf[0]
        side = max(field.input_size) if field.input_size else None
        if side is not None:
            input_size = max(input_size or 0, int(side))
        if field.is_global:
            sizes.append(None)
        else:
            sizes.append(int(math.ceil(max(field.size))))
        names.append(rec.name)
        glob.append(field.is_global)
    return RFSeries(names, sizes, glob, input_size)


def cost_series(report: Any) -> CostSeries:
    rows = [r for r in shown_layers(report) if (r.macs or 0) > 0 or r.params > 0]
    return CostSeries([r.name for r in rows], [r.macs or 0 for r in rows], [r.params for r in rows])


def roofline_series(report: Any) -> RooflineSeries:
    profile = report.profile
    dtype = report.model.dtype or "fp32"
    rows = [r for r in report.layers if r.flops and r.bytes and r.est_time > 0 and r.intensity]
    return RooflineSeries([r.name for r in rows], [float(r.intensity) for r in rows],
                          [r.flops / r.est_time for r in rows], profile.peak(dtype), profile.bandwidth,
                          profile.name, dtype)
