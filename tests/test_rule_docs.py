"""Rules in ruff's documented shape: typed options and one docs template, from which
``archlint explain``, SARIF rule help and the README table are generated; configuration is
validated against the same declared options, so options and docs cannot drift apart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from archlint import config as config_mod
from archlint.errors import ArchlintError
from archlint.rules import RULES, Rule
from archlint.rules.base import Option
from tests.conftest import onnx_path, run_cli

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ["What it does:", "Why is this bad?", "Example:", "Use instead:"]


@pytest.mark.parametrize("code", list(RULES))
def test_explain_follows_the_template_and_lists_every_option(code):
    rule = RULES[code]
    out = run_cli("explain", code).stdout
    positions = [out.index(s) for s in SECTIONS]
    assert positions == sorted(positions)
    for opt in rule.declared():
        assert f"{opt.key} ({opt.type_name}, default" in out.split("Options:")[1]
    assert "REFERENCE" not in out


def test_min_time_saving_is_documented_where_it_is_declared():
    """AL101-AL103's old explanations listed their options by hand and omitted min-time-saving."""
    for code in ("AL101", "AL102", "AL103"):
        keys = [o.key for o in RULES[code].declared()]
        assert "min-time-saving" in keys
        assert "min-time-saving (float, default 0.2)" in RULES[code].docs_text()
        assert "`min-time-saving` = `0.2`" in RULES[code].docs_markdown() or \
            "min-time-saving (float, default 0.2)" in RULES[code].docs_markdown()


def test_sarif_help_is_the_generated_docs():
    log = json.loads(run_cli(str(onnx_path("resnet_small")), "--format", "sarif").stdout)
    rules = {r["id"]: r for r in log["runs"][0]["tool"]["driver"]["rules"]}
    assert list(rules) == list(RULES)
    for code, rule in RULES.items():
        assert rules[code]["help"]["text"] == rule.docs_text()
        assert rules[code]["help"]["markdown"] == rule.docs_markdown()
        assert rules[code]["fullDescription"]["text"] == " ".join(rule.what.split())
    assert "### Options" in rules["AL102"]["help"]["markdown"] and "group-counts" in rules["AL102"]["help"]["markdown"]


def test_no_citation_of_files_outside_the_repository():
    for path in [*(ROOT / "archlint" / "rules").glob("*.py"), ROOT / "README.md",
                 ROOT / "archlint" / "cli.py", ROOT / "archlint" / "docs.py"]:
        assert "REFERENCE.md" not in path.read_text(encoding="utf-8"), path
    for rule in RULES.values():
        assert "REFERENCE" not in rule.docs_text()


def test_rules_are_built_by_keyword():
    with pytest.raises(TypeError):
        Rule("AL999", "x", "info", "s", "w", "y", "e", "i", lambda *a: [])  # type: ignore[misc]


@pytest.mark.parametrize("value,ok", [(0.5, True), (1, True), (True, False), ("0.5", False)])
def test_float_option_types(value, ok):
    opt = next(o for o in RULES["AL101"].declared() if o.key == "min-reduction")
    assert isinstance(opt, Option) and opt.accepts(value) is ok


@pytest.mark.parametrize("table,needle", [
    ({"rules": {"AL102": {"group-counts": [2, "four"]}}}, "group-counts of AL102 must be a list of int"),
    ({"rules": {"AL107": {"skip-output-layers": 1}}}, "skip-output-layers of AL107 must be a bool"),
    ({"rules": {"AL101": {"min_reduction": 0.3}}}, "unknown option(s) min_reduction for AL101"),
    ({"budgets": {"params": [1]}}, "params of AL301 must be a str | float"),
])
def test_config_is_validated_against_the_declared_options(table, needle):
    with pytest.raises(ArchlintError) as info:
        config_mod.from_dict(table)
    assert needle in str(info.value)


def test_configured_options_reach_the_rule_typed():
    cfg = config_mod.from_dict({"rules": {"AL102": {"group-counts": [4], "min-channels": 32, "severity": "warning"}}})
    opts = cfg.options("AL102")
    assert opts.group_counts == [4] and opts.min_channels == 32 and opts.min_time_saving == 0.2
    assert cfg.severity("AL102") == "warning"
    assert config_mod.Config().options("AL102").group_counts == [2, 4, 8, 16, 32]
