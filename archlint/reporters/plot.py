"""``Report.plot(kind=...)`` with matplotlib (``pip install archlint[plot]``).

Kinds (the series are :mod:`archlint.reporters.charts`, the same as the HTML report's):

- ``"rf"``: receptive-field side per layer, with the input size as a dashed line;
- ``"macs"`` / ``"params"``: one bar per layer; ``"cost"``: both, on two stacked axes;
- ``"roofline"``: arithmetic intensity against estimated throughput, log-log, under the
  roof ``min(peak, intensity * bandwidth)`` of the report's device profile.
"""

from __future__ import annotations

from typing import Any

from archlint.errors import ArchlintError
from archlint.reporters import charts


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ArchlintError("Report.plot() needs matplotlib: pip install 'archlint[plot]' "
                            "(or pip install matplotlib)") from None
    return plt


def plot(report: Any, kind: str = "rf", ax: Any = None) -> Any:
    """Draw one chart and return its matplotlib ``Axes`` (for ``"cost"``, the two ``Axes``)."""
    if kind not in charts.KINDS:
        raise ArchlintError(f"unknown plot kind {kind!r}: use one of {', '.join(charts.KINDS)}")
    plt = _pyplot()
    # constrained layout keeps the rotated layer labels inside the figure, so that savefig
    # without bbox_inches="tight" does not cut them off
    if kind == "cost":
        if ax is None:
            _, ax = plt.subplots(2, 1, figsize=(10, 6), sharex=True, layout="constrained")
        _bars(report, "macs", ax[0])
        _bars(report, "params", ax[1])
        return ax
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 4.5), layout="constrained")
    if kind == "rf":
        return _rf(report, ax)
    if kind == "roofline":
        return _roofline(report, ax)
    return _bars(report, kind, ax)


def _bars(report: Any, which: str, ax: Any) -> Any:
    s = charts.cost_series(report)
    values = s.macs if which == "macs" else s.params
    ax.bar(range(len(values)), values, color="#4f7cc9" if which == "macs" else "#8a63c4", label=which)
    ax.set_ylabel("MACs" if which == "macs" else "parameters")
    ax.set_title(f"{'MACs' if which == 'macs' else 'Parameters'} per layer")
    _layer_ticks(ax, s.names)
    return ax


def _layer_ticks(ax: Any, names: list[str]) -> None:
    """Label at most ``charts.MAX_LABELS`` layers, long names shortened, so the axis stays readable."""
    ticks = charts.label_positions(len(names))
    ax.set_xticks(ticks)
    ax.set_xticklabels([charts.short_label(names[i]) for i in ticks], rotation=90, fontsize=7)
    ax.set_xlabel(f"layer ({len(names)}, in graph order)")


def _rf(report: Any, ax: Any) -> Any:
    """Finite fields as a line (broken at global ones); global fields in their own band above
    the sizes and the input line, on a y tick labelled ``global``."""
    s = charts.rf_series(report)
    finite = [i for i, size in enumerate(s.sizes) if size is not None]
    ax.plot(finite, [s.sizes[i] for i in finite], marker="o", markersize=3, color="#2f855a",
            label="receptive field (largest side)")
    glob = [i for i, g in enumerate(s.is_global) if g]
    if glob:
        ax.set_ylim(0, s.top * 1.05)
        ticks = [t for t in ax.get_yticks() if 0 <= t <= s.top * 1.05]
        level = s.top * 1.15
        ax.axhspan(s.top * 1.075, s.top * 1.225, color="#fbd38d", alpha=0.35, linewidth=0)
        ax.scatter(glob, [level] * len(glob), color="#c05621", zorder=3, label="global (whole input)")
        ax.set_yticks(ticks + [level], [f"{t:g}" for t in ticks] + ["global"])
        ax.set_ylim(0, s.top * 1.3)
    if s.input_size:
        ax.axhline(s.input_size, color="#c53030", linestyle="--", label=f"input size ({s.input_size} px)")
    ax.set_ylabel("pixels")
    ax.set_title("Receptive field per layer")
    _layer_ticks(ax, s.names)
    ax.legend(loc="lower right", fontsize=8)  # fields grow along the graph: the lower right is free
    return ax


def _roofline(report: Any, ax: Any) -> Any:
    s = charts.roofline_series(report)
    ax.scatter(s.intensity, s.throughput, s=12, alpha=0.7, color="#4f7cc9", label="layers (estimated)")
    lo = min(s.intensity + [s.ridge]) / 2
    hi = max(s.intensity + [s.ridge]) * 2
    xs = [lo, s.ridge, hi]
    ax.plot(xs, [s.roof(x) for x in xs], color="#c53030", label=f"roof: {s.profile} ({s.dtype})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOPs/byte)")
    ax.set_ylabel("FLOP/s")
    ax.set_title(f"Roofline on {s.profile} ({s.dtype})")
    ax.legend(loc="lower right", fontsize=8)
    return ax
