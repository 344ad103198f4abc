"""The notebook API: filtering, top-k, pandas, and before/after comparison."""

from __future__ import annotations

import pytest

import archlint
from archlint.errors import ArchlintError
from tests.conftest import onnx_path

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402


def test_filter_and_top():
    report = archlint.analyze(onnx_path("resnet_small"))
    convs = report.filter(kind="conv")
    assert len(convs) == 10 and all(r.kind == "conv" for r in convs)
    assert [r.name for r in report.filter(kind="conv", name="/layer2/*downsample*")] == [
        "/layer2/layer2.0/downsample/downsample.0/Conv"]
    top = report.top(3)
    assert top[0].name == "/conv1/Conv" and top[0].macs == 2_408_448  # the 7x7 stem: 32*32*16*3*49
    assert [r.macs for r in top] == sorted((r.macs or 0 for r in report.layers), reverse=True)[:3]


def test_to_pandas_or_a_clear_message():
    report = archlint.analyze(onnx_path("plain_cnn"))
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(ArchlintError, match="pip install pandas"):
            report.to_pandas()
        return
    frame = report.to_pandas()
    assert len(frame) == len(report.layers) and frame["macs"].sum() == report.totals.macs


class Net(nn.Sequential):
    pass


def test_compare_before_and_after_a_suggestion():
    """Applying AL101 to a 3x3 conv 32->64 at 16x16: MACs 4,718,592 -> 598,016 (dw 73,728 + pw 524,288)."""
    before = archlint.analyze(Net(nn.Conv2d(32, 64, 3, padding=1, bias=False)), input_shape=(1, 32, 16, 16))
    after = archlint.analyze(Net(nn.Conv2d(32, 32, 3, padding=1, groups=32, bias=False),
                                 nn.Conv2d(32, 64, 1, bias=False)), input_shape=(1, 32, 16, 16))
    delta = archlint.compare(before, after)
    assert delta["totals"]["macs"] == {"before": 4_718_592, "after": 598_016, "delta": 598_016 - 4_718_592,
                                       "ratio": 598_016 / 4_718_592}
    rows = {r["name"]: r for r in delta["layers"]}
    assert rows["0"]["status"] == "changed" and rows["0"]["macs"]["after"] == 73_728
    assert rows["1"]["status"] == "added" and rows["1"]["macs"]["after"] == 524_288
