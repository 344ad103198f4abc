"""What-if alternatives for one conv layer: the original, its depthwise-separable
replacement and each valid group count, with params, MACs, bytes, intensity and the
roofline time; measured times when asked (``--measure``, needs torch)."""

from __future__ import annotations

from typing import Any

from archlint.analyses import rewrite
from archlint.analyses.rewrite import Fix
from archlint.errors import ArchlintError
from archlint.measure import ConvSpec
from archlint.ops import registry
from archlint.report import Report
from archlint.rules.substitution import costed_fix, grouped_fixes
from archlint.rules.views import ConvView, conv_views

GROUP_COUNTS = [2, 4, 8, 16, 32, 64]


def original_chain(v: ConvView) -> list[ConvSpec]:
    """The analysed conv itself, as :mod:`archlint.measure` times it (padding k//2)."""
    return [ConvSpec(v.n, v.ci, v.co, v.in_spatial, v.kernel, v.stride, v.groups)]


def fix_chain(fix: Fix) -> list[ConvSpec]:
    """The convs a :class:`Fix` puts in place, read off its replacement layers and tensors: what
    ``--measure`` times is the very description whose cost the finding and ``explore`` report."""
    shapes = {name: t.shape for name, t in {**fix.boundary, **fix.tensors}.items()}
    chain = []
    for layer in fix.layers:
        x, w = shapes.get(layer.inputs[0]), shapes.get(layer.inputs[1]) if len(layer.inputs) > 1 else None
        if not registry.get(layer.kind).is_conv or x is None or w is None:
            raise ArchlintError(f"{fix.code} on {', '.join(fix.replaces)}: its replacement is not a chain of "
                                f"convs that --measure can time")
        nd = len(x) - 2
        chain.append(ConvSpec(x[0], x[1], w[0], tuple(x[2:]), tuple(layer.attrs.get("kernel") or w[2:]),
                              tuple(layer.attrs.get("stride") or [1] * nd), int(layer.attrs.get("groups", 1))))
    return chain


def find_conv(report: Report, name: str) -> ConvView:
    views = {v.name: v for v in conv_views(report)}
    if name not in views:
        convs = ", ".join(list(views)[:8])
        raise ArchlintError(f"no conv layer named '{name}' (conv layers: {convs}{', ...' if len(views) > 8 else ''})")
    return views[name]


def whatif(report: Report, name: str, measure: bool = False, use_cache: bool = True) -> list[dict[str, Any]]:
    """The original layer, its depthwise-separable replacement and each grouped one: params,
    MACs, bytes and estimated time of the same :class:`~archlint.analyses.rewrite.Fix` the
    rules propose (registry formulas and traffic model over the replacement layers)."""
    v = find_conv(report, name)
    rec = v.record
    rows: list[dict[str, Any]] = [{"variant": "original", "params": rec.params, "macs": rec.macs or 0,
                                   "bytes": rec.bytes, "est_time_s": rec.est_time}]
    variants = {"original": original_chain(v)}
    fixes: list[tuple[str, Fix | None]] = []
    if v.groups == 1 and max(v.kernel) > 1:
        fixes.append(("depthwise-separable", costed_fix(report, rewrite.depthwise_separable, name)))
    if v.groups == 1:
        fixes += [(f"grouped G={f.details['groups']}", f) for f in grouped_fixes(report, name, GROUP_COUNTS)]
    for variant, fix in fixes:
        if fix is None or fix.after is None:
            continue
        variants[variant] = fix_chain(fix)
        rows.append({"variant": variant, "params": fix.after.params, "macs": fix.after.macs,
                     "bytes": fix.after.bytes, "est_time_s": fix.after.est_time})
    base = rows[0]["est_time_s"]
    for row in rows:
        row["intensity"] = (2 * row["macs"] / row["bytes"]) if row["bytes"] else None
        row["est_speedup"] = base / row["est_time_s"] if row["est_time_s"] else None
    if measure:
        dtype = report.model.dtype or "fp32"
        from archlint.measure import measure_chains
        timing = measure_chains([variants[row["variant"]] for row in rows], dtype, reuse=use_cache)
        times = timing.seconds
        for row, seconds in zip(rows, times):
            row["measured_s"] = seconds
            row["measured_speedup"] = times[0] / seconds
            row["measured_cached"] = timing.cached
    return rows


def measure_finding(report: Report, finding: Any, use_cache: bool = True) -> None:
    """Attach measured before/after times to a substitution finding (AL101, AL102). Times read
    from the cache (``~/.cache/archlint/measure.json``, an earlier run's) are marked as cached
    in the message and in ``details.measured_s.cached``; ``use_cache=False`` re-measures."""
    from archlint.measure import measure_chains
    if finding.code not in ("AL101", "AL102") or finding.fix is None or finding.layer is None:
        return
    v = find_conv(report, finding.layer)
    dtype = report.model.dtype or "fp32"
    timing = measure_chains([original_chain(v), fix_chain(finding.fix)], dtype, reuse=use_cache)
    before, after = timing.seconds
    finding.details["measured_s"] = {"before": before, "after": after, "speedup": before / after,
                                     "cached": timing.cached}
    how = "Measured (cached; --no-cache re-measures)" if timing.cached else "Measured"
    finding.message += f" {how}: {before * 1e3:.3f} ms -> {after * 1e3:.3f} ms ({before / after:.2f}x)."
