"""The HTML report in a real browser: headless Debian Chromium driven by Selenium.

`.ci/run` installs chromium and chromium-driver; outside CI the test is skipped when they are
missing. In CI (``CI`` set) a missing browser is a failure, not a skip, unless `.ci/run` says
it could not install one (``ARCHLINT_NO_BROWSER``, printed as a warning).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import archlint
from tests.conftest import onnx_path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def browser():
    if os.environ.get("ARCHLINT_NO_BROWSER"):
        pytest.skip(f"no browser: {os.environ['ARCHLINT_NO_BROWSER']}")
    if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
        if os.environ.get("CI"):
            pytest.fail("CI must install chromium and chromium-driver (see .ci/run)")
        pytest.skip("chromium and chromedriver are not installed (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=DRIVER), options=options)
    yield driver
    driver.quit()


def visible_rows(driver) -> list[dict]:
    return driver.execute_script("""
        return Array.from(document.querySelectorAll('table.layers tbody tr')).filter(r => !r.hidden).map(r => ({
            name: r.dataset.layer, macs: r.cells[6].dataset.v, cls: r.className}));""")


def test_html_report_in_chromium(browser, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    report = archlint.analyze(str(onnx_path("resnet_small")))
    path = tmp_path / "report.html"
    path.write_text(report.to_html(), encoding="utf-8")
    browser.get(path.as_uri())
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert errors == [], errors

    total_rows = browser.execute_script("return document.querySelectorAll('table.layers tbody tr').length")
    assert total_rows == len(report.layers), "one row per layer"
    shown = [r.name for r in report.layers if not r.plumbing or r.uncounted]
    before = visible_rows(browser)
    assert [r["name"] for r in before] == shown, "shape-only layers are hidden until asked for"

    header = browser.find_element(By.XPATH, "//table[@class='layers']//th[text()='MACs']")
    header.click()
    after = visible_rows(browser)
    macs = [int(r["macs"]) if r["macs"] else -1 for r in after]
    assert macs == sorted(macs, reverse=True), "first click sorts by MACs, largest first"
    assert [r["name"] for r in after] != [r["name"] for r in before], "sorting reordered the rows"
    assert after[0]["name"] == report.top(1, by="macs")[0].name
    assert header.get_attribute("aria-sort") == "descending"
    header.click()
    macs = [int(r["macs"]) if r["macs"] else -1 for r in visible_rows(browser)]
    assert macs == sorted(macs), "second click reverses"

    search = browser.find_element(By.CSS_SELECTOR, "input[type=search]")
    search.send_keys("Conv")
    names = [r["name"] for r in visible_rows(browser)]
    assert names and all("conv" in n.lower() for n in names)
    assert len(names) == sum(1 for r in report.layers if "conv" in f"{r.name} {r.op} {r.kind}".lower()
                             and (not r.plumbing or r.uncounted))
    search.clear()
    browser.find_element(By.CSS_SELECTOR, "input.show-all").click()
    assert len(visible_rows(browser)) == len(report.layers)

    browser.set_window_size(1400, 2200)
    shot = tmp_path / "report.png"
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert errors == [], errors


def test_finding_links_jump_to_their_layer(browser, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    from fixtures.torch_models import meta_resnet50

    report = archlint.analyze(meta_resnet50(), input_shape=(1, 3, 224, 224))
    path = tmp_path / "resnet50.html"
    path.write_text(report.to_html(), encoding="utf-8")
    browser.get(path.as_uri())
    target = next(f for f in report.findings if f.code == "AL101")
    j = report.findings.index(target)
    browser.find_element(By.CSS_SELECTOR, f"#m0-f{j} a[href^='#m0-l']").click()
    row = browser.execute_script("return document.querySelector(':target')")
    assert row.get_attribute("data-layer") == target.layer
    assert "flagged" in row.get_attribute("class")
    assert "AL101" in row.text
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []


def _contrast(fg: str, bg: str) -> float:
    """WCAG 2.x contrast ratio of two computed CSS colours ``rgb(r, g, b)``: (L1 + 0.05) / (L2 + 0.05),
    L = 0.2126 R + 0.7152 G + 0.0722 B of the linearised sRGB channels."""
    import re

    def lum(css: str) -> float:
        r, g, b = (int(v) / 255 for v in re.findall(r"\d+", css)[:3])
        r, g, b = (x / 12.92 if x <= 0.04045 else ((x + 0.055) / 1.055) ** 2.4 for x in (r, g, b))
        return 0.2126 * r + 0.7152 * g + 0.0722 * b
    hi, lo = sorted((lum(fg), lum(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


BADGES = """return Array.from(document.querySelectorAll('.badge')).map(b => {
    const s = getComputedStyle(b); return {code: b.textContent, fg: s.color, bg: s.backgroundColor,
    row: b.closest('tr') ? b.closest('tr').dataset.layer : null};});"""


def test_badges_readable_one_per_code_and_charts_labelled(browser, tmp_path: Path) -> None:
    """In Chromium, as rendered: every badge's text has contrast >= 4.5:1 (WCAG AA) against its
    background, in the report page and in the notebook view on a page without the report's
    stylesheet (as in Jupyter); a layer row has one badge per rule code; the page is titled by the
    model's class; the bar and rf charts name their layers inside the chart's box."""
    import copy
    import dataclasses

    import torch

    from archlint.reporters.html import render_notebook

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 64, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.Conv2d(64, 64, 3, padding=1), torch.nn.ReLU())
    report = copy.copy(archlint.analyze(model, input_shape=(1, 3, 56, 56)))
    twin = next(f for f in report.findings if f.code == "AL101")
    report.findings = list(report.findings) + [dataclasses.replace(twin, message="again")]
    page = tmp_path / "page.html"
    page.write_text(report.to_html(), encoding="utf-8")
    notebook = tmp_path / "notebook.html"
    notebook.write_text(f"<!DOCTYPE html><html><body>{render_notebook(report)}</body></html>", encoding="utf-8")
    for path in (page, notebook):
        browser.get(path.as_uri())
        badges = browser.execute_script(BADGES)
        assert len(badges) >= 4
        for b in badges:
            assert _contrast(b["fg"], b["bg"]) >= 4.5, b
        in_rows = [(b["row"], b["code"].split()[0]) for b in badges if b["row"]]
        assert len(in_rows) == len(set(in_rows)), "one badge per code on a row"
        assert ("2", "AL101") in in_rows
    browser.get(page.as_uri())
    assert browser.title == "archlint: Sequential"
    charts = browser.execute_script("""return Array.from(document.querySelectorAll('svg.chart')).map(svg => {
        const box = svg.getBoundingClientRect();
        return Array.from(svg.querySelectorAll('.layer-label')).map(t => { const r = t.getBoundingClientRect();
            return {inside: r.left >= box.left - 1 && r.right <= box.right + 1 && r.top >= box.top - 1
                    && r.bottom <= box.bottom + 1, w: r.width, name: t.dataset.layer}; });});""")
    labelled = [c for c in charts if c]
    assert len(labelled) == 3, "MACs, params and rf charts"
    for labels in labelled:
        assert all(lab["inside"] and lab["w"] > 0 for lab in labels), labels
