"""ruff's command-line conventions (issue 18): closing summary, --exit-zero, comma-separated
and extended selections, --output-file, --statistics as counts, explain by name, the rule
catalogue as JSON, and archlint's own one-line error for a bad --fail-on."""

from __future__ import annotations

import json
from pathlib import Path

from archlint.rules import RULES
from tests.conftest import assert_one_line_error, onnx_path, run_cli

ROOT = Path(__file__).resolve().parent.parent
RESNET = str(onnx_path("resnet_small"))  # AL105 and eight AL101 (info) on the ideal device
PLAIN = str(onnx_path("plain_cnn"))
IDEAL = str(ROOT / "tests" / "data" / "ideal.toml")


def test_summary_line(tmp_path):
    """A file named twice is analysed once (as ruff does); a copy under another name is a second model."""
    import shutil
    assert run_cli(RESNET, "--profile", IDEAL).stdout.rstrip().endswith("Found 9 findings (9 info) in 1 model.")
    once = run_cli(RESNET, RESNET, "--profile", IDEAL, "--format", "concise").stdout.rstrip()
    assert once.endswith("Found 9 findings (9 info) in 1 model.")
    copy = tmp_path / "copy.onnx"
    shutil.copy(RESNET, copy)
    two = run_cli(RESNET, str(copy), "--profile", IDEAL, "--format", "concise").stdout.rstrip()
    assert two.endswith("Found 18 findings (18 info) in 2 models.")
    quiet = run_cli(RESNET, "--profile", IDEAL, "--format", "concise", "--select", "AL2")
    assert quiet.stdout.strip() == "All checks passed!" and quiet.returncode == 0


def test_bad_fail_on_is_archlints_one_line_error():
    proc = run_cli(RESNET, "--fail-on", "bogus")
    assert_one_line_error(proc, "--fail-on", "bogus")
    assert "Invalid value" not in proc.stderr  # not click's usage message


def test_comma_separated_select_and_extend_select():
    out = run_cli(RESNET, "--profile", IDEAL, "--format", "concise", "--select", "AL105,AL201").stdout
    assert out.count(" AL105 ") == 1 and " AL101 " not in out
    cfg_out = run_cli(RESNET, "--profile", IDEAL, "--format", "concise", "--select", "AL105",
                      "--extend-select", "AL101").stdout
    assert cfg_out.count(" AL105 ") == 1 and cfg_out.count(" AL101 ") == 8


def test_output_file_alias(tmp_path):
    target = tmp_path / "report.json"
    proc = run_cli(PLAIN, "--format", "json", "--output-file", str(target))
    assert proc.returncode == 0 and proc.stdout == ""
    assert json.loads(target.read_text())["model"]["path"] == PLAIN


def test_explain_by_name_and_rules_as_json():
    by_name = run_cli("explain", "large-kernel")
    assert by_name.returncode == 0 and by_name.stdout == run_cli("explain", "AL103").stdout
    catalogue = json.loads(run_cli("rules", "--format", "json").stdout)
    assert [r["code"] for r in catalogue] == list(RULES)
    al102 = next(r for r in catalogue if r["code"] == "AL102")
    assert al102["options"]["group-counts"]["default"] == [2, 4, 8, 16, 32]
    assert al102["options"]["min-time-saving"]["type"] == "float"


def test_table_groups_findings_of_one_rule_with_the_same_replacement():
    """resnet_small's eight AL101 findings all propose depthwise 3x3 + pointwise 1x1: one line, with
    the MAC saving summed (each layer's before - after, from the JSON's savings); --no-group lists them."""
    data = json.loads(run_cli(RESNET, "--profile", IDEAL, "--format", "json").stdout)
    saved = sum(f["saving"]["macs"]["before"] - f["saving"]["macs"]["after"] for f in data["findings"]
                if f["code"] == "AL101")
    grouped = run_cli(RESNET, "--profile", IDEAL).stdout
    [line] = [x for x in grouped.splitlines() if " AL101 " in x]
    assert "AL101 [info] on 8 layers (/layer1/layer1.0/conv1/conv1.0/Conv, " in line
    assert "depthwise 3x3 + pointwise 1x1; MACs -" in line and "in total" in line
    from archlint.units import human
    assert f"MACs -{human(saved)} in total" in line
    listed = run_cli(RESNET, "--profile", IDEAL, "--no-group").stdout
    assert sum(" AL101 [info] /layer" in x for x in listed.splitlines()) == 8


def test_sarif_artifact_is_a_file_never_a_target_spec(tmp_path):
    """A model-level finding (AL301, no source line) on `file.py:attr`: the artifact is the file
    (before: the URI was `fixtures/torch_models.py:shared_net`)."""
    cfg = tmp_path / "lint.toml"
    cfg.write_text('[tool.archlint.budgets]\nparams = "1"\n')
    proc = run_cli("fixtures/torch_models.py:shared_net", "--input-shape", "1x3x16x16", "--config", str(cfg),
                   "--format", "sarif", cwd=ROOT)
    results = json.loads(proc.stdout)["runs"][0]["results"]
    budget = next(r for r in results if r["ruleId"] == "AL301")
    assert budget["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "fixtures/torch_models.py"
    assert all(":" not in r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].split("/")[-1]
               for r in results)


def test_sarif_artifact_of_an_imported_module_target():
    from archlint.reporters.sarif import artifact
    assert artifact("models/net.onnx") == "models/net.onnx"
    assert artifact("fixtures/torch_models.py:shared_net") == "fixtures/torch_models.py"
    assert artifact("json:dumps").endswith("json/__init__.py")  # an imported module: its file


def test_config_models_resolve_from_the_config_files_directory(tmp_path):
    """`models = ["models/net.onnx"]` in project/pyproject.toml, run from elsewhere with --config:
    before, the path was read from the working directory (no such file, exit 2)."""
    import shutil
    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    shutil.copy(PLAIN, project / "models" / "net.onnx")
    (project / "pyproject.toml").write_text('[tool.archlint]\nmodels = ["models/net.onnx"]\n')
    proc = run_cli("--config", str(project / "pyproject.toml"), "--format", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["totals"]["macs"] == json.loads(run_cli(PLAIN, "--format", "json").stdout)[
        "totals"]["macs"]
