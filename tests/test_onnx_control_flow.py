"""ONNX control flow (issue 17.8): an ``If`` whose condition is data is costed as its larger
branch, with a warning naming it and both branch costs; ``Loop`` and ``Scan`` with a static trip
count cost trips x body; without one they are listed as not costed (totals partial).

Models are built with onnx.helper; each expected figure is derived in the test's docstring."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

import archlint


def _model(nodes, inputs, outputs, inits=(), opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _w(name, shape):
    return numpy_helper.from_array(np.ones(shape, np.float32), name)


def _if_model():
    """x [1, 3, 8, 8]; a scalar bool input ``c`` (data: no shape fixes it) chooses between
    then: Conv 3 -> 4, 3x3, pad 1 (weight in the branch: 4*3*3*3 = 108 params), and
    else: Conv 3 -> 4, 1x1 (weight w1 in the outer graph: 4*3 = 12 params)."""
    then = helper.make_graph([helper.make_node("Conv", ["x", "w3"], ["t"], pads=[1, 1, 1, 1], name="conv3")],
                             "then", [], [helper.make_tensor_value_info("t", TensorProto.FLOAT, None)],
                             [_w("w3", (4, 3, 3, 3))])
    other = helper.make_graph([helper.make_node("Conv", ["x", "w1"], ["e"], name="conv1")],
                              "else", [], [helper.make_tensor_value_info("e", TensorProto.FLOAT, None)])
    node = helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other, name="choose")
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8]),
              helper.make_tensor_value_info("c", TensorProto.BOOL, [])]
    return _model([node], inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                  [_w("w1", (4, 3, 1, 1))])


def test_if_on_data_takes_the_larger_branch():
    """then: 4 out channels * 8*8 positions * 3*3*3 = 6,912 MACs; else: 4 * 64 * 3 = 768.
    The total is the larger, 6,912, not partial; params count both branches' weights,
    108 + 12 = 120; the warning names the If and both costs."""
    report = archlint.analyze(_if_model(), lint=False)
    assert report.totals.macs == 6912
    assert not report.totals.partial
    assert report.totals.params == 120
    note = [w for w in report.warnings if "If 'choose'" in w]
    assert note and "then_branch 6.91K MACs" in note[0] and "else_branch 768 MACs" in note[0]


def test_if_with_an_uncostable_branch_is_partial():
    """A branch holding an op with no cost formula (a custom-domain op) cannot be costed:
    the If is listed, never taken as its other branch."""
    model = _if_model()
    then = model.graph.node[0].attribute[0].g
    then.node.append(helper.make_node("Mystery", ["t"], ["t2"], domain="example.custom", name="odd"))
    then.output[0].name = "t2"
    model.opset_import.append(helper.make_opsetid("example.custom", 1))
    report = archlint.analyze(model, lint=False)
    assert report.totals.partial
    assert [u["layer"] for u in report.totals.uncounted_ops] == ["choose"]


def _loop_model(trips):
    """x [1, 16] carried through a Loop whose body multiplies it by W [16, 16] (MatMul) each
    iteration; ``trips`` is the constant M, or None for a trip count given as a graph input."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("MatMul", ["h", "W"], ["h_out"], name="step")],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("h", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("h_out", TensorProto.FLOAT, None)])
    inits = [_w("W", (16, 16)), numpy_helper.from_array(np.array(True), "cond")]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])]
    if trips is None:
        inputs.append(helper.make_tensor_value_info("M", TensorProto.INT64, []))
    else:
        inits.append(numpy_helper.from_array(np.array(trips, np.int64), "M"))
    node = helper.make_node("Loop", ["M", "cond", "x"], ["y"], body=body, name="loop")
    return _model([node], inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)


def test_loop_with_a_static_trip_count():
    """Each iteration: [1, 16] x [16, 16] = 256 MACs; M = 5 trips: 1,280 MACs; W counted once,
    256 params."""
    report = archlint.analyze(_loop_model(5), lint=False)
    assert report.totals.macs == 1280
    assert not report.totals.partial
    assert report.totals.params == 256


def test_loop_with_a_data_trip_count_is_partial():
    """M is a graph input (its value is data): the Loop is listed as not costed."""
    report = archlint.analyze(_loop_model(None), lint=False)
    assert report.totals.partial
    assert [u["layer"] for u in report.totals.uncounted_ops] == ["loop"]
    assert "trip count" in report.totals.uncounted_ops[0]["reason"]


def test_scan_runs_its_body_once_per_slice():
    """Scan over xs [7, 8] (axis 0: 7 trips), state h [1, 8]; body: s = h + x_t (x_t [8]),
    o = s @ W (W [8, 4]): 1*8*4 = 32 MACs a step, 7 * 32 = 224 MACs."""
    body = helper.make_graph(
        [helper.make_node("Add", ["h", "xt"], ["s"]), helper.make_node("MatMul", ["s", "W"], ["o"])],
        "body",
        [helper.make_tensor_value_info("h", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("xt", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("s", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("o", TensorProto.FLOAT, None)])
    node = helper.make_node("Scan", ["h0", "xs"], ["hN", "ys"], body=body, num_scan_inputs=1, name="scan")
    inputs = [helper.make_tensor_value_info("h0", TensorProto.FLOAT, [1, 8]),
              helper.make_tensor_value_info("xs", TensorProto.FLOAT, [7, 8])]
    outputs = [helper.make_tensor_value_info("hN", TensorProto.FLOAT, None),
               helper.make_tensor_value_info("ys", TensorProto.FLOAT, None)]
    report = archlint.analyze(_model([node], inputs, outputs, [_w("W", (8, 4))]), lint=False)
    assert report.totals.macs == 224
    assert not report.totals.partial
    assert report.totals.params == 32


def _sample_rate_model():
    """silero VAD's shape: a scalar int64 input ``sr`` and ``If(sr == 16000)``:
    then: Conv 3 -> 8, 3x3, pad 1 on x [1, 3, 8, 8] (weight in the branch, 8*3*3*3 = 216 params),
    else: Conv 3 -> 2, 1x1 (weight in the branch, 2*3 = 6 params)."""
    then = helper.make_graph([helper.make_node("Conv", ["x", "w16k"], ["t"], pads=[1, 1, 1, 1], name="conv16k")],
                             "then", [], [helper.make_tensor_value_info("t", TensorProto.FLOAT, None)],
                             [_w("w16k", (8, 3, 3, 3))])
    other = helper.make_graph([helper.make_node("Conv", ["x", "w8k"], ["e"], name="conv8k")],
                              "else", [], [helper.make_tensor_value_info("e", TensorProto.FLOAT, None)],
                              [_w("w8k", (2, 3, 1, 1))])
    nodes = [helper.make_node("Constant", [], ["rate"], value=numpy_helper.from_array(np.array(16000, np.int64))),
             helper.make_node("Equal", ["sr", "rate"], ["is16k"]),
             helper.make_node("If", ["is16k"], ["y"], then_branch=then, else_branch=other, name="by_rate")]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8]),
              helper.make_tensor_value_info("sr", TensorProto.INT64, [])]
    return _model(nodes, inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])


def test_input_value_selects_the_branch():
    """``input_values={"sr": 16000}`` makes ``sr`` a constant: Equal folds to true and the If is
    replaced by its then branch: 8 * 64 positions * 27 = 13,824 MACs, 216 params (the other
    branch's weights are not part of the model that runs); 8000: the else branch, 2 * 64 * 3 =
    384 MACs, 6 params. The report lists ``sr`` with its value."""
    for rate, macs, params in ((16000, 13_824, 216), (8000, 384, 6)):
        report = archlint.analyze(_sample_rate_model(), input_values={"sr": rate}, lint=False)
        assert (report.totals.macs, report.totals.params, report.totals.partial) == (macs, params, False)
        assert {"name": "sr", "shape": [], "dtype": "int64", "value": [rate]} in report.model.inputs
        assert not [w for w in report.warnings if "If" in w]


def test_data_dependent_if_names_the_input_that_selects_it():
    """Without a value the If is costed as its larger branch (13,824 MACs), params count both
    branches (216 + 6 = 222), and the warning says which input to fix."""
    report = archlint.analyze(_sample_rate_model(), lint=False)
    assert (report.totals.macs, report.totals.params) == (13_824, 222)
    note = [w for w in report.warnings if "If 'by_rate'" in w]
    assert note and "depends on the value of 'sr'" in note[0] and "--input-value sr=..." in note[0]


def test_input_value_cli_and_errors(tmp_path):
    """The command line: --input-value sr=8000 gives the else branch's 384 MACs; a name that is
    not an input, a fraction for an integer input, or a count that does not fit the input's
    shape is exit 2 with one line naming the file."""
    import onnx
    from click.testing import CliRunner

    from archlint.cli import main
    path = tmp_path / "rate.onnx"
    onnx.save(_sample_rate_model(), path)
    result = CliRunner().invoke(main, [str(path), "--input-value", "sr=8000", "--format", "json", "--no-cache"])
    assert result.exit_code in (0, 1), result.output
    import json
    assert json.loads(result.stdout)["totals"]["macs"] == 384
    for value, problem in (("rate=1", "--input-value names rate, but the model's inputs are x, sr"),
                           ("sr=16000.5", "input 'sr' is int64; --input-value sr must be whole numbers"),
                           ("sr=1,2", "--input-value sr gives 2 value(s), but the input's shape [] holds 1")):
        result = CliRunner().invoke(main, [str(path), "--input-value", value, "--no-cache"])
        assert result.exit_code == 2
        assert f"archlint: error: {path}: {problem}" in result.stderr
    result = CliRunner().invoke(main, [str(path), "--input-value", "sr", "--no-cache"])
    assert result.exit_code == 2 and "malformed --input-value 'sr'" in result.stderr


def test_input_values_from_config(tmp_path):
    """``[tool.archlint] input-values`` maps files to values as input-shapes does; the cache key
    includes them (a changed value is a new analysis)."""
    import onnx
    from click.testing import CliRunner

    from archlint.cli import main
    onnx.save(_sample_rate_model(), tmp_path / "rate.onnx")
    (tmp_path / "pyproject.toml").write_text('[tool.archlint]\ninput-values = {"rate.onnx" = "sr=8000"}\n')
    import json
    import os
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        first = CliRunner().invoke(main, ["rate.onnx", "--format", "json"])
        (tmp_path / "pyproject.toml").write_text('[tool.archlint]\ninput-values = {"rate.onnx" = "sr=16000"}\n')
        second = CliRunner().invoke(main, ["rate.onnx", "--format", "json"])
    finally:
        os.chdir(cwd)
    assert json.loads(first.stdout)["totals"]["macs"] == 384
    assert json.loads(second.stdout)["totals"]["macs"] == 13_824


def test_fixed_input_values_are_settings_not_parameters():
    """x [1,3,8,8] -> Resize(nearest, scales = input ``scales``) -> Conv 3 -> 4, 3x3, pad 1
    (108 params) -> Mul by input ``gain`` [1,4,1,1]. With --input-value scales=1,1,2,2 and
    gain=1,2,3,4 the Resize gives 16x16 and the conv 4*16*16*27 = 27,648 MACs; the four gains are
    a value the user gave, not a weight stored in the model: params stay 108."""
    nodes = [helper.make_node("Resize", ["x", "", "scales"], ["r"], mode="nearest"),
             helper.make_node("Conv", ["r", "w"], ["y"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Mul", ["y", "gain"], ["z"])]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8]),
              helper.make_tensor_value_info("scales", TensorProto.FLOAT, [4]),
              helper.make_tensor_value_info("gain", TensorProto.FLOAT, [1, 4, 1, 1])]
    model = _model(nodes, inputs, [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)], [_w("w", (4, 3, 3, 3))])
    report = archlint.analyze(model, input_values={"scales": [1, 1, 2, 2], "gain": [1, 2, 3, 4]}, lint=False)
    assert (report.totals.params, report.totals.macs, report.totals.partial) == (108, 27_648, False)


def test_conditions_through_comparisons_and_logic_fold_with_a_value():
    """If(And(sr >= 16000, flag)) on the sample-rate model's branches (then 13,824 MACs, else
    384): sr=8000 -> else; sr=16000 and flag=1 -> then; GreaterOrEqual and And are evaluated."""
    model = _sample_rate_model()
    nodes = list(model.graph.node)
    nodes[1].CopyFrom(helper.make_node("GreaterOrEqual", ["sr", "rate"], ["ge"]))
    nodes.insert(2, helper.make_node("And", ["ge", "flag"], ["is16k"]))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    model.graph.input.append(helper.make_tensor_value_info("flag", TensorProto.BOOL, []))
    for values, macs in (({"sr": 8000, "flag": 1}, 384), ({"sr": 16000, "flag": 1}, 13_824),
                         ({"sr": 16000, "flag": 0}, 384)):
        assert archlint.analyze(model, input_values=values, lint=False).totals.macs == macs


def test_an_if_inside_a_loop_body_names_no_body_variable():
    """An If on ``i < 2`` inside a Loop body: ``i`` is the body's iteration counter, not a model
    input, so no message suggests --input-value i=...."""
    then = helper.make_graph([helper.make_node("Conv", ["xin", "w"], ["t"], pads=[1, 1, 1, 1])], "then", [],
                             [helper.make_tensor_value_info("t", TensorProto.FLOAT, None)])
    other = helper.make_graph([helper.make_node("Identity", ["xin"], ["e"])], "else", [],
                              [helper.make_tensor_value_info("e", TensorProto.FLOAT, None)])
    body = helper.make_graph(
        [helper.make_node("Less", ["i", "two"], ["c"]),
         helper.make_node("If", ["c"], ["xo"], then_branch=then, else_branch=other, name="inner_if"),
         helper.make_node("Identity", ["cond_in"], ["cond_out"])], "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("xin", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("xo", TensorProto.FLOAT, [1, 3, 8, 8])])
    model = _model([helper.make_node("Loop", ["M", "", "x"], ["y"], body=body, name="loop")],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                   [_w("w", (3, 3, 3, 3)), numpy_helper.from_array(np.array(4, np.int64), "M"),
                    numpy_helper.from_array(np.array(2, np.int64), "two")])
    report = archlint.analyze(model, lint=False)
    text = " ".join(report.warnings) + " ".join(str(u) for u in report.totals.uncounted_ops)
    assert "--input-value i=" not in text


def test_input_values_bool_and_numpy_scalars():
    """A bool input takes 0 or 1 (2 is an error naming the input); numpy scalars are numbers
    (np.int64(8000) selects the 8 kHz branch: 384 MACs); the table shows the fixed value."""
    import pytest

    from archlint.errors import ArchlintError
    with pytest.raises(ArchlintError, match="input 'c' is bool; --input-value c must be 0 or 1"):
        archlint.analyze(_if_model(), input_values={"c": 2}, lint=False)
    assert archlint.analyze(_if_model(), input_values={"c": 0}, lint=False).totals.macs == 768
    report = archlint.analyze(_sample_rate_model(), input_values={"sr": np.int64(8000)}, lint=False)
    assert report.totals.macs == 384
    from archlint.reporters.table import render
    assert "input: sr  int64 = 8000 (--input-value)" in render(report)


def test_input_values_are_refused_for_pytorch_models():
    """A PyTorch model's inputs are example tensors: --input-value is an error naming the model."""
    import pytest

    from archlint.errors import ArchlintError
    torch = pytest.importorskip("torch")
    with pytest.raises(ArchlintError, match=r"^Conv2d: input values \(sr\) apply to ONNX models"):
        archlint.analyze(torch.nn.Conv2d(3, 4, 3), (1, 3, 8, 8), input_values={"sr": 16000}, lint=False)


def test_in_memory_model_with_a_corrupt_constant_is_an_error():
    """``analyze(ModelProto)`` checks Constant tensors as a file does: dims 64 x 64 x 3 x 3
    (36,864 floats) holding 16 bytes is an error, not 36,864 parameters."""
    import pytest

    from archlint.errors import ArchlintError
    w = TensorProto(name="w_value", data_type=TensorProto.FLOAT, dims=[64, 64, 3, 3], raw_data=b"\0" * 16)
    model = _model([helper.make_node("Constant", [], ["w"], value=w), helper.make_node("Conv", ["x", "w"], ["y"])],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64, 8, 8])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    with pytest.raises(ArchlintError, match="stores 16 bytes: the file is corrupt"):
        archlint.analyze(model, lint=False)
