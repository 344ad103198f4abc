"""AL1xx substitution rules: a cheaper layer with the same output shape and receptive field.

Each finding names the replacement's exact shapes and carries the saving (params, MACs,
memory traffic before and after), with the caveat that MACs are not latency.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from archlint.report import Report
from archlint.rules.base import Finding, Rule, Saving, option
from archlint.rules.views import ConvView, conv_views, est_time, human, human_time


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


def _depthwise_separable(v: ConvView) -> tuple[int, int, int, list[tuple[float, float, str, int]]]:
    """Depthwise KxK (Ci, stride s) + pointwise 1x1 Ci->Co on the output grid:
    MACs ``P*Ci*K^2 + P*Ci*Co`` for ``P`` output positions, params ``Ci*K^2 + Ci*Co (+Co)``,
    traffic with the ``P*Ci`` intermediate written and read once."""
    mid = v.out_positions * v.ci
    dw_macs = mid * v.k_area
    pw_macs = v.out_positions * v.ci * v.co
    bias = v.co if v.has_bias else 0
    params = v.ci * v.k_area + v.ci * v.co + bias
    traffic = v.traffic(params, intermediates=mid)
    e = v.elem_bytes
    parts: list[tuple[float, float, str, int]] = [
        (2 * dw_macs, (v.in_elements + mid + v.ci * v.k_area) * e, "depthwise", 1),
        (2 * pw_macs + (v.out_elements if bias else 0), (mid + v.out_elements + v.ci * v.co + bias) * e, "dense", v.ci)]
    return params, dw_macs + pw_macs, traffic, parts


def check_depthwise_separable(rule: Rule, report: Report, opts: Any) -> Iterator[Finding]:
    for v in conv_views(report):
        if v.groups != 1 or max(v.kernel) <= 1 or v.ci < opts.min_channels or v.co < opts.min_channels:
            continue
        params_b, macs_b = v.record.params, v.record.macs or 0
        params_a, macs_a, bytes_a, parts = _depthwise_separable(v)
        if macs_b == 0 or 1 - macs_a / macs_b < opts.min_reduction:
            continue
        bytes_b = v.traffic(params_b + v.record.shared_params)
        time = (v.record.est_time, est_time(report, parts))
        severity, prefix, downgraded = _judge(rule, report, opts, (macs_b, macs_a), time)
        if severity is None:
            continue
        ratio = 1 / v.co + 1 / v.k_area
        k = v.kernel_text()
        message = _message(prefix, f"{k} conv {v.ci}->{v.co} -> depthwise {k} + pointwise 1x1", (macs_b, macs_a), time)
        yield rule.finding(message, v, severity=severity,
                           saving=Saving((params_b, params_a), (macs_b, macs_a), (bytes_b, bytes_a), time),
                           details={"replacement": [
                               {"op": "conv", "kernel": list(v.kernel), "in_channels": v.ci, "out_channels": v.ci,
                                "groups": v.ci, "stride": list(v.stride)},
                               {"op": "conv", "kernel": [1] * len(v.kernel), "in_channels": v.ci,
                                "out_channels": v.co, "groups": 1, "stride": [1] * len(v.kernel)}],
                               "ratio": ratio, "downgraded": downgraded, "caveat": DEPTHWISE_CAVEAT,
                               "traffic": {"before": bytes_b, "after": bytes_a}, **_estimate(report)})


def grouped_options(v: ConvView, report: Report, counts: list[int]) -> list[dict[str, Any]]:
    """For each G dividing both channel counts: params, MACs, bytes and estimated time."""
    weights = v.co * v.ci * v.k_area
    bias = v.co if v.has_bias else 0
    macs_b = v.record.macs or 0
    rows = []
    for g in counts:
        if v.ci % g or v.co % g:
            continue
        params = weights // g + bias
        nbytes = v.traffic(params)
        flops = 2 * (macs_b // g) + (v.out_elements if bias else 0)
        rows.append({"groups": g, "params": params, "macs": macs_b // g, "bytes": nbytes,
                     "est_time_s": est_time(report, [(flops, nbytes, "grouped", v.ci // g)])})
    return rows


def check_grouped(rule: Rule, report: Report, opts: Any) -> Iterator[Finding]:
    for v in conv_views(report):
        if v.groups != 1 or max(v.kernel) <= 1 or min(v.ci, v.co) < opts.min_channels:
            continue
        rows = grouped_options(v, report, opts.group_counts)
        if not rows:
            continue
        params_b, macs_b = v.record.params, v.record.macs or 0
        bytes_b = v.traffic(params_b + v.record.shared_params)
        best = min(rows, key=lambda r: r["est_time_s"])
        time = (v.record.est_time, best["est_time_s"])
        severity, prefix, downgraded = _judge(rule, report, opts, (macs_b, best["macs"]), time)
        if severity is None:
            continue
        message = _message(prefix, f"{v.kernel_text()} conv {v.ci}->{v.co} -> grouped conv, G={best['groups']}",
                           (macs_b, best["macs"]), time)
        yield rule.finding(message, v, severity=severity,
                           saving=Saving((params_b, best["params"]), (macs_b, best["macs"]), (bytes_b, best["bytes"]),
                                         time), details={"recommended_groups": best["groups"], "options": rows,
                                                   "downgraded": downgraded, "caveat": GROUPED_CAVEAT,
                                                   **_estimate(report)})


def check_large_kernel(rule: Rule, report: Report, opts: Any) -> Iterator[Finding]:
    """K x K (odd K >= 5, stride 1, no dilation) -> (K-1)/2 stacked 3x3 convs: field
    ``1 + 2 * (K-1)/2 = K`` unchanged. First 3x3 Ci->Co, the rest Co->Co, same groups."""
    for v in conv_views(report):
        k = v.kernel
        if len(set(k)) != 1 or k[0] < opts.min_kernel or k[0] % 2 == 0 or any(s != 1 for s in v.stride) \
                or any(d != 1 for d in v.dilation):
            continue
        n = (k[0] - 1) // 2
        nd = len(k)
        tap = 3 ** nd
        g = v.groups
        first, rest = tap * v.ci * v.co // g, tap * v.co * v.co // g
        params_a = first + (n - 1) * rest + (n * v.co if v.has_bias else 0)
        macs_a = v.out_positions * (first + (n - 1) * rest)
        params_b, macs_b = v.record.params, v.record.macs or 0
        if macs_a >= macs_b:
            continue
        bytes_b = v.traffic(params_b)
        bytes_a = v.traffic(params_a, intermediates=(n - 1) * v.out_elements)
        e = v.elem_bytes
        cls = v.conv_class
        parts = [(2 * v.out_positions * first, (v.in_elements + v.out_elements + first) * e, cls, v.ci // g)] + \
            [(2 * v.out_positions * rest, (2 * v.out_elements + rest) * e, cls, v.co // g)] * (n - 1)
        time = (v.record.est_time, est_time(report, parts))
        severity, prefix, downgraded = _judge(rule, report, opts, (macs_b, macs_a), time)
        if severity is None:
            continue
        message = _message(prefix, f"{v.kernel_text()} conv {v.ci}->{v.co} -> {n} stacked 3x3 convs (same field)",
                           (macs_b, macs_a), time)
        yield rule.finding(message, v, severity=severity,
                           saving=Saving((params_b, params_a), (macs_b, macs_a), (bytes_b, bytes_a), time),
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
