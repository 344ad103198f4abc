"""The example notebook runs from top to bottom (nbclient), so it cannot rot.

Its own asserts check that AL101 flags the dense conv and that applying the suggestion saves
exactly the MACs the finding promised; here we check what it displays. Hand derivation at
1x3x112x112: stem 3->32 3x3 s2 to 56x56: 32*3136*27 = 2,709,504; 32->64 3x3: 64*3136*288 =
57,802,752; body 64->64 3x3: 64*3136*576 = 115,605,504; fc 640; total 176,118,400. Separable
body: depthwise 64*3136*9 = 1,806,336 + pointwise 64*3136*64 = 12,845,056; total 75,164,288.
"""

from __future__ import annotations

import pytest

from tests.conftest import ROOT

NOTEBOOK = ROOT / "examples" / "walkthrough.ipynb"


def test_example_notebook_executes(monkeypatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("matplotlib")
    pytest.importorskip("torch")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")  # as in Jupyter, not Agg
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any('class="archlint-nb"' in h and ">AL101<" in h for h in html), "the report renders with its findings"
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 3, "rf, cost and roofline charts"
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "MACs 176,118,400 -> 75,164,288" in text
