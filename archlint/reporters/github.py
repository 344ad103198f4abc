"""GitHub Actions workflow commands: ``::warning file=...,line=...,title=AL101::message``."""

from __future__ import annotations

from collections.abc import Sequence

from archlint.report import Report
from archlint.reporters.registry import Format, RenderOptions

LEVELS = {"error": "error", "warning": "warning", "info": "notice"}


def _escape(text: str, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if prop else text


def render(reports: Sequence[Report], options: RenderOptions | None = None) -> str:
    lines = []
    for report in reports:
        path = report.model.label
        for f in report.findings:
            props = [f"file={_escape(f.source[0] if f.source else path, True)}"]
            if f.source:
                props.append(f"line={f.source[1]}")
            props.append(f"title={_escape(f'{f.code} {f.name}', True)}")
            where = f"{f.layer}: " if f.layer else ""
            lines.append(f"::{LEVELS[f.severity]} {','.join(props)}::{_escape(where + f.message)}")
    for error in getattr(reports, "errors", ()):  # files of a batch that could not be analysed
        lines.append(f"::error file={_escape(error.target, True)},title=archlint::{_escape(error.message)}")
    return "\n".join(lines)


FORMAT = Format("github", render, order=4)
