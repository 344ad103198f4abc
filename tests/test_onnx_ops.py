"""The ONNX op records (archlint/frontends/onnx_ops.py): each op type's inputs reach its kind's
formulas in slot order (data, weight, bias), quantization scales and zero points are never
weights, and attributes held in inputs (CumSum's axis) survive normalisation.

Models are built with onnx.helper; each expected figure is derived in the docstring."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import archlint
from archlint.frontends import onnx_frontend, onnx_ops
from archlint.ops import REGISTRY, registry


def _model(nodes, inputs, outputs, inits=(), opset=21, domains=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    imports = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, 1) for d in domains]
    return helper.make_model(graph, opset_imports=imports)


def _vi(name, dtype, shape):
    return helper.make_tensor_value_info(name, dtype, shape)


def _init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def _scalar(name, value, dtype):
    return _init(name, np.array(value, dtype=dtype))


def _analyze(model):
    return archlint.analyze(model, lint=False)


def test_every_record_names_a_registered_kind_and_known_roles():
    """Each record's kind exists, its roles are registry roles, and its parameter roles fit the
    kind (a weight role maps to the kind's weight slot where it has one)."""
    for table in (onnx_ops.OPS, onnx_ops.MICROSOFT_OPS):
        for op_type, record in table.items():
            assert record.kind in REGISTRY, op_type
            assert set(record.roles) | {record.rest} <= set(registry.ROLES), op_type
            entry = REGISTRY[record.kind]
            if "weight" in record.roles and entry.slot("weight") is not None:
                arranged = record.arrange([f"in{i}" for i in range(len(record.roles))], record.kind)
                assert arranged[entry.slot("weight")] == f"in{record.roles.index('weight')}", op_type


def test_qlinearconv_reads_its_weight_and_bias_in_the_conv_slots():
    """QLinearConv x [1,16,8,8] uint8, w [32,16,3,3] int8, B [32] int32, pads 1, stride 1:
    output [1,32,8,8]; MACs = 32*8*8 * 16*3*3 = 294,912 (before, conv_macs read the scalar
    x_scale as the weight); params = 32*16*9 + 32 = 4,640 (weights and bias, never the six
    scales and zero points); FLOPs = 2*MACs + 32*8*8 (bias) = 591,872."""
    inits = [_scalar("xs", 0.02, np.float32), _scalar("xz", 128, np.uint8),
             _init("w", np.ones((32, 16, 3, 3), np.int8)), _scalar("ws", 0.01, np.float32),
             _scalar("wz", 0, np.int8), _scalar("ys", 0.05, np.float32), _scalar("yz", 128, np.uint8),
             _init("b", np.zeros(32, np.int32))]
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], ["y"],
                            pads=[1, 1, 1, 1], name="qconv")
    model = _model([node], [_vi("x", TensorProto.UINT8, [1, 16, 8, 8])], [_vi("y", TensorProto.UINT8, None)], inits)
    report = _analyze(model)
    layer = report.layer("qconv")
    assert layer.output_shape == (1, 32, 8, 8)
    assert (layer.macs, layer.params, layer.flops) == (294_912, 4_640, 591_872)
    assert not report.totals.uncounted_ops
    graph = onnx_frontend.load_proto(model)
    assert graph.layer("qconv").inputs == ["x", "w", "b", "xs", "xz", "ws", "wz", "ys", "yz"]


def test_convinteger_zero_point_is_not_a_bias():
    """ConvInteger x [1,3,8,8] uint8, w [8,3,3,3] uint8, x_zero_point scalar: output [1,8,6,6];
    MACs = 8*6*6 * 3*3*3 = 7,776; params = 8*3*3*3 = 216 (the zero point is neither a
    parameter nor a bias); FLOPs = 2*MACs = 15,552 (no bias add)."""
    inits = [_init("w", np.ones((8, 3, 3, 3), np.uint8)), _scalar("xz", 3, np.uint8)]
    node = helper.make_node("ConvInteger", ["x", "w", "xz"], ["y"], name="cint")
    model = _model([node], [_vi("x", TensorProto.UINT8, [1, 3, 8, 8])], [_vi("y", TensorProto.INT32, None)], inits)
    layer = _analyze(model).layer("cint")
    assert (layer.output_shape, layer.macs, layer.params, layer.flops) == ((1, 8, 6, 6), 7_776, 216, 15_552)
    assert onnx_frontend.load_proto(model).layer("cint").inputs == ["x", "w", "", "xz"]


def test_qlinearmatmul_by_a_weight_is_a_linear_layer():
    """QLinearMatMul a [1,4,16] uint8 by b [16,8] int8 (an initializer): a linear layer,
    output [1,4,8]; MACs = 4*8*16 = 512; params = 16*8 = 128; FLOPs = 2*512 = 1,024."""
    inits = [_scalar("as", 0.1, np.float32), _scalar("az", 0, np.uint8), _init("b", np.ones((16, 8), np.int8)),
             _scalar("bs", 0.1, np.float32), _scalar("bz", 0, np.int8), _scalar("ys", 0.1, np.float32),
             _scalar("yz", 0, np.uint8)]
    node = helper.make_node("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"], ["y"], name="qmm")
    model = _model([node], [_vi("a", TensorProto.UINT8, [1, 4, 16])], [_vi("y", TensorProto.UINT8, None)], inits)
    layer = _analyze(model).layer("qmm")
    assert (layer.kind, layer.output_shape, layer.macs, layer.params, layer.flops) == \
        ("linear", (1, 4, 8), 512, 128, 1_024)
    assert onnx_frontend.load_proto(model).layer("qmm").inputs[:3] == ["a", "b", ""]


def test_qlinearmatmul_of_two_activations():
    """a [2,4,16] by b [2,16,8], both inputs: a matmul, MACs = 2*4*8*16 = 1,024, no params."""
    inits = [_scalar(n, 0.1, np.float32) for n in ("as", "bs", "ys")] + \
            [_scalar(n, 0, np.uint8) for n in ("az", "bz", "yz")]
    node = helper.make_node("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"], ["y"], name="qmm")
    model = _model([node], [_vi("a", TensorProto.UINT8, [2, 4, 16]), _vi("b", TensorProto.UINT8, [2, 16, 8])],
                   [_vi("y", TensorProto.UINT8, None)], inits)
    layer = _analyze(model).layer("qmm")
    assert (layer.kind, layer.macs, layer.params) == ("matmul", 1_024, 0)


def test_matmulinteger_by_a_weight():
    """MatMulInteger A [2,16] uint8 by B [16,4] int8 with a scalar zero point: linear, output
    [2,4]; MACs = 2*4*16 = 128; params = 16*4 = 64 (the zero point is not one)."""
    inits = [_init("B", np.ones((16, 4), np.int8)), _scalar("az", 1, np.uint8)]
    node = helper.make_node("MatMulInteger", ["A", "B", "az"], ["y"], name="mmi")
    model = _model([node], [_vi("A", TensorProto.UINT8, [2, 16])], [_vi("y", TensorProto.INT32, None)], inits)
    layer = _analyze(model).layer("mmi")
    assert (layer.kind, layer.output_shape, layer.macs, layer.params) == ("linear", (2, 4), 128, 64)


def test_cumsum_keeps_its_axis():
    """CumSum over the channel axis (1) of the output of a 3x3 conv on [1,4,8,8]: it mixes
    channels, not positions, so the receptive field stays the conv's 3x3 (before, the axis was
    erased and "no axes" read as "every axis" made it global). FLOPs = numel(x) = 256."""
    inits = [_init("w", np.ones((4, 4, 3, 3), np.float32)), _init("axis", np.array(1, np.int64))]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("CumSum", ["c", "axis"], ["y"], name="cumsum")]
    model = _model(nodes, [_vi("x", TensorProto.FLOAT, [1, 4, 8, 8])], [_vi("y", TensorProto.FLOAT, None)], inits)
    report = _analyze(model)
    layer = report.layer("cumsum")
    assert layer.rf[0].short() == "3x3 s1"
    assert layer.flops == 256
    # along a spatial axis it is global
    inits[1] = _init("axis", np.array(3, np.int64))
    model = _model(nodes, [_vi("x", TensorProto.FLOAT, [1, 4, 8, 8])], [_vi("y", TensorProto.FLOAT, None)], inits)
    assert _analyze(model).layer("cumsum").rf[0].is_global


@pytest.mark.parametrize("noop, expected", [(0, True), (1, False)])
def test_reduce_with_empty_axes_input_follows_noop_with_empty_axes(noop, expected):
    """ReduceSum (opset 13+) with an empty ``axes`` input reduces every axis unless
    ``noop_with_empty_axes`` is 1 (the spec), when it is the identity: the field of the
    preceding 3x3 conv becomes global only in the first case."""
    inits = [_init("w", np.ones((4, 4, 3, 3), np.float32)), _init("axes", np.zeros(0, np.int64))]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("ReduceSum", ["c", "axes"], ["y"], name="sum", noop_with_empty_axes=noop)]
    model = _model(nodes, [_vi("x", TensorProto.FLOAT, [1, 4, 8, 8])], [_vi("y", TensorProto.FLOAT, None)], inits)
    assert _analyze(model).layer("sum").rf[0].is_global is expected


def test_batchnorm_running_statistics_are_not_parameters():
    """BatchNormalization on [1,8,4,4]: scale and bias (8 + 8 = 16) are parameters, the running
    mean and variance are buffers."""
    inits = [_init(n, np.ones(8, np.float32)) for n in ("s", "b", "m", "v")]
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], name="bn")
    model = _model([node], [_vi("x", TensorProto.FLOAT, [1, 8, 4, 4])], [_vi("y", TensorProto.FLOAT, None)], inits)
    assert _analyze(model).layer("bn").params == 16


def test_unknown_domain_is_listed_not_costed():
    """An op of a domain archlint has no record for is not costed and marks the totals partial."""
    node = helper.make_node("Foo", ["x"], ["y"], domain="example.custom", name="foo")
    model = _model([node], [_vi("x", TensorProto.FLOAT, [1, 4])], [_vi("y", TensorProto.FLOAT, [1, 4])],
                   domains=["example.custom"])
    report = _analyze(model)
    assert report.layer("foo").macs is None
    assert report.totals.uncounted_ops



def _fixture(name):
    from tests.conftest import ONNX_DIR
    return ONNX_DIR / f"quant_cnn.{name}.onnx"


@pytest.mark.parametrize("fmt", ["qoperator", "qdq"])
def test_quantized_models_cost_as_the_float_model(fmt):
    """fixtures/quantized.py quantizes one float CNN with onnxruntime's quantize_static in
    QOperator (QLinearConv, QLinearAdd, QLinearGlobalAveragePool, QGemm) and QDQ format. Both
    give the float model's figures, derived by hand for input [1,8,16,16]:
    conv1 8->16 3x3: 16*16*16*8*9 = 294,912 MACs, 1,152 + 16 params; conv2 16->16 3x3:
    589,824 MACs, 2,304 + 16; conv_skip 8->16 1x1: 32,768 MACs, 128 + 16; Gemm 16->10: 160 MACs,
    160 + 10. Totals: 917,664 MACs, 3,802 params, nothing left uncosted. FLOPs are the float
    model's less its Relu's 16*16*16 = 4,096: the quantizer folds the Relu into conv1's output
    range in both formats."""
    float_report = archlint.analyze(_fixture("float"), lint=False)
    report = archlint.analyze(_fixture(fmt), lint=False)
    assert (float_report.totals.macs, float_report.totals.params) == (917_664, 3_802)
    assert (report.totals.macs, report.totals.params, report.totals.flops) == \
        (float_report.totals.macs, float_report.totals.params, float_report.totals.flops - 4_096)
    assert not report.totals.uncounted_ops
    costed = sorted(layer.macs for layer in report.layers if layer.macs)
    assert costed == [160, 32_768, 294_912, 589_824]


def test_quantized_output_shape_matches_onnxruntime():
    """The QOperator model's output shape (through contrib ops onnx cannot infer) is the one
    onnxruntime produces."""
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(str(_fixture("qoperator")), providers=["CPUExecutionProvider"])
    (y,) = sess.run(None, {"x": np.zeros((1, 8, 16, 16), np.float32)})
    report = archlint.analyze(_fixture("qoperator"), lint=False)
    assert report.layer("fc_quant").output_shape == y.shape == (1, 10)
