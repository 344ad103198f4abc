"""Crash-free sweep over timm's classification models through the PyTorch path.

    /tmp/tv/bin/pip install timm
    /tmp/tv/bin/python benchmarks/timm_sweep.py --out /tmp/timm_sweep.jsonl [--limit N] [--filter 'resnet*']

Every model timm can build is created with random weights on the meta device
(``pretrained=False``: nothing is downloaded), analysed at its default input size, and
checked: params must equal ``sum(p.numel() for p in model.parameters())``. Each model runs
in a child process with a time limit, so a hang or a crash is recorded, not fatal.
Writes one JSON line per model and prints the success rate and each failure's reason.
"""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing as mp
import time
from pathlib import Path


def check_one(name: str, queue: "mp.Queue[dict]") -> None:
    import warnings

    import timm
    import torch

    import archlint
    warnings.simplefilter("ignore")
    row: dict = {"model": name}
    try:
        with torch.device("meta"):
            model = timm.create_model(name, pretrained=False)
        cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", {}) or {}
        size = tuple(cfg.get("input_size", (3, 224, 224)))
        row["input"] = list(size)
        expected = sum(p.numel() for p in model.parameters())
    except Exception as exc:  # timm itself cannot build it on the meta device
        row.update(status="build-failed", reason=f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
        queue.put(row)
        return
    start = time.perf_counter()
    try:
        report = archlint.analyze(model, input_shape=(1, *size))
        row.update(status="ok" if report.totals.params == expected else "params-mismatch",
                   params=report.totals.params, expected_params=expected, macs=report.totals.macs,
                   partial=report.totals.partial, tracer=report.model.get("tracer"),
                   uncounted=sorted({u["op"] for u in report.totals.uncounted_ops}))
    except archlint.ArchlintError as exc:
        row.update(status="clear-error", reason=str(exc)[:300])
    except Exception as exc:
        row.update(status="crash", reason=f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}")
    row["seconds"] = round(time.perf_counter() - start, 2)
    queue.put(row)


def run(name: str, timeout: float) -> dict:
    ctx = mp.get_context("fork")
    queue: "mp.Queue[dict]" = ctx.Queue()
    proc = ctx.Process(target=check_one, args=(name, queue))
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        proc.kill()
        return {"model": name, "status": "timeout", "reason": f"over {timeout:.0f} s"}
    if queue.empty():
        return {"model": name, "status": "crash", "reason": f"process died (exit code {proc.exitcode})"}
    return queue.get()


def main() -> None:
    import fnmatch

    import timm
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("/tmp/timm_sweep.jsonl"))
    parser.add_argument("--limit", type=int)
    parser.add_argument("--filter", default="*")
    parser.add_argument("--timeout", type=float, default=180)
    parser.add_argument("--rerun", action="store_true", help="analyse again the models recorded as not ok or partial")
    args = parser.parse_args()
    names = [n for n in timm.list_models() if fnmatch.fnmatch(n, args.filter)]
    if args.limit:
        names = names[: args.limit]
    done = {}
    if args.out.exists():
        for line in args.out.read_text().splitlines():
            row = json.loads(line)
            done[row["model"]] = row
        if args.rerun:
            done = {k: v for k, v in done.items() if v["status"] == "ok" and not v.get("partial")}
    with args.out.open("a") as fh:
        for i, name in enumerate(names):
            if name in done:
                continue
            row = run(name, args.timeout)
            done[name] = row
            fh.write(json.dumps(row) + "\n")
            fh.flush()
            print(f"[{i + 1}/{len(names)}] {name}: {row['status']} {row.get('reason', '')[:120]}", flush=True)
    rows = [done[n] for n in names if n in done]
    built = [r for r in rows if r["status"] != "build-failed"]
    ok = [r for r in built if r["status"] == "ok"]
    print(f"\ntimm {timm.__version__}: {len(names)} models, {len(rows) - len(built)} that timm cannot build on the "
          f"meta device; archlint analysed {len(ok)}/{len(built)} = {100 * len(ok) / max(len(built), 1):.1f}% "
          f"with params equal to the module's count")
    print(f"partial totals (some op uncounted): {sum(1 for r in ok if r.get('partial'))}")
    reasons = collections.Counter((r["status"], r.get("reason", "")[:100]) for r in built if r["status"] != "ok")
    for (status, reason), n in reasons.most_common():
        print(f"  {n:4d}  {status}: {reason}")


if __name__ == "__main__":
    main()
