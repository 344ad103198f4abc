"""Applying fixes: the rewritten model re-analyses to exactly the Fix's promised params and MACs,
keeps its output receptive field (AL101-AL103), stays valid with the same output shapes
(onnx.checker, onnxruntime), and safe fixes keep the outputs (torch and onnxruntime)."""

from __future__ import annotations

import shutil

import numpy as np
import onnx
import pytest

import archlint
from archlint.analyses import rewrite
from archlint.fixes import onnx_writer
from archlint.fixes import weights as W
from tests.conftest import FIXTURES, ONNX_DIR, onnx_path
from tests.test_rewrite import conv_model

ort = pytest.importorskip("onnxruntime")

KINDS = {
    "AL101": rewrite.depthwise_separable,
    "AL102": lambda g, la: rewrite.grouped(g, la, 2),
    "AL103": rewrite.stacked_3x3,
    "AL105": rewrite.pool_then_pointwise,
}


def _fixes(report, code, limit=2):  # type: ignore[no-untyped-def]
    graph = report.graph
    out = []
    for layer in graph.layers():
        try:
            out.append(KINDS[code](graph, layer).compute_cost(graph, report.profile, "fp32"))
        except rewrite.NotApplicable:
            continue
        if len(out) == limit:
            break
    return out


def _run(model, base_dir=None, seed=0):  # type: ignore[no-untyped-def]
    model = onnx_writer.with_data(model, base_dir)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    feeds = {i.name: rng.standard_normal([d if isinstance(d, int) else 1 for d in i.shape]).astype("float32")
             for i in sess.get_inputs()}
    return sess.run(None, feeds)


def _fields(report):  # type: ignore[no-untyped-def]
    outs = set(report.graph.outputs)
    return {t: rec.rf[0].to_dict() if rec.rf else None for rec in report.layers
            for t in report.graph.layer(rec.name).outputs if t in outs}


@pytest.mark.parametrize("exporter", ["torchscript", "dynamo"])
@pytest.mark.parametrize("name", FIXTURES)
def test_fixed_fixture_reanalyses_to_the_promised_cost(name, exporter, tmp_path):
    """Totals after = totals before - sum(fix.before) + sum(fix.after), exactly, for params and
    MACs; output fields unchanged except for AL105; onnxruntime runs the rewritten model with
    the original's output shapes."""
    path = onnx_path(name, exporter)
    report = archlint.analyze(path, lint=False)
    original = onnx.load(path, load_external_data=False)
    expected_shapes = [o.shape for o in _run(original, str(ONNX_DIR))]
    tried = 0
    for code in KINDS:
        fixes = _fixes(report, code)
        if not fixes:
            continue
        tried += 1
        result = archlint.apply(path, fixes, unsafe=True)
        assert all(o.applied for o in result.outcomes), [str(o) for o in result.outcomes]
        out = tmp_path / code / path.name
        out.parent.mkdir()
        result.save(out)
        after = archlint.analyze(out, lint=False)
        assert after.totals.params == report.totals.params + sum(f.after.params - f.before.params for f in fixes)
        assert after.totals.macs == report.totals.macs + sum(f.after.macs - f.before.macs for f in fixes)
        if code != "AL105":
            assert _fields(after) == _fields(report)
        assert [o.shape for o in _run(result.model, str(ONNX_DIR))] == expected_shapes
        assert [o.shape for o in _run(onnx.load(out))] == expected_shapes  # external data copied next to it
        for o in result.outcomes:
            assert o.weight_error is not None and 0 <= o.weight_error <= 1 + 1e-9
    assert tried >= 1 or name == "tiny_vit"


def test_external_data_stays_external(tmp_path):
    src = onnx_path("resnet_small", "dynamo")
    result = archlint.apply(src, _fixes(archlint.analyze(src, lint=False), "AL101", 1), unsafe=True)
    out = tmp_path / "fixed.onnx"
    result.save(out)
    saved = onnx.load(out, load_external_data=False)
    external = [i for i in saved.graph.initializer if i.data_location == onnx.TensorProto.EXTERNAL]
    assert external and (tmp_path / "resnet_small.dynamo.onnx.data").exists()
    assert saved.opset_import == onnx.load(src, load_external_data=False).opset_import


def test_missing_weight_data_gives_shapes_only_fixes(tmp_path):
    """ONNX whose external data file is absent: the fix applies with He-initialised weights and
    says so; no weight error is claimed."""
    src = onnx_path("plain_cnn", "dynamo")
    shutil.copy(src, tmp_path / src.name)
    report = archlint.analyze(src, lint=False)
    fixes = _fixes(report, "AL101", 1)
    result = archlint.apply(tmp_path / src.name, fixes, unsafe=True)
    (o,) = result.outcomes
    assert o.applied and o.weight_error is None and "shapes only" in o.notes[0]


def test_weight_in_a_constant_node_is_carried():
    """paddle2onnx writes weights as Constant nodes: a Conv 4 -> 6, 3x3 whose weight is a rank-1
    tensor per input channel (W[:, c] = a[:, c] outer k_c) is decomposed by AL101 exactly
    (Eckart-Young: the depthwise-separable pair reproduces it, relative error 0), so the rewritten
    model's onnxruntime output equals the original's; the old weight's Constant node is gone and
    the params are the pair's, 4*9 + 6*4 = 60 (were 216)."""
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(0)
    w = np.einsum("oc,cij->ocij", rng.standard_normal((6, 4)), rng.standard_normal((4, 3, 3))).astype(np.float32)
    nodes = [helper.make_node("Constant", [], ["w"], value=numpy_helper.from_array(w, "w_value")),
             helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1], name="conv")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6, 8, 8])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    report = archlint.analyze(model, lint=False)
    result = archlint.apply(model, _fixes(report, "AL101", 1), unsafe=True)
    (o,) = result.outcomes
    assert o.applied and o.weight_error is not None and o.weight_error < 1e-6
    assert not [n for n in result.model.graph.node if n.op_type == "Constant"]
    (y,), (y_hat,) = _run(model), _run(result.model)
    np.testing.assert_allclose(y_hat, y, atol=1e-4, rtol=1e-4)
    assert archlint.analyze(result.model, lint=False).totals.params == 60


def _bias_bn_model():  # type: ignore[no-untyped-def]
    return conv_model(ci=8, co=16, bn=True)


def test_safe_fix_keeps_onnx_outputs():
    """AL106 on Conv(bias) -> BatchNormalization: onnxruntime outputs equal within 1e-5, params
    drop by the 16 bias elements, and it applies without unsafe=True."""
    model = _bias_bn_model()
    report = archlint.analyze(model, lint=False)
    fix = rewrite.drop_bias_into_batchnorm(report.graph, report.graph.layer("conv"), report.graph.layer("bn"))
    unsafe_only = archlint.apply(model, [rewrite.depthwise_separable(report.graph, report.graph.layer("conv"))])
    assert not unsafe_only.outcomes[0].applied and "unsafe" in unsafe_only.outcomes[0].reason
    result = archlint.apply(model, [fix])
    assert result.outcomes[0].applied and result.outcomes[0].output_error < 1e-6
    (y,), (y_hat,) = _run(model), _run(result.model)
    np.testing.assert_allclose(y_hat, y, atol=1e-5, rtol=1e-5)
    assert archlint.analyze(result.model, lint=False).totals.params == report.totals.params - 16
    assert len(model.graph.node[0].input) == 3  # the input model is untouched


def test_onnx_suppression_is_respected():
    model = conv_model()
    meta = model.graph.node[0].metadata_props.add()
    meta.key, meta.value = "archlint.ignore", "AL101"
    report = archlint.analyze(model, lint=False)
    fixes = [rewrite.depthwise_separable(report.graph, report.graph.layer("conv"))]
    result = archlint.apply(model, fixes, unsafe=True)
    assert not result.outcomes[0].applied and "archlint.ignore" in result.outcomes[0].reason
    assert result.model.graph.node[0].op_type == "Conv" and len(result.model.graph.node) == 1


def test_gone_layer_is_reported():
    report = archlint.analyze(conv_model(), lint=False)
    fix = rewrite.depthwise_separable(report.graph, report.graph.layer("conv"))
    other = conv_model()
    other.graph.node[0].name = "renamed"
    result = archlint.apply(other, [fix], unsafe=True)
    assert not result.outcomes[0].applied and "not found" in result.outcomes[0].reason


# --- weights carried over ---------------------------------------------------------------


def test_depthwise_svd_is_the_rank_one_optimum():
    """||W - W_hat||^2 = sum over input channels of the squared singular values after the first
    (Eckart-Young), and a W whose every W[:, c] has rank 1 is reproduced exactly."""
    rng = np.random.default_rng(1)
    w = rng.standard_normal((6, 4, 3, 3))
    dw, pw, w_hat = W.depthwise_separable(w)
    tail = sum(float((np.linalg.svd(w[:, c].reshape(6, 9), compute_uv=False)[1:] ** 2).sum()) for c in range(4))
    assert W.relative_error(w, w_hat) == pytest.approx(np.sqrt(tail) / np.linalg.norm(w), rel=1e-10)
    rank1 = np.einsum("oc,cij->ocij", rng.standard_normal((6, 4)), rng.standard_normal((4, 3, 3)))
    assert W.relative_error(rank1, W.depthwise_separable(rank1)[2]) < 1e-12
    assert dw.shape == (4, 1, 3, 3) and pw.shape == (6, 4, 1, 1)


def test_grouped_keeps_the_diagonal_blocks():
    """A block-diagonal W (G = 2) is reproduced exactly; a full W loses exactly its off-diagonal
    energy."""
    rng = np.random.default_rng(2)
    w = rng.standard_normal((4, 4, 3, 3))
    wg, w_hat = W.grouped(w, 2)
    off = np.linalg.norm(w[:2, 2:]) ** 2 + np.linalg.norm(w[2:, :2]) ** 2
    assert W.relative_error(w, w_hat) == pytest.approx(np.sqrt(off) / np.linalg.norm(w))
    assert W.relative_error(w_hat, W.grouped(w_hat, 2)[1]) == 0
    assert wg.shape == (4, 2, 3, 3)


def test_stacked_3x3_reproduces_a_kernel_with_only_a_centre():
    """A 5x5 kernel that is zero outside its centre 3x3 is exactly the stack (centre crop, then
    identity); composing two 3x3 kernels gives the 5x5 full correlation."""
    rng = np.random.default_rng(3)
    w = np.zeros((4, 4, 5, 5))
    w[:, :, 1:4, 1:4] = rng.standard_normal((4, 4, 3, 3))
    kernels, w_hat = W.stacked_3x3(w, 2, 1)
    assert W.relative_error(w, w_hat) < 1e-12
    a, b = rng.standard_normal((1, 1, 3, 3)), rng.standard_normal((1, 1, 3, 3))
    composed = W.compose(a, b)[0, 0]
    expected = np.zeros((5, 5))
    for i in range(3):
        for j in range(3):
            expected[i:i + 3, j:j + 3] += b[0, 0, i, j] * a[0, 0]
    np.testing.assert_allclose(composed, expected)


def test_safe_fix_on_gemm_with_beta_keeps_outputs():
    """Gemm(x, W, C, transB=1, beta=0.5) -> BatchNormalization: the bias the BatchNorm sees is
    beta*C, so mean' = mean - 0.5*C; onnxruntime's outputs agree within 1e-5."""
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(4)
    inits = [numpy_helper.from_array(rng.standard_normal((6, 5)).astype("float32"), "W"),
             numpy_helper.from_array(rng.standard_normal(6).astype("float32"), "C")]
    for name, value in (("s", rng.uniform(0.5, 2, 6)), ("b", rng.standard_normal(6)),
                        ("m", rng.standard_normal(6)), ("v", rng.uniform(0.5, 2, 6))):
        inits.append(numpy_helper.from_array(value.astype("float32"), name))
    nodes = [helper.make_node("Gemm", ["x", "W", "C"], ["h"], name="fc", transB=1, beta=0.5),
             helper.make_node("BatchNormalization", ["h", "s", "b", "m", "v"], ["y"], name="bn")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 6])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    meta = model.metadata_props.add()
    meta.key, meta.value = "author", "test"
    g = archlint.analyze(model, lint=False).graph
    result = archlint.apply(model, [rewrite.drop_bias_into_batchnorm(g, g.layer("fc"), g.layer("bn"))])
    assert result.outcomes[0].applied
    assert [n.op_type for n in result.model.graph.node] == ["Gemm", "BatchNormalization"]
    assert list(result.model.graph.node[0].input) == ["x", "W"]
    np.testing.assert_allclose(_run(result.model)[0], _run(model)[0], atol=1e-5, rtol=1e-5)
    assert result.model.metadata_props[0].value == "test" and result.model.opset_import == model.opset_import


def test_identity_alias_of_a_replaced_weight_is_removed():
    """TorchScript stores equal weights once and re-creates the copy with Identity: after conv b's
    weight alias is replaced, the dead Identity goes too, so re-analysis gives the promised params."""
    from onnx import TensorProto, helper, numpy_helper
    w = np.random.default_rng(5).standard_normal((8, 8, 3, 3)).astype("float32")
    nodes = [helper.make_node("Identity", ["w0"], ["w1"], name="alias"),
             helper.make_node("Conv", ["x", "w0"], ["h"], name="a", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["h", "w1"], ["y"], name="b", kernel_shape=[3, 3], pads=[1, 1, 1, 1])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 6, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 6, 6])],
                              [numpy_helper.from_array(w, "w0")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    report = archlint.analyze(model, lint=False)
    fix = rewrite.depthwise_separable(report.graph, report.graph.layer("b")).compute_cost(report.graph)
    result = archlint.apply(model, [fix], unsafe=True)
    assert "Identity" not in [n.op_type for n in result.model.graph.node]
    after = archlint.analyze(result.model, lint=False)
    assert after.totals.params == report.totals.params - fix.before.params + fix.after.params


def test_changed_shapes_are_reported():
    report = archlint.analyze(conv_model(co=64), lint=False)
    fix = rewrite.depthwise_separable(report.graph, report.graph.layer("conv"))
    result = archlint.apply(conv_model(co=32), [fix], unsafe=True)
    assert not result.outcomes[0].applied and "shapes changed" in result.outcomes[0].reason


def test_a_constant_read_only_inside_a_branch_is_kept():
    """After a fix, Constant nodes no node reads are dropped; one read only inside an If branch
    (silero VAD's files read outer constants from their branches) is still read: it stays, and
    the model still passes onnx.checker."""
    from onnx import TensorProto, helper, numpy_helper
    then = helper.make_graph([helper.make_node("Add", ["x", "k"], ["t"])], "then", [],
                             [helper.make_tensor_value_info("t", TensorProto.FLOAT, [1, 4])])
    other = helper.make_graph([helper.make_node("Identity", ["x"], ["e"])], "else", [],
                              [helper.make_tensor_value_info("e", TensorProto.FLOAT, [1, 4])])
    nodes = [helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(np.ones((1, 4), np.float32))),
             helper.make_node("Constant", [], ["unused"], value=numpy_helper.from_array(np.ones(3, np.float32))),
             helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4]),
                                           helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx_writer._drop_unused(model)
    assert [n.output[0] for n in model.graph.node] == ["k", "y"]
    onnx.checker.check_model(model)
