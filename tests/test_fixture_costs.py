"""Every fixture's MACs against torch's FlopCounterMode (MACs = FlopCounterMode total / 2,
torchvision, pytorch/vision#6936), through the ONNX path (both exporters) and the PyTorch path."""

from __future__ import annotations

import pytest

import archlint
from tests.conftest import FIXTURES, onnx_path

torch = pytest.importorskip("torch")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from fixtures.networks import NETWORKS, build  # noqa: E402


def flop_counter_macs(model, shape) -> int:
    """FlopCounterMode with SDPA on the math backend and grad enabled (its reference setting)."""
    x = torch.randn(*shape)
    counter = FlopCounterMode(display=False)
    with torch.nn.attention.sdpa_kernel(torch.nn.attention.SDPBackend.MATH), counter:
        model(x)
    total = counter.get_total_flops()
    assert total % 2 == 0
    return total // 2


@pytest.fixture(scope="module")
def reference():
    return {name: flop_counter_macs(build(name), NETWORKS[name][1]) for name in FIXTURES}


@pytest.mark.parametrize("name", FIXTURES)
@pytest.mark.parametrize("exporter", ["torchscript", "dynamo"])
def test_onnx_macs_equal_flop_counter(name, exporter, reference):
    report = archlint.analyze(onnx_path(name, exporter))
    assert report.totals.macs == reference[name]
    assert not report.totals.partial


@pytest.mark.parametrize("name", FIXTURES)
def test_torch_macs_and_params(name, reference):
    model = build(name)
    report = archlint.analyze(model, input_shape=NETWORKS[name][1])
    assert report.totals.macs == reference[name]
    assert report.totals.params == sum(p.numel() for p in model.parameters())
    assert report.model["tracer"] == "torch.fx"


def test_resnet_small_hand_count():
    """resnet_small at 64x64, derived by hand from the conv formula N*Ho*Wo*Co*(Ci/G)*k*k
    MACs = Ho*Wo*Co*(Ci/G)*k*k:
    stem 32*32*16*3*49 = 2,408,448; layer1: four 3x3 16->16 at 16x16: 4*256*16*16*9 = 2,359,296;
    layer2: conv 16->32 s2 at 8x8: 64*32*16*9 = 294,912; downsample 1x1: 64*32*16 = 32,768;
    three 3x3 32->32 at 8x8: 3*64*32*32*9 = 1,769,472; fc 32->10: 320. Total 6,865,216."""
    report = archlint.analyze(onnx_path("resnet_small"))
    assert report.totals.macs == 2_408_448 + 2_359_296 + 294_912 + 32_768 + 1_769_472 + 320
