"""Invariants on random networks (tests/random_nets.py), each generated network checked for:
(a) PyTorch-path MACs == FlopCounterMode / 2 and params == the module's count;
(b) its ONNX export gives the same MACs, conv/linear shapes and receptive fields;
(c) every ONNX layer shape equals what onnxruntime produces;
(d) analytic receptive fields equal the gradient-span measurement (conv/pool/branch nets);
(e) the analysis is deterministic (the same JSON twice).

The suite runs a fixed-seed slice; ``ARCHLINT_EXAMPLES=2000 python -m pytest
tests/test_random_networks.py`` is the long run (recorded in benchmarks/README.md).
Shrunk failures found on the way are kept as explicit ``@example`` regressions.
"""

from __future__ import annotations

import io
import os
import warnings

import onnx
import pytest
from hypothesis import HealthCheck, example, given, settings

import archlint

torch = pytest.importorskip("torch")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from tests.helpers import gradient_span, runtime_shapes  # noqa: E402
from tests.random_nets import RF_KINDS, Spec, build, networks  # noqa: E402

ort = pytest.importorskip("onnxruntime")
EXAMPLES = int(os.environ.get("ARCHLINT_EXAMPLES", "20"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 50, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def export(model, shape) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(*shape),), buf, dynamo=False, opset_version=17)
    return buf.getvalue()


def dense(report):
    return sorted((r.kind, r.output_shape, r.macs) for r in report.layers
                  if r.kind in ("conv", "conv_transpose", "linear"))


def conv_fields(report):
    return sorted((r.output_shape, r.rf[0].short()) for r in report.layers if r.kind == "conv" and r.rf)


@SETTINGS
@given(networks())
@example(Spec(ndim=1, channels=1, size=7, head="none", blocks=[  # onnx's shape inference keeps a ceil_mode
    ("pool", "max", 2, 2, 1, True), ("head", "none", 1, 4)]))      # window starting in the padding; ORT drops it
@example(Spec(ndim=1, channels=1, size=7, head="none", blocks=[  # ... and the exporter declares the wrong output
    ("conv", 1, 1, 1, 1, 0, 1, 1, False), ("pool", "max", 2, 2, 1, True), ("pool", "max", 2, 1, 0, False),
    ("head", "none", 1, 3)]))
def test_random_network_invariants(spec):
    model = build(spec)
    shape = spec.input_shape
    counter = FlopCounterMode(display=False)
    with torch.nn.attention.sdpa_kernel(torch.nn.attention.SDPBackend.MATH), counter:
        model(torch.randn(*shape))
    report = archlint.analyze(model, input_shape=shape)
    # (a)
    assert report.totals.macs == counter.get_total_flops() // 2
    assert report.totals.params == sum(p.numel() for p in model.parameters())
    assert not report.totals.partial
    # (e)
    assert archlint.analyze(model, input_shape=shape).to_json() == report.to_json()
    # (b)
    try:
        data = export(model, shape)
    except torch.onnx.errors.OnnxExporterError:
        return  # the TorchScript exporter cannot export it (e.g. adaptive pooling with uneven windows)
    onnx_report = archlint.analyze(onnx.load_from_string(data))
    assert onnx_report.totals.macs == report.totals.macs
    assert dense(onnx_report) == dense(report)
    assert conv_fields(onnx_report) == conv_fields(report)
    # (c)
    actual = runtime_shapes(onnx.load_from_string(data), shape)
    for layer in onnx_report.graph.layers():
        for t in layer.outputs:
            if t in actual:
                assert onnx_report.graph.shape(t) == actual[t], (layer.name, t)


@SETTINGS
@given(networks(kinds=RF_KINDS, heads=False))
@example(Spec(ndim=1, channels=1, size=7, head="none", blocks=[  # found by the long run: field past the border
    ("conv", 1, 1, 2, 2, 0, 1, 1, False), ("bnact", 1, "relu"), ("pool", "max", 3, 2, 1, False),
    ("head", "none", 1, 2)]))
@example(Spec(ndim=1, channels=1, size=6, head="none", blocks=[  # the centre unit sees only padding
    ("conv", 1, 1, 5, 1, 0, 1, 1, False), ("pool", "max", 2, 1, 0, False), ("conv", 1, 1, 4, 1, 3, 2, 1, False),
    ("head", "none", 1, 1)]))
@example(Spec(ndim=1, channels=1, size=6, head="none", blocks=[  # concat: the widest branch, all channels
    ("bnact", 1, "relu"), ("pool", "max", 2, 1, 0, False), ("concat", 1, 1, 1), ("head", "none", 2, 5)]))
def test_random_network_fields_match_gradient_span(spec):
    model = build(spec)
    shape = spec.input_shape
    report = archlint.analyze(model, input_shape=shape)
    if not report.layers:
        return  # an empty network
    rec = report.layers[-1].rf[0]
    assert not rec.is_global
    try:
        centre, span = gradient_span(model, shape)
    except RuntimeError:
        return  # average pooling (the measurement's stand-in for max) rejects inputs below its kernel
    if not span:
        return  # the unit sees only padding: nothing to measure
    for axis, (lo, hi) in enumerate(span):
        start = centre[axis] * rec.stride[axis] - rec.padding[axis]
        end = start + rec.size[axis] - 1
        if start >= 0 and end <= spec.size - 1:
            assert (start, end) == (lo, hi), (axis, rec, span)
        else:
            # the field reaches past the image: padding and ignored borders of intermediate layers
            # then truncate what the unit really sees, so the measurement is inside the field
            assert max(start, 0) <= lo and hi <= min(end, spec.size - 1), (axis, rec, span)
