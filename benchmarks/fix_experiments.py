"""The three experiments of issue 16 on scikit-learn's digits (1,797 8x8 images, shown at
16x16 by repeating each pixel 2x2), with a small CNN trained on the CPU.

1. Receptive field against dilation 1/2/4: archlint's field of the last conv against the
   measured effective field (the span of d(centre unit)/d(input), averaged over test images,
   on the trained network), and test accuracy.
2. Depthwise-separable against standard, through ``archlint.apply`` (AL101): accuracy of
   the carried-over weights before and after fine-tuning and of the same structure trained
   from scratch; params, MACs, archlint's estimated time, measured CPU time
   (``torch.utils.benchmark``).
3. Group count G in {1, 2, 4, 8, 16} (AL102): the same table.

    python benchmarks/fix_experiments.py            # full: 5 epochs (2 to fine-tune), about 30 min on a busy 2-core VM
    python benchmarks/fix_experiments.py --fast     # 1 epoch on 200 images (what the notebook test runs)

Results are printed as markdown tables and written to ``--json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import archlint  # noqa: E402
from archlint.analyses import rewrite  # noqa: E402

SHAPE = (1, 1, 16, 16)


@dataclass
class Settings:
    epochs: int = 5
    finetune: int = 2
    train_size: int | None = None
    time_runs: float = 0.3
    seed: int = 0
    dilations: tuple[int, ...] = (1, 2, 4)
    groups: tuple[int, ...] = (2, 4, 8, 16)


FAST = Settings(epochs=1, finetune=1, train_size=200, time_runs=0.01, dilations=(1, 2), groups=(4,))


def digits(settings: Settings) -> tuple[torch.Tensor, ...]:
    """Train and test tensors: 8x8 digits scaled to [0, 1], repeated to 16x16 (so that fields up to
    16 pixels fit in the image); a fixed 75/25 split."""
    from sklearn.datasets import load_digits
    data = load_digits()
    x = np.kron(data.images / 16.0, np.ones((2, 2))).astype("float32")[:, None]
    y = data.target.astype("int64")
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    cut = int(0.75 * len(x))
    train = slice(0, cut if settings.train_size is None else min(cut, settings.train_size))
    return (torch.from_numpy(x[train]), torch.from_numpy(y[train]), torch.from_numpy(x[cut:]),
            torch.from_numpy(y[cut:]))


class CNN(nn.Module):
    """conv 1->16, conv 16->32 (dilation d), conv 32->32 (dilation d), all 3x3 'same' + BatchNorm
    + ReLU, global average pool, linear 32->10."""

    def __init__(self, dilation: int = 1) -> None:
        super().__init__()
        d = dilation
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=d, dilation=d, bias=False)
        self.bn2 = nn.BatchNorm2d(32)
        self.conv3 = nn.Conv2d(32, 32, 3, padding=d, dilation=d, bias=False)
        self.bn3 = nn.BatchNorm2d(32)
        self.fc = nn.Linear(32, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        return torch.relu(self.bn3(self.conv3(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean((2, 3)))


def train(model: nn.Module, data: tuple[torch.Tensor, ...], epochs: int, seed: int = 0) -> float:
    """Adam (lr 1e-2), batch 64, cross-entropy; returns test accuracy."""
    xtr, ytr = data[0], data[1]
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(xtr), generator=gen).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(model(xtr[idx]), ytr[idx]).backward()
            opt.step()
    return accuracy(model, data)


def accuracy(model: nn.Module, data: tuple[torch.Tensor, ...]) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(data[2]).argmax(1) == data[3]).float().mean())


def measured_time(model: nn.Module, seconds: float) -> float:
    """Median seconds of one forward pass at batch 64 (torch.utils.benchmark)."""
    from torch.utils import benchmark
    x = torch.randn(64, *SHAPE[1:])
    model.eval()
    with torch.no_grad():
        return float(benchmark.Timer("m(x)", globals={"m": model, "x": x}).blocked_autorange(
            min_run_time=seconds).median)


def effective_field(model: CNN, x: torch.Tensor) -> tuple[int, int]:
    """Rows and columns where the mean |d(centre unit of conv3, all channels)/d(input)| over
    the images is above 1% of its maximum (the trained network's effective field, clipped to
    the 16x16 image)."""
    model.eval()
    x = x.clone().requires_grad_(True)
    y = model.features(x)
    centre = (y.shape[2] // 2, y.shape[3] // 2)
    y[:, :, centre[0], centre[1]].sum().backward()
    assert x.grad is not None
    g = x.grad.abs().mean((0, 1))
    keep = (g > 0.01 * g.max()).nonzero()
    return (int(keep[:, 0].max() - keep[:, 0].min() + 1), int(keep[:, 1].max() - keep[:, 1].min() + 1))


def experiment_fields(data: tuple[torch.Tensor, ...], s: Settings) -> list[dict[str, Any]]:
    rows = []
    for d in s.dilations:
        torch.manual_seed(s.seed)
        model = CNN(d)
        acc = train(model, data, s.epochs, s.seed)
        report = archlint.analyze(model, input_shape=SHAPE, lint=False)
        fields = {r.name: r.rf[0].size[0] for r in report.layers if r.name.startswith("conv") and r.rf}
        rows.append({"dilation": d, "archlint_field": fields, "measured_field": effective_field(model, data[2][:64]),
                     "accuracy": acc})
    return rows


def _cost_row(model: nn.Module, s: Settings) -> dict[str, Any]:
    report = archlint.analyze(model, input_shape=SHAPE, lint=False)
    return {"params": report.totals.params, "macs": report.totals.macs, "est_time_s": report.totals.est_time,
            "measured_s": measured_time(model, s.time_runs)}


def _fixed(base: nn.Module, make: Any) -> tuple[nn.Module, list[Any]]:
    """``archlint.apply`` of ``make(graph, layer)`` on every conv it fits (conv2, conv3)."""
    report = archlint.analyze(base, input_shape=SHAPE, lint=False)
    g = report.graph
    assert g is not None
    fixes = []
    for name in ("conv2", "conv3"):
        try:
            fixes.append(make(g, g.layer(name)))
        except rewrite.NotApplicable:
            continue
    result = archlint.apply(base, fixes, unsafe=True)
    return result.model, result.outcomes


def _variant(label: str, base: nn.Module, make: Any, data: tuple[torch.Tensor, ...], s: Settings) -> dict[str, Any]:
    fixed, outcomes = _fixed(base, make)
    row = {"variant": label, **_cost_row(fixed, s),
           "weight_error": [round(o.weight_error, 3) for o in outcomes if o.weight_error is not None],
           "carried_accuracy": accuracy(fixed, data)}
    row["finetuned_accuracy"] = train(fixed, data, s.finetune, s.seed)
    scratch = copy.deepcopy(fixed)
    torch.manual_seed(s.seed)
    for m in scratch.modules():
        reset = getattr(m, "reset_parameters", None)
        if callable(reset) and m is not scratch:
            reset()
    row["scratch_accuracy"] = train(scratch, data, s.epochs, s.seed)
    return row


def experiment_separable(data: tuple[torch.Tensor, ...], s: Settings, base: nn.Module) -> list[dict[str, Any]]:
    standard = {"variant": "standard", **_cost_row(base, s), "accuracy": accuracy(base, data)}
    return [standard, _variant("depthwise-separable (AL101)", base, rewrite.depthwise_separable, data, s)]


def experiment_groups(data: tuple[torch.Tensor, ...], s: Settings, base: nn.Module) -> list[dict[str, Any]]:
    rows = [{"variant": "G=1", **_cost_row(base, s), "accuracy": accuracy(base, data)}]
    for groups in s.groups:
        rows.append(_variant(f"G={groups}", base, lambda g, la, n=groups: rewrite.grouped(g, la, n), data, s))
    return rows


def run(settings: Settings) -> dict[str, Any]:
    torch.manual_seed(settings.seed)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    data = digits(settings)
    fields = experiment_fields(data, settings)
    torch.manual_seed(settings.seed)
    base = CNN(1)
    train(base, data, settings.epochs, settings.seed)
    return {"fields": fields, "separable": experiment_separable(data, settings, base),
            "groups": experiment_groups(data, settings, base)}


def markdown(results: dict[str, Any]) -> str:
    lines = ["| dilation | archlint field conv1/conv2/conv3 | measured effective field (rows x cols, 16x16 image) "
             "| accuracy |", "|---|---|---|---|"]
    for r in results["fields"]:
        f = "/".join(str(v) for v in r["archlint_field"].values())
        lines.append(f"| {r['dilation']} | {f} | {r['measured_field'][0]}x{r['measured_field'][1]} | "
                     f"{r['accuracy']:.3f} |")
    for key in ("separable", "groups"):
        lines += ["", "| variant | params | MACs | est. time | measured (batch 64) | weight error | acc. carried "
                      "| acc. fine-tuned | acc. scratch |", "|---|---|---|---|---|---|---|---|---|"]
        for r in results[key]:
            acc = r.get("accuracy")
            lines.append(
                f"| {r['variant']} | {r['params']:,} | {r['macs']:,} | {r['est_time_s'] * 1e6:.1f} us | "
                f"{r['measured_s'] * 1e3:.2f} ms | {r.get('weight_error', '')} | "
                f"{r.get('carried_accuracy', acc):.3f} | {r.get('finetuned_accuracy', acc):.3f} | "
                f"{r.get('scratch_accuracy', acc):.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="1 epoch on 200 images (a smoke run)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    results = run(FAST if args.fast else Settings())
    print(markdown(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
