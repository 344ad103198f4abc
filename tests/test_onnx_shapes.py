"""Per-layer output shapes against the shapes onnxruntime actually produces when every
intermediate value is exposed as a graph output."""

from __future__ import annotations

import onnx
import pytest

import archlint
from tests import helpers
from tests.conftest import FIXTURES, onnx_path

ort = pytest.importorskip("onnxruntime")


def runtime_shapes(path, feed_shape):
    return helpers.runtime_shapes(onnx.load(str(path)), feed_shape)  # with external data: it has to run


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
