"""Regressions found on real networks through the PyTorch path (issues 18 and 19), each on
a small model built here or in fixtures/torch_models.py (no torchvision in unit tests)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from archlint.frontends import torch_frontend  # noqa: E402
from archlint.input_spec import from_python  # noqa: E402
from archlint.report import build_report  # noqa: E402
from fixtures import torch_models as tm  # noqa: E402


def flop_counter_macs(model, shape):
    counter = FlopCounterMode(display=False)
    with torch.nn.attention.sdpa_kernel(torch.nn.attention.SDPBackend.MATH), counter:
        model(torch.randn(*shape))
    return counter.get_total_flops() // 2


@pytest.mark.parametrize("tracer", ["auto", "export"])
def test_multihead_attention_without_weights(tracer):
    """nn.MultiheadAttention(need_weights=False) returns (out, None), as in torchvision's
    vit_b_16 (it crashed with KeyError '...self_attention.1'). E=32, L=S=7, N=2:
    projections 4*N*L*E*E = 57,344, attention N*L*S*2E = 6,272, MLP 2*(N*L*32*64) = 57,344:
    120,960 MACs, which is also FlopCounterMode's total / 2."""
    torch.manual_seed(0)
    model = tm.ViTEncoderBlock().eval()
    report = build_report(torch_frontend.load_module(model, from_python((2, 7, 32)), tracer=tracer))
    assert report.totals.macs == 57_344 + 6_272 + 57_344 == flop_counter_macs(model, (2, 7, 32))
    assert report.totals.params == sum(p.numel() for p in model.parameters())
    assert not report.totals.partial
    if tracer == "auto":
        mha = report.layer("self_attention")
        assert mha.macs == 57_344 + 6_272 and mha.output_shape == (2, 7, 32)


def test_bitwise_operators_on_the_export_path():
    """``&``, ``|``, ``^``, ``~`` on boolean masks reach torch.export as aten.__and__,
    __or__, __xor__ and bitwise_not (as in transformers' DETR): elementwise, no MACs, so the
    totals are exact (conv 3->4 3x3 at 8x8: 8*8*4*27 = 6,912 MACs) and not partial."""
    report = build_report(torch_frontend.load_module(tm.BoolMaskNet(), from_python((1, 3, 8, 8)), tracer="export"))
    assert report.model["tracer"] == "torch.export"
    ops = {r.op: r.kind for r in report.layers}
    for name in ("__and__", "__or__", "__xor__", "bitwise_not"):
        assert ops.get(f"aten.{name}") == "elementwise", (name, ops)
    assert report.totals.macs == 6_912 == flop_counter_macs(tm.BoolMaskNet(), (1, 3, 8, 8))
    assert not report.totals.partial


def test_bitwise_aten_operators_are_elementwise():
    """Every overload of aten's Python-operator ops (the Scalar, bool and int ones too, which
    the model above does not produce) translates to the elementwise kind. (torch 2.13 has
    no ``aten.__invert__``: ``~`` reaches export as ``bitwise_not``.)"""
    from archlint.frontends.torch_ops import FUNCTION_OPS, op_name
    for name in ("__and__", "__or__", "__xor__"):
        packet = getattr(torch.ops.aten, name)
        for overload in packet.overloads():
            op = FUNCTION_OPS[op_name(getattr(packet, overload))]
            assert op.handler([(2, 3), (2, 3)], {})[0] == "elementwise", (name, overload)
