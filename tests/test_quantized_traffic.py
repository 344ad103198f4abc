"""Memory traffic of quantized ONNX models at the quantized element size (issue 17, item 3).

The fixtures (``fixtures/quantized.py``) are one float CNN and its two quantizations by
onnxruntime's ``quantize_static`` (uint8 activations, int8 weights, int32 biases, per-tensor
scales). Input x [1, 8, 16, 16] = 2,048 elements; every map after the first convs
[1, 16, 16, 16] = 4,096; weights w1 16*8*3*3 = 1,152, w2 16*16*3*3 = 2,304, ws 16*8*1*1 = 128,
wf 10*16 = 160; biases 16, 16, 16, 10; pool output 16, fc output 10.

Float model at fp32 (4 bytes an element), per layer (inputs + weights + bias + output):
conv1 (2,048 + 1,152 + 16 + 4,096) * 4 = 29,248; relu1 (4,096 + 4,096) * 4 = 32,768;
conv2 (4,096 + 2,304 + 16 + 4,096) * 4 = 42,048; conv_skip (2,048 + 128 + 16 + 4,096) * 4 = 25,152;
add 3 * 4,096 * 4 = 49,152; pool (4,096 + 16) * 4 = 16,448; flatten 0 (a view);
fc (16 + 160 + 10 + 10) * 4 = 784. Total 195,600.

Quantized, both formats: the quantizer folds relu1 into conv1 (conv1 writes the clipped uint8
map), every activation and weight moves at 1 byte and every bias at 4 (int32):
conv1 2,048 + 1,152 + 16 * 4 + 4,096 = 7,360; conv_skip 2,048 + 128 + 64 + 4,096 = 6,336;
conv2 4,096 + 2,304 + 64 + 4,096 = 10,560; add 3 * 4,096 = 12,288; pool 4,096 + 16 = 4,112;
fc 16 + 160 + 10 * 4 + 10 = 226: 40,882 for the quantized layers. Two boundaries run standalone,
the same nodes in both formats (the graphs, printed node by node: QuantizeLinear x_QuantizeLinear
reads the model input x float [1, 8, 16, 16] and writes uint8 [1, 8, 16, 16]; DequantizeLinear
y_DequantizeLinear reads uint8 [1, 10] and writes the model output y float [1, 10]):
x_QuantizeLinear 2,048 * 4 + 2,048 = 10,240; y_DequantizeLinear 10 + 10 * 4 = 50; their scales and
zero points nothing. Total 40,882 + 10,240 + 50 = 51,172. Every other Q/DQ node of the QDQ file is
fused (DequantizeLinear -> op -> QuantizeLinear, or a DequantizeLinear of a constant weight or bias)
and moves nothing, nor does the flatten view.

Against the float model: drop relu1 (32,768 bytes), put the remaining (195,600 - 32,768) / 4 =
40,708 elements at 1 byte, and add 3 bytes for each of the 16 + 16 + 16 + 10 = 58 bias
elements: 40,708 + 174 = 40,882; then add the two conversions at the model's float edges,
(2,048 + 10) * (4 + 1) = 10,290: 51,172.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import archlint
from archlint import profiles
from tests.conftest import ONNX_DIR

FLOAT_BYTES = {"conv1": 29_248, "relu1": 32_768, "conv2": 42_048, "conv_skip": 25_152, "add": 49_152,
               "pool": 16_448, "flatten": 0, "fc": 784}
QUANT_BYTES = {"conv1": 7_360, "conv_skip": 6_336, "conv2": 10_560, "add": 12_288, "pool": 4_112, "fc": 226}
# the layer names of each format (QOperator's quantized ops carry a ``_quant`` suffix)
# the standalone boundaries (same node names in both formats): the model input's quantize, the output's dequantize
BOUNDARY_BYTES = {"x_QuantizeLinear": 10_240, "y_DequantizeLinear": 50}
NAMES = {"float": {k: k for k in FLOAT_BYTES},
         "qoperator": {k: f"{k}_quant" for k in QUANT_BYTES} | {k: k for k in BOUNDARY_BYTES},
         "qdq": {k: k for k in QUANT_BYTES} | {k: k for k in BOUNDARY_BYTES}}


def _report(fmt: str, **kwargs: object) -> archlint.Report:
    return archlint.analyze(ONNX_DIR / f"quant_cnn.{fmt}.onnx", lint=False, **kwargs)


@pytest.mark.parametrize("fmt", ["float", "qoperator", "qdq"])
def test_per_layer_and_total_bytes(fmt):
    """Module docstring for each figure."""
    report = _report(fmt)
    expected = FLOAT_BYTES if fmt == "float" else QUANT_BYTES | BOUNDARY_BYTES
    for key, value in expected.items():
        assert report.layer(NAMES[fmt][key]).bytes == value, key
    assert report.totals.bytes == sum(expected.values()) == (195_600 if fmt == "float" else 51_172)
    # every other layer (the fused QuantizeLinear / DequantizeLinear, the flatten view) moves nothing
    others = [r for r in report.layers if r.name not in NAMES[fmt].values()]
    assert sum(r.bytes for r in others) == 0


def test_both_formats_move_the_same_bytes_layer_by_layer():
    """QOperator and QDQ describe the same quantized network: the same bytes per layer."""
    qop, qdq = _report("qoperator"), _report("qdq")
    assert qop.totals.bytes == qdq.totals.bytes == 51_172
    for key in QUANT_BYTES | BOUNDARY_BYTES:
        assert qop.layer(NAMES["qoperator"][key]).bytes == qdq.layer(key).bytes


def test_the_report_dtype_sizes_only_float_tensors():
    """At ``--dtype fp16`` the float model halves (195,600 / 2 = 97,800). In the quantized ones the
    only float tensors that move are x (read by its standalone QuantizeLinear) and y (written by
    the final DequantizeLinear): x_QuantizeLinear 2,048 * 2 + 2,048 = 6,144, y_DequantizeLinear
    10 + 10 * 2 = 30, the rest unchanged: 40,882 + 6,144 + 30 = 47,056."""
    assert _report("float", dtype="fp16").totals.bytes == 97_800
    for fmt in ("qoperator", "qdq"):
        report = _report(fmt, dtype="fp16")
        assert report.totals.bytes == 47_056
        assert (report.layer("x_QuantizeLinear").bytes, report.layer("y_DequantizeLinear").bytes) == (6_144, 30)


def test_quantized_layers_run_at_the_int8_peak():
    """generic-x86-cpu: fp32 peak 896e9, int8 1792e9, dense efficiency 0.6, bandwidth 51.2e9,
    overhead 6 us. conv1: MACs 16*8*9*256 = 294,912, FLOPs 2 * MACs + 4,096 (bias) = 593,920.
    Float: 6e-6 + max(593,920 / (896e9 * 0.6), 29,248 / 51.2e9) = 6e-6 + 1.1048e-6.
    Quantized: 6e-6 + max(593,920 / (1792e9 * 0.6), 7,360 / 51.2e9) = 6e-6 + 5.524e-7."""
    flops = 593_920
    assert _report("float").layer("conv1").est_time == pytest.approx(6e-6 + flops / (896e9 * 0.6))
    for fmt in ("qoperator", "qdq"):
        assert _report(fmt).layer(NAMES[fmt]["conv1"]).est_time == pytest.approx(6e-6 + flops / (1792e9 * 0.6))


def test_a_standalone_boundary_is_memory_bound():
    """A standalone QuantizeLinear does no counted arithmetic: x_QuantizeLinear's time on
    generic-x86-cpu is its overhead plus its bytes over the bandwidth, 6e-6 + 10,240 / 51.2e9 =
    6.2e-6 s (fp32 input); a fused one takes no time."""
    for fmt in ("qoperator", "qdq"):
        report = _report(fmt)
        assert report.layer("x_QuantizeLinear").est_time == pytest.approx(6e-6 + 10_240 / 51.2e9)
    assert _report("qdq").layer("r1_QuantizeLinear").est_time == 0.0


def _qlinear_conv_model() -> onnx.ModelProto:
    """x uint8 [1, 3, 8, 8] -> QLinearConv (int8 weight [4, 3, 3, 3], int32 bias [4], pads 1)
    -> y uint8 [1, 4, 8, 8], per-tensor scales and zero points."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.integers(-127, 127, (4, 3, 3, 3)).astype(np.int8), "w"),
             numpy_helper.from_array(rng.integers(-1000, 1000, (4,)).astype(np.int32), "b"),
             numpy_helper.from_array(np.array(0.02, np.float32), "x_scale"),
             numpy_helper.from_array(np.array(128, np.uint8), "x_zp"),
             numpy_helper.from_array(np.array(0.01, np.float32), "w_scale"),
             numpy_helper.from_array(np.array(0, np.int8), "w_zp"),
             numpy_helper.from_array(np.array(0.05, np.float32), "y_scale"),
             numpy_helper.from_array(np.array(128, np.uint8), "y_zp")]
    node = helper.make_node("QLinearConv", ["x", "x_scale", "x_zp", "w", "w_scale", "w_zp", "y_scale", "y_zp", "b"],
                            ["y"], pads=[1, 1, 1, 1], name="qconv")
    graph = helper.make_graph([node], "qconv", [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.UINT8, [1, 4, 8, 8])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def test_a_single_qlinear_conv():
    """x 3*8*8 = 192 bytes, w 4*3*3*3 = 108, b 4 * 4 = 16, y 4*8*8 = 256: 572 bytes; the six scales
    and zero points move nothing. MACs 4*3*9*64 = 6,912, FLOPs 2 * 6,912 + 256 = 14,080.
    On a profile with fp32 peak 1e9, int8 peak 4e9, bandwidth 1e12 and no overhead the layer is
    compute-bound at the int8 peak: 14,080 / 4e9 = 3.52 us (at fp32 it would be 14.08 us)."""
    profile = {"name": "test", "peak_flops": {"fp32": 1e9, "int8": 4e9}, "bandwidth": 1e12, "overhead": 0.0,
               "efficiency": {"dense": 1.0}}
    report = archlint.analyze(_qlinear_conv_model(), lint=False, profile=profile)
    layer = report.layer("qconv")
    assert (layer.macs, layer.flops, layer.bytes) == (6_912, 14_080, 572)
    assert report.totals.bytes == 572
    assert layer.est_time == pytest.approx(14_080 / 4e9)
    assert profiles.load(profile).peak("int8") == 4e9


def _gather_model(table_dtype: type, rows: int) -> onnx.ModelProto:
    """Gather(table [rows, 4], ids int64 [1, 6]) -> [1, 6, 4]."""
    table = numpy_helper.from_array(np.arange(rows * 4).reshape(rows, 4).astype(table_dtype), "table")
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(table_dtype))
    node = helper.make_node("Gather", ["table", "ids"], ["y"], axis=0, name="lookup")
    graph = helper.make_graph([node], "gather", [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 6])],
                              [helper.make_tensor_value_info("y", elem, [1, 6, 4])], [table])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_an_integer_gather_index_moves_nothing():
    """A float table [10, 4] (a parameter, 40 elements) gathered by 6 int64 ids: 40 * 4 + 24 * 4 =
    256 bytes at fp32, the ids (6 * 8 = 48 bytes if they counted) nothing. A uint8 table [100, 4]
    (400 elements, a stored quantized table in the data slot) moves at 1 byte: 400 + 24 = 424,
    the int64 index still nothing."""
    assert archlint.analyze(_gather_model(np.float32, 10), lint=False).layer("lookup").bytes == 256
    assert archlint.analyze(_gather_model(np.uint8, 100), lint=False).layer("lookup").bytes == 424


def _conv_then_quantize(also_relu: bool) -> onnx.ModelProto:
    """x float [1, 1, 4, 4] -> Conv (float weight [2, 1, 1, 1]) -> c [1, 2, 4, 4] -> QuantizeLinear
    -> q uint8, and, when ``also_relu``, c -> Relu -> r (float) as well."""
    inits = [numpy_helper.from_array(np.ones((2, 1, 1, 1), np.float32), "w"),
             numpy_helper.from_array(np.array(0.1, np.float32), "scale"),
             numpy_helper.from_array(np.array(0, np.uint8), "zp")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("QuantizeLinear", ["c", "scale", "zp"], ["q"], name="quant")]
    outputs = [helper.make_tensor_value_info("q", TensorProto.UINT8, [1, 2, 4, 4])]
    if also_relu:
        nodes.append(helper.make_node("Relu", ["c"], ["r"], name="relu"))
        outputs.append(helper.make_tensor_value_info("r", TensorProto.FLOAT, [1, 2, 4, 4]))
    graph = helper.make_graph(nodes, "cq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
                              outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_a_tensor_also_read_as_float_keeps_the_float_size():
    """x 16 and w 2 elements at fp32 (72 bytes). Read only by the QuantizeLinear, c (32 elements)
    is written as uint8: 72 + 32 = 104 bytes, and the fused QuantizeLinear moves nothing. Read by a
    Relu as well, it must exist as float: 72 + 32 * 4 = 200, the Relu moves (32 + 32) * 4 = 256, and
    the QuantizeLinear runs standalone, reading c as float and writing q as uint8: 32 * 4 + 32 = 160."""
    only_q = archlint.analyze(_conv_then_quantize(False), lint=False)
    assert (only_q.layer("conv").bytes, only_q.layer("quant").bytes) == (104, 0)
    both = archlint.analyze(_conv_then_quantize(True), lint=False)
    assert (both.layer("conv").bytes, both.layer("relu").bytes, both.layer("quant").bytes) == (200, 256, 160)


def _dequantize_then_relu(requantize: bool) -> onnx.ModelProto:
    """x uint8 [1, 2, 4, 4] (a model input) -> DequantizeLinear -> d float -> Relu -> r, which is the
    float model output, or, when ``requantize``, -> QuantizeLinear -> q uint8 (the output)."""
    inits = [numpy_helper.from_array(np.array(0.1, np.float32), "scale"),
             numpy_helper.from_array(np.array(128, np.uint8), "zp")]
    nodes = [helper.make_node("DequantizeLinear", ["x", "scale", "zp"], ["d"], name="dequant"),
             helper.make_node("Relu", ["d"], ["r"], name="relu")]
    out = helper.make_tensor_value_info("r", TensorProto.FLOAT, [1, 2, 4, 4])
    if requantize:
        nodes.append(helper.make_node("QuantizeLinear", ["r", "scale", "zp"], ["q"], name="quant"))
        out = helper.make_tensor_value_info("q", TensorProto.UINT8, [1, 2, 4, 4])
    graph = helper.make_graph(nodes, "dqr", [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 2, 4, 4])],
                              [out], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_a_dequantize_feeding_a_float_layer_runs_standalone():
    """32 elements throughout. DequantizeLinear -> Relu -> QuantizeLinear is fused: the Relu reads
    and writes uint8, 32 + 32 = 64 bytes, and both boundaries move nothing. Without the
    QuantizeLinear the Relu runs in float on the dequantized map: the DequantizeLinear reads 32
    bytes and writes 32 * 4 = 128 (160), and the Relu moves (32 + 32) * 4 = 256."""
    fused = archlint.analyze(_dequantize_then_relu(True), lint=False)
    assert [fused.layer(n).bytes for n in ("dequant", "relu", "quant")] == [0, 64, 0]
    assert fused.totals.bytes == 64
    alone = archlint.analyze(_dequantize_then_relu(False), lint=False)
    assert [alone.layer(n).bytes for n in ("dequant", "relu")] == [160, 256]
    assert alone.totals.bytes == 416
