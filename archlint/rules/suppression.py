"""Suppressions at the source, and AL001 for the ones that suppress nothing.

PyTorch: ``# archlint: ignore[AL101, AL107]`` on the line that constructs the module (or
makes the functional call). ONNX: a node ``metadata_props`` entry ``archlint.ignore`` with
value ``"AL101,AL107"``. A bare ``# archlint: ignore`` suppresses every rule on that layer.
"""

from __future__ import annotations

import linecache
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from archlint.report import Report
from archlint.rules.base import Finding, Rule

_COMMENT = re.compile(r"#\s*archlint:\s*ignore(?:\[([^\]]*)\])?", re.IGNORECASE)
ALL = "*"


@dataclass
class Site:
    """One written suppression: its codes, where it is written, and the layers it covers (every
    layer whose source is that line: several calls on one line, or one module called twice)."""

    codes: set[str]
    where: str
    layers: list[str] = field(default_factory=list)
    used: set[str] = field(default_factory=set)


def suppression_sites(report: Report) -> tuple[dict[tuple[str, Any], Site], dict[str, tuple[str, Any]]]:
    """The suppression sites, keyed by ``("line", (file, line))`` or ``("node", name)``, and each
    suppressed layer's site."""
    sites: dict[tuple[str, Any], Site] = {}
    layer_site: dict[str, tuple[str, Any]] = {}
    graph = report.graph
    for rec in report.layers:
        ignore = graph.layer(rec.name).attrs.get("archlint.ignore") if graph is not None else None
        key: tuple[str, Any] | None = None
        if ignore is not None:
            key = ("node", rec.name)
            if key not in sites:
                sites[key] = Site(_codes(str(ignore)), f"metadata of node '{rec.name}'")
        elif rec.source:
            key = ("line", (rec.source[0], rec.source[1]))
            if key not in sites:
                match = _COMMENT.search(linecache.getline(rec.source[0], rec.source[1]))
                if not match:
                    continue
                sites[key] = Site(_codes(match.group(1) or ""), f"{rec.source[0]}:{rec.source[1]}")
        if key is not None and key in sites:
            sites[key].layers.append(rec.name)
            layer_site[rec.name] = key
    return sites, layer_site


def _codes(text: str) -> set[str]:
    return {c.strip().upper() for c in text.split(",") if c.strip()} or {ALL}


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
