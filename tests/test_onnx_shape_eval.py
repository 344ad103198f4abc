"""Shape subgraphs that onnx's shape inference cannot propagate (issue 17.9) are evaluated under
the fixed input shapes (frontends/onnx_fold.py) so that every layer after them is costed, as in
torchvision's swin_t exported through TorchScript (window partition: ``Shape -> Gather ->
Div -> Unsqueeze -> Concat -> Reshape``, one block after another).

Models are built with onnx.helper; each expected figure is derived in the test's docstring."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

import archlint


def _c(name, value):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(value, np.int64), name))


def _block(i, x):
    """x [1, 6, 8] -> Reshape to [b, c/2, 2*w] with b, c, w read from Shape(x) by scalar Gathers
    (scalar results: Unsqueeze makes them 1-element vectors for Concat) -> [1, 3, 16];
    Reshape back to [1, 6, 8] the same way, then MatMul by W [8, 8]."""
    p = f"b{i}_"
    nodes = [helper.make_node("Shape", [x], [p + "s"]),
             helper.make_node("Gather", [p + "s", "i0"], [p + "b"], axis=0),
             helper.make_node("Gather", [p + "s", "i1"], [p + "c"], axis=0),
             helper.make_node("Gather", [p + "s", "i2"], [p + "w"], axis=0),
             helper.make_node("Div", [p + "c", "two"], [p + "half"]),
             helper.make_node("Mul", [p + "w", "two"], [p + "wide"]),
             helper.make_node("Unsqueeze", [p + "b", "ax"], [p + "bu"]),
             helper.make_node("Unsqueeze", [p + "half", "ax"], [p + "hu"]),
             helper.make_node("Unsqueeze", [p + "wide", "ax"], [p + "wu"]),
             helper.make_node("Concat", [p + "bu", p + "hu", p + "wu"], [p + "shape"], axis=0),
             helper.make_node("Reshape", [x, p + "shape"], [p + "r"]),
             helper.make_node("Shape", [p + "r"], [p + "s2"]),
             helper.make_node("Gather", [p + "s2", "i1"], [p + "h2"], axis=0),
             helper.make_node("Mul", [p + "h2", "two"], [p + "c2"]),
             helper.make_node("Unsqueeze", [p + "c2", "ax"], [p + "cu"]),
             helper.make_node("Concat", [p + "bu", p + "cu", "minus1"], [p + "back"], axis=0),
             helper.make_node("Reshape", [p + "r", p + "back"], [p + "x"]),
             helper.make_node("MatMul", [p + "x", "W"], [f"y{i}"], name=f"mm{i}")]
    return nodes


def _model(blocks):
    nodes = [_c("i0", 0), _c("i1", 1), _c("i2", 2), _c("two", 2), _c("ax", [0]), _c("minus1", [-1])]
    x = "x"
    for i in range(blocks):
        nodes += _block(i, x)
        x = f"y{i}"
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6, 8])],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(np.ones((8, 8), np.float32), "W")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_scalar_shape_arithmetic_is_evaluated():
    """One block: the MatMul is [1, 6, 8] x [8, 8] = 6*8*8 = 384 MACs; W 64 params. (Folding
    once turned the scalar Gather results into 1-element vectors, the Concat into a 2-D tensor,
    and left the Reshape, and so the MatMul, without a shape.)"""
    report = archlint.analyze(_model(1), lint=False)
    assert report.totals.macs == 384
    assert not report.totals.partial
    assert report.totals.params == 64


def test_shape_arithmetic_chained_through_many_blocks():
    """Eight blocks, each reading the shape of the previous block's output (one more round of
    folding and inference per block, as swin_t's 12 blocks need): 8 * 384 = 3,072 MACs, W
    shared (64 params)."""
    report = archlint.analyze(_model(8), lint=False)
    assert report.totals.macs == 8 * 384
    assert not report.totals.partial
    assert report.totals.params == 64
