"""``archlint fix``: the rewritten model passes onnx.checker and re-analyses to exactly the
findings' promised MACs and params; nothing is written without -o; exit codes 0/1/2."""

from __future__ import annotations

import hashlib
import textwrap

import onnx
import pytest
from click.testing import CliRunner

import archlint
from archlint.cli import main
from tests.conftest import onnx_path
from tests.test_rewrite import conv_model


def _model(tmp_path, **kw) -> str:  # type: ignore[no-untyped-def]
    """Conv 32->64 3x3 with a bias on 16x16 (AL101 fires: est. time drops), saved to a file."""
    path = tmp_path / "model.onnx"
    onnx.save(conv_model(**kw), path)
    return str(path)



def _invoke(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, ["fix", *args])


def _digest(path) -> str:  # type: ignore[no-untyped-def]
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_fix_writes_the_promised_model(tmp_path):
    """AL101 on conv 32->64 3x3: its fix applied; the written model passes check_model and
    re-analyses to totals before + (fix.after - fix.before), exactly: MACs 256*(32*9 + 32*64)
    = 598,016 (from 4,718,592), params 2,400."""
    path = _model(tmp_path)
    report = archlint.analyze(path)
    fixes = [f.fix for f in report.findings if f.code == "AL101" and f.fix is not None]
    assert len(fixes) == 1
    out = tmp_path / "fixed.onnx"
    before = _digest(path)
    result = _invoke(str(path), "--select", "AL101", "--unsafe-fixes", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert f"wrote {out} ({len(fixes)} fixes applied)" in result.output
    onnx.checker.check_model(str(out))
    after = archlint.analyze(out, lint=False)
    assert after.totals.macs == report.totals.macs + sum(f.after.macs - f.before.macs for f in fixes)
    assert after.totals.params == report.totals.params + sum(f.after.params - f.before.params for f in fixes)
    assert (after.totals.macs, after.totals.params) == (598016, 2400)
    assert _digest(path) == before  # the input untouched


def test_without_output_prints_the_diff_and_writes_nothing(tmp_path):
    """The table names each fixed layer with its MACs before -> after and a weight error in [0, 1]."""
    path = _model(tmp_path)
    result = CliRunner().invoke(main, ["fix", path, "--select", "AL101", "--unsafe-fixes", "--diff"])
    assert result.exit_code == 0, result.output
    assert "weight error" in result.output and "nothing written" in result.output
    report = archlint.analyze(path)
    finding = next(f for f in report.findings if f.code == "AL101" and f.fix is not None)
    from archlint.units import human
    assert f"{human(finding.fix.before.macs)} -> {human(finding.fix.after.macs)}" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


def test_unsafe_fixes_need_the_flag(tmp_path):
    out = tmp_path / "fixed.onnx"
    result = _invoke(_model(tmp_path), "--select", "AL101", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "skipped (unsafe fix" in result.output and "nothing to fix" in result.output
    assert not out.exists()


def test_budget_not_met_exits_1_and_says_how_close(tmp_path):
    out = tmp_path / "fixed.onnx"
    result = _invoke(str(onnx_path("plain_cnn")), "--budget", "macs=1k", "-o", str(out))
    assert result.exit_code == 1, result.output
    assert "cannot meet the budget; closest reached" in result.output
    assert not out.exists()


def test_budget_met_writes_a_model_within_it(tmp_path):
    """Half the MACs of resnet_small: written, and the written model's MACs are within budget."""
    path = onnx_path("resnet_small")
    budget = archlint.analyze(path, lint=False).totals.macs // 2
    out = tmp_path / "planned.onnx"
    result = _invoke(str(path), "--budget", f"macs={budget}", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "meets the budget" in result.output
    onnx.checker.check_model(str(out))
    assert archlint.analyze(out, lint=False).totals.macs <= budget


@pytest.mark.parametrize("args, needle", [
    (["--budget", "flops=1G"], "the key must be one of"),
    (["-o", "out.txt"], "name it *.onnx"),
])
def test_bad_input_is_one_line_exit_2(args, needle):
    result = _invoke(str(onnx_path("plain_cnn")), *args)
    assert result.exit_code == 2
    assert needle in result.output and result.output.count("archlint: error:") == 1


def test_missing_file_exit_2(tmp_path):
    result = _invoke(str(tmp_path / "nope.onnx"))
    assert result.exit_code == 2 and "no such file" in result.output


def test_torch_target_safe_fix_exports_onnx(tmp_path):
    """Conv 8->16 with a bias before BatchNorm (AL106, safe): applied without --unsafe-fixes and
    exported with torch.onnx.export; the export passes check_model and onnxruntime's output
    equals the original module's within 1e-5 (the fold is exact in eval mode)."""
    torch = pytest.importorskip("torch")
    ort = pytest.importorskip("onnxruntime")
    src = tmp_path / "net.py"
    src.write_text(textwrap.dedent("""
        import torch
        import torch.nn as nn
        def build():
            torch.manual_seed(0)
            net = nn.Sequential(nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
            net[1].running_mean.uniform_(-1, 1)
            net[1].running_var.uniform_(0.5, 2)
            return net.eval()
    """))
    target = f"{src}:build"
    out = tmp_path / "fixed.onnx"
    result = _invoke(target, "--input-shape", "1x8x10x10", "--diff", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "AL106" in result.output and "weight error" in result.output and f"wrote {out}" in result.output
    onnx.checker.check_model(str(out))
    from archlint.frontends import torch_target
    module = torch_target.resolve(target)
    x = torch.randn(1, 8, 10, 10)
    with torch.no_grad():
        expected = module(x).numpy()
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    [got] = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})
    assert abs(got - expected).max() <= 1e-5 * max(1.0, abs(expected).max())
