"""ONNX opsets 11 to 21: the same networks exported (or converted) at several opsets give
the same MACs, params and output shapes."""

from __future__ import annotations

import io
import warnings

import onnx
import pytest
from onnx import version_converter

import archlint
from tests.conftest import onnx_path

torch = pytest.importorskip("torch")
from fixtures.networks import NETWORKS, build  # noqa: E402

NAMES = ["resnet_small", "encoder_decoder", "tiny_vit", "mobilenet_v2_small"]


def export(name: str, opset: int) -> onnx.ModelProto:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(build(name), (torch.randn(*NETWORKS[name][1]),), buf, dynamo=False, opset_version=opset)
    return onnx.load_from_string(buf.getvalue())


def summary(report):
    return report.totals.macs, report.totals.params, report.layers[-1].output_shape, report.totals.partial


@pytest.mark.parametrize("name", NAMES)
def test_opsets_agree(name):
    reference = summary(archlint.analyze(onnx_path(name)))  # opset 17
    assert reference[3] is False
    low = 14 if name == "tiny_vit" else 11  # scaled_dot_product_attention exports from opset 14
    for opset in (low, 13 if low < 13 else 16, 20):
        assert summary(archlint.analyze(export(name, opset))) == reference, opset
    converted = version_converter.convert_version(onnx.load(str(onnx_path(name))), 21)
    assert converted.opset_import[0].version == 21
    assert summary(archlint.analyze(converted)) == reference
