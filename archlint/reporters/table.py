"""The default human-readable table (tabulate)."""

from __future__ import annotations

from collections.abc import Sequence

from tabulate import tabulate

from archlint.report import Report
from archlint.reporters.registry import Format, RenderOptions
from archlint.units import human, human_bytes


def _shape(shape: Sequence[int] | None) -> str:
    return "?" if shape is None else "x".join(str(d) for d in shape)


def render(report: Report, show_all: bool = False) -> str:
    """Per-layer table, then totals and what could not be costed."""
    total_macs = report.totals.macs or 0
    rows = []
    hidden = 0
    for layer in report.layers:
        if layer.plumbing and not show_all and not layer.uncounted:
            hidden += 1
            continue
        share = "" if not layer.macs or not total_macs else f"{100 * layer.macs / total_macs:.1f}%"
        rf = layer.rf[0].short() if layer.rf else ""
        params = human(layer.params) + (f" (+{human(layer.shared_params)} shared)" if layer.shared_params else "")
        rows.append([layer.name, layer.op, _shape(layer.output_shape), rf, params,
                     human(layer.macs), share])
    model = report.model
    lines = []
    head = f"model: {model.label} ({model.format}"
    if model.opset:
        head += f", opset {model.opset}"
    if model.tracer:
        head += f", traced with {model.tracer}"
    head += ")"
    lines.append(head)
    for inp in model.inputs:
        lines.append(f"input: {inp['name']} {_shape(inp['shape'])} {inp.get('dtype') or ''}".rstrip())
    lines.append("")
    lines.append(tabulate(rows, headers=["layer", "op", "output", "RF", "params", "MACs", "% MACs"],
                          disable_numparse=True))
    if hidden:
        lines.append(f"({hidden} shape-only or pass-through layers hidden; --all shows them)")
    t = report.totals
    partial = " (partial: see below)" if t.partial else ""
    lines.append("")
    lines.append(f"params: {human(t.params)} ({t.params:,})")
    lines.append(f"MACs:   {human(t.macs)} ({t.macs:,}){partial}")
    lines.append(f"FLOPs (archlint definition, see README): {human(t.flops)}{partial}")
    lines.append(f"activation memory (all intermediate tensors): {human_bytes(t.activation_bytes)}")
    if t.uncounted_ops:
        lines.append("")
        lines.append(f"not costed ({len(t.uncounted_ops)} op(s); totals above are lower bounds):")
        for u in t.uncounted_ops:
            lines.append(f"  {u['layer']} ({u['op']}): {u['reason']}")
    return "\n".join(lines)


def render_findings(report: Report) -> str:
    """Findings after the layer table: severity, code, layer and message."""
    if not report.findings:
        return "findings: none"
    lines = [f"findings ({len(report.findings)}):"]
    for f in report.findings:
        where = f" {f.layer}" if f.layer else ""
        src = f" ({f.source[0]}:{f.source[1]})" if f.source else ""
        lines.append(f"  {f.code} [{f.severity}]{where}{src}: {f.message}")
    return "\n".join(lines)


def render_statistics(reports: Sequence[Report]) -> str:
    """Counts per rule over every report, like ruff --statistics."""
    from collections import Counter

    counts = Counter((f.code, f.name, f.severity) for r in reports for f in r.findings)
    if not counts:
        return "no findings"
    return "\n".join(f"{n:5d}  {code}  {name} [{sev}]" for (code, name, sev), n in
                     sorted(counts.items(), key=lambda kv: (-kv[1], kv[0][0])))


def render_all(reports: Sequence[Report], options: RenderOptions) -> str:
    """Each report's layer table followed by its findings."""
    return "\n\n".join(f"{render(r, show_all=options.show_all)}\n\n{render_findings(r)}" for r in reports)


FORMAT = Format("table", render_all, summary=True, order=0)
