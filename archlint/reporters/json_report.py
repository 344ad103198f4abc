"""The JSON report (a stable contract: see README, "JSON report")."""

from __future__ import annotations

import json
from typing import Sequence

from archlint.report import Report


def render(reports: Sequence[Report]) -> str:
    """One report: an object; several (several paths on the command line): an array."""
    if len(reports) == 1:
        return reports[0].to_json()
    return json.dumps([r.to_dict() for r in reports], indent=2)
