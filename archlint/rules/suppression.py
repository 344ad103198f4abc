"""Suppressions at the source, and AL001 for the ones that suppress nothing.

PyTorch: ``# archlint: ignore[AL101, AL107]`` on the line that constructs the module (or
makes the functional call). ONNX: a node ``metadata_props`` entry ``archlint.ignore`` with
value ``"AL101,AL107"``. A bare ``# archlint: ignore`` suppresses every rule on that layer.
"""

from __future__ import annotations

import linecache
import re
from collections.abc import Iterator
from typing import Any

from archlint.report import Report
from archlint.rules.base import Finding, Rule

_COMMENT = re.compile(r"#\s*archlint:\s*ignore(?:\[([^\]]*)\])?", re.IGNORECASE)
ALL = "*"


def layer_suppressions(report: Report) -> dict[str, tuple[set[str], str]]:
    """Layer name -> (suppressed codes, where the suppression is written)."""
    out: dict[str, tuple[set[str], str]] = {}
    graph = report.graph
    for rec in report.layers:
        codes: set[str] | None = None
        where = ""
        ignore = graph.layer(rec.name).attrs.get("archlint.ignore") if graph is not None else None
        if ignore is not None:
            codes = {c.strip().upper() for c in str(ignore).split(",") if c.strip()} or {ALL}
            where = f"metadata of node '{rec.name}'"
        elif rec.source:
            line = linecache.getline(rec.source[0], rec.source[1])
            match = _COMMENT.search(line)
            if match:
                codes = {c.strip().upper() for c in (match.group(1) or "").split(",") if c.strip()} or {ALL}
                where = f"{rec.source[0]}:{rec.source[1]}"
        if codes:
            out[rec.name] = (codes, where)
    return out


def check_unused(rule: Rule, report: Report, opts: Any) -> Iterator[Finding]:
    """Filled in by the engine, which knows which suppressions matched a finding."""
    return iter(())


AL001 = Rule(
    code="AL001", name="unused-suppression", severity="warning",
    summary="an archlint: ignore[...] suppression that suppresses nothing",
    what="""
        Reports a suppression comment (# archlint: ignore[AL101] on the line that constructs a module or
        makes the call) or an ONNX node's archlint.ignore metadata entry that matched no finding.""",
    why="""
        A stale suppression (the layer changed or the rule no longer fires) would hide a future finding.
        ruff's RUF100 does the same for noqa comments.""",
    example="self.conv = nn.Conv2d(3, 8, 3)  # archlint: ignore[AL101]   <- AL101 does not fire on 3 channels",
    instead="self.conv = nn.Conv2d(3, 8, 3)",
    check=check_unused)
