"""archlint over the ONNX node-test corpus that the installed onnx package generates.

``onnx.backend.test.case.node.collect_testcases`` builds every node test of the operator
specification (about 1,900 small models with their input and expected output arrays). Each
model is analysed in process with its test inputs' shapes as the input shapes (as a user would
pass ``--input-shape``), and sorted into:

- tracebacks: any exception other than archlint's one-line error (must be 0);
- timeouts: over ``--timeout`` seconds (must be 0);
- exit 2: archlint's one-line refusal, with its reason (only invalid models or inputs that are
  not tensors should be here);
- partial: analysed, with some op not costed (listed by op type);
- output shapes: each graph output archlint gives a shape for, against the shape of the test's
  expected output array.

Usage: ``python benchmarks/onnx_corpus.py [--limit N] [--json out.json] [--timeout 30]``.
"""

from __future__ import annotations

import argparse
import collections
import json
import signal
import sys
import time
import traceback
import warnings
from typing import Any

import numpy as np


class _Timeout(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise _Timeout


def _input_shapes(case: Any) -> dict[str, tuple[int, ...]]:
    """The shapes of the first data set's tensor inputs, by graph input name (scalars and
    zero-size inputs keep their declared shapes: ``--input-shape`` takes neither)."""
    if not case.data_sets:
        return {}
    inputs, _ = case.data_sets[0]
    inits = {i.name for i in case.model.graph.initializer}
    names = [i.name for i in case.model.graph.input if i.name not in inits]
    return {name: tuple(int(d) for d in arr.shape) for name, arr in zip(names, inputs)
            if isinstance(arr, np.ndarray) and arr.ndim and 0 not in arr.shape}


def _expected_outputs(case: Any) -> dict[str, tuple[int, ...]]:
    if not case.data_sets:
        return {}
    _, outputs = case.data_sets[0]
    names = [o.name for o in case.model.graph.output]
    return {name: tuple(arr.shape) for name, arr in zip(names, outputs) if isinstance(arr, np.ndarray)}


def run_case(case: Any, timeout: int) -> dict[str, Any]:
    import archlint
    from archlint.errors import ArchlintError
    result: dict[str, Any] = {"name": case.name}
    shapes = _input_shapes(case)
    signal.alarm(timeout)
    start = time.perf_counter()
    try:
        report = archlint.analyze(case.model, input_shape=shapes or None)
    except ArchlintError as exc:
        result["status"], result["reason"] = "exit2", str(exc).splitlines()[0]
        return result
    except _Timeout:
        result["status"] = "timeout"
        return result
    except Exception as exc:  # a traceback: archlint failed
        result["status"], result["reason"] = "traceback", f"{type(exc).__name__}: {exc}"
        result["trace"] = traceback.format_exc(limit=-3)
        return result
    finally:
        signal.alarm(0)
        result["seconds"] = time.perf_counter() - start
    result["status"] = "partial" if report.totals.uncounted_ops else "ok"
    result["uncosted"] = sorted({u["op"] for u in report.totals.uncounted_ops})
    graph = report.graph
    compared = []
    for name, expected in _expected_outputs(case).items():
        got = graph.shape(name) if graph is not None else None
        compared.append((name, None if got is None else tuple(got), expected))
    result["outputs"] = compared
    return result


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    status = collections.Counter(r["status"] for r in results)
    uncosted: collections.Counter[str] = collections.Counter()
    for r in results:
        uncosted.update(r.get("uncosted", []))
    shapes = [o for r in results for o in r.get("outputs", [])]
    known = [o for o in shapes if o[1] is not None]
    matched = [o for o in known if o[1] == o[2]]
    reasons: collections.Counter[str] = collections.Counter()
    for r in results:
        if r["status"] == "exit2":
            reason = r["reason"].split(": ", 1)[-1]
            reasons[reason[:90]] += 1
    return {"models": len(results), "status": dict(status), "outputs_expected": len(shapes),
            "outputs_with_shape": len(known), "outputs_matching": len(matched),
            "mismatches": [(r["name"], o) for r in results for o in r.get("outputs", [])
                           if o[1] is not None and o[1] != o[2]],
            "uncosted_op_types": dict(uncosted.most_common()),
            "exit2_reasons": dict(reasons.most_common()),
            "tracebacks": [(r["name"], r["reason"]) for r in results if r["status"] == "traceback"],
            "timeouts": [r["name"] for r in results if r["status"] == "timeout"],
            "slowest": sorted(((round(r.get("seconds", 0), 2), r["name"]) for r in results), reverse=True)[:5]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=0, help="analyse only the first N models")
    parser.add_argument("--timeout", type=int, default=30, help="seconds per model")
    parser.add_argument("--json", help="write every result and the summary here")
    parser.add_argument("--filter", default="", help="only test names containing this")
    args = parser.parse_args()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from onnx.backend.test.case import node
        cases = [c for c in node.collect_testcases(None) if args.filter in c.name]
    if args.limit:
        cases = cases[:args.limit]
    signal.signal(signal.SIGALRM, _alarm)
    start = time.perf_counter()
    results = [run_case(c, args.timeout) for c in cases]
    summary = summarise(results)
    summary["wall_seconds"] = round(time.perf_counter() - start, 1)
    import onnx
    summary["onnx_version"] = onnx.__version__
    text = json.dumps({k: v for k, v in summary.items() if k not in ("mismatches",)}, indent=1)
    print(text)
    if summary["mismatches"]:
        print("output shape mismatches:", *summary["mismatches"][:30], sep="\n  ")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"summary": summary, "results": results}, fh, indent=1, default=str)
    sys.exit(0)


if __name__ == "__main__":
    main()
