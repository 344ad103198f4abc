"""AL2xx receptive-field rules and AL3xx whole-model rules (budgets, completeness)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

from archlint.errors import ArchlintError
from archlint.ops import registry
from archlint.report import Report
from archlint.units import human, human_bytes
from archlint.rules.base import Finding, Rule


def check_field_coverage(rule: Rule, report: Report, opts: dict[str, Any]) -> Iterator[Finding]:
    """The last layer whose output is still a spatial map (rank >= 3, not 1x1) against the input
    size. A global field there (e.g. after squeeze-and-excitation) covers everything. Models
    with attention mix all positions after their spatial stem and are not checked."""
    if any(registry.get(r.kind).token_mixing and r.rf for r in report.layers):
        return
    spatial = [r for r in report.layers if r.rf and r.output_shape is not None and len(r.output_shape) >= 3
               and any(d > 1 for d in r.output_shape[2:]) and r.is_data]
    if not spatial or spatial[-1].rf[0].is_global:
        return
    last = spatial[-1]
    field = last.rf[0]
    shares = [float(size) / n for size, n in zip(field.size, field.input_size) if n]
    if shares and min(shares) < opts["min-coverage"]:
        size = "x".join(str(int(s)) for s in field.size)
        image = "x".join(map(str, field.input_size))
        yield rule.finding(
            f"the receptive field at the last spatial layer is {size} on a {image} input ({min(shares):.0%} of "
            f"it, below {opts['min-coverage']:.0%}): units cannot see whole objects; add stride, dilation or "
            f"depth, or a global-context block", last, details={"coverage": min(shares)})


def _fmt(x: Any) -> str:
    x = Fraction(x)
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


def check_unaligned_merge(rule: Rule, report: Report, opts: dict[str, Any]) -> Iterator[Finding]:
    """A merge whose output is unaligned while all of its inputs were aligned: the first
    place where branches with different effective stride or centre offset meet."""
    graph = report.graph
    if graph is None:
        return
    by_name = {r.name: r for r in report.layers}
    for rec in report.layers:
        if not rec.rf or rec.rf[0].aligned or rec.rf[0].is_global:
            continue
        branches = []
        for t in graph.layer(rec.name).inputs:
            producer = graph.producer.get(t)
            src = by_name.get(producer) if producer else None
            if src is not None and src.rf:
                branches.append((src.name, src.rf[0]))
            elif t in graph.inputs:
                branches.append((t, None))
        if any(f is not None and not f.aligned for _, f in branches):
            continue
        text = "; ".join(
            f"'{name}': stride {'x'.join(_fmt(s) for s in f.stride)}, centre offset "
            f"{'x'.join(_fmt(-Fraction(p) + Fraction(r - 1) / 2) for p, r in zip(f.padding, f.size))}"
            if f else f"'{name}': input"
            for name, f in branches)
        yield rule.finding(
            f"{rec.op} merges branches that are not aligned ({text}): the same output position sees "
            f"differently placed input regions; adjust padding or crop so the centres agree", rec)


_UNITS = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40, "b": 1}


def parse_quantity(value: Any, key: str) -> float:
    """``25557032``, ``"25.6M"``, ``"4G"``, ``"100MB"``, ``"1.5GiB"``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(value))
    if not match or match.group(2).lower() not in _UNITS:
        raise ArchlintError(f"budget '{key}': cannot read {value!r} (use a number with K/M/G/T, or bytes "
                            f"with KB/MB/GB or KiB/MiB/GiB)")
    return float(match.group(1)) * _UNITS[match.group(2).lower()]


BUDGET_KEYS = ("params", "macs", "flops", "activation-memory", "peak-layer-memory")


def peak_layer_bytes(report: Report) -> tuple[int, str | None]:
    """The largest input + output activation bytes of a single layer (tensors in their own dtype)."""
    from archlint.analyses.cost import tensor_bytes
    best, name = 0, None
    graph = report.graph
    sizes: dict[str, int] = {}  # a tensor is read by several layers: its size is computed once
    for rec in report.layers:
        total = rec.output_bytes
        if graph is not None:
            for inp in rec.inputs:
                t = inp["name"]
                size = sizes.get(t)
                if size is None:
                    size = sizes[t] = tensor_bytes(graph, t)
                total += size
        if total > best:
            best, name = total, rec.name
    return best, name


def check_budgets(rule: Rule, report: Report, opts: dict[str, Any]) -> Iterator[Finding]:
    t = report.totals
    # the one budget that needs a pass over every layer is measured only when it is set
    peak, peak_layer = peak_layer_bytes(report) if opts.get("peak-layer-memory") is not None else (0, None)
    actual = {"params": t.params, "macs": t.macs, "flops": t.flops, "activation-memory": t.activation_bytes,
              "peak-layer-memory": peak}
    for key in BUDGET_KEYS:
        limit = opts.get(key)
        if limit is None:
            continue
        value = actual[key]
        if value > parse_quantity(limit, key):
            shown = human_bytes(value) if "memory" in key else human(value)
            where = f" (layer '{peak_layer}')" if key == "peak-layer-memory" else ""
            partial = " (and the total is partial)" if t.partial and key in ("macs", "flops") else ""
            yield rule.finding(f"{key} {shown}{where} is over the budget of {limit}{partial}",
                               peak_layer if key == "peak-layer-memory" else None,
                               details={"budget": key, "value": value, "limit": limit})


def check_partial(rule: Rule, report: Report, opts: dict[str, Any]) -> Iterator[Finding]:
    if report.totals.partial:
        ops = sorted({u["op"] for u in report.totals.uncounted_ops})
        yield rule.finding(
            f"{len(report.totals.uncounted_ops)} op(s) could not be costed ({', '.join(ops)}): MACs and FLOPs "
            f"are lower bounds", details={"uncounted_ops": report.totals.uncounted_ops})


AL201 = Rule(
    "AL201", "small-receptive-field", "warning",
    "receptive field at the last spatial layer covers less than a set share of the input",
    """A classifier or detector whose deepest spatial features see only a small part of the image cannot
use context beyond it. The rule takes the last layer whose output is still spatial and compares its
receptive field (over the whole graph, REFERENCE.md section 3) with the input size on each axis.
Option: `min-coverage` (share of the input, default 0.5).

Example:
    three 3x3 convs on a 224 px input: field 7x7, 3% of the image""",
    check_field_coverage, {"min-coverage": 0.5})

AL202 = Rule(
    "AL202", "unaligned-merge", "warning",
    "branches merged with different effective stride or centre offset",
    """At an add or concat the branches should look at the same place: equal effective stride S and equal
centre offset -P + (r-1)/2 (Araujo et al., Distill 2019). Otherwise the merged feature at one position
mixes input regions shifted against each other, usually from mismatched padding or a crop.
google-research/receptive_field raises an error here; archlint reports the first unaligned merge.

Example:
    self.a = nn.Conv2d(c, c, 3, padding=1); self.b = nn.Conv2d(c, c, 3)
    y = self.a(x) + F.pad(self.b(x), (0, 2, 0, 2))    # centres differ by one pixel""",
    check_unaligned_merge)

AL301 = Rule(
    "AL301", "budget-exceeded", "error",
    "params, MACs, FLOPs or memory over the budgets set in the configuration",
    """Budgets live in `[tool.archlint.budgets]`: `params`, `macs`, `flops`, `activation-memory`
(all intermediate tensors) and `peak-layer-memory` (the largest input + output of one layer). Numbers
accept K/M/G/T suffixes and byte units (MB, MiB). Used as a pre-commit hook, this fails a commit that
makes the model too big.

Example:
    [tool.archlint.budgets]
    params = "25M"
    macs = "4.5G"
    activation-memory = "200MB\"""",
    check_budgets, {key: None for key in BUDGET_KEYS})

AL302 = Rule(
    "AL302", "partial-totals", "warning",
    "the model has ops whose cost is unknown, so the totals are partial",
    """archlint never counts an op it cannot cost as zero. When some op has no formula (a custom domain,
an unsupported op) it is listed, and this rule says that MACs and FLOPs are lower bounds, so a budget
check may pass when it should not.

Example:
    a node com.example.FancyNorm in an ONNX file""",
    check_partial)
