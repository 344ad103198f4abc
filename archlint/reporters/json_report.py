"""The JSON report (a stable contract: see README, "JSON report")."""

from __future__ import annotations

from typing import Sequence

from archlint.report import Report


def render(reports: Sequence[Report]) -> str:
    """One report: an object; several (several paths on the command line): an array."""
    if len(reports) == 1:
        return reports[0].to_json()
    return "[\n" + ",\n".join(r.to_json() for r in reports) + "\n]"
