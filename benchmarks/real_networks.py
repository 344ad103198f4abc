"""Check archlint on torchvision's networks against torchvision's published figures.

Run in a separate venv (torchvision is never a test dependency):

    python -m venv /tmp/tv && /tmp/tv/bin/pip install torch==2.14.1 torchvision==0.29.1 onnxscript -e .
    /tmp/tv/bin/python benchmarks/real_networks.py --out /tmp/archlint-real

PyTorch path: params and MACs against ``weights.meta`` (``num_params``, ``_ops`` in GFLOPS, which are MACs).
ONNX path: the same networks exported with both exporters (files stay outside the repository).
Receptive fields at the end of the convolutional trunk, both paths. Prints markdown tables.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import torch
import torchvision

import archlint

TORCH_MODELS = ["resnet50", "mobilenet_v2", "efficientnet_b0", "inception_v3", "convnext_tiny", "vit_b_16", "swin_t",
                "vgg16"]
ONNX_MODELS = ["resnet50", "mobilenet_v2", "vit_b_16"]
RF_MODELS = {"vgg16": "features.30", "resnet50": "layer4.2.relu_2", "inception_v3": "Mixed_7c"}


def meta(name: str) -> tuple[int, float, tuple[int, ...]]:
    weights = torchvision.models.get_model_weights(name).DEFAULT
    size = 299 if name == "inception_v3" else 224
    return weights.meta["num_params"], weights.meta["_ops"], (1, 3, size, size)


def build(name: str) -> torch.nn.Module:
    kwargs = {"init_weights": False} if name == "inception_v3" else {}
    with torch.device("meta"):
        model = torchvision.models.get_model(name, weights=None, **kwargs)
    return model.eval()


def torch_table() -> list[str]:
    rows = ["| model | params (archlint) | params (torchvision) | GMACs (archlint) | GMACs (published) | error | tracer |"
            " time (s) |", "|---|---|---|---|---|---|---|---|"]
    for name in TORCH_MODELS:
        params, ops, shape = meta(name)
        model = build(name)
        start = time.perf_counter()
        report = archlint.analyze(model, input_shape=shape)
        elapsed = time.perf_counter() - start
        gmacs = report.totals.macs / 1e9
        err = 100 * (gmacs - ops) / ops
        partial = " (partial)" if report.totals.partial else ""
        rows.append(f"| {name} | {report.totals.params:,} | {params:,} | {gmacs:.3f}{partial} | {ops:.3f} | "
                    f"{err:+.2f}% | {report.model.get('tracer')} | {elapsed:.2f} |")
    return rows


def export(name: str, out: Path, dynamo: bool) -> Path:
    path = out / f"{name}.{'dynamo' if dynamo else 'ts'}.onnx"
    if path.exists():
        return path
    torch.manual_seed(0)
    kwargs = {"aux_logits": False, "init_weights": False} if name == "inception_v3" else {}
    model = torchvision.models.get_model(name, weights=None, **kwargs).eval()
    _, _, shape = meta(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(*shape),), str(path), dynamo=dynamo,
                          opset_version=18 if dynamo else 17)
    return path


def onnx_table(out: Path) -> list[str]:
    rows = ["| model | exporter | GMACs (archlint) | GMACs (published) | error | params | time (s) |",
            "|---|---|---|---|---|---|---|"]
    for name in ONNX_MODELS:
        _, ops, _ = meta(name)
        for dynamo in (False, True):
            path = export(name, out, dynamo)
            start = time.perf_counter()
            report = archlint.analyze(path)
            elapsed = time.perf_counter() - start
            gmacs = report.totals.macs / 1e9
            partial = " (partial)" if report.totals.partial else ""
            rows.append(f"| {name} | {'dynamo' if dynamo else 'torchscript'} | {gmacs:.3f}{partial} | {ops:.3f} | "
                        f"{100 * (gmacs - ops) / ops:+.2f}% | {report.totals.params:,} | {elapsed:.2f} |")
    return rows


def rf_table(out: Path) -> list[str]:
    rows = ["| model | layer | PyTorch path | ONNX path (TorchScript export) |", "|---|---|---|---|"]
    for name, layer in RF_MODELS.items():
        _, _, shape = meta(name)
        report = archlint.analyze(build(name), input_shape=shape)
        rec = report.layer(layer).rf[0] if layer in [r.name for r in report.layers] else None
        if rec is None:  # the module's last op
            rec = [r for r in report.layers if r.name.startswith(layer) and r.rf][-1].rf[0]
        onnx_report = archlint.analyze(export(name, out, False))
        prefix = "/" + "/".join(layer.split(".")[:1])
        candidates = [r for r in onnx_report.layers if r.rf and r.name.startswith(prefix) and not r.rf[0].is_global]
        orec = candidates[-1].rf[0] if candidates else None

        def text(r):
            if r is None:
                return "-"
            d = r.to_dict()
            return f"r {d['size']}, S {d['stride']}, P {d['padding']}"
        rows.append(f"| {name} | {layer} | {text(rec)} | {text(orec)} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("/tmp/archlint-real"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}\n")
    print("\n".join(torch_table()))
    print()
    print("\n".join(onnx_table(args.out)))
    print()
    print("\n".join(rf_table(args.out)))


if __name__ == "__main__":
    main()
