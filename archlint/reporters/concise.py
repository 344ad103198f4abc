"""One line per finding: ``path:layer: AL101 [severity] message``."""

from __future__ import annotations

from collections.abc import Sequence

from archlint.report import Report


def location(report: Report, finding) -> str:  # type: ignore[no-untyped-def]
    path = report.model.get("path") or "<model>"
    if finding.source:
        return f"{finding.source[0]}:{finding.source[1]}:{finding.layer}"
    return f"{path}:{finding.layer}" if finding.layer else path


def render(reports: Sequence[Report]) -> str:
    lines = []
    for report in reports:
        for f in report.findings:
            lines.append(f"{location(report, f)}: {f.code} [{f.severity}] {f.message}")
    return "\n".join(lines)
