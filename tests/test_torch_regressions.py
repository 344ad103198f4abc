"""Regressions found on real networks through the PyTorch path (issues 18 and 19), each on
a small model built here or in fixtures/torch_models.py (no torchvision in unit tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, assert_one_line_error, run_cli

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


# ------------------------------------------------------------------ issue 18: targets and source lines
_MODEL_SOURCE = '''import torch.nn.functional as F
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)  # archlint: ignore[AL107]

    def forward(self, x):
        return F.relu(self.conv(x))  # archlint: ignore
'''


@pytest.mark.parametrize("folder", ["archlint", "torch", "site-packages"])
def test_source_lines_of_a_model_under_a_library_named_folder(tmp_path, folder):
    """A model kept under a folder named like a library (a clone at .../archlint/) is the
    user's code: its layers point at their lines (the conv's construction on line 8, the
    relu call on line 11) and the suppressions written there are found."""
    from archlint.frontends import torch_target
    from archlint.frontends.torch_source import is_library
    from archlint.rules.suppression import suppression_sites

    path = tmp_path / folder / "model.py"
    path.parent.mkdir()
    path.write_text(_MODEL_SOURCE)
    assert not is_library(str(path))
    report = build_report(torch_frontend.load_module(torch_target.resolve(f"{path}:Net"), from_python((1, 3, 8, 8))))
    file, line = report.layer("conv").source
    assert Path(file).resolve() == path.resolve() and line == 8
    file, line = report.layer("relu").source
    assert Path(file).resolve() == path.resolve() and line == 11
    sites, layer_site = suppression_sites(report)
    assert sites[layer_site["conv"]].codes == {"AL107"} and sites[layer_site["relu"]].codes == {"*"}


def test_library_code_is_torch_archlint_and_installed_packages():
    """What is library code: torch's and archlint's own files, the standard library, and
    installed packages; generated code (``<frozen ...>``, fx's ``<eval_with_key>``)."""
    import functools
    import sysconfig

    import pytest as pytest_package

    from archlint.frontends import torch_source
    assert torch_source.is_library(torch.nn.functional.__file__)
    assert torch_source.is_library(torch_source.__file__)
    assert torch_source.is_library(functools.__file__)
    assert torch_source.is_library(str(Path(sysconfig.get_paths()["purelib"]) / "somepkg" / "m.py"))
    assert torch_source.is_library(pytest_package.__file__)
    assert torch_source.is_library("<frozen runpy>") and torch_source.is_library("<eval_with_key>.3")
    assert not torch_source.is_library(tm.__file__)


def _cli_json(target: str, seed: str) -> bytes:
    env = dict(os.environ, PYTHONHASHSEED=seed)
    proc = subprocess.run([sys.executable, "-m", "archlint", target, "--input-shape", "1x3x16x16", "--format",
                           "json", "--no-lint"], capture_output=True, cwd=ROOT, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_file_target_json_is_identical_across_hash_seeds():
    """model.class of a file.py:attr target came from hash(path), which PYTHONHASHSEED
    randomises: two runs must print the same bytes, naming the class by the file's stem."""
    first = _cli_json("fixtures/torch_models.py:shared_net", "1")
    assert first == _cli_json("fixtures/torch_models.py:shared_net", "2")
    assert json.loads(first)["model"]["class"] == "torch_models.SharedNet"


@pytest.mark.parametrize("where", ["import", "factory"])
def test_target_calling_sys_exit(tmp_path, where):
    """A target that calls sys.exit(3) while importing or constructing is bad input: one
    line, exit 2 (it exited 3 with no output)."""
    body = "import sys\nsys.exit(3)\n" if where == "import" else "import sys\n\n\ndef net():\n    sys.exit(3)\n"
    path = tmp_path / "exits.py"
    path.write_text(body)
    assert_one_line_error(run_cli(f"{path}:net", "--input-shape", "1x3x8x8"), "exits.py", "sys.exit(3)")
