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

import copy
import re
from html import escape
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
    """Finite fields on the line; gap, flatten and fc see the whole input (global): drawn in a band of
    their own above the input line, on a y tick labelled 'global', not at the input size of 32."""
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    ax = plain.plot("rf")
    line, hline = ax.lines[0], ax.lines[1]
    assert list(line.get_ydata()) == [size for _, size in PLAIN_RF]
    assert list(line.get_xdata()) == list(range(7))
    assert list(hline.get_ydata()) == [32, 32], "the input size is drawn as a horizontal line"
    assert [t.get_text() for t in ax.get_xticklabels()][:3] == [n for n, _ in PLAIN_RF[:3]]
    glob = ax.collections[0].get_offsets()
    assert glob[:, 0].tolist() == [7, 8, 9], "the global points are marked"
    level = glob[0, 1]
    assert set(glob[:, 1].tolist()) == {level} and level > 32 and level <= ax.get_ylim()[1]
    labels = {t.get_text(): y for t, y in zip(ax.get_yticklabels(), ax.get_yticks())}
    assert labels["global"] == level
    assert all(y <= 32 * 1.05 for text, y in labels.items() if text != "global")


def _contrast(fg: str, bg: str) -> float:
    """WCAG 2.x contrast ratio (L1 + 0.05) / (L2 + 0.05) of two #rrggbb colours, with relative
    luminance L = 0.2126 R + 0.7152 G + 0.0722 B of the linearised sRGB channels."""
    def lum(color: str) -> float:
        c = [int(color.lstrip("#")[i:i + 2], 16) / 255 for i in (0, 2, 4)]
        r, g, b = (x / 12.92 if x <= 0.04045 else ((x + 0.055) / 1.055) ** 2.4 for x in c)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b
    hi, lo = sorted((lum(fg), lum(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_contrast_formula_on_known_pairs() -> None:
    """Black on white is 21:1; #767676 on white is the classic AA limit, 4.54:1."""
    assert _contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert _contrast("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)


def test_badges_are_readable_in_the_page_and_the_notebook(flagged: archlint.Report) -> None:
    """Every badge carries its own text colour (Jupyter does not load the page's stylesheet) and
    has contrast >= 4.5:1 (WCAG AA) against its background, for every severity's colour."""
    from archlint.reporters.html import SEVERITY_COLORS
    for color in SEVERITY_COLORS.values():
        assert _contrast("#ffffff", color) >= 4.5, color
    severities = {f.severity for f in flagged.findings}
    assert {"info", "warning"} <= severities
    for html in (flagged._repr_html_(), flagged.to_html()):
        badges = re.findall(r'class="badge sev-(\w+)"[^>]*style="background:(#\w{6});color:(#\w{6})"', html)
        assert len(badges) >= len(flagged.findings)
        assert {sev for sev, _, _ in badges} == severities
        for _, bg, fg in badges:
            assert _contrast(fg, bg) >= 4.5, (fg, bg)


def test_one_badge_per_code_on_a_layer(flagged: archlint.Report) -> None:
    """Two AL101 findings on layer 2 (the second a copy): one AL101 badge with its count, listing both
    messages in its tooltip and linking to the first; the findings list keeps both."""
    import dataclasses
    report = copy.copy(flagged)
    first = next(f for f in flagged.findings if f.layer == "2" and f.code == "AL101")
    twin = dataclasses.replace(first, message="second message")
    report.findings = list(flagged.findings) + [twin]
    for html in (report._repr_html_(), report.to_html()):
        row = re.search(r'<tr[^>]*data-layer="2"[^>]*>(.*?)</tr>', html, re.S).group(1)
        assert row.count(">AL101") == 1 and ">AL101 \u00d72<" in row and row.count(">AL102<") == 1
        assert "second message" in row
    page = report.to_html()
    row = re.search(r'<tr[^>]*data-layer="2"[^>]*>(.*?)</tr>', page, re.S).group(1)
    assert f'href="#m0-f{report.findings.index(first)}"' in row
    assert page.count('class="finding sev-') == len(report.findings)


def test_the_model_is_named_not_in_memory(flagged: archlint.Report, plain: archlint.Report) -> None:
    """An in-memory torch module is named by its class (torch.nn.Sequential here); a file by its path."""
    for html in (flagged._repr_html_(), flagged.to_html()):
        assert "in memory" not in html
    assert "<b>archlint</b>: Sequential (input" in flagged._repr_html_()
    assert "<h2>Sequential</h2>" in flagged.to_html() and "<title>archlint: Sequential</title>" in flagged.to_html()
    assert f"<h2>{onnx_path('plain_cnn')}</h2>" in plain.to_html()


def test_svg_charts_name_their_layers_on_the_axis(plain: archlint.Report) -> None:
    """The bar and rf charts name each layer under the x axis (10 and 4 layers: all of them), long
    names shortened to their last 27 characters after an ellipsis, the whole name in the tooltip."""
    from archlint.reporters import svg
    cost = charts.cost_series(plain)
    chart = svg.cost_chart(cost)
    labels = re.findall(r'class="layer-label" data-layer="([^"]+)"[^>]*><title>[^<]*</title>([^<]+)</text>', chart)
    assert [name for name, _ in labels] == cost.names == list(PLAIN_MACS)
    assert [text for _, text in labels] == cost.names  # all short
    rf = charts.rf_series(plain)
    labels = re.findall(r'class="layer-label" data-layer="([^"]+)"', svg.rf_chart(rf))
    assert labels == rf.names and len(labels) == 10
    assert charts.short_label("/layer2/layer2.0/downsample/downsample.0/Conv") == "\u2026ownsample/downsample.0/Conv"
    assert len(charts.short_label("x" * 100)) == 28 and charts.label_positions(100) == list(range(0, 100, 4))


def test_svg_rf_chart_draws_global_fields_as_global(plain: archlint.Report) -> None:
    """gap, flatten and fc (global) sit in the band labelled 'global' above the input line, not on it."""
    from archlint.reporters import svg
    chart = svg.rf_chart(charts.rf_series(plain))
    glob = re.findall(r'<circle class="mark global" data-layer="([^"]+)" cx="[\d.]+" cy="([\d.]+)"', chart)
    assert len(glob) == 3 and all("global" not in n for n, _ in glob)
    input_y = float(re.search(r'class="input-size"[^>]*y1="([\d.]+)"', chart).group(1))
    band = re.search(r'class="global-band" x="[\d.]+" y="([\d.]+)" width="[\d.]+" height="([\d.]+)"', chart)
    top, height = float(band.group(1)), float(band.group(2))
    for _, cy in glob:
        assert top <= float(cy) <= top + height < input_y
    assert ">global</text>" in chart
    finite = re.findall(r'<circle class="mark" data-layer="[^"]+" cx="[\d.]+" cy="([\d.]+)"', chart)
    assert len(finite) == 7 and all(float(cy) > top + height for cy in finite)


@pytest.mark.parametrize("kind", ["rf", "cost", "roofline"])
def test_saved_plots_keep_their_labels(plain: archlint.Report, tmp_path, kind: str) -> None:
    """savefig without bbox_inches='tight' keeps every label inside the figure: each text's window
    extent lies within the figure, and an SVG saved with text as text contains the layer names."""
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    axes = plain.plot(kind)
    axes = list(axes) if kind == "cost" else [axes]
    fig = axes[0].figure
    renderer = fig.canvas.get_renderer()
    fig.draw(renderer)
    box = fig.bbox
    def in_view(ax, axis):
        lo, hi = sorted(ax.get_xlim() if axis == "x" else ax.get_ylim())
        ticks = ax.get_xticks() if axis == "x" else ax.get_yticks()
        labels = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
        return [t for v, t in zip(ticks, labels) if lo <= v <= hi]  # matplotlib also lists ticks off the axis
    texts = [t for ax in axes for t in (in_view(ax, "x") + in_view(ax, "y")
                                        + [ax.title, ax.xaxis.label, ax.yaxis.label]) if t.get_text()]
    assert len(texts) >= 8
    for t in texts:
        ext = t.get_window_extent(renderer)
        inside = box.x0 - 0.5 <= ext.x0 and ext.x1 <= box.x1 + 0.5 and box.y0 - 0.5 <= ext.y0 <= ext.y1 <= box.y1 + 0.5
        assert inside, (t.get_text(), ext, box)
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(tmp_path / "chart.svg")
    fig.savefig(tmp_path / "chart.png")
    saved = (tmp_path / "chart.svg").read_text()
    for t in texts:
        assert escape(t.get_text()) in saved, t.get_text()
    assert (tmp_path / "chart.png").stat().st_size > 10_000


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
