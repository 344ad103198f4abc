"""The default human-readable table (tabulate)."""

from __future__ import annotations

from collections.abc import Sequence

from archlint.findings import Finding
from archlint.report import Report
from archlint.reporters.registry import Format, RenderOptions
from archlint.units import human, human_bytes, human_time


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
        value = f" = {','.join(map(str, inp['value']))} (--input-value)" if "value" in inp else ""
        lines.append(f"input: {inp['name']} {_shape(inp['shape'])} {inp.get('dtype') or ''}".rstrip() + value)
    lines.append("")
    from tabulate import tabulate  # 30 ms of import (importlib.metadata): only when a table is drawn
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


def render_findings(report: Report, group: bool = False) -> str:
    """Findings after the layer table: severity, code, layer and message. With ``group``,
    findings of one rule and severity that propose the same replacement (the text after
    ``->`` in their message) are one line with the summed saving."""
    if not report.findings:
        return "findings: none"
    lines = [f"findings ({len(report.findings)}):"]
    groups = _groups(report.findings) if group else {}
    shown: set[tuple[str, str, str]] = set()
    for f in report.findings:
        key = _group_key(f)
        members = groups.get(key) if key is not None else None
        if members is not None and len(members) > 1:
            if key not in shown:
                shown.add(key)  # type: ignore[arg-type]
                lines.append(_group_line(members))
            continue
        where = f" {f.layer}" if f.layer else ""
        src = f" ({f.source[0]}:{f.source[1]})" if f.source else ""
        lines.append(f"  {f.code} [{f.severity}]{where}{src}: {f.message}")
    return "\n".join(lines)


def _group_key(f: Finding) -> tuple[str, str, str] | None:
    if f.saving is None or " -> " not in f.message:
        return None
    replacement = f.message.split(" -> ", 1)[1].split(":", 1)[0]
    return f.code, f.severity, replacement


def _groups(findings: Sequence[Finding]) -> dict[tuple[str, str, str], list[Finding]]:
    out: dict[tuple[str, str, str], list[Finding]] = {}
    for f in findings:
        key = _group_key(f)
        if key is not None:
            out.setdefault(key, []).append(f)
    return out


def _group_line(members: Sequence[Finding]) -> str:
    """``AL101 [info] on 8 layers (a, b, c, ...): depthwise 3x3 + pointwise 1x1; MACs -3.1M in total, est. time
    -38 us`` (--no-group lists them one by one)."""
    first = members[0]
    names = [f.layer or "model" for f in members]
    listed = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
    macs = sum(f.saving.macs[1] - f.saving.macs[0] for f in members if f.saving)
    times = [f.saving.time for f in members if f.saving and f.saving.time]
    est = f", est. time -{human_time(sum(b - a for b, a in times))}" if times else ""
    return (f"  {first.code} [{first.severity}] on {len(members)} layers ({listed}): {_group_key(first)[2]}; "  # type: ignore[index]
            f"MACs -{human(-macs)} in total{est}")


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
    return "\n\n".join(f"{render(r, show_all=options.show_all)}\n\n{render_findings(r, options.group)}"
                       for r in reports)


FORMAT = Format("table", render_all, summary=True, order=0)
