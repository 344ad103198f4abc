"""The budget planner: greedy fixes until the budget holds, or how close it got."""

from __future__ import annotations

import pytest

import archlint
from archlint.errors import ArchlintError
from archlint.fixes.plan import parse_budget, plan
from tests.conftest import onnx_path

pytest.importorskip("onnxruntime")


def test_parse_budget():
    assert parse_budget("macs=2G, params=1.5M,time=3ms") == {"macs": 2e9, "params": 1.5e6, "time": 0.003}
    for bad in ("flops=1G", "macs=two", "", "time=3 parsecs"):
        with pytest.raises(ArchlintError):
            parse_budget(bad)


def test_plan_meets_a_mac_budget_and_the_rewrite_keeps_its_promise(tmp_path):
    """Half the MACs of resnet_small: the plan meets it, and the rewritten model re-analyses to
    exactly the planned total."""
    path = onnx_path("resnet_small")
    report = archlint.analyze(path, lint=False)
    budget = report.totals.macs // 2
    p = plan(report, f"macs={budget}", model=path)
    assert p.met and p.totals["macs"] <= budget < p.before["macs"] == report.totals.macs
    assert len({f.layer for f in p.fixes}) == len(p.fixes)  # one fix per layer
    assert all(0 < p.errors[id(f)] <= 1 for f in p.fixes)
    result = archlint.apply(path, p.fixes, unsafe=True)
    assert all(o.applied for o in result.outcomes)
    result.save(tmp_path / "planned.onnx")
    assert archlint.analyze(tmp_path / "planned.onnx", lint=False).totals.macs == p.totals["macs"]


def test_impossible_budget_says_how_close():
    report = archlint.analyze(onnx_path("plain_cnn"), lint=False)
    p = plan(report, "macs=1k")
    assert not p.met and p.totals["macs"] < report.totals.macs
    assert "cannot meet the budget" in p.summary()
