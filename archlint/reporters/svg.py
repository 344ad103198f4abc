"""Small inline-SVG charts for the HTML report: no JavaScript library, no network request.

Each mark carries a ``<title>`` (the browser's tooltip) naming its layer and value, and a
``data-layer`` attribute so the page can link a mark to its table row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from archlint.reporters.charts import CostSeries, RFSeries, RooflineSeries, label_positions, short_label
from archlint.units import human

W, H = 880, 250
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 28, 30
# the charts with one mark per layer name their layers under the x axis, rotated: more room below
H_LAYERS, BOTTOM_LAYERS = 380, 160


def _nice_ticks(high: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least ``high``: steps of 1, 2 or 5 times a power of ten."""
    if high <= 0:
        return [0.0, 1.0]
    raw = high / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return [i * step for i in range(int(math.ceil(high / step)) + 1)]


def _frame(title: str, body: list[str], label: str, height: int = H) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" aria-label="{escape(label)}" '
            f'viewBox="0 0 {W} {height}" width="100%" preserveAspectRatio="xMidYMid meet" '
            f'font-family="system-ui,sans-serif" font-size="11">'
            f'<text x="{LEFT}" y="16" font-size="13" font-weight="600">{escape(title)}</text>'
            + "".join(body) + "</svg>")


def _y_axis(ticks: Sequence[float], scale: float, fmt=human, bottom: int = BOTTOM, height: int = H) -> list[str]:
    out = []
    for t in ticks:
        y = height - bottom - t * scale
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>'
                   f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#555">{escape(fmt(t))}</text>')
    return out


def _layer_axis(names: Sequence[str], step: float, caption: str) -> list[str]:
    """Layer names under the x axis (every k-th when there are many, long ones shortened, the
    whole name in the tooltip), rotated 60 degrees, and the axis caption under them."""
    y0 = H_LAYERS - BOTTOM_LAYERS + 6
    out = []
    for i in label_positions(len(names)):
        x = LEFT + (i + 0.5) * step
        out.append(f'<text class="layer-label" data-layer="{escape(names[i])}" x="{x:.1f}" y="{y0}" '
                   f'text-anchor="end" fill="#333" font-size="10" transform="rotate(-60 {x:.1f} {y0})">'
                   f'<title>{escape(names[i])}</title>{escape(short_label(names[i]))}</text>')
    out.append(f'<text x="{LEFT}" y="{H_LAYERS - 6}" fill="#555">{escape(caption)}</text>')
    return out


def bars(names: Sequence[str], values: Sequence[float], title: str, unit: str, color: str = "#4f7cc9") -> str:
    """One bar per layer, in graph order, each named under the x axis."""
    n = max(len(values), 1)
    ticks = _nice_ticks(max(values, default=0))
    scale = (H_LAYERS - TOP - BOTTOM_LAYERS) / ticks[-1]
    step = (W - LEFT - RIGHT) / n
    base = H_LAYERS - BOTTOM_LAYERS
    body = _y_axis(ticks, scale, bottom=BOTTOM_LAYERS, height=H_LAYERS)
    for i, (name, v) in enumerate(zip(names, values)):
        h = v * scale
        body.append(f'<rect class="mark" data-layer="{escape(name)}" x="{LEFT + (i + 0.1) * step:.1f}" '
                    f'y="{base - h:.1f}" width="{max(step * 0.8, 0.5):.1f}" height="{h:.1f}" fill="{color}">'
                    f'<title>{escape(name)}: {human(v)} {unit}</title></rect>')
    body += _layer_axis(names, step, f"layers in graph order ({len(values)})")
    return _frame(title, body, f"{title}: {len(values)} layers", H_LAYERS)


def cost_chart(series: CostSeries) -> str:
    return bars(series.names, series.macs, "MACs per layer", "MACs")


def params_chart(series: CostSeries) -> str:
    return bars(series.names, series.params, "Parameters per layer", "params", color="#8a63c4")


def rf_chart(series: RFSeries) -> str:
    """Receptive-field side per layer (points joined in graph order) against the input's side
    (dashed); a global field (it sees the whole input) is drawn in a band of its own above the
    sizes, labelled ``global``, not at the input size."""
    glob = any(series.is_global)
    band = 24 if glob else 0  # the global band's height, above the numeric range
    top = series.top
    ticks = _nice_ticks(top)
    base = H_LAYERS - BOTTOM_LAYERS
    scale = (base - TOP - band) / ticks[-1]
    n = max(len(series.sizes), 1)
    step = (W - LEFT - RIGHT) / n
    body = _y_axis(ticks, scale, fmt=lambda t: f"{t:g}", bottom=BOTTOM_LAYERS, height=H_LAYERS)
    y_global = TOP + band / 2
    if glob:
        body.append(f'<rect class="global-band" x="{LEFT}" y="{TOP}" width="{W - LEFT - RIGHT}" height="{band}" '
                    f'fill="#fefcbf"/><text x="{LEFT - 6}" y="{y_global + 4:.1f}" text-anchor="end" '
                    f'fill="#555">global</text>')
    points = [(LEFT + (i + 0.5) * step, None if s is None else base - s * scale) for i, s in enumerate(series.sizes)]
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in points:  # the line breaks at global fields
        if y is None:
            runs.append([])
        else:
            runs[-1].append((x, y))
    for run in runs:
        if len(run) > 1:
            body.append('<polyline fill="none" stroke="#2f855a" stroke-width="1.5" points="'
                        + " ".join(f"{x:.1f},{y:.1f}" for x, y in run) + '"/>')
    for (x, y), name, size in zip(points, series.names, series.sizes):
        if y is None:
            body.append(f'<circle class="mark global" data-layer="{escape(name)}" cx="{x:.1f}" cy="{y_global:.1f}" '
                        f'r="3" fill="#c05621"><title>{escape(name)}: RF global (whole input)</title></circle>')
        else:
            body.append(f'<circle class="mark" data-layer="{escape(name)}" cx="{x:.1f}" cy="{y:.1f}" r="2.5" '
                        f'fill="#2f855a"><title>{escape(name)}: RF {size} px</title></circle>')
    if series.input_size:
        y = base - series.input_size * scale
        body.append(f'<line class="input-size" x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                    f'stroke="#c53030" stroke-dasharray="6 4"/>'
                    f'<text x="{W - RIGHT}" y="{y - 4:.1f}" text-anchor="end" fill="#c53030">'
                    f'input {series.input_size} px</text>')
    body += _layer_axis(series.names, step, f"layers in graph order ({len(points)}); largest side of the "
                                            f"receptive field")
    return _frame("Receptive field per layer", body, f"receptive field of {len(points)} layers", H_LAYERS)


def roofline_chart(series: RooflineSeries) -> str:
    """Log-log: intensity (FLOPs/byte) against estimated throughput (FLOP/s), under the roof."""
    if not series.intensity:
        return _frame("Roofline", [f'<text x="{LEFT}" y="60">no layer with FLOPs and bytes</text>'], "roofline")
    lo_x = 10 ** math.floor(math.log10(min(min(series.intensity), series.ridge) / 2))
    hi_x = 10 ** math.ceil(math.log10(max(max(series.intensity), series.ridge) * 2))
    lo_y = 10 ** math.floor(math.log10(min(min(series.throughput), series.roof(lo_x))))
    hi_y = 10 ** math.ceil(math.log10(series.peak * 1.01))

    def px(v: float) -> float:
        return LEFT + (math.log10(v) - math.log10(lo_x)) / (math.log10(hi_x) - math.log10(lo_x)) * (W - LEFT - RIGHT)

    def py(v: float) -> float:
        span = math.log10(hi_y) - math.log10(lo_y)
        return H - BOTTOM - (math.log10(v) - math.log10(lo_y)) / span * (H - TOP - BOTTOM)

    body = []
    for e in range(int(math.log10(lo_y)), int(math.log10(hi_y)) + 1):
        y = py(10 ** e)
        body.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>'
                    f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#555">{human(10 ** e)}</text>')
    for e in range(int(math.log10(lo_x)), int(math.log10(hi_x)) + 1):
        x = px(10 ** e)
        body.append(f'<text x="{x:.1f}" y="{H - BOTTOM + 14}" text-anchor="middle" fill="#555">{10.0 ** e:g}</text>')
    roof = [(lo_x, series.roof(lo_x)), (series.ridge, series.peak), (hi_x, series.peak)]
    body.append('<polyline class="roof" fill="none" stroke="#c53030" stroke-width="1.5" points="'
                + " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in roof) + '"/>')
    for name, i, t in zip(series.names, series.intensity, series.throughput):
        body.append(f'<circle class="mark" data-layer="{escape(name)}" cx="{px(i):.1f}" cy="{py(t):.1f}" r="3" '
                    f'fill="#4f7cc9" fill-opacity="0.7"><title>{escape(name)}: {i:.1f} FLOPs/byte, '
                    f'{human(t)}FLOP/s est.</title></circle>')
    body.append(f'<text x="{W - RIGHT}" y="{H - 2}" text-anchor="end" fill="#555">arithmetic intensity '
                f'(FLOPs/byte, log); y: estimated FLOP/s (log)</text>')
    title = f"Roofline on {series.profile} ({series.dtype})"
    return _frame(title, body, f"roofline of {len(series.names)} layers")
