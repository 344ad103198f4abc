"""AL104-AL108: geometry and parameter smells of single layers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from archlint.analyses import rewrite
from archlint.ops import registry
from archlint.ops.conv import resolve_pads
from archlint.ops.registry import OpCall
from archlint.ops.rf import effective_kernel
from archlint.report import Report
from archlint.rules.base import Finding, Rule, Saving, option
from archlint.rules.views import conv_views


def check_ignored_border(rule: Rule, report: Report, opts: Any) -> Iterator[Finding]:
    """Per axis, ``(in + pb + pe - k_eff) mod s`` padded rows after the last window are never
    read; only rows beyond the end padding are real input (the output-size formula
    ``floor((in + pb + pe - k_eff) / s) + 1``: PyTorch Conv2d docs, ONNX Conv spec)."""
    graph = report.graph
    if graph is None:
        return
    for rec in report.layers:
        if not registry.get(rec.kind).sliding_window or rec.output_shape is None:
            continue
        layer = graph.layer(rec.name)
        attrs = layer.attrs
        x = graph.shape(layer.inputs[0])
        if x is None or attrs.get("ceil_mode") or not attrs.get("kernel"):
            continue
        kernel = attrs["kernel"]
        n = len(kernel)
        stride = attrs.get("stride") or [1] * n
        if all(s == 1 for s in stride):
            continue  # (anything) mod 1 = 0: a stride-1 window reads every row
        dilation = attrs.get("dilation") or [1] * n
        begins, ends = resolve_pads(OpCall(attrs, [x], [rec.output_shape]))
        ignored = {}
        for axis in range(n):
            k_eff = effective_kernel(kernel[axis], dilation[axis])
            if k_eff < stride[axis]:
                continue  # windows leave gaps everywhere: AL105's subject, not a border effect
            size = x[2 + axis]
            unread = (size + begins[axis] + ends[axis] - k_eff) % stride[axis]
            if unread - ends[axis] > 0:
                ignored[axis] = (unread - ends[axis], size, begins[axis], ends[axis], k_eff, stride[axis])
        if ignored:
            names = {n - 2: "rows", n - 1: "columns"}
            parts = [f"{names.get(axis, f'axis-{axis} slices')} ({real})" for axis, (real, *_) in ignored.items()]
            arithmetic = [f"in {size} + pads {pb}+{pe} - k_eff {k} = {size + pb + pe - k}, mod stride {s} = {real + pe}"
                          for axis, (real, size, pb, pe, k, s) in ignored.items()]
            yield rule.finding(
                f"{rec.op}: last input {' and '.join(parts)} never read by any window; pad so that "
                f"(in + pads - k_eff) % stride == 0", rec,
                details={"ignored": {str(a): v[0] for a, v in ignored.items()}, "arithmetic": arithmetic})


def check_strided_pointwise(rule: Rule, report: Report, opts: Any) -> Iterator[Finding]:
    for v in conv_views(report):
        if max(v.kernel) != 1 or max(v.stride) <= 1:
            continue
        kept = 1
        for s in v.stride:
            kept *= s
        stride = "x".join(map(str, v.stride))
        yield rule.finding(
            f"1x1 conv with stride {stride} discards {kept - 1}/{kept} of its input; use AvgPool (stride {stride}) "
            f"+ 1x1 conv stride 1 (ResNet-D)", v, fix=_fix(report, lambda g, name=v.name: rewrite.pool_then_pointwise(
                g, g.layer(name))),
            details={"discarded_share": (kept - 1) / kept})


def _fix(report: Report, build: Any) -> rewrite.Fix | None:
    """The finding's Fix costed on the report's profile and dtype, or None when it does not fit."""
    graph = report.graph
    if graph is None:
        return None
    try:
        fix: rewrite.Fix = build(graph)
        return fix.compute_cost(graph, report.profile, report.model.dtype or "fp32")
    except rewrite.NotApplicable:
        return None


def check_bias_before_bn(rule: Rule, report: Report, opts: Any) -> Iterator[Finding]:
    graph = report.graph
    if graph is None:
        return
    for rec in report.layers:
        slot = registry.get(rec.kind).slot("bias")
        if slot is None:
            continue
        layer = graph.layer(rec.name)
        if len(layer.inputs) <= slot or not layer.inputs[slot]:
            continue
        bias_shape = graph.shape(layer.inputs[slot])
        consumers = graph.successors(rec.name)
        if len(consumers) != 1:
            continue
        nxt = graph.layer(consumers[0])
        if not registry.get(nxt.kind).absorbs_bias(nxt.attrs):
            continue
        wasted = bias_shape[0] if bias_shape else 0
        params_b = rec.params
        fix = _fix(report, lambda g, la=layer, bn=nxt: rewrite.drop_bias_into_batchnorm(g, la, bn))
        saving = Saving((params_b, params_b - wasted), (rec.macs or 0, rec.macs or 0), (0, 0))
        if fix is not None and fix.before is not None and fix.after is not None:
            # the fix's cost covers the layer and its BatchNorm: the saving is its difference on this layer
            b, a = fix.before, fix.after
            saving = Saving((params_b, params_b - (b.params - a.params)), (rec.macs or 0, rec.macs or 0),
                            (rec.bytes, rec.bytes - (b.bytes - a.bytes)),
                            (rec.est_time, rec.est_time - (b.est_time - a.est_time)))
        yield rule.finding(
            f"{rec.op} bias ({wasted} params) is cancelled by the {nxt.op} that follows; use bias=False", rec,
            saving=saving, fix=fix)


def check_channel_alignment(rule: Rule, report: Report, opts: Any) -> Iterator[Finding]:
    graph = report.graph
    if graph is None:
        return
    m = opts.multiple
    outputs = set(graph.outputs)
    inputs = set(graph.inputs)
    for rec in report.layers:
        entry = registry.get(rec.kind)
        axis = entry.channel_axis
        if axis is None or rec.macs is None:
            continue
        layer = graph.layer(rec.name)
        x, w = graph.shape(layer.inputs[0]), graph.shape(layer.inputs[1]) if len(layer.inputs) > 1 else None
        if x is None or w is None or rec.output_shape is None or len(x) < 2 or len(rec.output_shape) < 2:
            continue
        if entry.conv_class(layer.attrs, x) == "depthwise":
            continue  # depthwise: no tensor-core GEMM to align
        cin, cout = x[axis], rec.output_shape[axis]
        bad = []
        if cin % m and not (layer.inputs[0] in inputs and cin <= 4):
            bad.append(f"{cin} input")
        if cout % m and not (opts.skip_output_layers and set(layer.outputs) & outputs):
            bad.append(f"{cout} output")
        if bad:
            yield rule.finding(
                f"{' and '.join(bad)} channels not a multiple of {m} (tensor-core alignment); round to a multiple "
                f"of {m}", rec,
                details={"in_channels": cin, "out_channels": cout, "multiple": m})


def check_gridding(rule: Rule, report: Report, opts: Any) -> Iterator[Finding]:
    """A dilated conv whose nearest conv ancestors (through pointwise layers) share its
    dilation rate > 1: the stack samples a sparse grid (Wang et al. 2018, hybrid dilated conv)."""
    graph = report.graph
    if graph is None:
        return
    for rec in report.layers:
        if not registry.get(rec.kind).is_conv:
            continue
        dilation = tuple(graph.layer(rec.name).attrs.get("dilation") or ())
        if not dilation or max(dilation) <= 1:
            continue
        stack, seen, previous = graph.predecessors(rec.name), set(), []
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            seen.add(name)
            layer = graph.layer(name)
            entry = registry.get(layer.kind)
            if entry.is_conv:
                previous.append(layer)
            elif entry.spatially_pointwise:
                stack.extend(graph.predecessors(name))
        same = [p for p in previous if tuple(p.attrs.get("dilation") or ()) == dilation]
        if same:
            rate = "x".join(map(str, dilation))
            yield rule.finding(
                f"dilation {rate} after a conv of the same rate samples every {max(dilation)}-th position "
                f"(gridding); use rates without a common factor (1, 2, 5)", rec, details={"previous": same[0].name})


@dataclass(frozen=True)
class AlignmentOptions:
    multiple: int = option(8, "channel multiple required: 8 (fp16 tensor cores), 16 (int8) or 32")
    skip_output_layers: bool = option(True, "exempt layers that produce a model output (the classifier)")


AL104 = Rule(
    code="AL104", name="ignored-border", severity="warning",
    summary="strided window whose last input rows or columns are never read",
    what="""
        Finds strided convolutions and pools for which (in + pad_begin + pad_end - k_eff) mod stride != 0
        leaves the last rows or columns of real input (not end padding) outside every window, where
        k_eff = d*(k-1)+1.""",
    why="""
        The output size is floor((in + pads - k_eff) / stride) + 1, so the remainder of that division is
        never covered by a window: features at the right or bottom border are silently ignored. Rows that are
        only end padding do not matter, and the rule does not fire for them.""",
    example="nn.Conv2d(3, 16, 3, stride=2)    # on 224 px: (224 - 3) mod 2 = 1, the last column is never read",
    instead="nn.Conv2d(3, 16, 3, stride=2, padding=1)   # (224 + 2 - 3) mod 2 = 1, but that column is padding",
    check=check_ignored_border,
    references=("Dumoulin & Visin, A guide to convolution arithmetic for deep learning, 2016 (arXiv:1603.07285), "
                "relationship 5", "ONNX operator spec, Conv and MaxPool (output shape)"))

AL105 = Rule(
    code="AL105", name="strided-pointwise", severity="info",
    summary="strided 1x1 conv that discards (s^2-1)/s^2 of its input",
    what="""
        Finds 1x1 convolutions with stride s > 1, as in ResNet's original downsampling shortcut.""",
    why="""
        A 1x1 convolution with stride s reads one input position in s^2 (in 2-D) and throws the rest away.
        Average-pooling with stride s first and then applying the 1x1 conv with stride 1 costs the same MACs,
        and every input position contributes (ResNet-D).""",
    example="nn.Conv2d(256, 512, 1, stride=2)",
    instead="nn.AvgPool2d(2, 2), nn.Conv2d(256, 512, 1)",
    check=check_strided_pointwise,
    references=("He et al., Bag of Tricks for Image Classification with Convolutional Neural Networks "
                "(ResNet-D), CVPR 2019",))

AL106 = Rule(
    code="AL106", name="bias-before-batchnorm", severity="warning",
    summary="conv or linear bias directly followed by BatchNorm (redundant parameters)",
    what="""
        Finds convolutions and linear layers with a bias whose only consumer is a normalisation that
        subtracts the per-channel mean (BatchNorm).""",
    why="""
        BatchNorm subtracts the per-channel mean, so a bias added just before it is cancelled and its
        parameters are wasted (they still cost memory and an add).""",
    example="nn.Conv2d(64, 64, 3, padding=1), nn.BatchNorm2d(64)               # 64 useless parameters",
    instead="nn.Conv2d(64, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64)",
    check=check_bias_before_bn,
    references=("Ioffe & Szegedy, Batch Normalization, ICML 2015, section 3.2",))

AL107 = Rule(
    code="AL107", name="channel-alignment", severity="info",
    summary="conv or linear channel count not a multiple of 8 (tensor-core alignment)",
    what="""
        Checks the input and output channels of convolutions (except depthwise) and linear layers against a
        multiple. The image input's channels (<= 4) and, by default, layers producing a model output (the
        classifier) are exempt.""",
    why="""
        GEMM and convolution kernels on tensor cores (and most vectorised CPU kernels) work on channel blocks
        of 8 (fp16), 16 (int8) or more; other counts are padded or take slower paths.""",
    example="nn.Conv2d(64, 100, 3)   # 100 output channels",
    instead="nn.Conv2d(64, 96, 3)    # or 104",
    check=check_channel_alignment, options=AlignmentOptions,
    references=("NVIDIA, Deep Learning Performance Guide: Convolutional Layers, channels in and out "
                "(tensor core requirements)",))

AL108 = Rule(
    code="AL108", name="dilation-gridding", severity="warning",
    summary="consecutive dilated convs sharing a dilation rate > 1 (gridding)",
    what="""
        Finds a dilated convolution whose nearest convolution ancestors (through spatially pointwise layers)
        have the same dilation rate r > 1.""",
    why="""
        Stacking convolutions with the same dilation rate r > 1 makes every unit depend only on inputs on a
        grid of spacing r: neighbouring pixels never interact. Rates without a common factor (hybrid dilated
        convolution, e.g. 1, 2, 5) cover the field without holes.""",
    example="nn.Conv2d(64, 64, 3, padding=2, dilation=2), nn.Conv2d(64, 64, 3, padding=2, dilation=2)",
    instead="nn.Conv2d(64, 64, 3, padding=1, dilation=1), nn.Conv2d(64, 64, 3, padding=2, dilation=2)",
    check=check_gridding,
    references=("Wang et al., Understanding Convolution for Semantic Segmentation, WACV 2018",))
