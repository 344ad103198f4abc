"""Size and open time of the HTML report (issue: under 2 MB and under a second for resnet50).

    python benchmarks/html_report.py [MODEL.onnx ...]

With no argument it uses the fixtures' resnet50 architecture (meta device, needs torch).
Open time is Chromium's navigation timing (``loadEventEnd``) for the file, headless, median
of 5 loads; needs Debian's chromium and chromium-driver and selenium.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import archlint  # noqa: E402


def reports(paths: list[str]) -> list[tuple[str, archlint.Report]]:
    if paths:
        return [(p, archlint.analyze(p)) for p in paths]
    from fixtures.torch_models import meta_resnet50
    return [("fixtures resnet50 (meta)", archlint.analyze(meta_resnet50(), input_shape=(1, 3, 224, 224)))]


def main() -> None:
    from selenium import webdriver
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService("/usr/bin/chromedriver"), options=options)
    print("| model | layers | findings | render (s) | size (MB) | open, median of 5 (ms) |")
    print("|---|---|---|---|---|---|")
    try:
        for name, report in reports(sys.argv[1:]):
            t0 = time.perf_counter()
            html = report.to_html()
            render = time.perf_counter() - t0
            path = Path(tempfile.mkdtemp()) / "report.html"
            path.write_text(html, encoding="utf-8")
            loads = []
            for _ in range(5):
                driver.get("about:blank")
                driver.get(path.as_uri())
                loads.append(driver.execute_script(
                    "var t = performance.getEntriesByType('navigation')[0]; return t.loadEventEnd - t.startTime;"))
            print(f"| {name} | {len(report.layers)} | {len(report.findings)} | {render:.3f} | "
                  f"{len(html.encode()) / 1e6:.2f} | {statistics.median(loads):.0f} |")
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
