"""Linting from the command line: configuration, exit codes, output formats, pre-commit."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import jsonschema
import pytest

from archlint.docs import RULES_END, RULES_START, rules_table
from archlint.rules import RULES
from tests.conftest import ROOT, assert_one_line_error, onnx_path, run_cli

RESNET = str(onnx_path("resnet_small"))  # findings: AL105 and eight AL101, all info (design suggestions), on the ideal device
IDEAL = str(ROOT / "tests" / "data" / "ideal.toml")


def test_default_exit_codes_and_fail_on():
    """Issue 18: design suggestions are info, so a well-known architecture exits 0 by default."""
    assert run_cli(RESNET, "--profile", IDEAL, "--format", "concise").returncode == 0  # info only, fail-on warning
    assert run_cli(RESNET, "--profile", IDEAL, "--format", "concise", "--fail-on", "info").returncode == 1
    assert run_cli(RESNET, "--profile", IDEAL, "--format", "concise", "--ignore", "AL105", "--fail-on", "info").returncode == 1
    assert run_cli(RESNET, "--profile", IDEAL, "--format", "concise", "--ignore", "AL105,AL101", "--fail-on", "info").returncode == 0
    assert run_cli(RESNET, "--profile", IDEAL, "--format", "concise", "--fail-on", "info", "--exit-zero").returncode == 0


def test_concise_lines():
    out = run_cli(RESNET, "--profile", IDEAL, "--format", "concise").stdout.splitlines()
    ds = next(line for line in out if " AL105 " in line)
    assert ds == (f"{RESNET}:/layer2/layer2.0/downsample/downsample.0/Conv: AL105 [info] "
                  "1x1 conv with stride 2x2 discards 3/4 of its input; use AvgPool (stride 2x2) + 1x1 conv stride 1 "
                  "(ResNet-D)")
    assert sum(" AL101 [info] " in line for line in out) == 8
    # one line each, under about 120 characters of message (issue 18), then ruff's closing line
    assert all(len(line.split(" [info] ", 1)[1]) < 120 for line in out if " [info] " in line)
    assert out[-1] == "Found 9 findings (9 info) in 1 model."


def test_statistics():
    out = run_cli(RESNET, "--profile", IDEAL, "--format", "concise", "--statistics").stdout
    assert "    8  AL101  depthwise-separable-candidate [info]" in out
    assert "    1  AL105  strided-pointwise [info]" in out
    assert " AL101 [info] " not in out  # counts instead of the findings (ruff's --statistics)


def test_table_has_findings_after_layers():
    out = run_cli(RESNET, "--profile", IDEAL).stdout
    assert out.index("params:") < out.index("findings (9):") < out.index("AL105 [info]")


def test_json_findings():
    data = json.loads(run_cli(RESNET, "--profile", IDEAL, "--format", "json").stdout)
    codes = [f["code"] for f in data["findings"]]
    assert sorted(codes) == ["AL101"] * 8 + ["AL105"]  # all info: in layer order
    first = data["findings"][0]
    assert first["saving"]["macs"] == {"before": 589_824, "after": 102_400}  # 16*16*16*16*9 -> 256*16*(9+16)


def test_sarif_validates_against_schema():
    schema = json.loads((ROOT / "tests" / "data" / "sarif-schema-2.1.0.json").read_text())
    proc = run_cli(RESNET, "--profile", IDEAL, "fixtures/torch_models.py:shared_net", "--input-shape", "1x3x16x16", "--format", "sarif")
    log = json.loads(proc.stdout)
    jsonschema.validate(log, schema)
    run = log["runs"][0]
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == list(RULES)
    results = run["results"]
    assert {r["ruleId"] for r in results} >= {"AL105", "AL101", "AL001"}
    torch_result = next(r for r in results if r["ruleId"] == "AL001")
    region = torch_result["locations"][0]["physicalLocation"]
    assert region["artifactLocation"]["uri"].endswith("fixtures/torch_models.py") and region["region"]["startLine"] > 1
    assert all(r["partialFingerprints"]["archlintLayer/v1"] for r in results)
    assert len({r["partialFingerprints"]["archlintLayer/v1"] for r in results}) == len(results)


def test_github_annotations():
    lines = run_cli(RESNET, "--profile", IDEAL, "--format", "github").stdout.splitlines()
    ds = next(line for line in lines if "AL105" in line)
    assert ds.startswith(f"::notice file={RESNET},title=AL105 strided-pointwise::/layer2/")
    assert all(line.startswith("::notice ") for line in lines)


def test_markdown_summary():
    out = run_cli(RESNET, "--profile", IDEAL, "--format", "markdown").stdout
    assert out.startswith("## archlint")
    assert "| `" + RESNET + "` | 44.91K | 6.87M |" in out and "9 info" in out


def test_rules_and_explain():
    out = run_cli("rules").stdout
    for code in RULES:
        assert code in out
    explained = run_cli("explain", "AL101")
    assert explained.returncode == 0 and "1/Co + 1/K^2" in explained.stdout and "Example:" in explained.stdout
    assert_one_line_error(run_cli("explain", "AL999"), "AL999")


def test_readme_rule_table_is_generated_from_rules():
    text = (ROOT / "README.md").read_text()
    assert text.split(RULES_START, 1)[1].split(RULES_END, 1)[0].strip() == rules_table()


# ------------------------------------------------------------------ configuration
def _project(tmp_path, toml: str):
    (tmp_path / "models").mkdir()
    shutil.copy(RESNET, tmp_path / "models" / "net.onnx")
    (tmp_path / "pyproject.toml").write_text(toml)
    return str(tmp_path / "models" / "net.onnx")


def test_config_found_upward_from_the_model(tmp_path):
    model = _project(tmp_path, '[tool.archlint]\nselect = ["AL105"]\nfail-on = "error"\n')
    proc = run_cli(model, "--format", "concise", "--profile", IDEAL, cwd=ROOT)  # run from elsewhere: found from the model's folder
    assert proc.returncode == 0 and proc.stdout.count("AL105") == 1 and "AL101" not in proc.stdout


def test_explicit_config_and_cli_override(tmp_path):
    cfg = tmp_path / "lint.toml"
    cfg.write_text('[tool.archlint]\nignore = ["AL105"]\n[tool.archlint.rules.AL101]\nmin-channels = 32\n')
    proc = run_cli(RESNET, "--profile", IDEAL, "--config", str(cfg), "--format", "concise")
    assert proc.returncode == 0
    assert proc.stdout.count("AL101") == 3  # only the 32-channel convs
    proc = run_cli(RESNET, "--profile", IDEAL, "--config", str(cfg), "--format", "concise", "--select", "AL105",
                   "--fail-on", "info")
    assert proc.stdout.count("AL105") == 1 and proc.returncode == 1


def test_budget_in_config_fails(tmp_path):
    model = _project(tmp_path, '[tool.archlint.budgets]\nparams = "40K"\nmacs = "7M"\n')
    proc = run_cli(model, "--format", "concise", "--profile", IDEAL)
    assert proc.returncode == 1
    assert "AL301 [error] params 44.91K is over the budget of 40K" in proc.stdout
    assert "macs" not in proc.stdout.split("AL301")[1].split("\n")[0]


@pytest.mark.parametrize("toml,needle", [
    ('[tool.archlint]\nselekt = ["AL1"]\n', "selekt"),
    ('[tool.archlint]\nselect = ["AL999"]\n', "AL999"),
    ('[tool.archlint]\nselect = [\n', "invalid TOML"),
    ('[tool.archlint.rules.AL101]\nmin-reduction = "lots"\n', "min-reduction"),
    ('[tool.archlint.rules.AL101]\nthreshold = 2\n', "threshold"),
    ('[tool.archlint.budgets]\nparams = "many"\n', "params"),
    ('[tool.archlint]\nfail-on = "fatal"\n', "fail-on"),
])
def test_bad_config(tmp_path, toml, needle):
    model = _project(tmp_path, toml)
    assert_one_line_error(run_cli(model), needle)


def test_bad_cli_rule_code_and_unreadable_model(tmp_path):
    assert_one_line_error(run_cli(RESNET, "--profile", IDEAL, "--select", "XX1"), "XX1")
    assert_one_line_error(run_cli(str(tmp_path)), "directory")
    assert_one_line_error(run_cli(RESNET, "--profile", IDEAL, "--config", str(tmp_path / "missing.toml")), "missing.toml")


def test_models_from_config_for_the_torch_hook(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.archlint]\nmodels = ["fixtures.networks:PlainCNN"]\nfail-on = "error"\n'
        '[tool.archlint.input-shapes]\n"fixtures.networks:PlainCNN" = "1x3x32x32"\n')
    proc = run_cli("--config", str(tmp_path / "pyproject.toml"), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["totals"]["macs"] == 1_917_568


# ------------------------------------------------------------------ pre-commit
@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory):
    """One pre-commit cache for both hook tests, so each hook's environment is built once."""
    if shutil.which("git") is None:
        pytest.skip("git is needed")
    pytest.importorskip("pre_commit")
    return tmp_path_factory.mktemp("pre-commit-home")


def _user_repo(tmp_path, home):
    repo = tmp_path / "user-repo"
    repo.mkdir()
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}

    def git(*args):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, env=env)

    def try_repo(hook, *args):
        cmd = [sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), hook, *args]
        return subprocess.run(cmd, cwd=repo, capture_output=True, text=True, env=env, timeout=900)

    git("init", "-q")
    return repo, git, try_repo


def test_pre_commit_hook_passes_then_fails_on_budget(tmp_path, pre_commit_home):
    """The real pre-commit package runs this repository's hook (try-repo) in a scratch repo."""
    repo, git, try_repo = _user_repo(tmp_path, pre_commit_home)
    shutil.copy(onnx_path("plain_cnn"), repo / "model.onnx")
    (repo / "pyproject.toml").write_text('[tool.archlint]\nfail-on = "error"\n[tool.archlint.budgets]\n'
                                         'params = "100K"\n')
    git("add", "-A")
    git("commit", "-qm", "model")
    ok = try_repo("archlint", "--all-files")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "Passed" in ok.stdout
    (repo / "pyproject.toml").write_text('[tool.archlint]\nfail-on = "error"\n[tool.archlint.budgets]\n'
                                         'params = "10K"\n')
    git("commit", "-qam", "tighter budget")
    bad = try_repo("archlint", "--all-files")
    assert bad.returncode == 1
    assert "Failed" in bad.stdout and "AL301 [error] params 24.23K is over the budget of 10K" in bad.stdout


def test_torch_hook_is_pinned_and_runs_only_when_python_or_config_changes(tmp_path, pre_commit_home):
    """archlint-torch installs the pinned torch (an unpinned one resolves to the newest release, a CUDA
    build of several GB) and is not always_run: real pre-commit skips it when no Python file and no
    pyproject.toml is among the files, and runs the [tool.archlint] models when one is.
    Net: conv 3->8 3x3 with bias, 8*3*9 + 8 = 224 params, over a budget of 100. (try-repo builds the
    hook's environment, torch included, in a fresh store on every call: two calls only.)"""
    import re

    from pre_commit.clientlib import load_manifest
    hooks = {h["id"]: h for h in load_manifest(str(ROOT / ".pre-commit-hooks.yaml"))}
    torch_hook = hooks["archlint-torch"]
    assert torch_hook["additional_dependencies"] == ["torch==2.13.0"]
    assert torch_hook["always_run"] is False and torch_hook["pass_filenames"] is False
    matches = [f for f in ("net.py", "pkg/models/resnet.py", "pyproject.toml", "sub/pyproject.toml", "README.md",
                           "model.onnx", "notes.txt", "my_pyproject.toml") if re.search(torch_hook["files"], f)]
    assert matches == ["net.py", "pkg/models/resnet.py", "pyproject.toml", "sub/pyproject.toml"]
    repo, git, try_repo = _user_repo(tmp_path, pre_commit_home)
    (repo / "net.py").write_text("from torch import nn\n\n\ndef build():\n    return nn.Conv2d(3, 8, 3)\n")
    (repo / "notes.txt").write_text("not a model\n")
    (repo / "pyproject.toml").write_text('[tool.archlint]\nmodels = ["net.py:build"]\nfail-on = "error"\n'
                                         '[tool.archlint.input-shapes]\n"net.py:build" = "1x3x8x8"\n'
                                         '[tool.archlint.budgets]\nparams = "100"\n')
    git("add", "-A")
    git("commit", "-qm", "model")
    skipped = try_repo("archlint-torch", "--files", "notes.txt")
    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    assert "(no files to check)Skipped" in skipped.stdout
    bad = try_repo("archlint-torch", "--files", "net.py")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "Failed" in bad.stdout and "AL301 [error] params 224 is over the budget of 100" in bad.stdout
