"""A summary for a pull-request comment: totals per model, then the findings."""

from __future__ import annotations

from collections.abc import Sequence

from archlint.report import Report
from archlint.reporters.registry import Format, RenderOptions
from archlint.units import human, human_bytes

ICONS = {"error": "error", "warning": "warning", "info": "info"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(reports: Sequence[Report], options: RenderOptions | None = None) -> str:
    out = ["## archlint", "", "| model | params | MACs | FLOPs | activation memory | findings |",
           "|---|---|---|---|---|---|"]
    for r in reports:
        t = r.totals
        partial = " (partial)" if t.partial else ""
        counts = {s: sum(1 for f in r.findings if f.severity == s) for s in ("error", "warning", "info")}
        found = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "none"
        out.append(f"| `{r.model.label}` | {human(t.params)} | {human(t.macs)}{partial} | "
                   f"{human(t.flops)}{partial} | {human_bytes(t.activation_bytes)} | {found} |")
    rows = [(r, f) for r in reports for f in r.findings]
    if rows:
        out += ["", "| severity | rule | layer | finding |", "|---|---|---|---|"]
        for r, f in rows:
            where = f"`{f.layer}`" if f.layer else f"`{r.model.label}`"
            if f.source:
                where += f" ({f.source[0]}:{f.source[1]})"
            out.append(f"| {ICONS[f.severity]} | {f.code} {f.name} | {_cell(where)} | {_cell(f.message)} |")
    else:
        out += ["", "No findings."]
    return "\n".join(out)


FORMAT = Format("markdown", render, order=5)
