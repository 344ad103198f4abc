"""The pipeline's layering (frontends -> IR -> analyses -> pipeline -> report -> rules ->
reporters -> cli): no module imports one above it, checked on the import statements
themselves (``ast``), and the reporter registry that makes an output format one file."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import archlint
from archlint.report import ModelInfo
from archlint.reporters.registry import RenderOptions, formats
from tests.conftest import onnx_path, run_cli

PACKAGE = Path(archlint.__file__).resolve().parent


def _imports(path: Path, top_level_only: bool) -> set[str]:
    """Modules imported by a file: at module level only, or anywhere (lazy imports too).
    Imports under ``if TYPE_CHECKING:`` are type annotations, not dependencies."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    for node in nodes:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def _under(modules: set[str], prefix: str) -> set[str]:
    return {m for m in modules if m == prefix or m.startswith(prefix + ".")}


def test_the_checker_sees_imports():
    """The check below cannot pass vacuously: it finds the report's own imports."""
    assert "archlint.findings" in _imports(PACKAGE / "report.py", True)
    assert "archlint.reporters.json_report" in _imports(PACKAGE / "report.py", False)  # the documented lazy one


def test_report_imports_no_pipeline_rules_or_reporters_at_module_level():
    mods = _imports(PACKAGE / "report.py", True)
    assert not (_under(mods, "archlint.reporters") | _under(mods, "archlint.rules") | _under(mods, "archlint.pipeline"))


@pytest.mark.parametrize("path", sorted((PACKAGE / "rules").glob("*.py")), ids=lambda p: p.name)
def test_rules_never_import_reporters_or_the_cli(path):
    mods = _imports(path, False)
    assert not (_under(mods, "archlint.reporters") | _under(mods, "archlint.cli"))


@pytest.mark.parametrize("path", sorted((PACKAGE / "reporters").glob("*.py")), ids=lambda p: p.name)
def test_reporters_never_import_rules_or_the_cli(path):
    """SARIF describes the rules from what the command line passes it (RenderOptions.rules)."""
    mods = _imports(path, False)
    assert not (_under(mods, "archlint.rules") | _under(mods, "archlint.cli"))


@pytest.mark.parametrize("path", sorted((PACKAGE / "analyses").glob("*.py")), ids=lambda p: p.name)
def test_analyses_never_import_the_report_or_above(path):
    mods = _imports(path, False)
    for above in ("archlint.report", "archlint.pipeline", "archlint.rules", "archlint.reporters", "archlint.lint"):
        assert not _under(mods, above), (path.name, above)


def test_every_format_is_one_registered_reporter_and_a_cli_choice():
    """``--format``'s choices are the registry's, and each renders a real report."""
    names = list(formats())
    assert names == ["table", "concise", "json", "sarif", "github", "markdown", "html"]
    help_text = run_cli("check", "--help").stdout
    assert "[table|concise|json|sarif|github|markdown|html]" in help_text.replace("\n", "").replace(" ", "")
    report = archlint.analyze(onnx_path("resnet_small"))
    for fmt in formats().values():
        text = fmt.render([report], RenderOptions())
        assert text.strip(), fmt.name
    assert json.loads(formats()["json"].render([report], RenderOptions()))["totals"]["macs"] == report.totals.macs


# ------------------------------------------------------------------ the model's one label
def test_label_is_the_path_or_target():
    info = ModelInfo(path="models/net.onnx", format="onnx", inputs=[], class_name=None)
    assert info.label == "models/net.onnx"
    assert ModelInfo(path="pkg.models:build", format="torch", inputs=[], class_name="pkg.models.Net").label == \
        "pkg.models:build"
    assert ModelInfo(path=None, format="onnx", inputs=[]).label == "model"


def test_in_memory_torch_module_is_labelled_by_its_class_everywhere():
    """Before: ``<in memory>`` in the table, ``<model>`` in concise lines, ``model`` in SARIF and
    GitHub annotations, ``model in memory`` in the notebook view, ``None`` in markdown."""
    torch = pytest.importorskip("torch")

    class TinyStem(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 100, 3, stride=2)

        def forward(self, x):
            return self.conv(x)

    report = archlint.analyze(TinyStem(), input_shape=(1, 3, 9, 9))
    assert report.model.label == "TinyStem" and report.model.class_name.endswith(".TinyStem")
    assert report.model["class"] == report.model.class_name  # dict-style read, as before
    assert "TinyStem" in repr(report)
    rendered = {name: fmt.render([report], RenderOptions())
                for name, fmt in formats().items()}
    assert rendered["table"].startswith("model: TinyStem (torch")
    assert "TinyStem" in rendered["markdown"] and "TinyStem" in rendered["html"]
    for text in rendered.values():
        for stale in ("<in memory>", "<model>", "model in memory"):
            assert stale not in text
    assert "model in memory" not in report._repr_html_()
