"""HTML: a self-contained report file (``--format html``) and the notebook view (``_repr_html_``).

The file has no external reference at all (no CDN, font or image request): the styles, the
~40 lines of sorting/filtering script and the charts (inline SVG, :mod:`archlint.reporters.svg`)
are all in the page. Every layer is one table row (shape-only layers hidden until asked
for); every finding links to its layer's row, and flagged rows carry their rule codes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import Any

from archlint.reporters import charts, svg
from archlint.reporters.registry import Format
from archlint.units import human, human_bytes, human_time

# badge backgrounds under white text: contrast 5.47, 5.54 and 5.42 to 1 (WCAG AA asks 4.5 for text)
SEVERITY_COLORS = {"error": "#c53030", "warning": "#975a16", "info": "#2b6cb0"}
WARNING_TEXT = "#975a16"  # warning text on white: 5.54 to 1
SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2}

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#1a202c;max-width:1400px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:18px;margin:28px 0 8px} h3{font-size:15px;margin:18px 0 6px}
.meta{color:#4a5568;font-size:13px} .warn{color:#975a16}
.totals{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}
.totals div{border:1px solid #e2e8f0;border-radius:6px;padding:6px 12px;min-width:120px}
.totals b{display:block;font-size:18px}
.totals span{font-size:12px;color:#4a5568}
table.layers{border-collapse:collapse;font-size:12px;width:100%}
table.layers th,table.layers td{padding:3px 6px;border-bottom:1px solid #edf2f7;text-align:right;white-space:nowrap}
table.layers td.l,table.layers th.l{text-align:left}
table.layers th{position:sticky;top:0;background:#f7fafc;cursor:pointer;user-select:none}
table.layers th[aria-sort=descending]::after{content:" \\25BC"}
table.layers th[aria-sort=ascending]::after{content:" \\25B2"}
tr.plumbing{color:#a0aec0} tr.flagged td:first-child{box-shadow:inset 3px 0 #b7791f}
tr:target{background:#fefcbf}
.bar{display:inline-block;height:8px;background:#4f7cc9;vertical-align:middle;margin-right:4px}
.badge{display:inline-block;border-radius:3px;padding:0 4px;color:#fff;font-size:11px;margin-left:2px;
text-decoration:none}
.controls{margin:8px 0;font-size:13px} .controls input[type=search]{width:260px}
ol.findings{max-height:300px;overflow:auto;border:1px solid #e2e8f0;padding:6px 6px 6px 36px;margin:0}
ol.findings li{margin:3px 0;font-size:13px}
figure{margin:0} .charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(560px,1fr));gap:8px}
"""

SCRIPT = """
document.querySelectorAll('section.model').forEach(function(sec){
  var table=sec.querySelector('table.layers'), body=table.tBodies[0];
  var search=sec.querySelector('input[type=search]'), all=sec.querySelector('input.show-all'),
      flagged=sec.querySelector('input.only-flagged'), count=sec.querySelector('.shown');
  function apply(){
    var q=search.value.toLowerCase(), n=0;
    Array.prototype.forEach.call(body.rows,function(r){
      var ok=(all.checked||!r.classList.contains('plumbing'))&&(!flagged.checked||r.classList.contains('flagged'))
        &&(!q||r.dataset.text.indexOf(q)>=0);
      r.hidden=!ok; if(ok)n++;
    });
    count.textContent=n;
  }
  [search,all,flagged].forEach(function(el){el.addEventListener('input',apply);el.addEventListener('change',apply);});
  table.tHead.querySelectorAll('th').forEach(function(th,col){
    th.addEventListener('click',function(){
      var num=th.dataset.type==='num', desc=th.getAttribute('aria-sort')!=='descending';
      if(!num&&!th.getAttribute('aria-sort'))desc=false;
      table.tHead.querySelectorAll('th').forEach(function(o){o.removeAttribute('aria-sort');});
      th.setAttribute('aria-sort',desc?'descending':'ascending');
      var rows=Array.prototype.slice.call(body.rows);
      rows.sort(function(a,b){
        var x=a.cells[col].dataset.v, y=b.cells[col].dataset.v, c;
        if(num){x=x===''?-Infinity:+x;y=y===''?-Infinity:+y;c=x-y;}else{c=x<y?-1:x>y?1:0;}
        return desc?-c:c;
      });
      rows.forEach(function(r){body.appendChild(r);});
    });
  });
  apply();
});
"""

COLUMNS = [  # header, sort type, alignment
    ("#", "num", ""), ("layer", "text", "l"), ("op", "text", "l"), ("output", "text", "l"), ("RF", "num", ""),
    ("params", "num", ""), ("MACs", "num", ""), ("% MACs", "num", ""), ("bytes", "num", ""),
    ("FLOPs/byte", "num", ""), ("est. time", "num", ""), ("findings", "text", "l"),
]


def _shape(shape: Any) -> str:
    return "?" if shape is None else "x".join(str(d) for d in shape)


def _seconds(t: float) -> str:
    """An estimated time, blank for layers that take none (views, shape arithmetic)."""
    return human_time(t) if t > 0 else ""


def _rf_cell(rec: Any) -> tuple[str, str]:
    """(text, sort value): ``212 s32 / 224`` and the largest side."""
    if not rec.rf or not rec.rf[0].size:
        return "", ""
    f = rec.rf[0]
    side = max(f.input_size) if f.input_size else None
    if f.is_global:
        return "global", str(side or "")
    size = int(math.ceil(max(f.size)))
    return f.short() + (f" / {side}" if side else ""), str(size)


def _findings_by_layer(report: Any) -> dict[str, list[tuple[int, Any]]]:
    out: dict[str, list[tuple[int, Any]]] = {}
    for j, f in enumerate(report.findings):
        out.setdefault(f.layer or "", []).append((j, f))
    return out


def _badge(f: Any, href: str | None = None, count: int = 1, title: str | None = None) -> str:
    """A rule code on its severity's colour; the text colour is inline so that a page without
    the report's stylesheet (Jupyter) keeps it readable."""
    color = SEVERITY_COLORS.get(f.severity, "#4a5568")
    attrs = f' href="{href}"' if href else ""
    tag = "a" if href else "span"
    text = f.code + (f" \u00d7{count}" if count > 1 else "")
    return (f'<{tag} class="badge sev-{f.severity}"{attrs} style="background:{color};color:#ffffff" '
            f'title="{escape(title or f"{f.name}: {f.message}")}">{text}</{tag}>')


def _code_badges(found: list[tuple[int, Any]], index: int | None = None) -> str:
    """One badge per rule code on a layer (its count when the code fired more than once), linked
    to the code's first finding when ``index`` (the report's section) is given."""
    by_code: dict[str, list[tuple[int, Any]]] = {}
    for j, f in found:
        by_code.setdefault(f.code, []).append((j, f))
    out = []
    for items in by_code.values():
        j, first = items[0]
        worst = max((f for _, f in items), key=lambda f: SEVERITY_RANK.get(f.severity, 0))
        title = "\n".join(f"{f.name}: {f.message}" for _, f in items)
        out.append(_badge(worst, None if index is None else f"#m{index}-f{j}", len(items), title))
    return "".join(out)


def _totals_boxes(report: Any) -> str:
    t = report.totals
    partial = " (partial)" if t.partial else ""
    boxes = [("params", f"{human(t.params)}", f"{t.params:,}"),
             ("MACs", f"{human(t.macs)}{partial}", f"{t.macs:,}"),
             ("FLOPs (archlint definition)", f"{human(t.flops)}{partial}", "see README"),
             ("activation memory", human_bytes(t.activation_bytes), "all intermediate tensors"),
             ("memory traffic", human_bytes(t.bytes), f"at {report.model.dtype}"),
             ("est. time", _seconds(t.est_time), f"roofline on {report.model.profile}")]
    return '<div class="totals">' + "".join(
        f'<div class="total" data-key="{escape(k)}"><span>{escape(k)}</span><b>{escape(v)}</b>'
        f'<span>{escape(s)}</span></div>' for k, v, s in boxes) + "</div>"


def _model_head(report: Any) -> str:
    m = report.model
    bits = [escape(str(m.format or ""))]
    if m.opset:
        bits.append(f"opset {m.opset}")
    if m.tracer:
        bits.append(f"traced with {escape(m.tracer)}")
    inputs = ", ".join(f"{escape(i['name'])} {_shape(i['shape'])}" for i in m.inputs)
    return f'<p class="meta">{", ".join(bits)}; input {inputs}</p>'


def _layer_rows(report: Any, index: int) -> list[str]:
    by_layer = _findings_by_layer(report)
    total = report.totals.macs or 0
    biggest = max((r.macs or 0 for r in report.layers), default=0)
    rows = []
    for i, rec in enumerate(report.layers):
        rf_text, rf_v = _rf_cell(rec)
        share = 100 * rec.macs / total if rec.macs and total else 0.0
        found = by_layer.get(rec.name, [])
        classes = [c for c, on in (("plumbing", rec.plumbing and not rec.uncounted), ("flagged", found)) if on]
        where = rec.module or ""
        if rec.source:
            where += f" ({rec.source[0]}:{rec.source[1]})"
        macs_text = human(rec.macs) if rec.macs is not None else f'? <span title="{escape(rec.uncounted or "")}">' \
                                                                   f"not costed</span>"
        cells = [
            (str(i), str(i), ""),
            (f'<span title="{escape(where)}">{escape(rec.name)}</span>', rec.name, "l"),
            (escape(rec.op), rec.op, "l"), (_shape(rec.output_shape), _shape(rec.output_shape), "l"),
            (escape(rf_text), rf_v, ""),
            (human(rec.params) + (f" (+{human(rec.shared_params)} shared)" if rec.shared_params else ""),
             str(rec.params), ""),
            (macs_text, "" if rec.macs is None else str(rec.macs), ""),
            (f'<span class="bar" style="width:{60 * rec.macs / biggest:.1f}px"></span>{share:.1f}%' if share else "",
             f"{share:.4f}", ""),
            (human_bytes(rec.bytes) if rec.bytes else "", str(rec.bytes), ""),
            (f"{rec.intensity:.1f}" if rec.intensity is not None else "",
             "" if rec.intensity is None else f"{rec.intensity:.4f}", ""),
            (_seconds(rec.est_time), f"{rec.est_time:.6g}", ""),
            (_code_badges(found, index), " ".join(f.code for _, f in found), "l"),
        ]
        text = f"{rec.name} {rec.op} {rec.kind} {rec.module or ''} " + " ".join(f.code for _, f in found)
        tds = "".join(f'<td class="{a}" data-v="{escape(v, quote=True)}">{h}</td>' if a else
                      f'<td data-v="{escape(v, quote=True)}">{h}</td>' for h, v, a in cells)
        cls = f' class="{" ".join(classes)}"' if classes else ""
        rows.append(f'<tr id="m{index}-l{i}"{cls} data-layer="{escape(rec.name, quote=True)}" '
                    f'data-text="{escape(text.lower(), quote=True)}">{tds}</tr>')
    return rows


def _findings_list(report: Any, index: int) -> str:
    if not report.findings:
        return "<p>No findings.</p>"
    rows = {rec.name: i for i, rec in enumerate(report.layers)}
    items = []
    for j, f in enumerate(report.findings):
        target = (f'<a href="#m{index}-l{rows[f.layer]}">{escape(f.layer)}</a>' if f.layer in rows
                  else escape(f.layer or "model"))
        src = f" ({escape(f.source[0])}:{f.source[1]})" if f.source else ""
        items.append(f'<li id="m{index}-f{j}" class="finding sev-{f.severity}">{_badge(f)} '
                     f'<b>{escape(f.name)}</b> {target}{src}: {escape(f.message)}</li>')
    return '<ol class="findings">' + "".join(items) + "</ol>"


def _section(report: Any, index: int) -> str:
    path = report.model.label
    shown = charts.shown_layers(report)
    parts = [f'<section class="model" id="m{index}"><h2>{escape(str(path))}</h2>', _model_head(report),
             _totals_boxes(report)]
    for w in report.warnings:
        parts.append(f'<p class="warn">warning: {escape(w)}</p>')
    if report.totals.uncounted_ops:
        items = "".join(f"<li>{escape(u['layer'])} ({escape(u['op'])}): {escape(u['reason'])}</li>"
                        for u in report.totals.uncounted_ops)
        parts.append(f"<h3>Not costed (totals are lower bounds)</h3><ul>{items}</ul>")
    parts.append(f"<h3>Findings ({len(report.findings)})</h3>" + _findings_list(report, index))
    cost = charts.cost_series(report)
    figures = "".join(f"<figure>{chart}</figure>" for chart in (
        svg.cost_chart(cost), svg.params_chart(cost), svg.rf_chart(charts.rf_series(report)),
        svg.roofline_chart(charts.roofline_series(report))))
    parts.append(f'<h3>Charts</h3><div class="charts">{figures}</div>')
    head = "".join(f'<th data-type="{t}"{" class=l" if a else ""}>{escape(h)}</th>' for h, t, a in COLUMNS)
    parts.append(
        f'<h3>Layers</h3><div class="controls"><input type="search" placeholder="filter by name, op or rule" '
        f'aria-label="filter layers"> <label><input type="checkbox" class="show-all"> show shape-only layers'
        f'</label> <label><input type="checkbox" class="only-flagged"> only flagged layers</label> '
        f'<span class="shown">{len(shown)}</span> of {len(report.layers)} layers shown; click a header to sort</div>'
        f'<table class="layers"><thead><tr>{head}</tr></thead><tbody>' + "".join(_layer_rows(report, index))
        + "</tbody></table></section>")
    return "".join(parts)


def render(reports: Sequence[Any]) -> str:
    """One self-contained HTML page for one or more reports."""
    from archlint import __version__
    title = ", ".join(r.model.label for r in reports)
    body = "".join(_section(r, i) for i, r in enumerate(reports))
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>archlint: {escape(title)}</title><style>{STYLE}</style></head><body>"
            f"<h1>archlint report</h1><p class=\"meta\">archlint {__version__}. MACs count one per fused "
            f"multiply-add; FLOPs follow archlint's per-op definition (README).</p>{body}"
            f"<script>{SCRIPT}</script></body></html>")


# --- the notebook view -------------------------------------------------------------------------

NB_STYLE = ("<style>.archlint-nb table{border-collapse:collapse;font-size:12px}"
            ".archlint-nb td,.archlint-nb th{padding:2px 6px;text-align:right;white-space:nowrap}"
            ".archlint-nb td.l,.archlint-nb th.l{text-align:left}"
            ".archlint-nb tr.flagged{background:#fffbea}</style>")


def _bar(value: float, color: str) -> str:
    width = max(0.0, min(value, 1.0)) * 80
    return (f'<span style="display:inline-block;width:80px;background:#edf2f7;vertical-align:middle">'
            f'<span style="display:block;width:{width:.1f}px;height:8px;background:{color}"></span></span>')


def _nb_table(report: Any, layers: Sequence[Any], by_layer: dict[str, list[tuple[int, Any]]]) -> str:
    t = report.totals
    head = ('<tr><th class="l">layer</th><th class="l">op</th><th class="l">output</th>'
            '<th class="l">RF / input</th><th class="l">MACs</th><th class="l">params</th>'
            '<th class="l">findings</th></tr>')
    rows = []
    for rec in layers:
        found = by_layer.get(rec.name, [])
        rf_text, _ = _rf_cell(rec)
        rf_bar = ""
        if rec.rf and rec.rf[0].size and rec.rf[0].input_size:
            f = rec.rf[0]
            ratio = 1.0 if f.is_global else float(max(f.size)) / max(f.input_size)
            rf_bar = _bar(ratio, "#2f855a")
        macs_share = (rec.macs or 0) / t.macs if t.macs else 0.0
        params_share = rec.params / t.params if t.params else 0.0
        macs = human(rec.macs) if rec.macs is not None else "? (not costed)"
        cls = ' class="flagged"' if found else ""
        rows.append(
            f'<tr{cls} data-layer="{escape(rec.name, quote=True)}"><td class="l">{escape(rec.name)}</td>'
            f'<td class="l">{escape(rec.op)}</td><td class="l">{_shape(rec.output_shape)}</td>'
            f'<td class="l">{rf_bar} {escape(rf_text)}</td>'
            f'<td class="l">{_bar(macs_share, "#4f7cc9")} {macs} ({100 * macs_share:.1f}%)</td>'
            f'<td class="l">{_bar(params_share, "#8a63c4")} {human(rec.params)} ({100 * params_share:.1f}%)</td>'
            f'<td class="l">{_code_badges(found)}</td></tr>')
    return f"<table>{head}{''.join(rows)}</table>"


def render_notebook(report: Any, max_rows: int = 40, top_k: int = 10, max_findings: int = 6) -> str:
    """The compact view Jupyter shows for a :class:`Report`: totals, findings, and a table with
    inline bars for each layer's share of MACs and params and its receptive field against the
    input. Over ``max_rows`` layers, the ``top_k`` by MACs are shown and the rest collapse."""
    t = report.totals
    by_layer = _findings_by_layer(report)
    shown = charts.shown_layers(report)
    partial = " (partial)" if t.partial else ""
    path = report.model.label
    inputs = ", ".join(f"{escape(i['name'])} {_shape(i['shape'])}" for i in report.model.inputs)
    parts = [NB_STYLE, '<div class="archlint-nb">',
             f"<p><b>archlint</b>: {escape(str(path))} (input {inputs})<br>"
             f"params <b>{human(t.params)}</b>, MACs <b>{human(t.macs)}{partial}</b>, "
             f"FLOPs (archlint definition) {human(t.flops)}{partial}, activation memory "
             f"{human_bytes(t.activation_bytes)}, est. time {_seconds(t.est_time)} on "
             f"{escape(str(report.model.profile))} ({report.model.dtype}); "
             f"{len(shown)} layers, {len(report.findings)} findings</p>"]
    for w in report.warnings:
        parts.append(f'<p style="color:{WARNING_TEXT}">warning: {escape(w)}</p>')
    if report.findings:
        items = "".join(f'<li class="finding">{_badge(f)} <code>{escape(f.layer or "model")}</code>: '
                        f"{escape(f.message)}</li>" for f in report.findings[:max_findings])
        more = (f"<li>and {len(report.findings) - max_findings} more (report.findings)</li>"
                if len(report.findings) > max_findings else "")
        parts.append(f'<ul class="findings">{items}{more}</ul>')
    if len(shown) <= max_rows:
        parts.append(_nb_table(report, shown, by_layer))
    else:
        top = sorted(shown, key=lambda r: r.macs or 0, reverse=True)[:top_k]
        flagged = [r for r in shown if r.name in by_layer and r not in top]
        parts.append(f"<p>Top {len(top)} of {len(shown)} layers by MACs"
                     + (f", then {len(flagged)} more flagged layer(s)" if flagged else "") + ":</p>")
        parts.append(f'<div class="top">{_nb_table(report, top + flagged, by_layer)}</div>')
        parts.append(f'<details><summary>all {len(shown)} layers</summary>'
                     f'{_nb_table(report, shown, by_layer)}</details>')
    parts.append("</div>")
    return "".join(parts)


def _render_format(reports: Sequence[Any], options: Any = None) -> str:
    return render(reports)


FORMAT = Format("html", _render_format, order=6)
