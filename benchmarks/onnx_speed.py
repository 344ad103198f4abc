"""Time ``archlint`` as a whole process on a ResNet-50-size ONNX and on synthetic graphs.

    python benchmarks/onnx_speed.py [--resnet50 PATH] [--sizes 10000 100000 1000000]

Without ``--resnet50`` a ResNet-50 with torchvision's exact layer shapes (BatchNorm folded,
as exporters do; zero weights, 102 MB) is written with onnx.helper, so no torch is needed.
Synthetic graphs are chains of 1x1 convs and ReLUs with a residual Add every few nodes.
Each graph is analysed as a whole process twice: ``--format concise`` (the pre-commit and CI
use: findings only) and ``--format json --output FILE`` (every layer written). Reports the
median and slowest wall time of 3 runs, the peak resident memory of the
process (GNU time's ``%M``; needs /usr/bin/time), and the fitted exponent of time against node count.
"""

from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _conv(nodes, inits, x, cin, cout, k, s, name):
    w = f"{name}.w"
    b = f"{name}.b"
    inits.append(numpy_helper.from_array(np.zeros((cout, cin, k, k), np.float32), w))
    inits.append(numpy_helper.from_array(np.zeros((cout,), np.float32), b))
    p = k // 2
    nodes.append(helper.make_node("Conv", [x, w, b], [f"{name}.y"], name=name, kernel_shape=[k, k], strides=[s, s],
                                  pads=[p, p, p, p]))
    return f"{name}.y"


def _relu(nodes, x, name):
    nodes.append(helper.make_node("Relu", [x], [f"{name}.y"], name=name))
    return f"{name}.y"


def resnet50_onnx(path: Path) -> None:
    """torchvision resnet50's layer shapes (stride on the 3x3 conv), BatchNorm folded into conv biases."""
    nodes: list = []
    inits: list = []
    x = _relu(nodes, _conv(nodes, inits, "input", 3, 64, 7, 2, "conv1"), "relu")
    nodes.append(helper.make_node("MaxPool", [x], ["pool"], name="maxpool", kernel_shape=[3, 3], strides=[2, 2],
                                  pads=[1, 1, 1, 1]))
    x, cin = "pool", 64
    for stage, (blocks, width, stride) in enumerate([(3, 64, 1), (4, 128, 2), (6, 256, 2), (3, 512, 2)], 1):
        for i in range(blocks):
            s = stride if i == 0 else 1
            n = f"layer{stage}.{i}"
            y = _relu(nodes, _conv(nodes, inits, x, cin, width, 1, 1, f"{n}.conv1"), f"{n}.relu1")
            y = _relu(nodes, _conv(nodes, inits, y, width, width, 3, s, f"{n}.conv2"), f"{n}.relu2")
            y = _conv(nodes, inits, y, width, width * 4, 1, 1, f"{n}.conv3")
            short = _conv(nodes, inits, x, cin, width * 4, 1, s, f"{n}.downsample") if i == 0 else x
            nodes.append(helper.make_node("Add", [y, short], [f"{n}.add"], name=f"{n}.add"))
            x, cin = _relu(nodes, f"{n}.add", f"{n}.relu3"), width * 4
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["gap"], name="avgpool"))
    nodes.append(helper.make_node("Flatten", ["gap"], ["flat"], name="flatten", axis=1))
    inits.append(numpy_helper.from_array(np.zeros((1000, 2048), np.float32), "fc.w"))
    inits.append(numpy_helper.from_array(np.zeros((1000,), np.float32), "fc.b"))
    nodes.append(helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["output"], name="fc", transB=1))
    graph = helper.make_graph(nodes, "resnet50", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                               [1, 3, 224, 224])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1000])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def synthetic_onnx(path: Path, n_nodes: int, channels: int = 4) -> None:
    nodes: list = []
    inits = [numpy_helper.from_array(np.zeros((channels, channels, 1, 1), np.float32), "w")]
    x = "input"
    skip = x
    for i in range(n_nodes):
        if i % 3 == 0:
            nodes.append(helper.make_node("Conv", [x, "w"], [f"t{i}"], name=f"conv{i}", kernel_shape=[1, 1]))
        elif i % 3 == 1:
            nodes.append(helper.make_node("Relu", [x], [f"t{i}"], name=f"relu{i}"))
        else:
            nodes.append(helper.make_node("Add", [x, skip], [f"t{i}"], name=f"add{i}"))
            skip = f"t{i}"
        x = f"t{i}"
    graph = helper.make_graph(nodes, "synthetic",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, channels, 8, 8])],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, channels, 8, 8])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def run_cli(path: Path, fmt: str, runs: int = 3) -> tuple[float, float, float]:
    """Median and slowest wall seconds, and the largest peak RSS (MB), of ``archlint PATH --format FMT``."""
    times, peaks = [], []
    out = Path(tempfile.gettempdir()) / "archlint-speed.out"
    extra = ["--output", str(out)] if fmt == "json" else []
    for _ in range(runs):
        # GNU time reports the child's own peak (wait4 on a child forked from this large
        # process would count pages it inherited before exec)
        start = time.perf_counter()
        command = [sys.executable, "-m", "archlint", str(path), "--format", fmt, "--no-cache", *extra]
        proc = subprocess.run(["/usr/bin/time", "-f", "maxrss_kb=%M", *command], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
        times.append(time.perf_counter() - start)
        peaks.append(int(proc.stderr.rsplit("maxrss_kb=", 1)[1].split()[0]) / 1024)
        if proc.returncode not in (0, 1):  # 1: lint findings
            raise SystemExit(f"archlint failed on {path}: {proc.stderr[:300]}")
    out.unlink(missing_ok=True)
    return statistics.median(times), max(times), max(peaks)


def time_cli(path: Path, runs: int = 3) -> float:
    return run_cli(path, "json", runs)[0]


def _slope(points: list[tuple[int, float]]) -> float:
    xs = [math.log(n) for n, _ in points]
    ys = [math.log(t) for _, t in points]
    mx, my = statistics.mean(xs), statistics.mean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--resnet50", type=Path, help="a real resnet50 ONNX export to time as well")
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        print("| model | nodes | concise: wall (s), median (slowest) | concise: peak RSS (MB) "
              "| json: wall (s), median (slowest) | json: peak RSS (MB) |")
        print("|---|---|---|---|---|---|")
        r50 = tmpdir / "resnet50.onnx"
        resnet50_onnx(r50)
        rows = [(f"resnet50 (synthetic, torchvision shapes, {r50.stat().st_size / 1e6:.0f} MB)", r50)]
        if args.resnet50:
            rows.append((f"resnet50 ({args.resnet50.name})", args.resnet50))
        for name, path in rows:
            n = len(onnx.load(str(path), load_external_data=False).graph.node)
            (tc, wc, mc), (tj, wj, mj) = run_cli(path, "concise"), run_cli(path, "json")
            print(f"| {name} | {n} | {tc:.2f} ({wc:.2f}) | {mc:.0f} | {tj:.2f} ({wj:.2f}) | {mj:.0f} |", flush=True)
        concise, full = [], []
        for size in args.sizes:
            path = tmpdir / f"synthetic_{size}.onnx"
            synthetic_onnx(path, size)
            (tc, wc, mc), (tj, wj, mj) = run_cli(path, "concise"), run_cli(path, "json")
            concise.append((size, tc))
            full.append((size, tj))
            print(f"| synthetic | {size:,} | {tc:.2f} ({wc:.2f}) | {mc:.0f} | {tj:.2f} ({wj:.2f}) | {mj:.0f} |",
                  flush=True)
            path.unlink()
        if len(concise) > 1:
            print(f"\nfitted exponent of time against node count: concise {_slope(concise):.2f}, "
                  f"json {_slope(full):.2f} (1.0 = linear)")


if __name__ == "__main__":
    main()
