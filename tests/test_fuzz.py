"""Untrusted input: every file or option ends in a one-line error (ArchlintError, exit 2) or
a correct analysis; never a traceback, a hang or unbounded memory. A fast slice runs here;
``ARCHLINT_EXAMPLES=5000 python -m pytest tests/test_fuzz.py`` is the long run."""

from __future__ import annotations

import os
import resource
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

import archlint
from archlint.config import from_dict
from archlint.errors import ArchlintError
from archlint.input_spec import parse
from archlint.lint import lint
from archlint.reporters import table
from tests.conftest import ROOT, onnx_path

EXAMPLES = int(os.environ.get("ARCHLINT_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=20_000, derandomize=EXAMPLES <= 100, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
SEED = onnx_path("dilated_stack").read_bytes()


def analyse_or_clean_error(path, **kwargs):
    """The contract, in process: a Report that renders, or an ArchlintError with one line."""
    try:
        report = archlint.analyze(path, **kwargs)
    except ArchlintError as exc:
        assert str(exc) and "\n" not in str(exc).strip()
        return None
    lint(report)
    report.to_json()
    table.render(report)
    assert report.totals.params >= 0 and report.totals.macs >= 0
    return report


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(SEED) - 1), st.integers(0, 255)), min_size=1, max_size=20),
       st.one_of(st.none(), st.integers(0, len(SEED))))
def test_mutated_and_truncated_bytes(tmp_path_factory, mutations, cut):
    data = bytearray(SEED)
    for pos, value in mutations:
        data[pos] = value
    if cut is not None:
        data = data[:cut]
    path = tmp_path_factory.mktemp("fuzz") / "m.onnx"
    path.write_bytes(bytes(data))
    analyse_or_clean_error(path)


def _model(nodes, inputs, outputs, inits=(), opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


dims = st.one_of(st.integers(-3, 4), st.sampled_from([0, 2**31, 2**62]))


@FUZZ
@given(st.lists(dims, min_size=1, max_size=5), st.lists(dims, min_size=1, max_size=5),
       st.sampled_from(["Conv", "Relu", "MatMul", "Gemm", "Add", "Reshape", "ConstantOfShape", "Flatten", "MaxPool"]))
def test_absurd_dims(tmp_path_factory, in_dims, w_dims, op):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, in_dims)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=w_dims)
    w.data_location = TensorProto.EXTERNAL
    entry = w.external_data.add()
    entry.key, entry.value = "location", "missing.bin"
    attrs = {"kernel_shape": [3] * 2} if op == "MaxPool" else {}
    node = helper.make_node(op, ["x", "w"] if op not in ("Relu", "ConstantOfShape", "Flatten", "MaxPool") else ["x"],
                            ["y"], name="n", **attrs)
    path = tmp_path_factory.mktemp("dims") / "m.onnx"
    path.write_bytes(_model([node], [x], [y], [w]).SerializeToString())
    analyse_or_clean_error(path)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(["Relu", "Add", "Conv", "Concat", "Identity", "Mul"]),
                          st.lists(st.sampled_from(["x", "a", "b", "c", "ghost"]), min_size=1, max_size=3),
                          st.sampled_from(["a", "b", "c", "y"]), st.sampled_from(["n", "m", "n"])),
                min_size=1, max_size=6))
def test_random_wiring_cycles_missing_producers_duplicate_names(tmp_path_factory, nodes):
    made = [helper.make_node(op, ins, [out], name=name, **({"axis": 1} if op == "Concat" else {}))
            for op, ins, out, name in nodes]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    path = tmp_path_factory.mktemp("wiring") / "m.onnx"
    path.write_bytes(_model(made, [x], [y]).SerializeToString())
    analyse_or_clean_error(path)


def test_huge_attribute_lists(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w = helper.make_tensor("w", TensorProto.FLOAT, [1, 1, 3, 3], [1.0] * 9)
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", kernel_shape=[3] * 100_000,
                            strides=[1] * 100_000, pads=[0] * 200_000)
    path = tmp_path / "m.onnx"
    path.write_bytes(_model([node], [x], [y], [w]).SerializeToString())
    report = analyse_or_clean_error(path)
    assert report is None or report.totals.partial


@FUZZ
@given(st.text(max_size=40))
def test_input_shape_specs(text):
    try:
        shapes = parse(text)
    except ArchlintError as exc:
        assert "\n" not in str(exc)
        return
    for dims in list(shapes.named.values()) + list(shapes.positional):
        assert all(1 <= d < 2**31 for d in dims)


toml_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                                     st.text(max_size=8)),
                           lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                   st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                           max_leaves=8)


@FUZZ
@given(st.dictionaries(st.sampled_from(["select", "ignore", "fail-on", "models", "input-shapes", "budgets", "rules",
                                        "per-layer-ignores", "per-file-ignores", "bogus"]), toml_values, max_size=4))
def test_configs(table_):
    try:
        config = from_dict(table_)
    except ArchlintError as exc:
        assert "\n" not in str(exc)
        return
    lint(archlint.analyze(onnx_path("plain_cnn")), config)


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))


def test_external_data_outside_the_model_directory_is_never_read(tmp_path):
    """The initializer's data 'lives' in ../outside/fifo, a named pipe: opening it would block
    forever, so finishing at all proves it was not read."""
    outside = tmp_path / "outside"
    outside.mkdir()
    os.mkfifo(outside / "fifo")
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4, 2, 3, 3])
    w.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "../outside/fifo"), ("offset", "0"), ("length", "288")):
        entry = w.external_data.add()
        entry.key, entry.value = key, value
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", pads=[1, 1, 1, 1])
    (model_dir / "m.onnx").write_bytes(_model([node], [x], [y], [w]).SerializeToString())
    proc = subprocess.run([sys.executable, "-m", "archlint", str(model_dir / "m.onnx"), "--format", "json"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120, preexec_fn=_limit_memory)
    assert proc.returncode in (0, 1), proc.stderr
    assert '"params": 72' in proc.stdout and '"macs": 4608' in proc.stdout  # 4*2*9; 8*8*4*2*9


@pytest.mark.parametrize("dims", [[1, 3, 2**31 - 1, 2], [2**62, 3, 4, 4], [1, 3, 0, 4], [-1, 3, 4, 4]])
def test_absurd_declared_input_dims_in_a_subprocess(tmp_path, dims):
    """Bounded in time (60 s) and memory (3 GiB): an answer or a one-line error, no traceback."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w = helper.make_tensor("w", TensorProto.FLOAT, [2, 3, 3, 3], [0.5] * 54)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Shape", ["c"], ["s"], name="shape"),
             helper.make_node("ConstantOfShape", ["s"], ["z"], name="zeros"),
             helper.make_node("Add", ["c", "z"], ["y"], name="add")]
    path = tmp_path / "m.onnx"
    path.write_bytes(_model(nodes, [x], [y], [w]).SerializeToString())
    proc = subprocess.run([sys.executable, "-m", "archlint", str(path)], capture_output=True, text=True, cwd=ROOT,
                          timeout=60, preexec_fn=_limit_memory)
    assert "Traceback" not in proc.stderr
    if proc.returncode == 2:
        assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("archlint: error:")
    else:
        assert proc.returncode in (0, 1)
