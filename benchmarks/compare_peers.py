"""archlint against the tools users reach for today, on the same torchvision models in one run.

Run it in its own virtual environment (not the test dependencies)::

    python3.11 -m venv /tmp/peers && . /tmp/peers/bin/activate
    pip install torch==2.14.1 torchvision==0.29.1 onnxscript
    pip install torchinfo fvcore ptflops thop torchscan calflops onnx-tool
    pip install -e .            # archlint itself
    python benchmarks/compare_peers.py [--models resnet50 ...] [--no-onnx] [--write-readme]

For each model (random weights, eval mode, batch 1, the input size of its published weights'
transforms) every tool's params and MACs are compared with torchvision's published
``num_params`` and ``_ops`` (GFLOPS, which are MACs), with the wall time of the call
(median of ``--repeats``) and whether it crashed or warned. MACs: torchinfo's
``total_mult_adds``, fvcore's ``FlopCountAnalysis.total()`` (one per fused multiply-add),
ptflops' and thop's MACs, torchscan's ``macs``, calflops' ``macs``, and
``FlopCounterMode``'s total / 2.

The ONNX half exports each model with both exporters (TorchScript, ``dynamo=False``, and
``dynamo=True``) and runs ``archlint model.onnx`` and ``python -m onnx_tool -i model.onnx``
as whole processes; onnx-tool's MACs come from its Python API (``Graph.profile``).
``--write-readme`` replaces the block between the ``peers`` markers in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import platform
import statistics
import subprocess
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable

import torch
import torchvision

ROOT = Path(__file__).resolve().parent.parent
MODELS = ["alexnet", "vgg16", "squeezenet1_1", "googlenet", "inception_v3", "resnet18", "resnet50",
          "resnext50_32x4d", "wide_resnet50_2", "densenet121", "mobilenet_v2", "mobilenet_v3_large",
          "shufflenet_v2_x1_0", "mnasnet1_0", "efficientnet_b0", "efficientnet_v2_s", "regnet_y_400mf",
          "regnet_x_1_6gf", "convnext_tiny", "vit_b_16", "swin_t", "maxvit_t"]
# torchvision publishes googlenet's figures without its auxiliary classifiers (its weights
# builder drops them); built without weights the model keeps them unless asked not to
MODEL_KWARGS: dict[str, dict[str, Any]] = {"googlenet": {"aux_logits": False, "init_weights": False},
                                           "inception_v3": {"init_weights": False}}
TOOLS = ["archlint", "torchinfo", "fvcore", "ptflops", "thop", "torchscan", "calflops", "FlopCounterMode"]


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())  # parameters() yields a shared tensor once


def run_archlint(model, x):
    import archlint
    r = archlint.analyze(model, example_inputs=(x,), lint=False)
    return r.totals.params, r.totals.macs


def run_torchinfo(model, x):
    from torchinfo import summary
    s = summary(model, input_data=x, verbose=0)
    return s.total_params, s.total_mult_adds


def run_fvcore(model, x):
    from fvcore.nn import FlopCountAnalysis, parameter_count
    a = FlopCountAnalysis(model, x)
    total = a.total()
    if a.unsupported_ops():
        warnings.warn(f"fvcore skipped ops: {dict(a.unsupported_ops())}")
    return parameter_count(model)[""], total


def run_ptflops(model, x):
    from ptflops import get_model_complexity_info
    macs, params = get_model_complexity_info(model, tuple(x.shape[1:]), as_strings=False,
                                             print_per_layer_stat=False, verbose=False)
    return params, macs


def run_thop(model, x):
    from thop import profile
    macs, params = profile(model, inputs=(x,), verbose=False)
    return int(params), int(macs)


def run_torchscan(model, x):
    from torchscan import crawl_module
    r = crawl_module(model, tuple(x.shape[1:]))
    diagnostics = [d for d in r["diagnostics"] if d["metric"] == "macs"]
    if diagnostics:
        warnings.warn(f"torchscan: {len(diagnostics)} MAC diagnostics")
    return r["totals"]["parameters"]["value"], r["totals"]["macs"]["value"]


def run_calflops(model, x):
    from calflops import calculate_flops
    _, macs, params = calculate_flops(model, input_shape=tuple(x.shape), output_as_string=False,
                                      print_results=False, print_detailed=False)
    return params, macs


def run_flopcounter(model, x):
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        model(x)
    return n_params(model), counter.get_total_flops() // 2


RUNNERS: dict[str, Callable] = {"archlint": run_archlint, "torchinfo": run_torchinfo, "fvcore": run_fvcore,
                                "ptflops": run_ptflops, "thop": run_thop, "torchscan": run_torchscan,
                                "calflops": run_calflops, "FlopCounterMode": run_flopcounter}


def measure(tool: str, model: torch.nn.Module, x: torch.Tensor, repeats: int) -> dict[str, Any]:
    """Call one tool on a fresh deep copy (thop and others leave hooks and buffers behind)."""
    times, result, warned, error = [], None, [], None
    for _ in range(repeats):
        m = copy.deepcopy(model)
        sink = io.StringIO()
        with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(sink), \
                contextlib.redirect_stderr(sink), torch.no_grad():
            warnings.simplefilter("always")
            start = time.perf_counter()
            try:
                result = RUNNERS[tool](m, x)
            except Exception as exc:  # a peer crashing is a result, not a benchmark failure
                error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
                traceback.clear_frames(exc.__traceback__)
            times.append(time.perf_counter() - start)
        warned = sorted({str(w.message).splitlines()[0][:100] for w in caught
                         if not issubclass(w.category, (DeprecationWarning, FutureWarning))})
        if error:
            break
    out: dict[str, Any] = {"time": statistics.median(times), "warnings": warned}
    if error:
        out["error"] = error
    elif result is None or result[0] is None or result[1] is None:
        out["error"] = f"returned no total (params={result and result[0]}, MACs={result and result[1]})"
    else:
        out["params"], out["macs"] = int(result[0]), int(result[1])
    return out


def published(name: str) -> tuple[int, float, int]:
    weights = torchvision.models.get_model_weights(name).DEFAULT
    size = weights.transforms().crop_size[0]
    return weights.meta["num_params"], weights.meta["_ops"] * 1e9, size


def onnx_rows(name: str, model: torch.nn.Module, x: torch.Tensor, outdir: Path, repeats: int) -> dict[str, Any]:
    import onnx_tool
    rows: dict[str, Any] = {}
    for exporter in ("ts", "dynamo"):
        path = outdir / f"{name}.{exporter}.onnx"
        if not path.exists():
            sink = io.StringIO()
            try:
                with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    torch.onnx.export(copy.deepcopy(model), (x,), str(path), dynamo=exporter == "dynamo",
                                      opset_version=18 if exporter == "dynamo" else 17)
            except Exception as exc:
                rows[exporter] = {"export_error": f"{type(exc).__name__}: {str(exc)[:100]}"}
                continue
        entry: dict[str, Any] = {}
        for f in path.parent.glob(path.name + "*"):  # page cache warm for both tools alike
            f.read_bytes()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "archlint", str(path), "--format", "json",
                                   "--output", str(path) + ".json"], capture_output=True, text=True)
            times.append(time.perf_counter() - start)
        entry["archlint_time"] = statistics.median(times)
        if proc.returncode in (0, 1):
            totals = json.loads(Path(str(path) + ".json").read_text())["totals"]
            entry["archlint"] = {"params": totals["params"], "macs": totals["macs"], "partial": totals["partial"]}
        else:
            entry["archlint"] = {"error": proc.stderr.strip()[:160]}
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "onnx_tool", "-i", str(path), "-f", str(path) + ".txt"],
                                  capture_output=True, text=True)
            times.append(time.perf_counter() - start)
        entry["onnx_tool_time"] = statistics.median(times)
        try:
            sink = io.StringIO()
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                g = onnx_tool.Model(str(path)).graph
                g.graph_reorder_nodes()
                g.shape_infer()
                g.profile()
            entry["onnx_tool"] = {"params": int(g.params), "macs": int(round(g.macs[0]))}
            if proc.returncode != 0:
                entry["onnx_tool"]["cli_error"] = proc.stderr.strip().splitlines()[-1][:160]
        except Exception as exc:
            entry["onnx_tool"] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"}
        rows[exporter] = entry
    return rows


def pct(value: int | None, ref: float) -> str:
    return "?" if value is None else f"{100 * (value - ref) / ref:+.2f}%"


def cell_macs(r: dict[str, Any], ref: float) -> str:
    if "error" in r:
        return "crash"
    return pct(r["macs"], ref) + (" (w)" if r.get("warnings") else "")


def cell_params(r: dict[str, Any], ref: int) -> str:
    if "error" in r:
        return "crash"
    return "exact" if r["params"] == ref else pct(r["params"], ref)


def markdown(results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [f"Machine: {meta['machine']}; Python {meta['python']}, torch {meta['torch']}, "
             f"torchvision {meta['torchvision']}; {meta['versions']}. Median of {meta['repeats']} calls per tool, "
             "in one process, each on a fresh copy of the model, after one warm-up model.", "",
             "**MACs against torchvision's published `_ops`** (relative error; `(w)`: the tool warned, usually "
             "about ops it skipped; `crash`: it raised):", "",
             "| model | input | published GMACs | " + " | ".join(TOOLS) + " |",
             "|---|---|---|" + "---|" * len(TOOLS)]
    for res in results:
        lines.append(f"| {res['model']} | {res['size']} | {res['ops'] / 1e9:.3f} | "
                     + " | ".join(cell_macs(res["tools"][t], res["ops"]) for t in TOOLS) + " |")
    lines += ["", "**Params against torchvision's published `num_params`:**", "",
              "| model | published | " + " | ".join(TOOLS) + " |", "|---|---|" + "---|" * len(TOOLS)]
    for res in results:
        lines.append(f"| {res['model']} | {res['num_params']:,} | "
                     + " | ".join(cell_params(res["tools"][t], res["num_params"]) for t in TOOLS) + " |")
    lines += ["", "**Wall time per model (s)** (archlint: `archlint.analyze(model, example_inputs=..., lint=False)`; "
              "the others: their one call):", "", "| model | " + " | ".join(TOOLS) + " |",
              "|---|" + "---|" * len(TOOLS)]
    for res in results:
        lines.append(f"| {res['model']} | " + " | ".join(f"{res['tools'][t]['time']:.3f}" for t in TOOLS) + " |")
    medians = {t: statistics.median(r["tools"][t]["time"] for r in results) for t in TOOLS}
    lines.append("| **median** | " + " | ".join(f"**{medians[t]:.3f}**" for t in TOOLS) + " |")
    worst = {t: max((abs(r["tools"][t]["macs"] - r["ops"]) / r["ops"] for r in results if "macs" in r["tools"][t]),
                    default=float("nan")) for t in TOOLS}
    crashes = {t: sum("error" in r["tools"][t] for r in results) for t in TOOLS}
    exact = {t: sum(r["tools"][t].get("params") == r["num_params"] for r in results) for t in TOOLS}
    lines += ["", "| summary | " + " | ".join(TOOLS) + " |", "|---|" + "---|" * len(TOOLS),
              "| worst MACs error | " + " | ".join(f"{100 * worst[t]:.2f}%" for t in TOOLS) + " |",
              f"| params exact (of {len(results)}) | " + " | ".join(str(exact[t]) for t in TOOLS) + " |",
              "| crashes | " + " | ".join(str(crashes[t]) for t in TOOLS) + " |",
              "| median time (s) | " + " | ".join(f"{medians[t]:.3f}" for t in TOOLS) + " |"]
    onnx = [r for r in results if r.get("onnx")]
    if onnx:
        lines += ["", "**ONNX path** (whole process, median of the same repeats, page cache warm: "
                  "`archlint model.onnx --format json --output out.json` against "
                  "`python -m onnx_tool -i model.onnx -f out.txt`; MACs error against `_ops`):", "",
                  "| model | exporter | archlint MACs | archlint params | archlint (s) | onnx-tool MACs | "
                  "onnx-tool params | onnx-tool CLI (s) |", "|---|---|---|---|---|---|---|---|"]
        times_a, times_o = [], []
        for res in onnx:
            for exporter, e in res["onnx"].items():
                if "export_error" in e:
                    lines.append(f"| {res['model']} | {exporter} | export failed: {e['export_error']} |||||")
                    continue
                a, o = e["archlint"], e["onnx_tool"]
                am = "crash" if "error" in a else pct(a["macs"], res["ops"]) + (" (partial)" if a["partial"] else "")
                ap = "crash" if "error" in a else ("exact" if a["params"] == res["num_params"]
                                                   else pct(a["params"], res["num_params"]))
                om = "crash" if "error" in o else pct(o["macs"], res["ops"])
                op = "crash" if "error" in o else ("exact" if o["params"] == res["num_params"]
                                                   else pct(o["params"], res["num_params"]))
                if "cli_error" in o:
                    op += " (CLI crashed)"
                times_a.append(e["archlint_time"])
                times_o.append(e["onnx_tool_time"])
                lines.append(f"| {res['model']} | {exporter} | {am} | {ap} | {e['archlint_time']:.2f} | {om} | {op} | "
                             f"{e['onnx_tool_time']:.2f} |")
        lines.append(f"| **median** | | | | **{statistics.median(times_a):.2f}** | | | "
                     f"**{statistics.median(times_o):.2f}** |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", default=MODELS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-onnx", action="store_true")
    parser.add_argument("--onnx-dir", type=Path, default=Path("/tmp/archlint-peers"))
    parser.add_argument("--json", type=Path, default=Path("/tmp/archlint-peers/results.json"))
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    args.onnx_dir.mkdir(parents=True, exist_ok=True)
    from importlib.metadata import version
    versions = ", ".join(f"{p} {version(p)}" for p in ("archlint", "torchinfo", "fvcore", "ptflops", "thop",
                                                       "torchscan", "calflops", "onnx-tool"))
    meta = {"machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
            "python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
            "versions": versions, "repeats": args.repeats}
    warm = torchvision.models.get_model("squeezenet1_1").eval()
    for tool in TOOLS:  # imports and first-call setup out of the timings
        measure(tool, warm, torch.randn(1, 3, 224, 224), 1)
    results = []
    for name in args.models:
        num_params, ops, size = published(name)
        model = torchvision.models.get_model(name, **MODEL_KWARGS.get(name, {})).eval()
        x = torch.randn(1, 3, size, size)
        res: dict[str, Any] = {"model": name, "size": size, "num_params": num_params, "ops": ops, "tools": {}}
        for tool in TOOLS:
            res["tools"][tool] = measure(tool, model, x, args.repeats)
        if not args.no_onnx:
            res["onnx"] = onnx_rows(name, model, x, args.onnx_dir, args.repeats)
        results.append(res)
        line = " ".join(f"{t}={cell_macs(res['tools'][t], ops)}/{res['tools'][t]['time']:.2f}s" for t in TOOLS)
        print(f"{name}: {line}", file=sys.stderr, flush=True)
        args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    text = markdown(results, meta)
    print(text)
    if args.write_readme:
        readme = ROOT / "benchmarks" / "README.md"
        body = readme.read_text()
        start, end = "<!-- peers:start -->", "<!-- peers:end -->"
        if start in body:
            head, rest = body.split(start, 1)
            body = head + start + "\n" + text + "\n" + end + rest.split(end, 1)[1]
            readme.write_text(body)


if __name__ == "__main__":
    main()
