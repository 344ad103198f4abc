"""Per-layer output shapes against the shapes onnxruntime actually produces when every
intermediate value is exposed as a graph output."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

import archlint
from tests.conftest import FIXTURES, onnx_path

ort = pytest.importorskip("onnxruntime")


def runtime_shapes(path, feed_shape) -> dict[str, tuple[int, ...]]:
    model = onnx.load(str(path))  # with external data: it has to run
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for d, size in zip(dims, feed_shape):
        d.Clear()
        d.dim_value = size
    del model.graph.value_info[:]
    for out in model.graph.output:
        out.type.tensor_type.ClearField("shape")
    inferred = onnx.shape_inference.infer_shapes(model)
    produced = {o for n in model.graph.node for o in n.output if o}
    existing = {o.name for o in model.graph.output}
    for vi in inferred.graph.value_info:
        if vi.name in produced and vi.name not in existing:
            model.graph.output.append(vi)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    feed = {sess.get_inputs()[0].name: np.random.rand(*feed_shape).astype(np.float32)}
    return {n: tuple(v.shape) for n, v in zip(names, sess.run(names, feed))}


@pytest.mark.parametrize("name", FIXTURES)
@pytest.mark.parametrize("exporter", ["torchscript", "dynamo"])
def test_every_layer_shape_matches_onnxruntime(name, exporter):
    path = onnx_path(name, exporter)
    report = archlint.analyze(path)
    feed_shape = tuple(report.model["inputs"][0]["shape"])
    actual = runtime_shapes(path, feed_shape)
    graph = report.graph
    checked = 0
    for layer in graph.layers():
        for t in layer.outputs:
            if t in actual:
                assert graph.shape(t) == actual[t], (layer.name, t, graph.shape(t), actual[t])
                checked += 1
    float_outputs = [rec for rec in report.layers if rec.is_data]
    assert checked >= len(float_outputs) > 5


def test_symbolic_batch_resolved_by_input_shape():
    """plain_cnn_dynamic has batch 'batch': with --input-shape 4x3x32x32 every shape
    matches onnxruntime at batch 4, and MACs are 4x the batch-1 figure."""
    path = onnx_path("plain_cnn_dynamic")
    report = archlint.analyze(path, input_shape="input=4x3x32x32")
    actual = runtime_shapes(path, (4, 3, 32, 32))
    for layer in report.graph.layers():
        for t in layer.outputs:
            if t in actual:
                assert report.graph.shape(t) == actual[t]
    assert report.totals.macs == 4 * archlint.analyze(onnx_path("plain_cnn")).totals.macs


def test_input_size_override_changes_shapes():
    """A fully convolutional net at a new size: dilated_stack at 48x40 keeps the size
    (padding = dilation), so the last conv outputs 1x2x48x40."""
    report = archlint.analyze(onnx_path("dilated_stack"), input_shape=(1, 3, 48, 40))
    assert report.layers[-1].output_shape == (1, 2, 48, 40)
    actual = runtime_shapes(onnx_path("dilated_stack"), (1, 3, 48, 40))
    assert actual[report.graph.outputs[0]] == (1, 2, 48, 40)
