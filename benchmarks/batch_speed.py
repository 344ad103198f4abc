"""Time a batch run of ``archlint DIR`` over many small ONNX files: first run (empty
cache), cached re-run, and without the cache, each with ``--jobs 1`` and ``--jobs 2``.

    python benchmarks/batch_speed.py [--count 200] [--repeat 3]

The models are written with onnx.helper in a temporary directory: a stem conv and a few
3x3 conv + ReLU blocks whose widths vary with the file's index, so every file's bytes (and
cache key) differ. Each figure is the whole process's wall time (``python -m archlint DIR
--format concise``; the process start and imports included), the median of ``--repeat``
runs, with the CPU seconds of all its processes beside it (on a busy machine the wall time
says more about the other load than about archlint); the first-run figure clears ``.archlint_cache/`` before every run.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def small_model(index: int) -> onnx.ModelProto:
    """Stem 3 -> w conv (stride 2), then three 3x3 w -> w conv + ReLU blocks; w = 8 + index % 24."""
    width = 8 + index % 24
    nodes, inits = [], []
    x = "input"
    cin = 3
    for i, stride in enumerate((2, 1, 1, 1)):
        w = numpy_helper.from_array(np.full((width, cin, 3, 3), index + 1, np.float32), f"c{i}.w")
        inits.append(w)
        nodes.append(helper.make_node("Conv", [x, f"c{i}.w"], [f"c{i}.y"], name=f"c{i}", kernel_shape=[3, 3],
                                      strides=[stride, stride], pads=[1, 1, 1, 1]))
        nodes.append(helper.make_node("Relu", [f"c{i}.y"], [f"r{i}.y"], name=f"r{i}"))
        x, cin = f"r{i}.y", width
    graph = helper.make_graph(nodes, f"m{index}", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                                [1, 3, 64, 64])],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


CPU: list[float] = []  # CPU seconds (user + system, all processes) of each run, beside the wall times


def run(directory: Path, *args: str) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "archlint", "models", "--format", "concise", *args],
                          cwd=directory, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    if proc.returncode == 2:
        raise SystemExit(f"archlint failed: {proc.stderr.strip()}")
    return elapsed


def timed(directory: Path, repeat: int, *args: str, clear: Path | None = None) -> str:
    """Median wall time and median CPU time of ``repeat`` runs."""
    walls, cpus = [], []
    for _ in range(repeat):
        if clear is not None:
            shutil.rmtree(clear, ignore_errors=True)
        walls.append(run(directory, *args))
        cpus.append(CPU[-1])
    return f"{statistics.median(walls):5.2f}s ({statistics.median(cpus):4.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "models").mkdir()
        for i in range(args.count):
            onnx.save(small_model(i), root / "models" / f"m{i:04d}.onnx")
        cache = root / ".archlint_cache"
        print(f"{args.count} ONNX files, median of {args.repeat} runs (whole process): wall s (CPU s)")
        print(f"{'jobs':>4}  {'no cache':>13}  {'first run':>13}  {'cached':>13}")
        for jobs in ("1", "2"):
            no_cache = timed(root, args.repeat, "--jobs", jobs, "--no-cache")
            first = timed(root, args.repeat, "--jobs", jobs, clear=cache)
            cached = timed(root, args.repeat, "--jobs", jobs)
            print(f"{jobs:>4}  {no_cache:>13}  {first:>13}  {cached:>13}")


if __name__ == "__main__":
    main()
