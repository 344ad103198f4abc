"""The JSON report (a stable contract: see README, "JSON report").

Written a layer at a time with one C encoder made once: a million-layer report never exists
as one string, and each layer's line costs one encoder call.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from typing import IO, Any

from archlint.report import Report
from archlint.reporters.registry import Format, RenderOptions


def report_dict(report: Report) -> dict[str, Any]:
    """The JSON report of one model as Python objects."""
    from archlint import __version__
    return {"archlint_version": __version__, "model": report.model.to_dict(), "totals": report.totals.to_dict(),
            "layers": [layer.to_dict() for layer in report.layers],
            "findings": [f.to_dict() for f in report.findings],
            "warnings": list(report.warnings)}


def report_json(report: Report, indent: int | None = 2) -> str:
    """Pretty JSON with one line per layer and finding (readable, grep-able, and fast:
    the C encoder does each line). ``indent=None`` gives a single line."""
    if indent is None:
        return json.dumps(report_dict(report))
    out = io.StringIO()
    write_report(report, out, indent)
    return out.getvalue()


def write_report(report: Report, fh: IO[str], indent: int = 2) -> None:
    """Write :func:`report_json`'s text to ``fh`` a layer at a time."""
    from archlint import __version__
    pad = " " * indent
    head = {"archlint_version": __version__, "model": report.model.to_dict(), "totals": report.totals.to_dict()}
    fh.write("{\n" + ",\n".join(f"{pad}{json.dumps(k)}: {json.dumps(v)}" for k, v in head.items()))
    items: Sequence[Any]
    for key, items in (("layers", report.layers), ("findings", report.findings)):
        if not items:
            fh.write(f",\n{pad}{json.dumps(key)}: []")
            continue
        fh.write(f",\n{pad}{json.dumps(key)}: [\n")
        sep = ""
        dumps = _line_dumps()
        for item in items:
            text = dumps(item.to_dict())
            fh.write(f"{sep}{pad}{pad}{text}")
            sep = ",\n"
        fh.write(f"\n{pad}]")
    fh.write(f",\n{pad}\"warnings\": {json.dumps(list(report.warnings))}\n}}")


def _line_dumps() -> Callable[[Any], str]:
    """``json.dumps`` with its default settings, for many short lines: ``json.dumps`` makes
    a new C encoder on every call, a third of the time of a layer's line; this makes it
    once. The text is the same (the same encoder, without the circular-reference check:
    report data has no cycles)."""
    try:
        from json.encoder import JSONEncoder, c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover
        return json.dumps
    if c_make_encoder is None:  # pragma: no cover  (no C accelerator: e.g. PyPy)
        return json.dumps
    encode = c_make_encoder(None, JSONEncoder().default, encode_basestring_ascii, None, ": ", ", ", False, False,
                            True)
    join = "".join
    return lambda obj: join(encode(obj, 0))


def render(reports: Sequence[Report], options: RenderOptions | None = None) -> str:
    """One report: an object; several (several paths on the command line): an array."""
    out = io.StringIO()
    write(reports, out)
    return out.getvalue()


def write(reports: Sequence[Report], fh: IO[str], options: RenderOptions | None = None) -> None:
    """:func:`render`'s text, written a layer at a time."""
    if len(reports) == 1:
        write_report(reports[0], fh)
        return
    fh.write("[\n")
    for i, r in enumerate(reports):
        if i:
            fh.write(",\n")
        write_report(r, fh)
    fh.write("\n]")


FORMAT = Format("json", render, write=write, order=2)
