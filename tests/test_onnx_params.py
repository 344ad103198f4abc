"""Parameters of ONNX models wherever they are stored (issue 17, items 1 and 2): initializers,
Constant and ConstantOfShape nodes, and these seen through DequantizeLinear, Cast, Reshape,
Transpose and Identity; never tensors computed from the input's shape (folded shape
arithmetic), so that the parameter count does not depend on the input size.

Models are built with onnx.helper; each expected count is derived in the docstring."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import archlint


def _model(nodes, inputs, outputs, inits=(), opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _x(shape):
    return [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)]


def _y():
    return [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]


def _const(name, array):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(array), name + "_v"))


def test_conv_weight_in_constant_nodes():
    """Conv 3 -> 16, 3x3, weight and bias held in Constant nodes (as paddle2onnx writes them):
    params = 16*3*3*3 + 16 = 448 (before: 0)."""
    nodes = [_const("w", np.ones((16, 3, 3, 3), np.float32)), _const("b", np.zeros(16, np.float32)),
             helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv")]
    report = archlint.analyze(_model(nodes, _x([1, 3, 8, 8]), _y()), lint=False)
    assert report.totals.params == 448
    assert report.layer("conv").params == 448
    assert report.layer("conv").macs == 16 * 6 * 6 * 27


def test_weight_through_dequantize_cast_reshape_transpose():
    """Conv 8 -> 4, 1x1, on [1,8,5,5], whose weight is an int8 initializer [8,4] dequantized,
    transposed to [4,8] and reshaped to [4,8,1,1], and whose bias is a float16 Constant cast to
    float: params = 8*4 + 4 = 36, counted on the conv (the ops in between own none)."""
    inits = [numpy_helper.from_array(np.ones((8, 4), np.int8), "wq"),
             numpy_helper.from_array(np.array(0.1, np.float32), "ws"),
             numpy_helper.from_array(np.array([4, 8, 1, 1], np.int64), "shape")]
    nodes = [helper.make_node("DequantizeLinear", ["wq", "ws"], ["wf"]),
             helper.make_node("Transpose", ["wf"], ["wt"], perm=[1, 0]),
             helper.make_node("Reshape", ["wt", "shape"], ["w"]),
             _const("b16", np.zeros(4, np.float16)),
             helper.make_node("Cast", ["b16"], ["b"], to=TensorProto.FLOAT),
             helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv")]
    report = archlint.analyze(_model(nodes, _x([1, 8, 5, 5]), _y(), inits), lint=False)
    assert report.totals.params == 36
    assert report.layer("conv").params == 36


def test_weight_from_constant_of_shape():
    """A 1x1 conv 4 -> 2 whose weight is ConstantOfShape([2,4,1,1], 0.5): params = 8."""
    nodes = [_const("wshape", np.array([2, 4, 1, 1], np.int64)),
             helper.make_node("ConstantOfShape", ["wshape"], ["w"],
                              value=numpy_helper.from_array(np.array([0.5], np.float32))),
             helper.make_node("Conv", ["x", "w"], ["y"], name="conv")]
    report = archlint.analyze(_model(nodes, _x([1, 4, 3, 3]), _y()), lint=False)
    assert report.totals.params == 8


def test_constant_read_by_two_layers_counts_once():
    """One Constant weight [4,4,1,1] read by two convs, the second through a Transpose (an
    identity permutation) and an Identity: params = 16, once; MACs = 2 * 4*4*3*3 = 288."""
    nodes = [_const("w", np.ones((4, 4, 1, 1), np.float32)),
             helper.make_node("Conv", ["x", "w"], ["c"], name="conv1"),
             helper.make_node("Transpose", ["w"], ["wt"], perm=[0, 1, 2, 3]),
             helper.make_node("Identity", ["wt"], ["wi"]),
             helper.make_node("Conv", ["c", "wi"], ["y"], name="conv2")]
    report = archlint.analyze(_model(nodes, _x([1, 4, 3, 3]), _y()), lint=False)
    assert report.totals.params == 16
    assert report.totals.macs == 288
    assert (report.layer("conv1").params, report.layer("conv2").shared_params) == (16, 16)


def _grid_model():
    """A 3x3 conv 4 -> 4 (144 params), then a position grid built from the feature map's shape
    (as YOLOv8's anchors: Shape -> Gather -> Mul -> Cast -> Range), added to the flattened map."""
    inits = [numpy_helper.from_array(np.ones((4, 4, 3, 3), np.float32), "w"),
             numpy_helper.from_array(np.array(2, np.int64), "i2"),
             numpy_helper.from_array(np.array(3, np.int64), "i3"),
             numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
             numpy_helper.from_array(np.array(1.0, np.float32), "one"),
             numpy_helper.from_array(np.array([1, 4, -1], np.int64), "flat")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Shape", ["c"], ["s"]),
             helper.make_node("Gather", ["s", "i2"], ["h"]),
             helper.make_node("Gather", ["s", "i3"], ["wd"]),
             helper.make_node("Mul", ["h", "wd"], ["hw"]),
             helper.make_node("Cast", ["hw"], ["hwf"], to=TensorProto.FLOAT),
             helper.make_node("Range", ["zero", "hwf", "one"], ["grid"]),
             helper.make_node("Reshape", ["c", "flat"], ["cf"]),
             helper.make_node("Add", ["cf", "grid"], ["y"], name="add")]
    return nodes, inits


@pytest.mark.parametrize("size", [8, 16])
def test_folded_shape_arithmetic_is_not_a_parameter(size):
    """The grid of :func:`_grid_model` has H*W elements (64 at 8x8, 256 at 16x16) once folded;
    it is computed from the input's shape, so it is not a parameter: params = 144 at both sizes
    (before: 144 + H*W)."""
    nodes, inits = _grid_model()
    report = archlint.analyze(_model(nodes, _x([1, 4, size, size]), _y(), inits), lint=False)
    assert report.layer("add").output_shape == (1, 4, size * size)
    assert report.totals.params == 144


def test_constant_bias_sliced_and_concatenated_is_not_folded_away():
    """silero VAD's LSTM bias as its OpenVINO-ready file stores it: a Constant b [8] read by two
    Slices (halves) joined by a Concat, which feeds the Conv 3 -> 8 as its bias. Shape
    arithmetic is folded into constants, but a float Constant of more than one element may be a
    weight and is never folded (as for initializers): params = 8*3*3*3 + 8 = 224 (before: 216,
    the bias folded into an anonymous constant). An If on the input's height (constant once the
    shape is fixed: then Relu, else Identity) makes the folding pass run, as in that file."""
    def _ints(name, values):
        return _const(name, np.array(values, np.int64))
    relu = helper.make_graph([helper.make_node("Relu", ["c"], ["r"])], "then", [],
                             [helper.make_tensor_value_info("r", TensorProto.FLOAT, None)])
    same = helper.make_graph([helper.make_node("Identity", ["c"], ["i"])], "else", [],
                             [helper.make_tensor_value_info("i", TensorProto.FLOAT, None)])
    nodes = [_const("w", np.ones((8, 3, 3, 3), np.float32)), _const("b", np.arange(8, dtype=np.float32)),
             _ints("s0", [0]), _ints("s4", [4]), _ints("s8", [8]), _ints("ax", [0]), _ints("two", 2),
             _ints("eight", 8),
             helper.make_node("Slice", ["b", "s0", "s4", "ax"], ["b_lo"]),
             helper.make_node("Slice", ["b", "s4", "s8", "ax"], ["b_hi"]),
             helper.make_node("Concat", ["b_lo", "b_hi"], ["bias"], axis=0),
             helper.make_node("Conv", ["x", "w", "bias"], ["c"], name="conv"),
             helper.make_node("Shape", ["x"], ["shape"]),
             helper.make_node("Gather", ["shape", "two"], ["height"]),
             helper.make_node("Equal", ["height", "eight"], ["is8"]),
             helper.make_node("If", ["is8"], ["y"], then_branch=relu, else_branch=same)]
    report = archlint.analyze(_model(nodes, _x([1, 3, 8, 8]), _y()), lint=False)
    assert report.totals.params == 224
    assert report.layer("conv").macs == 8 * 6 * 6 * 27


def test_float_constants_that_only_set_a_resize_scale_still_fold():
    """x [1,3,8,8] -> Resize(nearest) whose scales are Concat(Constant [1, 1], Constant [2, 2])
    (TorchScript's interpolate without constant folding) -> Conv 3 -> 4, 3x3, pad 1. The float
    Constants only reach a setting (Resize's scales), so they fold as shape arithmetic: the Resize
    gives 1x3x16x16 (onnxruntime's shape), the conv 4*16*16*27 = 27,648 MACs, params 4*27 = 108."""
    nodes = [_const("s1", np.ones(2, np.float32)), _const("s2", np.full(2, 2.0, np.float32)),
             helper.make_node("Concat", ["s1", "s2"], ["scales"], axis=0),
             helper.make_node("Resize", ["x", "", "scales"], ["r"], mode="nearest", name="resize"),
             _const("w", np.ones((4, 3, 3, 3), np.float32)),
             helper.make_node("Conv", ["r", "w"], ["y"], pads=[1, 1, 1, 1], name="conv")]
    report = archlint.analyze(_model(nodes, _x([1, 3, 8, 8]), _y()), lint=False)
    assert report.layer("resize").output_shape == (1, 3, 16, 16)
    assert (report.totals.params, report.totals.macs, report.totals.partial) == (108, 27_648, False)
