"""``archlint fix --budget`` on torchvision's vgg16 and resnet50 (issue 16): written out, checked
with onnx's checker and onnxruntime, with the weight and output errors and the measured speedup.

Needs torchvision (the real-network environment of ``.ci/run``, ``.venv-real``)::

    python benchmarks/fix_real_networks.py --out /tmp/fixbench [--json results.json]

Each model is exported with random weights (TorchScript exporter, opset 17, 1x3x224x224) to ``--out``
(outside the repository), rewritten by ``archlint fix MODEL --budget macs=... -o FIXED --diff`` (the
command prints the plan and the per-layer weight errors), and both files are run by onnxruntime on the
same random input: the output shapes must agree, and the relative output error
``||y - y'|| / ||y||`` and the median time of ``--repeat`` runs of each are reported.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torchvision

BUDGETS = {"vgg16": "macs=8G", "resnet50": "macs=3G"}


def export(name: str, path: Path) -> None:
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None).eval()
    with torch.no_grad():
        torch.onnx.export(model, (torch.randn(1, 3, 224, 224),), str(path), dynamo=False, opset_version=17)


def timed(path: Path, x: np.ndarray, repeat: int) -> tuple[np.ndarray, float]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    y = session.run(None, {name: x})[0]
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        session.run(None, {name: x})
        times.append(time.perf_counter() - start)
    return y, statistics.median(times)


def bench(name: str, out: Path, repeat: int) -> dict[str, Any]:
    original, fixed = out / f"{name}.onnx", out / f"{name}.fixed.onnx"
    if not original.exists():
        export(name, original)
    fix = subprocess.run([sys.executable, "-m", "archlint", "fix", str(original), "--budget", BUDGETS[name],
                          "-o", str(fixed), "--diff"], capture_output=True, text=True)
    row: dict[str, Any] = {"model": name, "budget": BUDGETS[name], "exit": fix.returncode,
                           "plan": fix.stdout.strip().splitlines(), "stderr": fix.stderr.strip()}
    if fix.returncode != 0 or not fixed.exists():
        return row
    onnx.checker.check_model(str(fixed))
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    y0, t0 = timed(original, x, repeat)
    y1, t1 = timed(fixed, x, repeat)
    row.update(shapes_equal=y0.shape == y1.shape, output_error=float(np.linalg.norm(y0 - y1) / np.linalg.norm(y0)),
               time_before_s=t0, time_after_s=t1, speedup=t0 / t1)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the exported and fixed models")
    parser.add_argument("--models", default=",".join(BUDGETS))
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = [bench(name, args.out, args.repeat) for name in args.models.split(",")]
    for row in rows:
        print("\n".join(row["plan"]))
        print({k: v for k, v in row.items() if k not in ("plan",)})
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
