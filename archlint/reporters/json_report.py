"""The JSON report (a stable contract: see README, "JSON report")."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import IO

from archlint.report import Report


def render(reports: Sequence[Report]) -> str:
    """One report: an object; several (several paths on the command line): an array."""
    out = io.StringIO()
    write(reports, out)
    return out.getvalue()


def write(reports: Sequence[Report], fh: IO[str]) -> None:
    """:func:`render`'s text, written a layer at a time."""
    if len(reports) == 1:
        reports[0].write_json(fh)
        return
    fh.write("[\n")
    for i, r in enumerate(reports):
        if i:
            fh.write(",\n")
        r.write_json(fh)
    fh.write("\n]")
