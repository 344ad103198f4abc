"""The ``archlint`` command: output, JSON contract, exit codes and bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import onnx
from onnx import TensorProto, helper

from tests.conftest import ROOT, assert_one_line_error, onnx_path, run_cli


def test_table_output_names_layers_and_totals():
    proc = run_cli(str(onnx_path("resnet_small")), "--no-lint")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "/conv1/Conv" in out and "11x11 s4" in out  # stem + maxpool field (Araujo, Norris & Sim, Distill 2019)
    assert "MACs:   6.87M (6,865,216)" in out
    assert "FLOPs (archlint definition" in out
    assert proc.stderr == ""


def test_json_contract_keys():
    proc = run_cli(str(onnx_path("plain_cnn")), "--format", "json", "--no-lint")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert set(data) >= {"archlint_version", "model", "totals", "layers", "findings"}
    assert set(data["model"]) >= {"path", "format", "inputs"}
    assert data["model"]["inputs"] == [{"name": "input", "shape": [1, 3, 32, 32], "dtype": "float32"}]
    assert set(data["totals"]) >= {"params", "macs", "flops", "uncounted_ops"}
    assert data["totals"]["macs"] == 1_917_568 and isinstance(data["totals"]["macs"], int)
    layer = next(x for x in data["layers"] if x["name"] == "/stem/stem.0/Conv")
    assert set(layer) >= {"name", "op", "inputs", "output_shape", "params", "macs", "flops", "rf"}
    # stem: 3x3 conv 3->16 at 32x32 with the folded BatchNorm bias: 16*3*9 + 16 = 448 params,
    # 32*32*16*3*9 = 442,368 MACs; FLOPs 2*MACs + one bias add per output (16,384).
    assert (layer["params"], layer["macs"], layer["flops"]) == (448, 442_368, 2 * 442_368 + 16_384)
    assert layer["output_shape"] == [1, 16, 32, 32]
    assert layer["rf"]["size"] == [3, 3] and layer["rf"]["stride"] == [1, 1] and layer["rf"]["global"] is False
    assert data["findings"] == []


def test_output_file_and_several_paths(tmp_path):
    out = tmp_path / "r.json"
    proc = run_cli(str(onnx_path("plain_cnn")), str(onnx_path("dilated_stack")), "--format", "json",
                   "--output", str(out), "--no-lint")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert [d["totals"]["macs"] for d in data] == [1_917_568, 1_417_216]


def test_onnx_path_never_imports_torch():
    code = ("import sys, atexit\n"
            "atexit.register(lambda: sys.stderr.write('TORCH_IMPORTED=%s NX_IMPORTED=%s\\n' % (\n"
            "    'torch' in sys.modules, 'networkx' in sys.modules)))\n"
            "sys.argv = ['archlint', sys.argv[1], '--format', 'json']\n"
            "from archlint.cli import main\n"
            "main()\n")
    proc = subprocess.run([sys.executable, "-c", code, str(onnx_path("tiny_vit"))], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "TORCH_IMPORTED=False" in proc.stderr
    # networkx (0.15 s to import) is only loaded when a caller asks for report.graph.g
    assert "NX_IMPORTED=False" in proc.stderr
    assert json.loads(proc.stdout)["totals"]["macs"] == 256_384


def test_graph_g_is_networkx_with_every_layer_and_edge():
    import networkx as nx
    import archlint
    report = archlint.analyze(str(onnx_path("resnet_small")))
    g = report.graph.g
    assert isinstance(g, nx.DiGraph) and nx.is_directed_acyclic_graph(g)
    assert list(g.nodes) == [r.name for r in report.layers]
    for name in g:
        assert sorted(g.successors(name)) == sorted(report.graph.successors(name))
        for src in g.predecessors(name):
            assert g.edges[src, name]["tensors"] == report.graph.edge_tensors(src, name)
    # the residual adds read two producers
    adds = [r.name for r in report.layers if r.op == "Add"]
    assert adds and all(len(report.graph.predecessors(a)) == 2 for a in adds)


def test_import_archlint_does_not_import_torch():
    proc = subprocess.run([sys.executable, "-c", "import sys, archlint; print('torch' in sys.modules)"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.stdout.strip() == "False"


def test_external_data_absent_still_analyses(tmp_path):
    """The dynamo export keeps its weights in a .data file; without it, params come from dims."""
    src = onnx_path("resnet_small", "dynamo")
    shutil.copy(src, tmp_path / src.name)  # no .data beside it
    proc = run_cli(str(tmp_path / src.name), "--format", "json", "--no-lint")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["totals"]["macs"] == 6_865_216


# ------------------------------------------------------------------ bad input
def test_missing_path():
    assert_one_line_error(run_cli("does/not/exist.onnx"), "does/not/exist.onnx", "no such file")


def test_text_file_named_onnx(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_text("this is not a model\n" * 20)
    assert_one_line_error(run_cli(str(path)), "model.onnx")


def test_truncated_onnx(tmp_path):
    data = onnx_path("resnet_small").read_bytes()
    path = tmp_path / "truncated.onnx"
    path.write_bytes(data[: len(data) // 3])
    assert_one_line_error(run_cli(str(path)), "truncated.onnx")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    assert_one_line_error(run_cli(str(path)), "empty.onnx")


def test_symbolic_dim_without_input_shape():
    """A symbolic leading (batch) dim is taken as 1, with a one-line note (issue 17.10): the
    MACs are those of the static batch-1 export."""
    proc = run_cli(str(onnx_path("plain_cnn_dynamic")), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["totals"]["macs"] == 1_917_568
    assert "symbolic batch dimension 'batch' taken as 1" in proc.stderr


def test_symbolic_dim_with_input_shape():
    proc = run_cli(str(onnx_path("plain_cnn_dynamic")), "--input-shape", "input=2x3x32x32", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["totals"]["macs"] == 2 * 1_917_568


def test_input_shape_forms_agree():
    results = set()
    for spec in ("2x3x32x32", "2,3,32,32", "input=2x3x32x32"):
        proc = run_cli(str(onnx_path("plain_cnn_dynamic")), "--input-shape", spec, "--format", "json")
        assert proc.returncode == 0, proc.stderr
        results.add(json.loads(proc.stdout)["totals"]["macs"])
    assert results == {2 * 1_917_568}


def test_malformed_input_shape():
    for spec in ("1x3xax224", "1x3x-2x2", "=1x3", "1x3x0x4"):
        assert_one_line_error(run_cli(str(onnx_path("plain_cnn")), "--input-shape", spec), "--input-shape")


def test_input_shape_wrong_rank_and_name():
    assert_one_line_error(run_cli(str(onnx_path("plain_cnn")), "--input-shape", "1x3x32"), "3 dimensions")
    assert_one_line_error(run_cli(str(onnx_path("plain_cnn")), "--input-shape", "image=1x3x32x32"), "image")


def _model_with_custom_op(path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 4, 3, 3], [0.0] * 144)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("FancyNorm", ["c"], ["y"], domain="com.example", name="fancy")]
    graph = helper.make_graph(nodes, "g", [x], [y], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    onnx.save(model, str(path))


def test_unknown_domain_op_is_listed_and_totals_partial(tmp_path):
    path = tmp_path / "custom.onnx"
    _model_with_custom_op(path)
    proc = run_cli(str(path), "--format", "json", "--no-lint")
    assert proc.returncode == 0
    assert "totals are partial" in proc.stderr and "Traceback" not in proc.stderr
    data = json.loads(proc.stdout)
    assert data["totals"]["partial"] is True
    assert data["totals"]["uncounted_ops"] == [
        {"layer": "fancy", "op": "com.example.FancyNorm", "reason": "no cost formula for op 'com.example.FancyNorm'"}]
    assert data["totals"]["macs"] == 8 * 8 * 4 * 4 * 9  # the conv is still counted
    fancy = next(x for x in data["layers"] if x["name"] == "fancy")
    assert fancy["macs"] is None and fancy["flops"] is None  # never a silent zero
    table = run_cli(str(path))
    assert "not costed" in table.stdout and "fancy (com.example.FancyNorm)" in table.stdout
    # linted, the partial totals are a finding (AL302, info): exit 0 under the default fail-on, as the README says
    assert table.returncode == 0 and "AL302 [info]" in table.stdout


def test_pickled_torch_file_is_refused(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"\x80\x04not really a pickle")
    assert_one_line_error(run_cli(str(path)), "never loaded", "factory")


def test_cycle_is_an_error(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    nodes = [helper.make_node("Add", ["x", "b"], ["a"], name="n1"), helper.make_node("Relu", ["a"], ["b"], name="n2"),
             helper.make_node("Identity", ["a"], ["y"], name="n3")]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y]), opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "cycle.onnx"
    path.write_bytes(model.SerializeToString())
    assert_one_line_error(run_cli(str(path)), "cycle")


def test_json_lines_are_exactly_json_dumps():
    """The streamed writer reuses one C encoder instead of calling json.dumps per line; the
    text must stay the same, byte for byte (ASCII escapes, float repr, key order)."""
    import archlint
    for name in ("resnet_small", "encoder_decoder"):
        report = archlint.analyze(onnx_path(name))
        report.layers[0].name = "conv\u00e9 \"quoted\""  # non-ASCII and a quote: escaped as json.dumps does
        lines = report.to_json().splitlines()
        layer_lines = [line.strip().rstrip(",") for line in lines
                       if line.startswith("    {") and '"macs"' in line and '"rf"' in line]
        assert layer_lines == [json.dumps(rec.to_dict()) for rec in report.layers]
        assert '"conv\\u00e9 \\"quoted\\""' in layer_lines[0]
        assert any("e-" in line for line in layer_lines)  # an est_time_s float in exponent form
        assert json.loads(report.to_json()) == json.loads(json.dumps(report.to_dict()))


def test_nodes_out_of_order_are_sorted(tmp_path):
    """ONNX requires sorted nodes, but a hand-edited file may not be: relu is listed before the
    conv that feeds it. The IR notices the backward edge and sorts (conv, relu, add), and the
    costs are those of the sorted graph: conv 1x1 3->3 at 4x4 = 16*3*3 = 144 MACs."""
    from archlint.frontends import onnx_frontend
    w = helper.make_tensor("w", TensorProto.FLOAT, [3, 3, 1, 1], [0.0] * 9)
    nodes = [helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("Add", ["r", "c"], ["y"], name="add")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4, 4])], [w])
    path = tmp_path / "unsorted.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    ir = onnx_frontend.load(path)
    assert [layer.name for layer in ir.layers()] == ["conv", "relu", "add"]
    assert ir.predecessors("add") == ["relu", "conv"] and ir.successors("conv") == ["relu", "add"]
    assert ir.edge_tensors("conv", "add") == ["c"] and ir.edge_tensors("relu", "conv") == []
    proc = run_cli(str(path), "--format", "json", "--no-lint")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["totals"]["macs"] == 144
