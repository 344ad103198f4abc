"""Shared test helpers: paths to the fixture networks and their ONNX exports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")  # Report.plot in tests: no display

ROOT = Path(__file__).resolve().parent.parent
ONNX_DIR = ROOT / "fixtures" / "onnx"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FIXTURES = ["plain_cnn", "resnet_small", "mobilenet_v2_small", "resnext_small", "dilated_stack",
            "encoder_decoder", "tiny_vit"]


def onnx_path(name: str, exporter: str = "torchscript") -> Path:
    return ONNX_DIR / (f"{name}.onnx" if exporter == "torchscript" else f"{name}.dynamo.onnx")


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the ``archlint`` command in a subprocess, as a user would."""
    return subprocess.run([sys.executable, "-m", "archlint", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, timeout=300)


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit 2, one line on stderr starting 'archlint: error:', no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("archlint: error:"), lines[0]
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.fixture(scope="session")
def torch_mod():
    return pytest.importorskip("torch")
