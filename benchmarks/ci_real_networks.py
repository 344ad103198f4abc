"""Real-network regression check, run by ``.ci/run`` after the unit tests (issue 19, point 3).

Needs torchvision, which is never a test dependency, so it runs in its own virtual environment::

    python3 -m venv .venv-real && . .venv-real/bin/activate
    pip install "torch==2.14.1" "torchvision==0.29.1" onnxscript -e .
    python benchmarks/ci_real_networks.py            # every part; exit 1 on any failure

Three parts, one line per model, a total at the end:

``torch``
    Every torchvision classification, segmentation and video model whose weights ship published
    figures (``weights.meta["num_params"]``, ``["_ops"]`` in GMACs), built on the meta device with
    ``weights=None`` (random weights, no download, no arithmetic) at the input size of its weights'
    transforms (video: 16 frames, the ``clip_len`` the figures were measured with), and the backbone of
    every detection model (its ``transform.min_size`` square; no published figure exists for a backbone
    alone, so params are checked against the module's own count). A model passes when archlint does
    not raise, its totals are not partial, its params equal the published count and its MACs equal
    ``FlopCounterMode``'s total / 2, measured in the same run on the same meta model (gradients on,
    SDPA math backend), and that total itself rounds to the published ``_ops``.
``onnx``
    The classification models in ``ONNX_MODELS`` exported for real on the CPU with both exporters
    (TorchScript, ``dynamo=False``, opset 17; dynamo, opset 18), parameters randomised so that no two
    initializers are equal (the dynamo optimiser merges equal ones). Pass: MACs equal the PyTorch
    path's, not partial, and params equal the module's count minus one per folded BatchNorm channel
    (swin_t, maxvit_t: reported, not checked, see ``EXPORTER_FOLDS_PARAMETERS``)
    (``C`` weights and ``C`` biases disappear, the conv before it gains a ``C`` bias; the BatchNorm
    channels that are not folded are read off the file's own ``BatchNormalization`` nodes).
``rf``
    Receptive-field oracles: archlint's exact interval of an output unit against its gradient span
    (``tests.helpers.gradient_span``: positive weights, BatchNorm as identity, max- as average pooling,
    float64) on torchvision's FCN and DeepLabV3 heads, FCN's output (bilinear x8) and the ResNet-50 FPN
    backbone's finest level (nearest x2 upsampling three times), for every output phase of the upsampling
    period, on a tall strip (800 x 16) so that nothing is clipped along it; the networks treat both axes
    alike, so the other axis is checked by archlint's record being the same on both.

``--break-conv-macs`` replaces the conv MACs formula from inside this script (``+1`` per conv call)
to show that the check fails on a broken formula; nothing in the product is changed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode
from torchvision import models as tvm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import archlint  # noqa: E402
from archlint.errors import first_line  # noqa: E402

# Classification models exported to ONNX with both exporters: one or two of each family. Exporting
# runs the model for real on the CPU and takes 5-90 s per model and exporter on 2 shared cores (measured:
# benchmarks/README.md), so the other classification models are checked on the PyTorch path only; the
# largest (vit_h_14, regnet_y_128gf, vit_l_*, vgg*, the big efficientnets) would take minutes and
# gigabytes each.
ONNX_MODELS = ["resnet18", "resnet50", "densenet121", "googlenet", "inception_v3", "mobilenet_v2",
               "mobilenet_v3_large", "efficientnet_b0", "shufflenet_v2_x1_0", "squeezenet1_1", "mnasnet1_0",
               "regnet_y_400mf", "convnext_tiny", "vit_b_16", "swin_t", "maxvit_t"]
# Exports that fold tensors computed from parameters into new constants (the relative-position bias
# gathered from its table, the attention masks), so the file holds other numbers than the module: for
# these, params are reported but not checked (no count independent of archlint's own policy for
# constants exists), MACs are checked as for every model.
EXPORTER_FOLDS_PARAMETERS = {"swin_t", "maxvit_t"}


@dataclass
class Result:
    part: str
    name: str
    ok: bool
    seconds: float
    detail: str
    figures: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------- building


def weights_of(name: str) -> Any:
    return tvm.get_model_weights(name).DEFAULT


def input_shape(name: str) -> tuple[int, ...]:
    """The shape the published figures were measured at: the weights' transforms' crop (classification),
    their resize (segmentation: 520 square), 16 frames for video (the ``clip_len`` of the weights' docs)."""
    t = weights_of(name).transforms()
    if name in tvm.list_models(module=tvm.video):
        return (1, 3, 16, *t.crop_size)
    size = t.crop_size if getattr(t, "crop_size", None) else t.resize_size
    return (1, 3, size[0], size[-1])


def build_kwargs(name: str) -> dict[str, Any]:
    """What torchvision's builder would set from the weights, set by hand since ``weights=None``."""
    kwargs: dict[str, Any] = {"weights": None}
    meta = weights_of(name).meta
    if name.startswith("vit_"):
        kwargs["image_size"] = meta["min_size"][0]
    if name in ("inception_v3", "googlenet"):
        kwargs["init_weights"] = False
    if name == "googlenet":  # the builder deletes aux1/aux2 after loading the weights
        kwargs["aux_logits"] = False
    if name in tvm.list_models(module=tvm.segmentation) or name in tvm.list_models(module=tvm.detection):
        kwargs["weights_backbone"] = None
        kwargs["num_classes"] = len(meta["categories"])
        if name.startswith(("fcn_", "deeplabv3_")):
            kwargs["aux_loss"] = True
    return kwargs


@contextmanager
def tensors_to_meta() -> Iterator[None]:
    """Move every parameter and buffer to the meta device as it is registered: for builders that compute
    their configuration with tensors (RegNet), which ``torch.device("meta")`` would turn into meta tensors."""
    register_parameter, register_buffer = nn.Module.register_parameter, nn.Module.register_buffer

    def parameter(self: nn.Module, name: str, param: nn.Parameter | None) -> None:
        if param is not None:
            param = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        register_parameter(self, name, param)

    def buffer(self: nn.Module, name: str, tensor: torch.Tensor | None, persistent: bool = True) -> None:
        register_buffer(self, name, None if tensor is None else tensor.to("meta"), persistent)

    nn.Module.register_parameter, nn.Module.register_buffer = parameter, buffer  # type: ignore[method-assign]
    try:
        yield
    finally:
        nn.Module.register_parameter, nn.Module.register_buffer = register_parameter, register_buffer


def build(name: str, device: str = "meta", **extra: Any) -> nn.Module:
    kwargs = {**build_kwargs(name), **extra}
    if device != "meta":
        with torch.device(device):
            return tvm.get_model(name, **kwargs).eval()
    try:
        with torch.device("meta"):
            return tvm.get_model(name, **kwargs).eval()
    except NotImplementedError:  # "Cannot copy out of meta tensor": the builder computes with tensors
        with tensors_to_meta():
            return tvm.get_model(name, **kwargs).eval()


def module_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())  # parameters() yields a shared tensor once


def flop_counter_macs(model: nn.Module, shape: tuple[int, ...]) -> int:
    """``FlopCounterMode`` total / 2 on the meta device, gradients on, SDPA math backend."""
    x = torch.empty(shape, device="meta")
    with torch.enable_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(x)
    total = counter.get_total_flops()
    assert total % 2 == 0, total
    return total // 2


def crash(exc: BaseException) -> str:
    return f"crash: {type(exc).__name__}: {first_line(exc)}"


def rounds_to(value: float, published: float) -> bool:
    """``published`` is ``value`` rounded to 3 decimals (torchvision's ``_ops``)."""
    return abs(round(value, 3) - published) < 1e-9


# ---------------------------------------------------------------------------------------------- torch path


def torch_case(name: str, kind: str) -> Result:
    start = time.perf_counter()
    figures: dict[str, Any] = {"kind": kind}
    try:
        if kind == "detection":
            full = build(name)
            model: nn.Module = full.backbone
            size = full.transform.min_size[0]
            shape: tuple[int, ...] = (1, 3, size, size)
            published_params, published_ops = module_params(model), None
        else:
            model = build(name)
            shape = input_shape(name)
            meta = weights_of(name).meta
            published_params, published_ops = meta["num_params"], meta["_ops"]
        figures.update(shape=list(shape), published_params=published_params, published_gmacs=published_ops)
        if module_params(model) != published_params:
            return Result("torch", name, False, time.perf_counter() - start,
                          f"check script built the wrong model: {module_params(model):,} params", figures)
        fcm = flop_counter_macs(model, shape)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            report = archlint.analyze(model, input_shape=shape, lint=False)
        figures.update(fcm_macs=fcm, macs=report.totals.macs, params=report.totals.params,
                       tracer=report.model.get("tracer"), analyse_s=round(time.perf_counter() - t0, 3),
                       partial=report.totals.partial)
        problems = []
        if report.totals.partial:
            ops = sorted({u.get("op", str(u)) for u in report.totals.uncounted_ops})
            problems.append(f"partial ({', '.join(ops)})")
        if report.totals.params != published_params:
            problems.append(f"params {report.totals.params:,} != {published_params:,}")
        if report.totals.macs != fcm:
            problems.append(f"MACs {report.totals.macs:,} != FlopCounterMode/2 {fcm:,}")
        if published_ops is not None and not rounds_to(fcm / 1e9, published_ops):
            problems.append(f"FlopCounterMode/2 {fcm / 1e9:.3f} G does not round to the published {published_ops}")
        detail = "; ".join(problems) or (f"params {report.totals.params:,}  GMACs {report.totals.macs / 1e9:.3f}"
                                         f"  {report.model.get('tracer')}")
        return Result("torch", name, not problems, time.perf_counter() - start, detail, figures)
    except Exception as exc:  # noqa: BLE001 - a crash is a failure to report, not to stop on
        return Result("torch", name, False, time.perf_counter() - start, crash(exc), figures)


def torch_names() -> list[tuple[str, str]]:
    names = [(n, "classification") for n in tvm.list_models(module=tvm)]
    names += [(n, "segmentation") for n in tvm.list_models(module=tvm.segmentation)]
    names += [(n, "video") for n in tvm.list_models(module=tvm.video)]
    names += [(n, "detection") for n in tvm.list_models(module=tvm.detection)]
    return names


# ---------------------------------------------------------------------------------------------- ONNX path


def randomise(model: nn.Module, seed: int = 0) -> None:
    """Distinct values everywhere (no two initializers equal), positive running variances."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.rand(p.shape, generator=gen) * 0.2 - 0.1)
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_var is not None:
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
                m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=gen) * 0.2 - 0.1)


def file_float_elements(proto: Any) -> int:
    """Elements of the float tensors the file holds: initializers and Constant nodes' values."""
    from onnx import TensorProto
    floats = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16, TensorProto.DOUBLE}
    tensors = list(proto.graph.initializer)
    tensors += [a.t for n in proto.graph.node if n.op_type == "Constant" for a in n.attribute if a.name == "value"]
    return sum(math.prod(t.dims) for t in tensors if t.data_type in floats)


def unfolded_bn_channels(proto: Any) -> int:
    """Channels of the ``BatchNormalization`` nodes the exporter left in the file (read with onnx)."""
    shapes = {i.name: math.prod(i.dims) for i in proto.graph.initializer}
    return sum(shapes.get(n.input[1], 0) for n in proto.graph.node if n.op_type == "BatchNormalization")


def export(model: nn.Module, shape: tuple[int, ...], dynamo: bool) -> Any:
    import io

    import onnx
    x = torch.randn(shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            program = torch.onnx.export(model, (x,), dynamo=True, opset_version=18, verbose=False)
            return program.model_proto
        buffer = io.BytesIO()
        torch.onnx.export(model, (x,), buffer, dynamo=False, opset_version=17)
        return onnx.load_from_string(buffer.getvalue())


def onnx_cases(name: str, torch_result: Result | None) -> list[Result]:
    results = []
    start = time.perf_counter()
    try:
        extra = {"aux_logits": False} if name == "inception_v3" else {}
        model = build(name, device="cpu", **extra)
        randomise(model)
        shape = input_shape(name)
        bn = sum(m.num_features for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm))
        params = module_params(model)
        macs = torch_result.figures.get("fcm_macs") if torch_result else None
        if macs is None:
            macs = flop_counter_macs(build(name, **extra), shape)
    except Exception as exc:  # noqa: BLE001
        return [Result("onnx", f"{name} (both)", False, time.perf_counter() - start, crash(exc))]
    build_s = time.perf_counter() - start
    for dynamo in (False, True):
        label = f"{name} ({'dynamo' if dynamo else 'torchscript'})"
        start = time.perf_counter()
        figures: dict[str, Any] = {"exporter": "dynamo" if dynamo else "torchscript", "model": name}
        try:
            proto = export(model, shape, dynamo)
            figures["export_s"] = round(time.perf_counter() - start, 2)
            folded = bn - unfolded_bn_channels(proto)
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                report = archlint.analyze(proto, lint=False)
            expected_params = params - folded
            if name in EXPORTER_FOLDS_PARAMETERS:
                expected_params = report.totals.params  # reported, not checked (see EXPORTER_FOLDS_PARAMETERS)
            figures.update(analyse_s=round(time.perf_counter() - t0, 3), macs=report.totals.macs,
                           params=report.totals.params, expected_params=expected_params, expected_macs=macs,
                           folded_bn=folded, partial=report.totals.partial)
            problems = []
            if report.totals.partial:
                ops = sorted({u.get("op", str(u)) for u in report.totals.uncounted_ops})
                problems.append(f"partial ({', '.join(ops)})")
            if report.totals.macs != macs:
                problems.append(f"MACs {report.totals.macs:,} != PyTorch path {macs:,}")
            if report.totals.params != expected_params:
                problems.append(f"params {report.totals.params:,} != {params:,} - {folded:,} folded BN = "
                                f"{expected_params:,} (the file holds {file_float_elements(proto):,} float "
                                "elements)")
            detail = "; ".join(problems) or f"params {report.totals.params:,}  GMACs {report.totals.macs / 1e9:.3f}"
            results.append(Result("onnx", label, not problems, time.perf_counter() - start + build_s / 2, detail,
                                  figures))
        except Exception as exc:  # noqa: BLE001
            results.append(Result("onnx", label, False, time.perf_counter() - start + build_s / 2,
                                  crash(exc), figures))
    return results


# ---------------------------------------------------------------------------------------------- receptive fields


class Head(nn.Module):
    """A segmentation model's head output (before the final upsampling to the input size)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.backbone, self.classifier = model.backbone, model.classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.backbone(x)["out"])


class Output(nn.Module):
    """One output of a model that returns a dict (a segmentation model's ``out``, an FPN level)."""

    def __init__(self, model: nn.Module, key: str) -> None:
        super().__init__()
        self.model, self.key = model, key

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)[self.key]


class Crop(nn.Module):
    """Keep output units ``0 .. 2u`` along ``axis`` so that ``gradient_span``'s centre unit is ``u``."""

    def __init__(self, model: nn.Module, axis: int, unit: int) -> None:
        super().__init__()
        self.model, self.axis, self.unit = model, axis, unit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).narrow(2 + self.axis, 0, 2 * self.unit + 1)


def rf_model(name: str) -> tuple[nn.Module, int]:
    """The network and its upsampling period in output units (1: no upsampling before the output)."""
    if name == "fcn_resnet50 head":
        return Head(tvm.segmentation.fcn_resnet50(weights=None, weights_backbone=None, aux_loss=False)), 1
    if name == "deeplabv3_resnet50 head":
        return Head(tvm.segmentation.deeplabv3_resnet50(weights=None, weights_backbone=None, aux_loss=False)), 1
    if name == "fcn_resnet50 out (bilinear x8)":
        return Output(tvm.segmentation.fcn_resnet50(weights=None, weights_backbone=None, aux_loss=False), "out"), 8
    if name == "resnet50-FPN level 0 (nearest x2 x3)":
        backbone = tvm.detection.fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None).backbone
        return Output(backbone, "0"), 8
    raise KeyError(name)


RF_CASES = ["fcn_resnet50 head", "deeplabv3_resnet50 head", "fcn_resnet50 out (bilinear x8)",
            "resnet50-FPN level 0 (nearest x2 x3)"]


def output_layer(report: Any) -> Any:
    """The layer that produces the model's (single) output."""
    produced = report.graph.outputs[0]
    return next(r for r in report.layers if produced in report.graph.layer(r.name).outputs)


# Published fields at the end of the convolutional trunk (Araujo, Norris & Sim, "Computing Receptive
# Fields of Convolutional Neural Networks", Distill 2019, table of TF-Slim networks); torchvision's
# layers are the same up to there. (model, layer or module prefix, size, stride, padding)
PUBLISHED_RF = [("vgg16", "features.30", 212, 32, 90), ("inception_v3", "Mixed_7c", 1311, 32, 618)]


def published_rf_case(name: str, layer: str, size: int, stride: int, padding: int) -> Result:
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            report = archlint.analyze(build(name), input_shape=input_shape(name), lint=False)
        rec = [r for r in report.layers if (r.name == layer or r.name.startswith(layer + ".")) and r.rf][-1].rf[0]
        got = rec.to_dict()
        want = {"size": [size] * 2, "stride": [stride] * 2, "padding": [padding] * 2}
        ok = all(got[k] == v for k, v in want.items()) and not rec.is_global
        detail = f"r {got['size'][0]}, S {got['stride'][0]}, P {got['padding'][0]}" + (
            " = published (Distill 2019)" if ok else f" != published r {size}, S {stride}, P {padding}")
        return Result("rf", f"{name} {layer} (published)", ok, time.perf_counter() - start, detail, {"archlint": got})
    except Exception as exc:  # noqa: BLE001
        return Result("rf", f"{name} {layer} (published)", False, time.perf_counter() - start, crash(exc))


def rf_case(name: str, strip: int, width: int) -> Result:
    from tests.helpers import gradient_span
    start = time.perf_counter()
    figures: dict[str, Any] = {}
    problems: list[str] = []
    try:
        torch.manual_seed(0)
        model, period = rf_model(name)
        axis = 0  # the networks treat both axes alike: the gradient runs on a tall strip, and archlint's
        shape = (1, 3, strip, width)  # record must be the same on both axes
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            report = archlint.analyze(model, input_shape=shape, lint=False)
        out = output_layer(report)
        rec = out.rf[0]
        figures.update(layer=out.name, archlint=rec.to_dict(), units={})
        with warnings.catch_warnings():  # on a square input (the strip's short side changes the FPN's
            warnings.simplefilter("ignore")  # upsampling factors) both axes must have the same field
            square = output_layer(archlint.analyze(model, input_shape=(1, 3, strip, strip), lint=False)).rf[0]
        if not square.is_global and (len(set(square.size)), len(set(square.stride)),
                                     len(set(square.padding))) != (1, 1, 1):
            problems.append(f"axes differ on a square input: {square.to_dict()}")
        out_len = out.output_shape[2 + axis]
        base = (out_len - 1) // 2 - (period - 1)  # Crop needs 2u + 1 <= out_len
        base -= base % period
        units = [base + k for k in range(period)]  # one whole upsampling period, phase 0 first
        varies = any("varies" in n for n in rec.notes)
        true_sizes = []
        for u in units:
            _, span = gradient_span(Crop(model, axis, u), shape)
            lo, hi = span[axis]
            true_sizes.append(hi - lo + 1)
            figures["units"][u] = [lo, hi]
            if rec.is_global:
                if (lo, hi) != (0, strip - 1):
                    problems.append(f"unit {u}: archlint global, true [{lo}, {hi}]")
                continue
            exact = rec.interval(axis, u)  # archlint's exact interval for this output unit (every phase)
            if exact is None:
                problems.append(f"unit {u}: archlint says it reads nothing, true [{lo}, {hi}]")
                continue
            a_lo, a_hi = exact
            if min(a_lo, lo) <= 0 or max(a_hi, hi) >= strip - 1:
                problems.append(f"unit {u}: field clipped by the {strip} strip (archlint [{a_lo}, {a_hi}], "
                                f"true [{lo}, {hi}]): use a longer --strip")
                continue
            if (lo, hi) != (a_lo, a_hi):
                problems.append(f"unit {u}: archlint [{a_lo}, {a_hi}], true [{lo}, {hi}]")
            if varies:  # the (size, stride, cover) bound must hold every phase's interval
                cover = (rec.cover or rec.size)[axis]
                b_lo = u * rec.stride[axis] - rec.padding[axis]
                if not (b_lo <= lo and hi <= b_lo + cover - 1):
                    problems.append(f"unit {u}: true [{lo}, {hi}] not inside archlint's bound "
                                    f"[{b_lo}, {b_lo + cover - 1}]")
        if varies and not rec.is_global and max(true_sizes) != rec.size[axis]:
            problems.append(f"archlint size {rec.size[axis]} != largest true size {max(true_sizes)}")
        figures["true_sizes"] = sorted(set(true_sizes))
        detail = "; ".join(problems) or (
            "global" if rec.is_global else
            f"r {rec.to_dict()['size'][0]}, S {rec.to_dict()['stride'][0]}, P {rec.to_dict()['padding'][0]}"
            f" = gradient span at {period} output phase(s)")
        return Result("rf", name, not problems, time.perf_counter() - start, detail, figures)
    except Exception as exc:  # noqa: BLE001
        traceback.print_exc(limit=3)
        return Result("rf", name, False, time.perf_counter() - start, crash(exc), figures)


# ---------------------------------------------------------------------------------------------- driver


def break_conv_macs() -> None:
    """Self-test: one MAC too many per conv call, patched into the registry from here."""
    from archlint.ops import REGISTRY
    entry = REGISTRY.get("conv")
    original: Callable[[Any], int] = entry.macs_fn
    entry.macs_fn = lambda call: original(call) + 1
    print("SELF-TEST: conv MACs formula broken (+1 per conv call); every conv network must FAIL")


def emit(result: Result) -> None:
    status = "ok  " if result.ok else "FAIL"
    print(f"{status} {result.part:5} {result.name:42} {result.seconds:7.2f}s  {result.detail}", flush=True)


def markdown(data: dict[str, Any]) -> str:
    """The README tables, from a ``--json`` file."""
    rows = {"torch": ["| model | input | params | GMACs (archlint) | published GMACs | archlint = FlopCounterMode/2 |"
                      " tracer | analyse (s) | result |", "|---|---|---|---|---|---|---|---|---|"],
            "onnx": ["| model | exporter | params | GMACs | export (s) | analyse (s) | result |",
                     "|---|---|---|---|---|---|---|"],
            "rf": ["| case | archlint | gradient span / published | time (s) | result |", "|---|---|---|---|---|"]}
    for r in data["results"]:
        detail = r["detail"] if len(r["detail"]) <= 200 else r["detail"][:200] + " ..."
        f, verdict = r["figures"], "ok" if r["ok"] else f"**FAIL**: {detail}"
        if r["part"] == "torch":
            shape = "x".join(str(d) for d in f.get("shape", [])[2:])
            macs = f"{f['macs'] / 1e9:.3f}" if "macs" in f else "-"
            same = "-" if "macs" not in f else "yes" if f["macs"] == f["fcm_macs"] else "no"
            published = f.get("published_gmacs") or "(backbone)"
            params = f"{f['params']:,}" if "params" in f else "-"
            rows["torch"].append(f"| {r['name']} | {shape} | {params} | {macs} | {published} | {same} | "
                                 f"{f.get('tracer', '-')} | {f.get('analyse_s', '-')} | {verdict} |")
        elif r["part"] == "onnx":
            params = f"{f['params']:,}" if "params" in f else "-"
            macs = f"{f['macs'] / 1e9:.3f}" if "macs" in f else "-"
            rows["onnx"].append(f"| {f.get('model', r['name'])} | {f.get('exporter', '-')} | {params} | {macs} | "
                                f"{f.get('export_s', '-')} | {f.get('analyse_s', '-')} | {verdict} |")
        else:
            a = f.get("archlint", {})
            shown = "global" if a.get("global") else (
                f"r {a['size'][0]}, S {a['stride'][0]}, P {a['padding'][0]}" if a else "-")
            truth = ("published" if "published" in r["name"] else
                     "sizes " + ", ".join(str(x) for x in f.get("true_sizes", [])) + " over "
                     + str(len(f.get("units", {}))) + " phase(s)")
            rows["rf"].append(f"| {r['name']} | {shown} | {truth} | {r['seconds']:.1f} | {verdict} |")
    return "\n\n".join("\n".join(v) for v in rows.values() if len(v) > 2)


def run_parts(parts: set[str], only: set[str], onnx_models: list[str], strip: int, width: int,
              ) -> tuple[list[Result], dict[str, float]]:
    """Run the parts in order, printing one line per case; the ONNX part reuses the PyTorch part's
    FlopCounterMode figure when both run."""
    results: list[Result] = []
    part_seconds: dict[str, float] = {}
    torch_by_name: dict[str, Result] = {}

    def add(result: Result) -> None:
        results.append(result)
        emit(result)

    if "torch" in parts:
        t_part = time.perf_counter()
        for name, kind in torch_names():
            if not only or name in only:
                add(torch_case(name, kind))
                torch_by_name[name] = results[-1]
        part_seconds["torch"] = time.perf_counter() - t_part
    if "onnx" in parts:
        t_part = time.perf_counter()
        for name in onnx_models:
            if not only or name in only:
                for result in onnx_cases(name, torch_by_name.get(name)):
                    add(result)
        part_seconds["onnx"] = time.perf_counter() - t_part
    if "rf" in parts:
        t_part = time.perf_counter()
        for name, layer, size, stride, padding in PUBLISHED_RF:
            if not only or name in only:
                add(published_rf_case(name, layer, size, stride, padding))
        for name in RF_CASES:
            if not only or name in only:
                add(rf_case(name, strip, width))
        part_seconds["rf"] = time.perf_counter() - t_part
    return results, part_seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default="torch,onnx,rf", help="comma-separated: torch, onnx, rf")
    parser.add_argument("--only", default="", help="comma-separated model names (default: all)")
    parser.add_argument("--onnx-models", default=",".join(ONNX_MODELS))
    parser.add_argument("--strip", type=int, default=800, help="long side of the receptive-field strips")
    parser.add_argument("--width", type=int, default=16, help="short side of the receptive-field strips")
    parser.add_argument("--json", type=Path, help="write every result and figure here")
    parser.add_argument("--break-conv-macs", action="store_true",
                        help="self-test: break the conv MACs formula; the check must then fail")
    parser.add_argument("--markdown-from", type=Path, help="print the README tables of a --json file and stop")
    args = parser.parse_args(argv)
    if args.markdown_from:
        print(markdown(json.loads(args.markdown_from.read_text())))
        return 0
    if args.break_conv_macs:
        break_conv_macs()
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, archlint {archlint.__version__}, "
          f"{torch.get_num_threads()} threads", flush=True)
    results, part_seconds = run_parts(set(args.parts.split(",")), set(filter(None, args.only.split(","))),
                                      list(filter(None, args.onnx_models.split(","))), args.strip, args.width)
    failed = [r for r in results if not r.ok]
    times = ", ".join(f"{p} {s:.0f} s" for p, s in part_seconds.items())
    print(f"TOTAL {len(results) - len(failed)}/{len(results)} passed, {len(failed)} failed ({times}, "
          f"{sum(part_seconds.values()):.0f} s)")
    for r in failed:
        print(f"  FAILED {r.part} {r.name}: {r.detail}")
    if args.json:
        args.json.write_text(json.dumps({"torch": torch.__version__, "torchvision": torchvision.__version__,
                                         "part_seconds": part_seconds,
                                         "results": [asdict(r) for r in results]}, indent=1, default=str))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
