"""Measured timings with torch (optional): ``archlint calibrate`` and ``--measure``.

Layers are built at their exact shapes and dtype and timed with
``torch.utils.benchmark`` (warm-up, repeated runs, median), on CUDA when present, else
the CPU. Results are cached per shape in ``$XDG_CACHE_HOME/archlint/measure.json`` so a
rerun is instant. Only this module imports torch, and only when called.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archlint.errors import ArchlintError

TORCH_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


@dataclass(frozen=True)
class ConvSpec:
    """One conv layer to time: ``[n, ci, *size] -> co`` with kernel k, stride s, groups g."""

    n: int
    ci: int
    co: int
    size: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    groups: int = 1

    def key(self) -> str:
        return f"conv n{self.n} ci{self.ci} co{self.co} size{self.size} k{self.kernel} s{self.stride} g{self.groups}"


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ArchlintError("measuring needs torch: pip install archlint[torch]") from None
    return torch


def _cache_path() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "archlint" / "measure.json"


def _device() -> str:
    torch = _torch()
    return "cuda" if torch.cuda.is_available() else "cpu"


def time_convs(chain: list[ConvSpec], dtype: str = "fp32", min_run_time: float = 0.2, cache: bool = True) -> float:
    """Median seconds of running the convs one after another (a replacement may be two)."""
    torch = _torch()
    if dtype == "int8":
        raise ArchlintError("--measure supports fp32, fp16 and bf16 (int8 convs need a quantised backend)")
    device = _device()
    key = f"{device}|{dtype}|{torch.__version__}|{torch.get_num_threads()}|" + " + ".join(c.key() for c in chain)
    store: dict[str, float] = {}
    path = _cache_path()
    if cache and path.exists():
        try:
            store = json.loads(path.read_text())
        except (OSError, ValueError):
            store = {}
        if key in store:
            return float(store[key])
    from torch.utils import benchmark
    tdtype = getattr(torch, TORCH_DTYPES[dtype])
    first = chain[0]
    nd = len(first.size)
    conv_cls = {1: torch.nn.Conv1d, 2: torch.nn.Conv2d, 3: torch.nn.Conv3d}[nd]
    layers = []
    for c in chain:
        pad = tuple(k // 2 for k in c.kernel)
        layers.append(conv_cls(c.ci, c.co, c.kernel, c.stride, pad, groups=c.groups, bias=False))
    model = torch.nn.Sequential(*layers).to(device=device, dtype=tdtype).eval()
    x = torch.randn(first.n, first.ci, *first.size, device=device, dtype=tdtype)
    with torch.no_grad():
        for _ in range(3):
            model(x)
        timer = benchmark.Timer(stmt="model(x)", globals={"model": model, "x": x},
                                num_threads=torch.get_num_threads())
        result = timer.blocked_autorange(min_run_time=min_run_time).median
    if cache:
        store[key] = result
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(store, indent=0))
        except OSError:
            pass
    return float(result)


def calibrate(seconds: float = 0.3) -> dict[str, Any]:
    """Measure this machine: fp32 matmul throughput, copy bandwidth, and the share of that
    peak a dense, depthwise and grouped 3x3 conv reach. Returns a profile table."""
    torch = _torch()
    from torch.utils import benchmark
    device = _device()
    n = 1024 if device == "cpu" else 8192
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    t = benchmark.Timer("a @ b", globals={"a": a, "b": b}, num_threads=torch.get_num_threads()) \
        .blocked_autorange(min_run_time=seconds).median
    peak = 2 * n ** 3 / t
    elems = 32 * 2 ** 20 if device == "cpu" else 256 * 2 ** 20
    src = torch.empty(elems, device=device)
    dst = torch.empty(elems, device=device)
    t = benchmark.Timer("dst.copy_(src)", globals={"src": src, "dst": dst}, num_threads=torch.get_num_threads()) \
        .blocked_autorange(min_run_time=seconds).median
    bandwidth = 2 * elems * 4 / t
    tiny = ConvSpec(1, 1, 1, (1, 1), (1, 1), (1, 1), 1)
    overhead = time_convs([tiny], "fp32", seconds, cache=False)
    efficiency = {}
    for cls, groups in (("dense", 1), ("grouped", 8), ("depthwise", 128)):
        spec = ConvSpec(1, 128, 128, (28, 28), (3, 3), (1, 1), groups)
        t = time_convs([spec], "fp32", seconds, cache=False)
        flops = 2 * 28 * 28 * 128 * (128 // groups) * 9
        nbytes = 4 * (2 * 128 * 28 * 28 + 128 * (128 // groups) * 9)
        compute_time = max(t - overhead, 1e-12)
        if nbytes / bandwidth >= t:
            efficiency[cls] = 1.0
        else:
            efficiency[cls] = round(min(1.0, flops / (peak * compute_time)), 4)
    return {"name": f"calibrated-{socket.gethostname()}",
            "description": f"measured by archlint calibrate on {device} with torch {torch.__version__}, "
                           f"{torch.get_num_threads()} threads",
            "peak_flops": {"fp32": peak}, "bandwidth": bandwidth, "overhead": overhead, "grouped_channels": 16,
            "efficiency": efficiency,
            "sources": ["archlint calibrate: fp32 matmul, tensor copy and 3x3 convs timed with torch.utils.benchmark"]}


def to_toml(profile: dict[str, Any]) -> str:
    lines = [f'name = "{profile["name"]}"', f'description = "{profile["description"]}"',
             "peak_flops = { " + ", ".join(f"{k} = {v:.6g}" for k, v in profile["peak_flops"].items()) + " }",
             f'bandwidth = {profile["bandwidth"]:.6g}', f'overhead = {profile["overhead"]:.6g}',
             f'grouped_channels = {profile["grouped_channels"]}',
             "sources = [" + ", ".join(json.dumps(s) for s in profile["sources"]) + "]", "", "[efficiency]"]
    lines += [f"{k} = {v}" for k, v in profile["efficiency"].items()]
    return "\n".join(lines) + "\n"
