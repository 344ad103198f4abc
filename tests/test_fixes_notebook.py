"""The fix-experiments notebook runs top to bottom in its fast mode (ARCHLINT_FAST=1).

Its own asserts check the chain formula for the dilated fields (1 + 2*(1 + d + d)), that the
measured span never exceeds archlint's field (nor the 16-px image), and the AL101 params saving
by hand: (16*32*9 + 32*32*9) - (16*9 + 16*32 + 32*9 + 32*32) = 11,856; params 14,458 -> 2,602."""

from __future__ import annotations

import pytest

from tests.conftest import ROOT

NOTEBOOK = ROOT / "examples" / "fix_experiments.ipynb"


def test_fix_experiments_notebook_executes(monkeypatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    monkeypatch.setenv("ARCHLINT_FAST", "1")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "| 1 | 3/5/7 |" in text and "| 2 | 3/7/11 |" in text
    assert "| depthwise-separable (AL101) | 2,602 |" in text
