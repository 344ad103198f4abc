"""Batch runs: directory discovery (.gitignore, --exclude), per-file errors that hide nothing,
--jobs, and the result cache (byte-identical output from a cached report)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from archlint import batch, cache
from archlint.cli import main
from archlint.config import Config
from archlint.reporters.registry import formats
from tests.conftest import onnx_path

# Every format the CLI offers for a batch run (html included).
BATCH_FORMATS = ["table", "concise", "json", "sarif", "github", "markdown", "html"]


def conv_model(batch_dim: int | str = 1, height: int | str = 8) -> onnx.ModelProto:
    """One 3x3 conv, 3 -> 8 channels, with bias: 8*3*3*3 + 8 = 224 parameters."""
    import numpy as np
    w = numpy_helper.from_array(np.ones((8, 3, 3, 3), dtype=np.float32), "w")
    b = numpy_helper.from_array(np.zeros((8,), dtype=np.float32), "b")
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch_dim, 3, height, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch_dim, 8, height, 8])
    graph = helper.make_graph([node], "g", [x], [y], [w, b])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def cli(*args: str, cwd: Path) -> tuple[int, str, str]:
    """The ``archlint`` command in this process (fast; no worker processes unless --jobs)."""
    import os
    here = os.getcwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    finally:
        os.chdir(here)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def budget_batch(tmp_path: Path) -> Path:
    """models/a_good.onnx (224 params, over a 200-param budget), models/sub/dynamic.onnx (a symbolic
    height: a symbolic batch dimension alone defaults to 1) and models/sub/corrupt.onnx (not a protobuf)."""
    models = tmp_path / "models"
    (models / "sub").mkdir(parents=True)
    onnx.save(conv_model(), models / "a_good.onnx")
    onnx.save(conv_model(height="height"), models / "sub" / "dynamic.onnx")
    (models / "sub" / "corrupt.onnx").write_bytes(b"\x00not a model\xff")
    (tmp_path / "pyproject.toml").write_text('[tool.archlint]\n[tool.archlint.budgets]\nparams = 200\n')
    return tmp_path


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_bad_files_hide_no_budget_failure(budget_batch: Path, jobs: str):
    """The budget failure of the good file is reported (224 > 200 params, see conv_model), each
    bad file gets one error line naming it, and the run exits 2 at the end."""
    code, out, err = cli("models", "--format", "json", "--jobs", jobs, "--no-cache", cwd=budget_batch)
    assert code == 2, (out, err)
    report = json.loads(out)
    assert report["model"]["path"] == "models/a_good.onnx"
    assert report["totals"]["params"] == 224
    assert [f["code"] for f in report["findings"] if f["severity"] == "error"] == ["AL301"]
    lines = [line for line in err.splitlines() if line.startswith("archlint: error:")]
    assert len(lines) == 2, err
    assert lines[0].startswith("archlint: error: models/sub/corrupt.onnx: ")
    assert lines[1].startswith("archlint: error: models/sub/dynamic.onnx: ")
    assert "symbolic dimension 'height'" in lines[1]
    assert "Traceback" not in err


def test_bad_files_in_sarif_and_github_output(budget_batch: Path):
    """Machine-read formats carry the failed files too: SARIF as error notifications of the run's
    invocation (executionSuccessful false; the log still validates against the SARIF 2.1.0 schema),
    GitHub as ::error annotations on the file; the good file's AL301 result is still there."""
    import jsonschema
    schema = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text())
    code, out, _ = cli("models", "--format", "sarif", "--no-cache", cwd=budget_batch)
    assert code == 2
    log = json.loads(out)
    jsonschema.validate(log, schema)
    run = log["runs"][0]
    assert [r["ruleId"] for r in run["results"] if r["level"] == "error"] == ["AL301"]
    [invocation] = run["invocations"]
    assert invocation["executionSuccessful"] is False
    notes = invocation["toolExecutionNotifications"]
    assert [n["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for n in notes] == \
        ["models/sub/corrupt.onnx", "models/sub/dynamic.onnx"]
    assert all(n["level"] == "error" for n in notes) and "symbolic dimension 'height'" in notes[1]["message"]["text"]
    code, out, _ = cli("models", "--format", "github", "--no-cache", cwd=budget_batch)
    errors = [line for line in out.splitlines() if line.startswith("::error file=models/sub/")]
    assert [line.split(",")[0] for line in errors] == ["::error file=models/sub/corrupt.onnx",
                                                      "::error file=models/sub/dynamic.onnx"]


def test_batch_without_errors_keeps_exit_codes(budget_batch: Path):
    """Only the budget (an error-severity finding) left: exit 1, as for a single file."""
    code, out, err = cli("models", "--exclude", "sub", "--format", "concise", cwd=budget_batch)
    assert code == 1, err
    assert "AL301" in out and "archlint: error" not in err


def test_discover_recurses_sorted_with_excludes(tmp_path: Path):
    for rel in ("b/x.onnx", "a/y.onnx", "a/deep/z.onnx", "a/skip_me.onnx", "c/notes.txt", "top.onnx"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    root = str(tmp_path)
    found, empty = batch.discover([root], batch.split_globs(["skip_*", "b,nothing"]))
    assert [Path(f).relative_to(tmp_path).as_posix() for f in found] == ["top.onnx", "a/y.onnx", "a/deep/z.onnx"]
    assert empty == []
    # an explicit file is checked even when excluded; a directory without models is reported
    found, empty = batch.discover([str(tmp_path / "a" / "skip_me.onnx"), str(tmp_path / "c")], ("skip_*",))
    assert found == [str(tmp_path / "a" / "skip_me.onnx")]
    assert empty == [f"{tmp_path / 'c'}: the directory holds no .onnx file"]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_discover_respects_gitignore(tmp_path: Path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("generated/\n*.tmp.onnx\n")
    for rel in ("models/keep.onnx", "models/scratch.tmp.onnx", "generated/out.onnx"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    found, _ = batch.discover([str(tmp_path)])
    assert [Path(f).relative_to(tmp_path).as_posix() for f in found] == ["models/keep.onnx"]


def test_file_error_names_the_file_once():
    assert batch.FileError("m.onnx", "bad").line() == "m.onnx: bad"
    assert batch.FileError("m.onnx", "m.onnx: pickled").line() == "m.onnx: pickled"


@pytest.fixture
def resnet_dir(tmp_path: Path) -> Path:
    """resnet_small (AL105 and AL101 findings with savings and fractional receptive fields) and
    plain_cnn, in one directory."""
    (tmp_path / "m").mkdir()
    shutil.copy(onnx_path("resnet_small"), tmp_path / "m" / "resnet_small.onnx")
    shutil.copy(onnx_path("plain_cnn"), tmp_path / "m" / "plain_cnn.onnx")
    return tmp_path


def test_cached_output_is_byte_identical(resnet_dir: Path, monkeypatch: pytest.MonkeyPatch):
    """Every batch format renders a cached report exactly as a fresh one; the cached run
    analyses nothing (the analysis is made to fail and is never called)."""
    assert set(BATCH_FORMATS) <= set(formats())
    fresh = {fmt: cli("m", "--format", fmt, "--no-cache", cwd=resnet_dir) for fmt in BATCH_FORMATS}
    cli("m", "--format", "json", cwd=resnet_dir)  # fills the cache
    entries = list((resnet_dir / cache.CACHE_DIR).glob("*.json"))
    assert len(entries) == 2
    monkeypatch.setattr(batch.Job, "analyse", lambda self, target: (_ for _ in ()).throw(AssertionError(target)))
    for fmt in BATCH_FORMATS:
        assert cli("m", "--format", fmt, cwd=resnet_dir) == fresh[fmt], fmt
    assert fresh["json"][0] == 0  # AL101 and AL105 are design suggestions: info, exit 0
    assert '"code": "AL105"' in fresh["json"][1]


def test_jobs_keep_input_order_and_output(resnet_dir: Path):
    one = cli("m", "--format", "json", "--no-cache", cwd=resnet_dir)
    two = cli("m", "--format", "json", "--no-cache", "--jobs", "2", cwd=resnet_dir)
    assert one == two
    assert [r["model"]["path"] for r in json.loads(one[1])] == ["m/plain_cnn.onnx", "m/resnet_small.onnx"]


def test_cache_key_follows_content_and_settings(resnet_dir: Path):
    target = "m/plain_cnn.onnx"
    cli(target, "--format", "json", cwd=resnet_dir)
    cli(target, "--format", "json", "--dtype", "fp16", cwd=resnet_dir)
    assert len(list((resnet_dir / cache.CACHE_DIR).glob("*.json"))) == 2  # one entry per configuration
    job = batch.Job((), Config())
    settings = batch.effective_settings(job)
    base = cache.key(str(resnet_dir / target), settings)
    assert cache.key(str(resnet_dir / target), settings) == base
    assert cache.key(str(resnet_dir / target), {**settings, "dtype": "fp16"}) != base
    with open(resnet_dir / target, "ab") as fh:
        fh.write(b"\x00")
    assert cache.key(str(resnet_dir / target), settings) != base


def test_cache_key_follows_archlint_code(monkeypatch: pytest.MonkeyPatch):
    """An edited checkout (same version number) gets new keys."""
    target, settings = str(onnx_path("plain_cnn")), {"dtype": None}
    base = cache.key(target, settings)
    monkeypatch.setattr(cache, "code_fingerprint", lambda: "edited")
    assert cache.key(target, settings) != base


def test_torch_targets_are_not_cached(tmp_path: Path):
    (tmp_path / "net.py").write_text("x = 1\n")
    assert not batch.cacheable(str(tmp_path / "net.py") + ":Net")
    assert batch.cacheable(str(onnx_path("plain_cnn")))


def test_malformed_cache_entry_is_a_miss(tmp_path: Path):
    store = cache.Cache(tmp_path / cache.CACHE_DIR)
    store.put("k", {"model": {}})
    assert store.get("k") is None
    (tmp_path / cache.CACHE_DIR / "j.json").write_text("not json")
    assert store.get("j") is None
    assert store.get("absent") is None


def test_clean_removes_the_cache(resnet_dir: Path):
    cli("m", "--format", "concise", cwd=resnet_dir)
    assert (resnet_dir / cache.CACHE_DIR).is_dir()
    code, out, _ = cli("clean", cwd=resnet_dir)
    assert code == 0 and "removed" in out
    assert not (resnet_dir / cache.CACHE_DIR).exists()


def test_stdin_is_a_model_and_a_failed_file_is_not_all_checks_passed():
    """``archlint -`` reads an ONNX model from standard input (ruff's ``-``): plain_cnn's 24,234
    params (the same figure as the file on disk), the report named ``-``; garbage on stdin is a
    one-line error naming ``-``, exit 2, and the summary does not claim that all checks passed."""
    import subprocess
    import sys
    data = onnx_path("plain_cnn").read_bytes()
    ok = subprocess.run([sys.executable, "-m", "archlint", "-", "--format", "json"], input=data,
                        capture_output=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    report = json.loads(ok.stdout)
    assert report["model"]["path"] == "-" and report["totals"]["params"] == 24_234
    bad = subprocess.run([sys.executable, "-m", "archlint", "-", "--format", "concise"], input=b"not a model",
                         capture_output=True, timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.decode().startswith("archlint: error: -: not a readable ONNX model")
    assert "All checks passed" not in bad.stdout.decode()
    assert "1 file could not be analysed" in bad.stdout.decode()
