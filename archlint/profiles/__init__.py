"""Device profiles: peak FLOP/s per dtype, memory bandwidth, the fixed cost of running one
layer (``overhead``, seconds: kernel launch or framework dispatch), and the share of peak
that dense, depthwise and grouped convolutions reach, each with its public source.

Shipped profiles are the ``*.toml`` files beside this module; a user profile is a TOML
file with the same keys (``--profile path.toml``), ``[tool.archlint.profile]`` in the
configuration, or the output of ``archlint calibrate``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archlint.dtypes import ANALYSIS_DTYPES
from archlint.errors import ArchlintError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

HERE = Path(__file__).parent
DEFAULT = "generic-x86-cpu"
DTYPES = tuple(ANALYSIS_DTYPES)
EFFICIENCY_KEYS = ("dense", "depthwise", "grouped")


@dataclass(frozen=True)
class Profile:
    name: str
    peak_flops: dict[str, float]
    bandwidth: float
    efficiency: dict[str, float] = field(default_factory=dict)
    description: str = ""
    sources: tuple[str, ...] = ()
    overhead: float = 0.0
    grouped_channels: int = 16
    overheads: dict[str, float] = field(default_factory=dict)

    def overhead_for(self, cls: str) -> float:
        """Fixed cost of one layer of class ``cls`` (dense, depthwise, grouped): the calibrated
        intercept when the profile has one, else ``overhead``."""
        return self.overheads.get(cls, self.overhead)

    def peak(self, dtype: str) -> float:
        return self.peak_flops.get(dtype) or self.peak_flops["fp32"]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "peak_flops": self.peak_flops, "bandwidth": self.bandwidth,
                "overhead": self.overhead, "overheads": self.overheads, "grouped_channels": self.grouped_channels,
                "efficiency": self.efficiency, "description": self.description, "sources": list(self.sources)}


def available() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.toml"))


def from_dict(data: dict[str, Any], where: str) -> Profile:
    """Validate a profile table; every problem is a one-line :class:`ArchlintError`."""
    if not isinstance(data, dict):
        raise ArchlintError(f"{where}: a profile must be a table")
    unknown = set(data) - {"name", "description", "peak_flops", "bandwidth", "efficiency", "sources", "overhead",
                           "overheads", "grouped_channels"}
    if unknown:
        raise ArchlintError(f"{where}: unknown profile key(s) {', '.join(sorted(unknown))}")
    peak = data.get("peak_flops")
    fp32 = peak.get("fp32") if isinstance(peak, dict) else None
    if not isinstance(peak, dict) or not isinstance(fp32, (int, float)) or isinstance(fp32, bool):
        raise ArchlintError(f"{where}: peak_flops must be a table with at least fp32 = <FLOP/s>")
    for key, value in peak.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            raise ArchlintError(f"{where}: peak_flops.{key} must be a positive number, got {value!r}")
    bandwidth = data.get("bandwidth")
    if not isinstance(bandwidth, (int, float)) or isinstance(bandwidth, bool) or bandwidth <= 0:
        raise ArchlintError(f"{where}: bandwidth must be a positive number of bytes per second, got {bandwidth!r}")
    efficiency = data.get("efficiency", {})
    if not isinstance(efficiency, dict) or set(efficiency) - set(EFFICIENCY_KEYS) or not all(
            isinstance(v, (int, float)) and 0 < v <= 1 for v in efficiency.values()):
        raise ArchlintError(f"{where}: efficiency must map {', '.join(EFFICIENCY_KEYS)} to shares in (0, 1]")
    overhead = data.get("overhead", 0.0)
    if not isinstance(overhead, (int, float)) or isinstance(overhead, bool) or overhead < 0:
        raise ArchlintError(f"{where}: overhead must be a non-negative number of seconds per layer, got {overhead!r}")
    overheads = data.get("overheads", {})
    if not isinstance(overheads, dict) or set(overheads) - set(EFFICIENCY_KEYS) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in overheads.values()):
        raise ArchlintError(f"{where}: overheads must map {', '.join(EFFICIENCY_KEYS)} to non-negative seconds")
    grouped_channels = data.get("grouped_channels", 16)
    if not isinstance(grouped_channels, int) or isinstance(grouped_channels, bool) or grouped_channels < 1:
        raise ArchlintError(f"{where}: grouped_channels must be a positive integer, got {grouped_channels!r}")
    sources = data.get("sources", [])
    if not isinstance(sources, list):
        raise ArchlintError(f"{where}: sources must be a list of strings")
    return Profile(str(data.get("name", where)), {k: float(v) for k, v in peak.items()}, float(bandwidth),
                   {k: float(v) for k, v in efficiency.items()}, str(data.get("description", "")),
                   tuple(str(s) for s in sources), float(overhead), grouped_channels,
                   {k: float(v) for k, v in overheads.items()})


def load(spec: str | Path | dict[str, Any] | Profile | None) -> Profile:
    """A shipped profile by name, a TOML file, a table, or the default."""
    if isinstance(spec, Profile):
        return spec
    if isinstance(spec, dict):
        return from_dict(spec, "profile")
    name = str(spec or DEFAULT)
    path = HERE / f"{name}.toml"
    if not path.exists():
        path = Path(name)
        if not path.exists():
            raise ArchlintError(f"unknown device profile '{name}': use one of {', '.join(available())} or a TOML file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ArchlintError(f"profile {path}: cannot read it ({exc})") from None
    return from_dict(data, f"profile {path}")
