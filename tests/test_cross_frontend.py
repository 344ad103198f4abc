"""The same network through the PyTorch frontend and through its ONNX exports gives
the same numbers: shapes of matching layers, total MACs, params (after accounting for
the exporter folding BatchNorm into the preceding convolution), receptive fields."""

from __future__ import annotations

import pytest

import archlint
from tests.conftest import FIXTURES, onnx_path

torch = pytest.importorskip("torch")
from fixtures.networks import NETWORKS, build  # noqa: E402


def dense_layers(report):
    return sorted((r.kind, r.output_shape, r.macs) for r in report.layers if r.kind in ("conv", "linear"))


@pytest.fixture(scope="module")
def torch_reports():
    return {name: (build(name), archlint.analyze(build(name), input_shape=NETWORKS[name][1])) for name in FIXTURES}


@pytest.mark.parametrize("name", FIXTURES)
@pytest.mark.parametrize("exporter", ["torchscript", "dynamo"])
def test_totals_and_dense_layers_agree(name, exporter, torch_reports):
    model, t = torch_reports[name]
    o = archlint.analyze(onnx_path(name, exporter))
    assert o.totals.macs == t.totals.macs
    # Both exporters fold each eval-mode BatchNorm(C) into the conv before it: the BN's
    # weight and bias (2C) disappear and the conv, which had no bias, gains one (C).
    bn_channels = sum(m.num_features for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert o.totals.params == t.totals.params - 2 * bn_channels + bn_channels
    assert dense_layers(o) == dense_layers(t)


@pytest.mark.parametrize("name", FIXTURES)
def test_shapes_match_by_module_name(name, torch_reports):
    """TorchScript exports name nodes after the module path (/layer1/layer1.0/conv1/Conv)."""
    _, t = torch_reports[name]
    o = archlint.analyze(onnx_path(name))
    torch_shapes = {r.module: r.output_shape for r in t.layers if r.kind in ("conv", "conv_transpose", "linear")}
    onnx_shapes = {r.module: r.output_shape for r in o.layers if r.kind in ("conv", "conv_transpose")}
    assert onnx_shapes and set(onnx_shapes) <= set(torch_shapes)
    for module, shape in onnx_shapes.items():
        assert torch_shapes[module] == shape, module


@pytest.mark.parametrize("name", FIXTURES)
@pytest.mark.parametrize("exporter", ["torchscript", "dynamo"])
def test_receptive_fields_agree(name, exporter, torch_reports):
    """Fields of every conv layer (as a multiset: names differ between the paths)."""
    _, t = torch_reports[name]
    o = archlint.analyze(onnx_path(name, exporter))

    def fields(report):
        return sorted((r.output_shape, r.rf[0].short()) for r in report.layers if r.kind == "conv" and r.rf)
    assert fields(o) == fields(t)
