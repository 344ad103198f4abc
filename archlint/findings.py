"""What a rule produces: :class:`Finding` and its :class:`Saving`, and the severity scale.

They sit beside the report's data model (a :class:`~archlint.report.Report` holds its
findings), below the rules that make them and the reporters that print them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from archlint.analyses.rewrite import Fix

SEVERITIES = ("info", "warning", "error")


def severity_rank(severity: str) -> int:
    """0 for info, 1 for warning, 2 for error: ``fail-on`` compares ranks."""
    return SEVERITIES.index(severity)


@dataclass(frozen=True)
class Saving:
    """Cost of a layer before and after a proposed change. ``bytes`` is memory traffic:
    input and output activations plus weights, read or written once each (ShuffleNet V2's
    memory access cost), in bytes for the report's dtype."""

    params: tuple[int, int]
    macs: tuple[int, int]
    bytes: tuple[int, int]
    time: tuple[float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: {"before": v[0], "after": v[1]} for k, v in
                               (("params", self.params), ("macs", self.macs), ("bytes", self.bytes))}
        if self.time is not None:
            out["est_time_s"] = {"before": self.time[0], "after": self.time[1]}
        return out

    @staticmethod
    def pct(before: float, after: float) -> str:
        """The change as a signed percentage of ``before`` (``-89%``); ``n/a`` from zero."""
        if before == 0:
            return "n/a"
        return f"{100 * (after - before) / before:+.0f}%"


@dataclass
class Finding:
    """One rule firing on one layer (or on the whole model when ``layer`` is None). ``fix`` is
    the rewrite the finding proposes (:class:`archlint.analyses.rewrite.Fix`), whose cost is the
    finding's saving; None when the rule proposes none or the layer does not fit it."""

    code: str
    name: str
    severity: str
    message: str
    layer: str | None = None
    source: tuple[str, int] | None = None
    saving: Saving | None = None
    details: dict[str, Any] = field(default_factory=dict)
    path: str | None = None
    fix: Fix | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"code": self.code, "name": self.name, "severity": self.severity,
                             "layer": self.layer, "message": self.message}
        if self.source:
            d["source"] = {"file": self.source[0], "line": self.source[1]}
        if self.saving:
            d["saving"] = self.saving.to_dict()
        if self.details:
            d["details"] = self.details
        if self.fix is not None:
            d["fix"] = self.fix.to_dict()
        return d
