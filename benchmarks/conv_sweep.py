"""Estimated against measured speedups of conv substitutions on this machine.

    python benchmarks/conv_sweep.py [--profile calibrated.toml] [--seconds 0.3]

Calibrates this machine (``archlint calibrate``) unless a profile is given, then for each of
44 conv configurations (kernel, channels, resolution, stride) builds the layer, lets
archlint estimate the depthwise-separable and grouped (G = 2, 4, 8) replacements with the
same code the AL101/AL102 findings use, and times every variant with torch, interleaved
(``explore --measure``: ``archlint.measure.time_chains``). Reports the
Spearman rank correlation between estimated and measured speedups, and every estimate
that promised more than 1.2x but measured no speedup.
"""

from __future__ import annotations

import argparse
import itertools
import platform
import time

import torch
from torch import nn

import archlint
from archlint import profiles
from archlint.explore import whatif
from archlint.measure import calibrate


def ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=values.__getitem__)
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2
        i = j + 1
    return out


def spearman(a: list[float], b: list[float]) -> float:
    ra, rb = ranks(a), ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    return cov / (sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb)) ** 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile")
    parser.add_argument("--seconds", type=float, default=0.3)
    args = parser.parse_args()
    profile = profiles.load(args.profile) if args.profile else profiles.from_dict(calibrate(args.seconds).profile, "calibrated")
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch "
          f"{torch.__version__}; profile: peak {profile.peak('fp32') / 1e9:.1f} GFLOP/s, bandwidth "
          f"{profile.bandwidth / 1e9:.1f} GB/s, overhead {profile.overhead * 1e6:.1f} us, efficiency "
          f"{profile.efficiency}, fixed cost per class (us) "
          f"{ {k: round(v * 1e6, 1) for k, v in profile.overheads.items()} }\n")
    configs = [(k, c, size, s) for k, c, size, s in itertools.product((3, 5), (32, 64, 128, 256), (14, 28, 56), (1, 2))
               if not (c == 256 and size == 56)]
    print("| k | channels | size | stride | variant | est. speedup | measured speedup |\n|---|---|---|---|---|---|---|")
    est, meas, bad = [], [], []
    start = time.perf_counter()
    for k, c, size, s in configs:
        model = nn.Sequential(nn.Conv2d(c, c, k, s, k // 2, bias=False))
        report = archlint.analyze(model, input_shape=(1, c, size, size), profile=profile)
        rows = whatif(report, "0", measure=True)
        for row in rows[1:]:
            if row["variant"] not in ("depthwise-separable", "grouped G=2", "grouped G=4", "grouped G=8"):
                continue
            est.append(row["est_speedup"])
            meas.append(row["measured_speedup"])
            if row["est_speedup"] > 1.2 and row["measured_speedup"] <= 1.0:
                bad.append((k, c, size, s, row["variant"], row["est_speedup"], row["measured_speedup"]))
            print(f"| {k} | {c} | {size} | {s} | {row['variant']} | {row['est_speedup']:.2f}x | "
                  f"{row['measured_speedup']:.2f}x |")
    print(f"\n{len(configs)} configurations, {len(est)} substitutions, {time.perf_counter() - start:.0f} s")
    print(f"Spearman rank correlation, estimated vs measured speedup: {spearman(est, meas):.3f}")
    print(f"estimates above 1.2x that measured no speedup: {len(bad)}")
    for row in bad:
        print(f"  k{row[0]} c{row[1]} {row[2]}px s{row[3]} {row[4]}: est {row[5]:.2f}x, measured {row[6]:.2f}x")


if __name__ == "__main__":
    main()
