"""AL1xx substitution rules: a cheaper layer with the same output shape and receptive field.

Each finding carries its :class:`~archlint.analyses.rewrite.Fix` (the replacement layers'
exact kinds, attributes and shapes) and the saving is that fix's cost before and after
(params, MACs, memory traffic, estimated time: the registry formulas and traffic model run
over the replacement layers), with the caveat that MACs are not latency.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from archlint.analyses import rewrite
from archlint.analyses.rewrite import Fix, NotApplicable
from archlint.ir import Layer, ModelGraph
from archlint.report import Report
from archlint.rules.base import Finding, Rule, Saving, option
from archlint.rules.views import conv_views, human, human_time


def _judge(rule: Rule, report: Report, opts: Any, macs: tuple[int, int],
           time: tuple[float, float]) -> tuple[str | None, str, bool]:
    """Severity and message prefix from the estimated time: dropped (None) when the device
    would not get faster; downgraded to info with the reason when the time saving is below
    ``min-time-saving`` although MACs drop."""
    before, after = time
    profile = report.model.profile
    if after >= before:
        return None, "", False
    saving = 1 - after / before
    if saving < opts.min_time_saving:
        return "info", f"memory-bound on {profile}: MACs {Saving.pct(*macs)}, est. time {Saving.pct(*time)}: ", True
    return rule.severity, "", False


def _message(prefix: str, what: str, macs: tuple[int, int], time: tuple[float, float]) -> str:
    """One line: what to do, then the saving and the estimated time before -> after (or, when
    downgraded, the reason first)."""
    if prefix:
        return f"{prefix}{what}"
    return (f"{what}: MACs {Saving.pct(*macs)} ({human(macs[0])} -> {human(macs[1])}), "
            f"est. {human_time(time[0])} -> {human_time(time[1])}")


def _estimate(report: Report) -> dict[str, Any]:
    """Where the time estimate comes from, for a finding's details."""
    return {"profile": report.model.profile, "dtype": report.model.dtype}


DEPTHWISE_CAVEAT = ("depthwise convs do about K^2/2 multiply-adds per element moved and are memory-bound, so the "
                    "latency saving is smaller than the MAC saving")
GROUPED_CAVEAT = ("activation traffic does not shrink with G (ShuffleNet V2, guideline G2: a 1x1 conv with G=8 ran "
                  "over 2x slower than G=1 at equal FLOPs), and groups need a channel shuffle or mixing layer to "
                  "exchange information")


def costed_fix(report: Report, build: Callable[[ModelGraph, Layer], Fix], name: str) -> Fix | None:
    """The layer's :class:`Fix`, costed by the registry formulas and traffic model on the
    report's profile and dtype; None when the layer does not fit the change."""
    graph = report.graph
    if graph is None:
        return None
    try:
        return build(graph, graph.layer(name)).compute_cost(graph, report.profile, report.model.dtype or "fp32")
    except NotApplicable:
        return None


def _saving(fix: Fix) -> Saving:
    """A finding's saving is its fix's cost before and after (one description of a change)."""
    b, a = fix.before, fix.after
    assert b is not None and a is not None
    return Saving((b.params, a.params), (b.macs, a.macs), (b.bytes, a.bytes), (b.est_time, a.est_time))


def check_depthwise_separable(rule: Rule, report: Report, opts: Any) -> Iterator[Finding]:
    for v in conv_views(report):
        if v.groups != 1 or max(v.kernel) <= 1 or v.ci < opts.min_channels or v.co < opts.min_channels:
            continue
        fix = costed_fix(report, rewrite.depthwise_separable, v.name)
        if fix is None:
            continue
        saving = _saving(fix)
        macs, time = saving.macs, saving.time
        assert time is not None
        if macs[0] == 0 or 1 - macs[1] / macs[0] < opts.min_reduction:
            continue
        severity, prefix, downgraded = _judge(rule, report, opts, macs, time)
        if severity is None:
            continue
        ratio = 1 / v.co + 1 / v.k_area
        k = v.kernel_text()
        message = _message(prefix, f"{k} conv {v.ci}->{v.co} -> depthwise {k} + pointwise 1x1", macs, time)
        yield rule.finding(message, v, severity=severity, saving=saving, fix=fix,
                           details={"ratio": ratio, "downgraded": downgraded, "caveat": DEPTHWISE_CAVEAT,
                                    **_estimate(report)})


def grouped_fixes(report: Report, name: str, counts: list[int]) -> list[Fix]:
    """For each G in ``counts`` dividing both channel counts, the grouped conv's costed Fix."""
    return [fix for g in counts if (fix := costed_fix(report, functools.partial(rewrite.grouped, groups=g), name))]


def check_grouped(rule: Rule, report: Report, opts: Any) -> Iterator[Finding]:
    for v in conv_views(report):
        if v.groups != 1 or max(v.kernel) <= 1 or min(v.ci, v.co) < opts.min_channels:
            continue
        fixes = grouped_fixes(report, v.name, opts.group_counts)
        if not fixes:
            continue
        best = min(fixes, key=lambda f: f.after.est_time if f.after else float("inf"))
        saving = _saving(best)
        assert saving.time is not None
        severity, prefix, downgraded = _judge(rule, report, opts, saving.macs, saving.time)
        if severity is None:
            continue
        groups = best.details["groups"]
        message = _message(prefix, f"{v.kernel_text()} conv {v.ci}->{v.co} -> grouped conv, G={groups}",
                           saving.macs, saving.time)
        rows = [{"groups": f.details["groups"], **(f.after.to_dict() if f.after else {})} for f in fixes]
        yield rule.finding(message, v, severity=severity, saving=saving, fix=best,
                           details={"recommended_groups": groups, "options": rows, "downgraded": downgraded,
                                    "caveat": GROUPED_CAVEAT, **_estimate(report)})


def check_large_kernel(rule: Rule, report: Report, opts: Any) -> Iterator[Finding]:
    """K x K (odd K >= 5, stride 1, no dilation) -> (K-1)/2 stacked 3x3 convs: field
    ``1 + 2 * (K-1)/2 = K`` unchanged (the Fix, :func:`archlint.analyses.rewrite.stacked_3x3`)."""
    for v in conv_views(report):
        k = v.kernel
        if len(set(k)) != 1 or k[0] < opts.min_kernel or k[0] % 2 == 0 or any(s != 1 for s in v.stride) \
                or any(d != 1 for d in v.dilation):
            continue
        fix = costed_fix(report, rewrite.stacked_3x3, v.name)
        if fix is None:
            continue
        saving = _saving(fix)
        assert saving.time is not None
        if saving.macs[1] >= saving.macs[0]:
            continue
        severity, prefix, downgraded = _judge(rule, report, opts, saving.macs, saving.time)
        if severity is None:
            continue
        n = fix.details["stacked_3x3"]
        message = _message(prefix, f"{v.kernel_text()} conv {v.ci}->{v.co} -> {n} stacked 3x3 convs (same field)",
                           saving.macs, saving.time)
        yield rule.finding(message, v, severity=severity, saving=saving, fix=fix,
                           details={"stacked_3x3": n, "downgraded": downgraded, **_estimate(report)})


MIN_TIME_SAVING = "share of estimated time a replacement must save to keep the rule's severity (below it: info)"


@dataclass(frozen=True)
class DepthwiseOptions:
    min_reduction: float = option(0.5, "share of MACs the replacement must save for the rule to fire")
    min_channels: int = option(16, "fewest input and output channels of a conv the rule looks at")
    min_time_saving: float = option(0.2, MIN_TIME_SAVING)


@dataclass(frozen=True)
class GroupedOptions:
    min_channels: int = option(64, "fewest input and output channels of a conv the rule looks at")
    group_counts: list[int] = option([2, 4, 8, 16, 32], "group counts G tried (each must divide both channel counts)")
    min_time_saving: float = option(0.2, MIN_TIME_SAVING)


@dataclass(frozen=True)
class LargeKernelOptions:
    min_kernel: int = option(5, "smallest odd kernel size the rule looks at")
    min_time_saving: float = option(0.2, MIN_TIME_SAVING)


AL101 = Rule(
    code="AL101", name="depthwise-separable-candidate", severity="info",
    summary="dense KxK conv that a depthwise KxK + pointwise 1x1 pair would replace for a fraction of the MACs",
    what="""
        Finds dense KxK convolutions (groups = 1, K > 1) that a depthwise KxK convolution (groups = Ci)
        followed by a pointwise 1x1 convolution would replace with the same output shape and receptive field,
        and gives the replacement's exact shapes with the change in MACs, parameters, memory traffic and
        estimated time on the report's device profile.""",
    why="""
        A dense KxK convolution from Ci to Co channels costs Ci*Co*K^2 multiply-adds per output position;
        the depthwise-separable pair costs Ci*K^2 + Ci*Co, a ratio of 1/Co + 1/K^2 (about 1/9 for 3x3
        kernels). Caveat: a depthwise conv does only about K^2/2 multiply-adds per element it moves, so it
        is memory-bound on most hardware and the latency saving is much smaller than the MAC saving; the
        intermediate map adds traffic too. The rule is info unless the estimated time drops by at least
        min-time-saving.""",
    example="nn.Conv2d(64, 128, 3, padding=1)",
    instead="nn.Conv2d(64, 64, 3, padding=1, groups=64), nn.Conv2d(64, 128, 1)   # MACs x (1/128 + 1/9)",
    check=check_depthwise_separable, options=DepthwiseOptions,
    references=("Howard et al., MobileNets: Efficient Convolutional Neural Networks for Mobile Vision "
                "Applications, 2017 (arXiv:1704.04861)",
                "Ma et al., ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design, ECCV 2018"))

AL102 = Rule(
    code="AL102", name="grouped-conv-candidate", severity="info",
    summary="dense conv with many channels where a grouped conv would divide MACs and weights by G",
    what="""
        Finds dense KxK convolutions with many input and output channels and, for each group count G that
        divides both channel counts, gives the grouped conv's MACs, weights, memory traffic and estimated
        time; the recommended G is the one with the fastest estimate.""",
    why="""
        With G groups each output channel sees Ci/G inputs, so MACs and weights drop to 1/G (ResNeXt).
        Caveat (ShuffleNet V2, guideline G2): activation traffic hw(c1 + c2) does not shrink with G, so a
        grouped conv is more memory-bound; a 1x1 conv with G=8 ran over 2x slower than G=1 at equal FLOPs on
        a GPU. Groups also stop information flowing between channel groups unless a shuffle or a mixing layer
        follows.""",
    example="nn.Conv2d(256, 256, 3, padding=1)            # 589,824 weights",
    instead="nn.Conv2d(256, 256, 3, padding=1, groups=8)  # 73,728 weights",
    check=check_grouped, options=GroupedOptions,
    references=("Xie et al., Aggregated Residual Transformations for Deep Neural Networks (ResNeXt), CVPR 2017",
                "Ma et al., ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design, ECCV 2018"))

AL103 = Rule(
    code="AL103", name="large-kernel", severity="info",
    summary="KxK conv (K >= 5) that stacked 3x3 convs would replace with the same receptive field",
    what="""
        Finds stride-1, undilated KxK convolutions with odd K >= min-kernel and gives the cost of the
        (K-1)/2 stacked 3x3 convolutions that have the same receptive field: params, MACs and memory traffic
        (the intermediate maps are extra traffic) and estimated time.""",
    why="""
        Stacked 3x3 convolutions see the same K x K field with fewer parameters and MACs when the channel
        counts are similar, and add nonlinearities between them.""",
    example="nn.Conv2d(64, 64, 5, padding=2)                                   # 25 * 64 * 64 weights",
    instead="nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1)  # 18 * 64 * 64",
    check=check_large_kernel, options=LargeKernelOptions,
    references=("Simonyan & Zisserman, Very Deep Convolutional Networks for Large-Scale Image Recognition "
                "(VGG), ICLR 2015",))
