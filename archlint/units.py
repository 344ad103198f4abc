"""Human units for tables: decimal K/M/G/T (JSON always carries exact integers)."""

from __future__ import annotations


def human(n: int | float | None, unit: str = "") -> str:
    """``25557032 -> '25.56M'``; ``None -> '?'`` (never a silent zero)."""
    if n is None:
        return "?"
    for factor, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= factor:
            return f"{n / factor:.2f}{suffix}{unit}"
    return f"{int(n)}{unit}" if float(n).is_integer() else f"{n:.2f}{unit}"


def human_time(seconds: float) -> str:
    """``0.0193 -> '19.30 ms'``."""
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


def human_bytes(n: int) -> str:
    """Binary units: ``1536 -> '1.50 KiB'``."""
    value = float(n)
    for suffix in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or suffix == "TiB":
            return f"{value:.0f} {suffix}" if suffix == "B" else f"{value:.2f} {suffix}"
        value /= 1024
    return f"{n} B"
