"""Time ``archlint`` against onnx-tool's command line on deployed ONNX files, as whole processes.

    python benchmarks/deployed_speed.py [--rounds 7] [--onnx-tool-python PY] FILE[:NAME=SHAPE,...] ...

e.g. ``ch_PP-OCRv4_rec_infer.onnx:x=1x3x48x320``. Both commands run with the same Python
(``--onnx-tool-python`` defaults to this one: install ``onnx-tool`` beside archlint, so that
both import the same onnx, numpy and ml_dtypes), interleaved round by round, so a slow
moment of the machine falls on both:

- ``python -m archlint FILE --input-shape NAME=SHAPE --format json --output OUT --no-cache``
  (every layer written; the result cache off, so each run analyses);
- ``python -m onnx_tool -i FILE -f OUT.txt --dynamic_shapes NAME:f32:SHAPE`` (its per-node table).

Reports, per file and tool, the median wall time and the median CPU time (user + system, of
the child process) over the rounds, and the totals each tool printed (archlint's params and
MACs from its JSON, onnx-tool's from the ``Total`` row of its table).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _timed(cmd: list[str]) -> tuple[float, float, int]:
    """(wall s, CPU s of the child, exit status)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.returncode


def _parse(spec: str) -> tuple[str, list[tuple[str, str]]]:
    path, _, shapes = spec.partition(":")
    pairs = [tuple(item.split("=", 1)) for item in shapes.split(",") if item]
    return path, [(name, shape) for name, shape in pairs]


def _onnx_tool_totals(text: str) -> dict[str, int] | None:
    for line in text.splitlines():
        if line.startswith("Total"):
            cells = line.split()
            # Total _ MACs MACs% Memory Memory% Params Params% ...
            return {"macs": int(cells[2].replace(",", "")), "params": int(cells[6].replace(",", ""))}
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="FILE[:NAME=SHAPE,...]")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--onnx-tool-python", default=sys.executable)
    args = parser.parse_args()
    versions = subprocess.run([args.onnx_tool_python, "-c", "import importlib.metadata as m; print(', '.join("
                               "f'{p} {m.version(p)}' for p in ('onnx', 'numpy', 'ml_dtypes', 'onnx-tool')))"],
                              capture_output=True, text=True, check=False).stdout.strip()
    print(f"onnx-tool's Python: {args.onnx_tool_python} ({versions}); archlint's: {sys.executable}; "
          f"{args.rounds} rounds, interleaved\n")
    print("| file | archlint wall (s) | archlint CPU (s) | onnx-tool wall (s) | onnx-tool CPU (s) | archlint MACs / "
          "params | onnx-tool MACs / params |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        out_json, out_txt = os.path.join(tmp, "a.json"), os.path.join(tmp, "t.txt")
        for spec in args.files:
            path, shapes = _parse(spec)
            ours = [sys.executable, "-m", "archlint", path, "--format", "json", "--output", out_json, "--no-cache"]
            theirs = [args.onnx_tool_python, "-m", "onnx_tool", "-i", path, "-f", out_txt]
            for name, shape in shapes:
                ours += ["--input-shape", f"{name}={shape}"]
            if shapes:
                theirs += ["--dynamic_shapes", *[f"{name}:f32:{shape}" for name, shape in shapes]]
            times: dict[str, list[tuple[float, float]]] = {"archlint": [], "onnx-tool": []}
            status = {}
            for _ in range(args.rounds):
                for tool, cmd in (("archlint", ours), ("onnx-tool", theirs)):
                    wall, cpu, rc = _timed(cmd)
                    times[tool].append((wall, cpu))
                    status[tool] = rc
            report = json.loads(Path(out_json).read_text()) if status["archlint"] in (0, 1) else None
            theirs_totals = _onnx_tool_totals(Path(out_txt).read_text()) if status["onnx-tool"] == 0 else None
            if report:
                totals = report["totals"]
                ours_text = f"{totals['macs']:,} / {totals['params']:,}{' (partial)' if totals['partial'] else ''}"
            else:
                ours_text = f"exit {status['archlint']}"
            theirs_text = (f"{theirs_totals['macs']:,} / {theirs_totals['params']:,}" if theirs_totals
                           else f"exit {status['onnx-tool']}")
            cells = []
            for tool in ("archlint", "onnx-tool"):
                cells += [f"{statistics.median(w for w, _ in times[tool]):.2f}",
                          f"{statistics.median(c for _, c in times[tool]):.2f}"]
            print(f"| {Path(path).name} | {' | '.join(cells)} | {ours_text} | {theirs_text} |", flush=True)


if __name__ == "__main__":
    main()
