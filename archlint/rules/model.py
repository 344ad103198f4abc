"""AL2xx receptive-field rules and AL3xx whole-model rules (budgets, completeness)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from archlint.analyses.receptive_field import RFRecord
from archlint.errors import ArchlintError
from archlint.ops import registry
from archlint.report import Report
from archlint.rules.base import Finding, Rule, option
from archlint.units import human, human_bytes


def check_field_coverage(rule: Rule, report: Report, opts: Any) -> Iterator[Finding]:
    """The last layer whose output is still a spatial map (rank >= 3, not 1x1) against the input
    size. A global field there (e.g. after squeeze-and-excitation) covers everything. Models
    with attention mix all positions after their spatial stem and are not checked, nor are
    models without a sliding window (conv, pool): nothing there looks at a neighbourhood, so the
    input has no spatial axes to cover (a [3, 4, 5] tensor through a sigmoid). Only fields over
    an input that some sliding window reads count (silero VAD's recurrent state [2, 1, 128] is
    not a signal with 128 positions)."""
    if any(registry.get(r.kind).token_mixing and r.rf for r in report.layers):
        return
    # inputs with spatial axes: those a sliding window reads (an audio signal, not a recurrent state)
    windowed = {f.input for r in report.layers if registry.get(r.kind).sliding_window for f in r.rf}
    if not windowed:
        return
    spatial = [(r, f) for r in report.layers if r.output_shape is not None and len(r.output_shape) >= 3
               and any(d > 1 for d in r.output_shape[2:]) and r.is_data
               and (f := next((f for f in r.rf if f.input in windowed), None)) is not None]
    if not spatial or spatial[-1][1].is_global:
        return
    last, field = spatial[-1]
    shares = [float(size) / n for size, n in zip(field.size, field.input_size) if n]
    if shares and min(shares) < opts.min_coverage:
        size = "x".join(str(int(s)) for s in field.size)
        image = "x".join(map(str, field.input_size))
        yield rule.finding(
            f"receptive field {size} covers {min(shares):.0%} of the {image} input (< {opts.min_coverage:.0%}); "
            f"add stride, dilation, depth or global context", last, details={"coverage": min(shares)})


def _fmt(x: Any) -> str:
    x = Fraction(x)
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


def check_unaligned_merge(rule: Rule, report: Report, opts: Any) -> Iterator[Finding]:
    """A merge whose output is unaligned while all of its inputs were aligned: the first
    place where branches with different effective stride or centre offset meet."""
    graph = report.graph
    if graph is None:
        return
    by_name = {r.name: r for r in report.layers}
    for rec in report.layers:
        if not rec.rf or rec.rf[0].aligned or rec.rf[0].is_global:
            continue
        branches: list[tuple[str, RFRecord | None]] = []
        for t in graph.layer(rec.name).inputs:
            producer = graph.producer.get(t)
            src = by_name.get(producer) if producer else None
            if src is not None and src.rf:
                branches.append((src.name, src.rf[0]))
            elif t in graph.inputs:
                branches.append((t, None))
        if any(f is not None and not f.aligned for _, f in branches):
            continue
        text = "; ".join(f"'{name}': {f.alignment_text()}" if f else f"'{name}': input" for name, f in branches)
        if _resampling_offsets(branches):
            yield rule.finding(
                f"{rec.op}: an upsampled branch's field shifts with output position (nearest/transposed "
                f"upsampling)", rec, severity="info",
                details={"branches": text, "resampling": True})
            continue
        yield rule.finding(
            f"{rec.op} merges branches with different stride or centre offset; adjust padding or crop so they "
            f"agree", rec, details={"branches": text})


def _resampling_offsets(branches: list[tuple[str, RFRecord | None]]) -> bool:
    """True when the branches share one stride and a branch's field varies with the output
    position (it went through nearest upsampling, which reads ``floor(u/f)``, or a strided
    transposed conv): the centres then differ on some positions whatever the padding, as in
    every U-Net, FPN or YOLO neck skip merge. That is reported as information, not as the
    padding defect the rule is about."""
    fields = [f for _, f in branches if f is not None]
    return (len(fields) == len(branches) and any(f.varies for f in fields)
            and all(f.stride == fields[0].stride for f in fields))


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


def check_budgets(rule: Rule, report: Report, opts: Any) -> Iterator[Finding]:
    t = report.totals
    # the one budget that needs a pass over every layer is measured only when it is set
    limits = {key: getattr(opts, key.replace("-", "_")) for key in BUDGET_KEYS}
    peak, peak_layer = peak_layer_bytes(report) if limits["peak-layer-memory"] is not None else (0, None)
    actual = {"params": t.params, "macs": t.macs, "flops": t.flops, "activation-memory": t.activation_bytes,
              "peak-layer-memory": peak}
    for key in BUDGET_KEYS:
        limit = limits[key]
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


def check_partial(rule: Rule, report: Report, opts: Any) -> Iterator[Finding]:
    if report.totals.partial:
        ops = sorted({u["op"] for u in report.totals.uncounted_ops})
        yield rule.finding(
            f"{len(report.totals.uncounted_ops)} op(s) could not be costed ({', '.join(ops)}): MACs and FLOPs "
            f"are lower bounds", details={"uncounted_ops": report.totals.uncounted_ops})


@dataclass(frozen=True)
class CoverageOptions:
    min_coverage: float = option(0.5, "share of the input size, on each axis, the last spatial field must cover")


BUDGET = "a number with K/M/G/T, or bytes with KB/MB/GB or KiB/MiB/GiB; unset: no budget"


@dataclass(frozen=True)
class BudgetOptions:
    """The keys of ``[tool.archlint.budgets]``."""

    params: str | float | None = option(None, f"parameters ({BUDGET})")
    macs: str | float | None = option(None, f"multiply-accumulates ({BUDGET})")
    flops: str | float | None = option(None, f"FLOPs, archlint's definition ({BUDGET})")
    activation_memory: str | float | None = option(None, f"all intermediate tensors, bytes ({BUDGET})")
    peak_layer_memory: str | float | None = option(None, f"largest input + output of one layer, bytes ({BUDGET})")

    def __post_init__(self) -> None:
        for key in BUDGET_KEYS:
            value = getattr(self, key.replace("-", "_"))
            if value is not None:
                parse_quantity(value, key)


AL201 = Rule(
    code="AL201", name="small-receptive-field", severity="warning",
    summary="receptive field at the last spatial layer covers less than a set share of the input",
    what="""
        Takes the last layer whose output is still a spatial map (rank >= 3, not 1x1) and compares its
        receptive field, computed over the whole graph, with the input size on each axis. Models with
        attention (which mixes all positions) are not checked.""",
    why="""
        A classifier or detector whose deepest spatial features see only a small part of the image cannot
        use context beyond it: units cannot see whole objects. Stride, dilation and depth grow the field;
        a global-context block (squeeze-and-excitation) makes it global.""",
    example="nn.Sequential(*[nn.Conv2d(64, 64, 3, padding=1) for _ in range(3)])   # field 7x7 on 224 px: 3%",
    instead="nn.Sequential(*[nn.Conv2d(64, 64, 3, stride=2, padding=1) for _ in range(3)])   # field 15x15, or "
            "dilation, depth, a global-context block",
    check=check_field_coverage, options=CoverageOptions,
    references=("Araujo, Norris & Sim, Computing Receptive Fields of Convolutional Neural Networks, "
                "Distill 2019",
                "Luo et al., Understanding the Effective Receptive Field in Deep CNNs, NeurIPS 2016"))

AL202 = Rule(
    code="AL202", name="unaligned-merge", severity="warning",
    summary="branches merged with different effective stride or centre offset",
    what="""
        Reports the first add or concat whose inputs were aligned but whose branches differ in effective
        stride S or centre offset -P + (r-1)/2.""",
    why="""
        At a merge the branches should look at the same place. Otherwise the merged feature at one position
        mixes input regions shifted against each other, usually from mismatched padding or a crop.
        google-research/receptive_field raises an error here; archlint reports the first unaligned merge.""",
    example="""
        self.a = nn.Conv2d(c, c, 3, padding=1); self.b = nn.Conv2d(c, c, 3)
        y = self.a(x) + F.pad(self.b(x), (0, 2, 0, 2))    # centres differ by one pixel""",
    instead="""
        self.a = nn.Conv2d(c, c, 3, padding=1); self.b = nn.Conv2d(c, c, 3, padding=1)
        y = self.a(x) + self.b(x)""",
    check=check_unaligned_merge,
    references=("Araujo, Norris & Sim, Computing Receptive Fields of Convolutional Neural Networks, "
                "Distill 2019 (alignment of receptive field centres)",))

AL301 = Rule(
    code="AL301", name="budget-exceeded", severity="error",
    summary="params, MACs, FLOPs or memory over the budgets set in the configuration",
    what="""
        Compares the model's totals with the budgets in [tool.archlint.budgets]: params, macs, flops,
        activation-memory (all intermediate tensors) and peak-layer-memory (the largest input + output of
        one layer).""",
    why="""
        Used as a pre-commit hook, this fails a commit that makes the model too big for its target device
        before anyone trains it. When the totals are partial (AL302), MACs and FLOPs are lower bounds and a
        budget check may pass when it should not.""",
    example="""
        [tool.archlint.budgets]
        params = "25M"
        macs = "4.5G"
        activation-memory = "200MB"
        """,
    instead="""
        [tool.archlint.budgets]
        params = "30M"    # raised on purpose, in review; or a smaller model
        """,
    check=check_budgets, options=BudgetOptions, lang="toml")

AL302 = Rule(
    code="AL302", name="partial-totals", severity="info",
    summary="the model has ops whose cost is unknown, so the totals are partial",
    what="""
        Fires when some op has no cost formula (a custom domain, an unsupported op): it is listed, and MACs
        and FLOPs are lower bounds.""",
    why="""
        archlint never counts an op it cannot cost as zero; a budget check over partial totals may pass when
        it should not.""",
    example="a node com.example.FancyNorm in an ONNX file",
    instead="an op archlint can cost, or a budget with headroom for the uncosted ops",
    check=check_partial, lang="")
