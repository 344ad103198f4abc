"""Each rule firing and not firing, with its numbers derived by hand in the docstrings."""

from __future__ import annotations

from pathlib import Path

import pytest

import archlint
from archlint.config import Config, from_dict
from archlint.lint import lint

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from fixtures import lint_models as lm  # noqa: E402
from fixtures.networks import build  # noqa: E402
from tests.conftest import onnx_path  # noqa: E402

IDEAL = str(Path(__file__).parent / "data" / "ideal.toml")  # no per-layer overhead: judge arithmetic alone


def findings(model, shape, code, config: Config | None = None, **table):
    report = archlint.analyze(model.eval(), input_shape=shape, profile=IDEAL)
    cfg = config or (from_dict(table) if table else Config())
    return [f for f in lint(report, cfg) if f.code == code]


def test_al101_depthwise_separable_numbers():
    """Conv 32->64 3x3 p1 on 16x16, no bias. MACs 256*64*32*9 = 4,718,592; replacement
    256*32*9 + 256*32*64 = 598,016 (ratio 1/64 + 1/9 = 0.1267); params 18,432 -> 288 + 2,048 = 2,336.
    Traffic (fp32): before (in 8,192 + out 16,384 + w 18,432) * 4 = 172,032; after adds the
    8,192-element depthwise output written and read: (8,192 + 16,384 + 2,336 + 16,384) * 4 = 173,184."""
    [f] = findings(lm.Seq(nn.Conv2d(32, 64, 3, padding=1, bias=False)), (1, 32, 16, 16), "AL101")
    assert f.layer == "0" and f.severity == "info"
    assert f.saving.macs == (4_718_592, 598_016)
    assert f.saving.params == (18_432, 2_336)
    assert f.saving.bytes == (172_032, 173_184)
    assert abs(f.details["ratio"] - (1 / 64 + 1 / 9)) < 1e-12
    assert f.fix.layers[0].attrs["groups"] == 32 and f.fix.tensors["0/pointwise.weight"].shape == (64, 32, 1, 1)
    assert f.to_dict()["fix"]["layers"][0]["attrs"]["groups"] == 32 and not f.to_dict()["fix"]["safe"]
    assert "memory-bound" in f.details["caveat"] and "-87%" in f.message and len(f.message) < 120


def test_al101_does_not_fire():
    for model, shape in ((lm.Seq(nn.Conv2d(3, 64, 3)), (1, 3, 16, 16)),             # RGB stem: Ci < 16
                         (lm.Seq(nn.Conv2d(32, 32, 3, groups=32)), (1, 32, 8, 8)),   # already depthwise
                         (lm.Seq(nn.Conv2d(32, 64, 1)), (1, 32, 8, 8))):             # 1x1
        assert findings(model, shape, "AL101") == []
    strict = from_dict({"rules": {"AL101": {"min-reduction": 0.9}}})  # saves 87% < 90%
    assert findings(lm.Seq(nn.Conv2d(32, 64, 3, padding=1)), (1, 32, 8, 8), "AL101", strict) == []


def test_al102_grouped_options():
    """Conv 64->128 3x3 p1 on 8x8: 64*128*64*9 = 4,718,592 MACs; G in {2, 4, 8, 16, 32} divides both.
    On the ideal device a grouped conv's efficiency is min(1, channels per group / 16): G=4 runs
    MACs/4 at full speed, G=8..32 run MACs/G at 16/(64/G) of it, no faster; the saving reported is
    the fastest, G=4 (first of the ties): MACs 1,179,648, weights 73,728/4 = 18,432 (+128 bias)."""
    [f] = findings(lm.Seq(nn.Conv2d(64, 128, 3, padding=1)), (1, 64, 8, 8), "AL102")
    assert [o["groups"] for o in f.details["options"]] == [2, 4, 8, 16, 32]
    assert [o["macs"] for o in f.details["options"]] == [4_718_592 // g for g in (2, 4, 8, 16, 32)]
    assert f.saving.macs == (4_718_592, 1_179_648) and f.saving.params == (73_856, 18_432 + 128)
    assert "G2" in f.details["caveat"] and f.details["recommended_groups"] == 4 and "G=4" in f.message
    assert findings(lm.Seq(nn.Conv2d(32, 128, 3)), (1, 32, 8, 8), "AL102") == []


def test_al103_large_kernel():
    """7x7 32->32 p3 on 16x16, no bias: 3 stacked 3x3: params 3*9*32*32 = 27,648 (vs 50,176),
    MACs 256*27,648 = 7,077,888 (vs 12,845,056)."""
    [f] = findings(lm.Seq(nn.Conv2d(32, 32, 7, padding=3, bias=False)), (1, 32, 16, 16), "AL103")
    assert f.saving.params == (50_176, 27_648) and f.saving.macs == (12_845_056, 7_077_888)
    assert f.details["stacked_3x3"] == 3
    assert findings(lm.Seq(nn.Conv2d(32, 32, 7, stride=2, padding=3)), (1, 32, 16, 16), "AL103") == []
    assert findings(lm.Seq(nn.Conv2d(32, 32, 3, padding=1)), (1, 32, 16, 16), "AL103") == []


def test_al104_ignored_border():
    """3x3 s2 without padding on 16: (16 - 3) mod 2 = 1: the last row and column are never read.
    With padding 1: (16 + 2 - 3) mod 2 = 1, but that unread row is end padding: no finding."""
    [f] = findings(lm.Seq(nn.Conv2d(3, 8, 3, stride=2)), (1, 3, 16, 16), "AL104")
    assert f.details["ignored"] == {"0": 1, "1": 1} and "rows" in f.message and "columns" in f.message
    assert findings(lm.Seq(nn.Conv2d(3, 8, 3, stride=2, padding=1)), (1, 3, 16, 16), "AL104") == []
    [pool] = findings(lm.Seq(nn.MaxPool2d(2, 2)), (1, 3, 15, 16), "AL104")  # 15 rows: (15 - 2) mod 2 = 1
    assert pool.details["ignored"] == {"0": 1}


def test_al105_strided_pointwise():
    [f] = findings(lm.Seq(nn.Conv2d(16, 32, 1, stride=2)), (1, 16, 8, 8), "AL105")
    assert "3/4" in f.message and f.details["discarded_share"] == 0.75
    assert findings(lm.Seq(nn.Conv2d(16, 32, 1)), (1, 16, 8, 8), "AL105") == []
    # the ONNX path too: resnet_small's downsample shortcut
    report = archlint.analyze(onnx_path("resnet_small"), profile=IDEAL)
    assert [f.layer for f in lint(report) if f.code == "AL105"] == ["/layer2/layer2.0/downsample/downsample.0/Conv"]


def test_al106_bias_before_batchnorm():
    [f] = findings(lm.Seq(nn.Conv2d(8, 16, 3), nn.BatchNorm2d(16)), (1, 8, 8, 8), "AL106")
    assert f.layer == "0" and f.saving.params == (8 * 16 * 9 + 16, 8 * 16 * 9)
    assert findings(lm.Seq(nn.Conv2d(8, 16, 3, bias=False), nn.BatchNorm2d(16)), (1, 8, 8, 8), "AL106") == []
    assert findings(lm.Seq(nn.Conv2d(8, 16, 3), nn.ReLU(), nn.BatchNorm2d(16)), (1, 8, 8, 8), "AL106") == []


def test_al107_channel_alignment():
    model = lm.Seq(nn.Conv2d(3, 20, 3), nn.Conv2d(20, 24, 3), nn.Conv2d(24, 10, 1))
    got = findings(model, (1, 3, 16, 16), "AL107")
    # layer 0: 3 input channels are the image (exempt), 20 outputs flagged; layer 1: 20 inputs flagged;
    # layer 2 produces the model output (exempt by default)
    assert [(f.layer, f.details["in_channels"], f.details["out_channels"]) for f in got] == [("0", 3, 20),
                                                                                             ("1", 20, 24)]
    sixteen = findings(model, (1, 3, 16, 16), "AL107", rules={"AL107": {"multiple": 16}})
    # 24 is not a multiple of 16: layer 1's output and layer 2's input
    assert [f.layer for f in sixteen] == ["0", "1", "2"] and "24 output" in sixteen[1].message
    assert "24 input" in sixteen[2].message


def test_al108_gridding():
    [f] = findings(lm.Gridding((2, 2)), (1, 8, 32, 32), "AL108")
    assert f.layer == "b" and f.details["previous"] == "a"
    assert findings(lm.Gridding((1, 2)), (1, 8, 32, 32), "AL108") == []
    assert findings(build("dilated_stack"), (1, 3, 32, 32), "AL108") == []  # 1, 2, 4


def test_al201_small_field():
    """Three 3x3 convs on 64x64: field 7 = 11% of 64 (< 50%)."""
    [f] = findings(lm.Seq(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 8, 3), nn.Conv2d(8, 8, 3)), (1, 3, 64, 64), "AL201")
    assert f.layer == "2" and abs(f.details["coverage"] - 7 / 64) < 1e-12
    assert findings(build("resnet_small"), (1, 3, 64, 64), "AL201") == []  # 99 px field at the trunk's end
    assert findings(build("resnext_small"), (1, 3, 32, 32), "AL201") == []  # SE makes the end global


def test_al201_judges_the_signal_not_a_recurrent_state():
    """silero VAD's shape in small: x [1,3,32,32] through one 3x3 conv (field 3 = 9% of 32),
    and a second input h [2,1,128] (a recurrent state) through a Relu, written last. Only x is
    read by a sliding window, so the finding is on the conv's 3x3 field, never on h's 1-of-128."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="conv"), helper.make_node("Relu", ["h"], ["h2"],
                                                                                         name="state_relu")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32]),
                                           helper.make_tensor_value_info("h", TensorProto.FLOAT, [2, 1, 128])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
                               helper.make_tensor_value_info("h2", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    [f] = [f for f in lint(archlint.analyze(model, profile=IDEAL)) if f.code == "AL201"]
    assert f.layer == "conv" and abs(f.details["coverage"] - 3 / 32) < 1e-12


def test_al202_unaligned_merge():
    [f] = findings(lm.Unaligned(), (1, 8, 16, 16), "AL202")
    assert f.layer == "add" and "centre offset" in f.message
    assert findings(build("resnet_small"), (1, 3, 64, 64), "AL202") == []


def test_al301_budgets():
    """plain_cnn: 24,346 params, 1,917,568 MACs."""
    model = build("plain_cnn")
    over = findings(model, (1, 3, 32, 32), "AL301", budgets={"params": "10K", "macs": "1.9M", "flops": "1G"})
    assert [(f.details["budget"], f.severity) for f in over] == [("params", "error"), ("macs", "error")]
    assert findings(model, (1, 3, 32, 32), "AL301", budgets={"params": 30_000, "macs": "2M"}) == []
    peak = findings(model, (1, 3, 32, 32), "AL301", budgets={"peak-layer-memory": "100KiB"})
    # the stem's ReLU reads and writes 16x32x32 fp32 maps: 2 * 65,536 bytes = 128 KiB > 100 KiB
    assert peak and peak[0].details["value"] >= 131_072


def test_al302_partial(tmp_path):
    from tests.test_cli import _model_with_custom_op
    path = tmp_path / "custom.onnx"
    _model_with_custom_op(path)
    [f] = [f for f in lint(archlint.analyze(path)) if f.code == "AL302"]
    assert "FancyNorm" in f.message
    assert [f for f in lint(archlint.analyze(onnx_path("plain_cnn"))) if f.code == "AL302"] == []


def test_source_suppression_and_unused():
    """conv_b's AL101 is suppressed at its construction line; conv_c's suppression of AL103
    matches nothing: AL001."""
    report = archlint.analyze(lm.suppressed(), input_shape=(1, 32, 8, 8), profile=IDEAL)
    found = lint(report)
    al101 = [f.layer for f in found if f.code == "AL101"]
    assert al101 == ["conv_a"]
    [unused] = [f for f in found if f.code == "AL001"]
    assert unused.layer == "conv_c" and "AL103" in unused.message and unused.source[0].endswith("lint_models.py")
    # without AL001 selected, nothing is said about it
    assert [f for f in lint(report, from_dict({"ignore": ["AL001"]})) if f.code == "AL001"] == []


def test_onnx_metadata_suppression():
    import onnx
    model = onnx.load(str(onnx_path("resnet_small")), load_external_data=False)
    for node in model.graph.node:
        if node.name == "/layer2/layer2.0/downsample/downsample.0/Conv":
            entry = node.metadata_props.add()
            entry.key, entry.value = "archlint.ignore", "AL105"
    found = lint(archlint.analyze(model))
    assert [f for f in found if f.code == "AL105"] == []
    assert [f for f in found if f.code == "AL001"] == []


def test_select_ignore_and_per_layer_ignores():
    report = archlint.analyze(onnx_path("resnet_small"), profile=IDEAL)
    only = {f.code for f in lint(report, from_dict({"select": ["AL105"]}))}
    assert only == {"AL105"}
    assert "AL101" not in {f.code for f in lint(report, from_dict({"ignore": ["AL10"]}))}
    assert "AL101" in {f.code for f in lint(report, from_dict({"ignore": ["AL1"], "select": ["AL101"]}))}
    layered = lint(report, from_dict({"per-layer-ignores": {"/layer1/*": ["AL101"]}}))
    assert all(not f.layer.startswith("/layer1/") for f in layered if f.code == "AL101")
    assert any(f.code == "AL101" for f in layered)
    per_file = lint(report, from_dict({"per-file-ignores": {"resnet_small.onnx": ["AL1"]}}))
    assert not any(f.code.startswith("AL1") for f in per_file)


def test_al202_upsampling_jitter_is_information():
    """encoder_decoder's decoder: a ConvTranspose k2 s2 (each input unit m feeds outputs 2m and
    2m+1) concatenated with the stride-2 encoder skip. Relative to u*S, unit 2m's field is centred
    at 0 and unit 2m+1's at -2 (it reads the same input unit as 2m): no padding can align that
    with the skip's constant offset 0, so AL202 reports it as info, with both branches' offsets."""
    import archlint
    from tests.conftest import onnx_path
    report = archlint.analyze(onnx_path("encoder_decoder"))
    [f] = [f for f in report.findings if f.code == "AL202"]
    assert f.severity == "info" and f.details["resampling"] is True
    assert "centre offset [-2..0]x[-2..0] (varies with position, period 2)" in f.details["branches"]
    assert "centre offset 0x0" in f.details["branches"]
    assert len(f.message) < 120
