"""The notebook view (``_repr_html_``), ``Report.plot`` and the self-contained HTML report.

Hand derivation used below, for ``plain_cnn`` at 1x3x32x32 (fixtures/networks.py: PlainCNN):

- stem 3x3 s1, 3->16 at 32x32: MACs 16*32*32*(3*9) = 442,368; RF 3, stride 1.
- maxpool 2x2 s2: RF 3 + (2-1)*1 = 4, stride 2.
- conv2 3x3 s2, 16->32, out 8x8: MACs 32*64*(16*9) = 294,912; RF 4 + 2*2 = 8, stride 4.
- conv3 3x3 s1, 32->64 at 8x8: MACs 64*64*(32*9) = 1,179,648; RF 8 + 2*4 = 16, stride 4.
- global pool, flatten, fc: the whole 32-pixel input; fc 64->10: 640 MACs.
- total 442,368 + 294,912 + 1,179,648 + 640 = 1,917,568 MACs; conv3 is 61.5% of it.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

import archlint
from archlint.reporters import charts
from archlint.reporters.html import render_notebook
from tests.conftest import ROOT, onnx_path, run_cli

torch = pytest.importorskip("torch")

PLAIN_MACS = {"/stem/stem.0/Conv": 442_368, "/conv2/conv2.0/Conv": 294_912, "/conv3/conv3.0/Conv": 1_179_648,
              "/fc/Gemm": 640}
PLAIN_RF = [("/stem/stem.0/Conv", 3), ("/stem/stem.2/Relu", 3), ("/pool/MaxPool", 4), ("/conv2/conv2.0/Conv", 8),
            ("/conv2/conv2.2/Relu", 8), ("/conv3/conv3.0/Conv", 16), ("/conv3/conv3.2/Relu", 16)]


class Rows(HTMLParser):
    """Collects ``data-layer`` of table rows and the text of each, per table."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[str]] = []
        self.classes: dict[str, str] = {}
        self.in_details = False
        self.details_tables: list[int] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self.tables.append([])
            if self.in_details:
                self.details_tables.append(len(self.tables) - 1)
        elif tag == "details":
            self.in_details = True
        elif tag == "tr" and a.get("data-layer"):
            self.tables[-1].append(a["data-layer"] or "")
            self.classes[a["data-layer"] or ""] = a.get("class") or ""


def parse(html: str) -> Rows:
    p = Rows()
    p.feed(html)
    return p


@pytest.fixture(scope="module")
def plain() -> archlint.Report:
    return archlint.analyze(str(onnx_path("plain_cnn")))


@pytest.fixture(scope="module")
def flagged() -> archlint.Report:
    """A dense 3x3 conv 64->64 at 56x56 (resnet50's layer1 conv2): AL101 and AL102 fire on it."""
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 64, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.Conv2d(64, 64, 3, padding=1), torch.nn.ReLU())
    return archlint.analyze(model, input_shape=(1, 3, 56, 56))


def test_repr_html_rows_shares_and_receptive_field(plain: archlint.Report) -> None:
    html = plain._repr_html_()
    p = parse(html)
    shown = [r.name for r in plain.layers if not r.plumbing]
    assert p.tables == [shown], "one row per shown layer, in graph order"
    assert len(shown) == 10
    # the MACs share of conv3 (hand-derived above) and its receptive field against the input size
    row = re.search(r'data-layer="/conv3/conv3.0/Conv">(.*?)</tr>', html).group(1)
    assert "1.18M (61.5%)" in row
    assert "16x16 s4 / 32" in row
    assert "width:40.0px" in row, "RF bar: 16 of 32 pixels = half of the 80 px track"
    assert "params <b>24.23K</b>" in html and "MACs <b>1.92M</b>" in html
    assert "<details>" not in html, "a 10-layer model is not collapsed"


def test_repr_html_collapses_long_models_with_a_summary(plain: archlint.Report) -> None:
    html = render_notebook(plain, max_rows=5, top_k=3)
    p = parse(html)
    assert p.tables[0] == ["/conv3/conv3.0/Conv", "/stem/stem.0/Conv", "/conv2/conv2.0/Conv"]  # top 3 by MACs
    assert p.details_tables == [1] and len(p.tables[1]) == 10
    assert "Top 3 of 10 layers by MACs" in html


def test_repr_html_highlights_findings_on_their_layers(flagged: archlint.Report) -> None:
    codes = {f.code for f in flagged.findings if f.layer == "2"}
    assert {"AL101", "AL102"} <= codes
    html = flagged._repr_html_()
    p = parse(html)
    assert "flagged" in p.classes["2"] and "flagged" not in p.classes["1"]
    row = re.search(r'<tr class="flagged" data-layer="2">(.*?)</tr>', html).group(1)
    assert ">AL101<" in row and ">AL102<" in row
    assert html.count('class="finding"') == len(flagged.findings)


def test_plot_rf_series_and_input_line(plain: archlint.Report) -> None:
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    ax = plain.plot("rf")
    line, hline = ax.lines[0], ax.lines[1]
    expected = [size for _, size in PLAIN_RF] + [32, 32, 32]  # gap, flatten, fc see the whole input
    assert list(line.get_ydata()) == expected
    assert list(hline.get_ydata()) == [32, 32], "the input size is drawn as a horizontal line"
    assert [t.get_text() for t in ax.get_xticklabels()][:3] == [n for n, _ in PLAIN_RF[:3]]
    assert len(ax.collections[0].get_offsets()) == 3, "the global points are marked"


def test_plot_cost_bars(plain: archlint.Report) -> None:
    pytest.importorskip("matplotlib")
    ax_macs, ax_params = plain.plot("cost")
    assert [b.get_height() for b in ax_macs.patches] == list(PLAIN_MACS.values())
    # params: conv 3*16*9 + bn 2*16, ..., fc 64*10 + 10 (conv bias folded away by the exporter's BN fusion)
    series = charts.cost_series(plain)
    assert [b.get_height() for b in ax_params.patches] == series.params
    assert sum(series.params) == plain.totals.params == 24_234
    assert [b.get_height() for b in plain.plot("macs").patches] == list(PLAIN_MACS.values())


def test_plot_roofline_points_and_roof(plain: archlint.Report) -> None:
    pytest.importorskip("matplotlib")
    ax = plain.plot("roofline")
    points = ax.collections[0].get_offsets()
    layers = [r for r in plain.layers if r.flops and r.bytes]
    assert len(points) == len(layers)
    conv3 = plain.layer("/conv3/conv3.0/Conv")
    assert [conv3.intensity, conv3.flops / conv3.est_time] in points.tolist()
    roof = ax.lines[0]
    profile = plain.profile
    assert max(roof.get_ydata()) == profile.peak("fp32")
    x0, y0 = roof.get_xdata()[0], roof.get_ydata()[0]
    assert y0 == pytest.approx(x0 * profile.bandwidth), "memory roof: throughput = intensity x bandwidth"
    with pytest.raises(archlint.ArchlintError, match="unknown plot kind"):
        plain.plot("pie")


def test_html_file_is_self_contained_with_one_row_per_layer(tmp_path) -> None:
    out = tmp_path / "report.html"
    proc = run_cli(str(onnx_path("resnet_small")), "--format", "html", "--output", str(out))
    assert proc.returncode in (0, 1), proc.stderr
    html = out.read_text()
    report = archlint.analyze(str(onnx_path("resnet_small")))
    rows = re.findall(r'<tr id="m0-l(\d+)"', html)
    assert [int(i) for i in rows] == list(range(len(report.layers)))
    # no network request of any kind: no external URL but the SVG namespace
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", html))
    assert urls <= {"http://www.w3.org/2000/svg"}, urls
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", html)
    assert html.count("<svg") == 4
    assert f"{report.totals.macs:,}" in html


def test_html_of_resnet50_size_model_is_under_2_mb() -> None:
    """torchvision resnet50's architecture (fixtures): 25,557,032 params and 4,089,184,256 MACs
    (torchvision publishes 25,557,032 and 4.089 GFLOPS); 175 layers and 35 findings in the page."""
    from fixtures.torch_models import meta_resnet50
    report = archlint.analyze(meta_resnet50(), input_shape=(1, 3, 224, 224))
    assert report.totals.params == 25_557_032 and report.totals.macs == 4_089_184_256
    html = report.to_html()
    assert len(html.encode()) < 2_000_000
    assert html.count("<tr id=") == len(report.layers)
    for j, f in enumerate(report.findings):  # every finding links to its layer's row
        if f.layer:
            i = [r.name for r in report.layers].index(f.layer)
            assert re.search(rf'<li id="m0-f{j}"[^>]*>.*?href="#m0-l{i}"', html)


def test_plot_without_matplotlib_says_how_to_get_it(plain: archlint.Report, monkeypatch) -> None:
    import builtins
    real = builtins.__import__

    def fake(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(archlint.ArchlintError, match=r"pip install 'archlint\[plot\]'"):
        plain.plot("rf")


def test_readme_documents_the_html_format() -> None:
    text = (ROOT / "README.md").read_text()
    assert "--format html" in text and "report.plot(" in text
