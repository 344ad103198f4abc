"""The Fix's after-cost comes from the registry formulas and traffic model run over the
replacement layers; each constructor is checked against a hand derivation, and the rules'
findings carry that same Fix and take their saving from it."""

from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import archlint
from archlint import profiles
from archlint.analyses import rewrite
from archlint.analyses.roofline import roofline_time
from archlint.config import Config
from archlint.rules.substitution import AL103, LargeKernelOptions, check_large_kernel
from archlint.rules.views import conv_views


def est_time(report, parts):  # type: ignore[no-untyped-def]
    """Roofline time of layers given as ``(flops, bytes, class, input channels per group)``,
    each summed from the roofline formula (an independent account of the traffic model)."""
    profile = report.profile or profiles.load(None)
    return sum(roofline_time(f, b, profile, "fp32", c, g) for f, b, c, g in parts)


def conv_model(ci: int = 32, co: int = 64, k: int = 3, stride: int = 1, size: int = 16, bias: bool = True,
               bn: bool = False) -> onnx.ModelProto:
    """x [1, ci, size, size] -> Conv(k, stride, pad k//2) [-> BatchNormalization]."""
    import numpy as np
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((co, ci, k, k)).astype("float32"), "w")]
    inputs = ["x", "w"]
    if bias:
        inits.append(numpy_helper.from_array(rng.standard_normal(co).astype("float32"), "b"))
        inputs.append("b")
    p = k // 2
    nodes = [helper.make_node("Conv", inputs, ["y"], name="conv", kernel_shape=[k, k], strides=[stride, stride],
                              pads=[p, p, p, p])]
    out = "y"
    side = (size + 2 * p - k) // stride + 1
    if bn:
        for name, value in (("scale", rng.uniform(0.5, 2, co)), ("beta", rng.standard_normal(co)),
                            ("mean", rng.standard_normal(co)), ("var", rng.uniform(0.5, 2, co))):
            inits.append(numpy_helper.from_array(value.astype("float32"), name))
        nodes.append(helper.make_node("BatchNormalization", ["y", "scale", "beta", "mean", "var"], ["z"], name="bn"))
        out = "z"
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, ci, size, size])],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, co, side, side])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _setup(**kw):  # type: ignore[no-untyped-def]
    report = archlint.analyze(conv_model(**kw), lint=False)
    return report, report.graph, report.graph.layer("conv")


def test_depthwise_separable_cost():
    """Conv 32->64 3x3, bias, on 16x16 (P = 256 positions): params 32*9 + 32*64 + 64 = 2,400;
    MACs 256*(32*9 + 32*64) = 598,016; FLOPs 2*MACs + 64*256 (bias) = 1,212,416. Traffic (fp32):
    depthwise reads x (8,192) and 288 weights and writes the 8,192-element map; pointwise reads
    it, 2,048 + 64 weights and writes y (16,384): 43,360 elements = 173,440 bytes. Time: the
    roofline of each layer (depthwise class, then dense). The AL101 finding carries this Fix."""
    report, graph, layer = _setup()
    fix = rewrite.depthwise_separable(graph, layer).compute_cost(graph, report.profile, "fp32")
    assert fix.after == rewrite.Cost(2400, 598016, 1212416, 173440, fix.after.est_time)
    assert fix.before.params == 32 * 64 * 9 + 64 and fix.before.macs == 256 * 32 * 64 * 9
    dw_macs, pw_macs = 256 * 32 * 9, 256 * 32 * 64
    parts = [(2 * dw_macs, (8192 + 288 + 8192) * 4, "depthwise", 1),
             (2 * pw_macs + 64 * 256, (8192 + 2048 + 64 + 16384) * 4, "dense", 32)]
    assert fix.after.est_time == pytest.approx(est_time(report, parts), rel=1e-12)
    assert fix.before.est_time == pytest.approx(report.layer("conv").est_time, rel=1e-12)
    cfg = Config(select=["AL101"], rule_options={"AL101": {"min-time-saving": 0.0}})
    finding = next(f for f in archlint.analyze(conv_model(), lint=cfg).findings if f.code == "AL101")
    assert finding.fix is not None and finding.fix.after == fix.after
    assert finding.saving.macs == (fix.before.macs, 598016) and finding.saving.params == (18496, 2400)
    assert not fix.safe and fix.code == "AL101"
    assert fix.tensors["conv/depthwise.weight"].shape == (32, 1, 3, 3)
    assert fix.tensors["conv/depthwise_output"].shape == (1, 32, 16, 16)


@pytest.mark.parametrize("groups", [2, 4, 8])
def test_grouped_cost(groups):
    """G groups: params 64*32*9/G + 64, MACs 256*64*(32/G)*9; traffic x + y + weights =
    (8,192 + 16,384 + params) * 4 bytes (activations do not shrink with G: ShuffleNet V2)."""
    report, graph, layer = _setup()
    fix = rewrite.grouped(graph, layer, groups).compute_cost(graph, report.profile, "fp32")
    assert fix.after.params == 64 * 32 * 9 // groups + 64
    assert fix.after.macs == 256 * 64 * (32 // groups) * 9
    assert fix.after.bytes == (8192 + 16384 + fix.after.params) * 4
    flops = 2 * fix.after.macs + 64 * 256
    assert fix.after.est_time == pytest.approx(est_time(report, [(flops, fix.after.bytes, "grouped", 32 // groups)]),
                                               rel=1e-12)
    with pytest.raises(rewrite.NotApplicable, match="do not divide"):
        rewrite.grouped(graph, layer, 3)


def test_stacked_3x3_cost():
    """5x5 conv 32->32, pad 2, no bias, on 32x32 (P = 1,024) -> two 3x3 convs (pad 1 each): params
    2*9*32*32 = 18,432; MACs 1024*2*9*32*32 = 18,874,368: the rule's saving (check_large_kernel
    carries this Fix). (With a bias, the rule's former hand-written time left out the bias adds
    and bias bytes that the registry's formulas count, about 0.15%; the rule now uses the Fix.)"""
    report, graph, layer = _setup(k=5, co=32, size=32, bias=False)
    fix = rewrite.stacked_3x3(graph, layer).compute_cost(graph, report.profile, "fp32")
    assert (fix.after.params, fix.after.macs) == (18432, 18874368)
    assert [la.attrs["pads"] for la in fix.layers] == [[1, 1, 1, 1], [1, 1, 1, 1]]
    finding = next(iter(check_large_kernel(AL103, report, LargeKernelOptions(min_kernel=5, min_time_saving=0.0))))
    assert finding.fix is not None and finding.fix.code == "AL103"
    assert finding.saving.params[1] == fix.after.params and finding.saving.macs[1] == fix.after.macs
    assert finding.saving.bytes[1] == fix.after.bytes
    assert finding.saving.time[1] == pytest.approx(fix.after.est_time, rel=1e-12)


def test_pool_then_pointwise_cost():
    """1x1 stride-2 conv 32->64 on 16x16 (8x8 out): MACs unchanged 64*32*64 = 131,072, params
    unchanged 2,048 + 64; FLOPs gain the 2x2 pool's 32*8*8*4 = 8,192 adds."""
    report, graph, layer = _setup(k=1, stride=2)
    fix = rewrite.pool_then_pointwise(graph, layer).compute_cost(graph, report.profile, "fp32")
    assert (fix.after.params, fix.after.macs) == (2112, 131072) == (fix.before.params, fix.before.macs)
    assert fix.after.flops - fix.before.flops == 8192
    assert fix.layers[1].inputs[1] == "w"  # the same weight tensor


def test_pool_then_pointwise_odd_input_uses_ceil_mode():
    """15x15 input, stride 2: the conv gives 8x8; a floor-mode 2x2 pool gives 7x7, ceil mode 8x8."""
    _, graph, layer = _setup(k=1, stride=2, size=15)
    fix = rewrite.pool_then_pointwise(graph, layer)
    assert fix.details["ceil_mode"] is True
    assert fix.tensors["conv/avgpool_output"].shape == (1, 32, 8, 8)


def test_drop_bias_cost_and_safety():
    """Conv with a 64-element bias before BatchNorm: params drop by exactly 64, MACs unchanged."""
    report, graph, layer = _setup(bn=True)
    fix = rewrite.drop_bias_into_batchnorm(graph, layer, graph.layer("bn")).compute_cost(graph)
    assert fix.safe and fix.code == "AL106"
    assert fix.before.params - fix.after.params == 64
    assert fix.before.macs == fix.after.macs
    assert fix.layers[0].inputs == ["x", "w"]
    with pytest.raises(rewrite.NotApplicable, match="no bias"):
        _, g2, l2 = _setup(bn=True, bias=False)
        rewrite.drop_bias_into_batchnorm(g2, l2, g2.layer("bn"))


def test_constructors_refuse_what_does_not_fit():
    _, graph, layer = _setup(k=1)
    with pytest.raises(rewrite.NotApplicable, match="kernel over 1x1"):
        rewrite.depthwise_separable(graph, layer)
    with pytest.raises(rewrite.NotApplicable, match="odd square kernel"):
        rewrite.stacked_3x3(graph, layer)
    with pytest.raises(rewrite.NotApplicable, match="strided 1x1"):
        rewrite.pool_then_pointwise(graph, layer)


BUILT = {"conv3x3": dict(ci=64, co=64), "conv5x5": dict(ci=64, co=64, k=5, size=32)}


@pytest.mark.parametrize("name", ["plain_cnn", "resnet_small", "mobilenet_v2_small", "resnext_small",
                                  "dilated_stack", "encoder_decoder", *BUILT])
def test_findings_carry_their_fix_on_the_fixtures(name):
    """On every fixture export, each AL101/AL102/AL103 finding carries a Fix of its layer and its
    saving is that Fix's cost, whose after-MACs equal the structure's formula: AL101
    ``P*Ci*(K^2 + Co)``, AL102 ``MACs/G`` with the finding's recommended G. (Before the Fix, the
    rule timed G = Ci as "grouped" while the registry classes it "depthwise", as the report does.)"""
    from tests.conftest import onnx_path
    cfg = Config(select=["AL101", "AL102", "AL103"],
                 rule_options={"AL101": {"min-time-saving": 0.0}, "AL102": {"min-time-saving": 0.0}})
    report = archlint.analyze(conv_model(**BUILT[name]) if name in BUILT else onnx_path(name), lint=cfg)
    views = {v.name: v for v in conv_views(report)}
    checked = 0
    for f in report.findings:
        if f.code not in ("AL101", "AL102", "AL103"):
            continue
        v = views[f.layer]
        assert f.fix is not None and f.fix.replaces == [f.layer] and f.fix.code == f.code
        b, a = f.fix.before, f.fix.after
        assert (f.saving.params, f.saving.macs, f.saving.bytes, f.saving.time) == (
            (b.params, a.params), (b.macs, a.macs), (b.bytes, a.bytes), (b.est_time, a.est_time))
        if f.code == "AL101":
            assert a.macs == v.out_positions * v.ci * (v.k_area + v.co)
        if f.code == "AL102":
            g = f.details["recommended_groups"]
            assert a.macs == (v.record.macs or 0) // g and f.fix.details["groups"] == g
        checked += 1
    if name in BUILT:  # the small fixtures have no finding whose estimated time drops
        assert checked >= 2, [f.code for f in report.findings]
