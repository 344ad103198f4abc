"""Inputs and graphs no runtime would run are refused with one line naming the node or tensor
(exit 2), and valid edge cases are analysed (issue 17, items 5, 6, 7, 10, 11)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import archlint
from archlint.errors import ArchlintError
from tests.conftest import assert_one_line_error, onnx_path, run_cli


def _model(nodes, inputs, outputs=None, inits=(), opset=17):
    outputs = outputs or [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _x(shape, name="x"):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _save(tmp_path, model, name="m.onnx"):
    path = tmp_path / name
    onnx.save_model(model, str(path))
    return path


def test_input_shape_contradicting_a_fixed_channel_dim(tmp_path):
    """plain_cnn takes 3 channels (its first conv's weight is [16,3,3,3]); --input-shape with 4
    channels is refused, naming the conv, both shapes and the overridden axis."""
    proc = run_cli(str(onnx_path("plain_cnn")), "--input-shape", "1x4x32x32")
    assert_one_line_error(proc, "has 4 channels", "expects 3", "input 'input' axis 1 from 3 to 4")


def _branches():
    """x [1,2,H,W] -> MaxPool 2x2 s2 (floor(H/2)) and Conv 3x3 s2 pad 1 (floor((H-1)/2)+1),
    concatenated on channels: at 14x14 both give 7x7, at 15x15 the pool gives 7x7 and the conv 8x8."""
    w = numpy_helper.from_array(np.ones((2, 2, 3, 3), np.float32), "w")
    nodes = [helper.make_node("MaxPool", ["x"], ["p"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
             helper.make_node("Conv", ["x", "w"], ["c"], strides=[2, 2], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Concat", ["c", "p"], ["y"], axis=1, name="cat")]
    return _model(nodes, [_x([1, 2, 14, 14])], inits=[w])


def test_concat_of_unequal_maps_is_refused(tmp_path):
    """At 15x15 the Concat joins 8x8 and 7x7 maps: onnxruntime refuses to run it, and archlint
    names the layer and the two shapes instead of reporting an 8x8 output."""
    ort = pytest.importorskip("onnxruntime")
    path = _save(tmp_path, _branches())
    assert archlint.analyze(path, lint=False).layer("cat").output_shape == (1, 4, 7, 7)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with pytest.raises(Exception, match="Concat|concat|dimension"):  # onnxruntime's own refusal
        sess.run(None, {"x": np.zeros((1, 2, 15, 15), np.float32)})
    assert_one_line_error(run_cli(str(path), "--input-shape", "1x2x15x15"),
                          "layer 'cat' (Concat)", "1x2x8x8", "1x2x7x7", "axis 2", "from 14 to 15")


def test_operands_that_do_not_broadcast():
    nodes = [helper.make_node("Add", ["a", "b"], ["y"], name="add")]
    model = _model(nodes, [_x([1, 2, 4, 4], "a"), _x([1, 2, 4, 4], "b")])
    with pytest.raises(ArchlintError, match=r"layer 'add' \(Add\).*1x2x4x4 and 1x2x5x5 do not broadcast"):
        archlint.analyze(model, input_shape={"a": (1, 2, 4, 4), "b": (1, 2, 5, 5)}, lint=False)


def test_node_reading_an_undefined_tensor(tmp_path):
    nodes = [helper.make_node("Add", ["x", "ghost"], ["y"], name="add")]
    path = _save(tmp_path, _model(nodes, [_x([1, 4])]))
    assert_one_line_error(run_cli(str(path)), "node 'add'", "'ghost'", "no node, input or initializer")


def test_duplicate_output_names(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="first"),
             helper.make_node("Sigmoid", ["x"], ["y"], name="second")]
    path = _save(tmp_path, _model(nodes, [_x([1, 4])]))
    assert_one_line_error(run_cli(str(path)), "tensor 'y'", "'first'", "'second'")


def test_initializer_data_disagreeing_with_dims(tmp_path):
    """dims 1e5 x 1e5 x 3 x 3 (9e10 float elements, 3.6e11 bytes) with 16 bytes stored."""
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[100_000, 100_000, 3, 3], raw_data=b"\0" * 16)
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="conv")]
    path = _save(tmp_path, _model(nodes, [_x([1, 100_000, 8, 8])], inits=[w]))
    assert_one_line_error(run_cli(str(path)), "initializer 'w'", "16 bytes", "corrupt")


def test_constant_node_data_disagreeing_with_dims(tmp_path):
    """The same corruption in a Constant node (where paddle2onnx keeps weights): dims
    1000 x 1000 x 3 x 3 (9e6 floats, 3.6e7 bytes) with 16 bytes stored is an error, not
    9,000,000 parameters."""
    w = TensorProto(name="w_value", data_type=TensorProto.FLOAT, dims=[1000, 1000, 3, 3], raw_data=b"\0" * 16)
    nodes = [helper.make_node("Constant", [], ["w"], value=w), helper.make_node("Conv", ["x", "w"], ["y"], name="conv")]
    path = _save(tmp_path, _model(nodes, [_x([1, 1000, 8, 8])]))
    assert_one_line_error(run_cli(str(path)), "Constant node 'w'", "16 bytes", "corrupt")


def test_opset_newer_than_installed_onnx(tmp_path):
    newest = onnx.defs.onnx_opset_version()
    path = _save(tmp_path, _model([helper.make_node("Relu", ["x"], ["y"])], [_x([1, 4])], opset=newest + 1))
    assert_one_line_error(run_cli(str(path)), f"opset {newest + 1}", f"up to {newest}")


def test_symbolic_non_batch_dim_names_flag_and_config_key(tmp_path):
    path = _save(tmp_path, _model([helper.make_node("Relu", ["x"], ["y"])], [_x([1, 3, "height", 8])]))
    assert_one_line_error(run_cli(str(path)), "'height'", "--input-shape x=", "[tool.archlint.input-shapes]")


def test_symbolic_batch_defaults_to_one():
    """Batch 'N' taken as 1: Conv 3->4 3x3 on [N,3,8,8] gives 4*6*6*27 = 3,888 MACs at N=1."""
    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    model = _model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv")], [_x(["N", 3, 8, 8])], inits=[w])
    report = archlint.analyze(model, lint=False)
    assert report.totals.macs == 3_888
    assert any("symbolic batch dimension 'N' taken as 1" in w for w in report.warnings)


def test_sequence_input_is_named(tmp_path):
    seq = helper.make_tensor_sequence_value_info("seq", TensorProto.FLOAT, None)
    nodes = [helper.make_node("SequenceAt", ["seq", "i"], ["y"])]
    inits = [numpy_helper.from_array(np.array(0, np.int64), "i")]
    path = _save(tmp_path, _model(nodes, [seq], inits=inits))
    assert_one_line_error(run_cli(str(path), "--input-shape", "seq=1x3"), "input 'seq'", "sequence", "tensors")


def test_zero_size_dims_analyse_with_zero_cost():
    """A batch of 0 images through a 3x3 conv 3->4: output [0,4,6,6], 0 MACs, 108 params."""
    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    model = _model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv")], [_x([0, 3, 8, 8])], inits=[w])
    report = archlint.analyze(model, lint=False)
    assert report.layer("conv").output_shape == (0, 4, 6, 6)
    assert (report.totals.macs, report.totals.params) == (0, 108)
    assert not report.totals.uncounted_ops
