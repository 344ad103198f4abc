"""Measured timings with torch (optional): ``archlint calibrate`` and ``--measure``.

Layers are built at their exact shapes and dtype and timed with
``torch.utils.benchmark`` (warm-up, repeated runs, median), on CUDA when present, else
the CPU; the variants of one layer are timed interleaved (:func:`time_chains`). Results
are cached per shape in ``$XDG_CACHE_HOME/archlint/measure.json`` so a rerun is instant.
Only this module imports torch, and only when called.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
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


def _chain_key(chain: list[ConvSpec], device: str, dtype: str, torch: Any) -> str:
    return f"{device}|{dtype}|{torch.__version__}|{torch.get_num_threads()}|" + " + ".join(c.key() for c in chain)


def _read_cache() -> dict[str, float]:
    path = _cache_path()
    try:
        return json.loads(path.read_text()) if path.exists() else {}
    except (OSError, ValueError):
        return {}


def _write_cache(store: dict[str, float]) -> None:
    path = _cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(store, indent=0))
    except OSError:
        pass


def _build(chain: list[ConvSpec], device: str, tdtype: Any, torch: Any) -> tuple[Any, Any]:
    first = chain[0]
    conv_cls = {1: torch.nn.Conv1d, 2: torch.nn.Conv2d, 3: torch.nn.Conv3d}[len(first.size)]
    layers = [conv_cls(c.ci, c.co, c.kernel, c.stride, tuple(k // 2 for k in c.kernel), groups=c.groups, bias=False)
              for c in chain]
    model = torch.nn.Sequential(*layers).to(device=device, dtype=tdtype).eval()
    return model, torch.randn(first.n, first.ci, *first.size, device=device, dtype=tdtype)


# one timed block lasts about this long; rounds go on until every chain has had min_run_time
BLOCK_SECONDS = 0.01
MIN_ROUNDS = 7


def time_chains(chains: list[list[ConvSpec]], dtype: str = "fp32", min_run_time: float = 0.2,
                cache: bool = True) -> list[float]:
    """Median seconds per run of each chain of convs (a replacement may be two), measured
    interleaved so that a speedup is a ratio of times taken under the same conditions.

    Each round times one block of every chain (about ``BLOCK_SECONDS`` of back-to-back runs),
    starting each round at the next chain; rounds repeat until every chain has run for
    ``min_run_time`` and at least ``MIN_ROUNDS`` times; a chain's time is the median of its
    blocks. Timing the original and each replacement one after the other instead, on a busy
    2-core VM, gave the same replacement 0.97x in one run and 1.37x in the next: whatever
    slowed the machine for a fraction of a second landed on one side only. The cache holds
    one time per chain; when any chain of the set is missing, the whole set is re-timed."""
    torch = _torch()
    if dtype == "int8":
        raise ArchlintError("--measure supports fp32, fp16 and bf16 (int8 convs need a quantised backend)")
    device = _device()
    keys = [_chain_key(chain, device, dtype, torch) for chain in chains]
    store = _read_cache() if cache else {}
    if cache and all(k in store for k in keys):
        return [float(store[k]) for k in keys]
    from torch.utils import benchmark
    tdtype = getattr(torch, TORCH_DTYPES[dtype])
    timers, numbers = [], []
    with torch.no_grad():
        for chain in chains:
            model, x = _build(chain, device, tdtype, torch)
            for _ in range(3):
                model(x)
            timer = benchmark.Timer(stmt="model(x)", globals={"model": model, "x": x},
                                    num_threads=torch.get_num_threads())
            one = timer.timeit(1).median
            timers.append(timer)
            numbers.append(max(1, round(BLOCK_SECONDS / max(one, 1e-9))))
        samples: list[list[float]] = [[] for _ in chains]
        spent = [0.0] * len(chains)
        rounds = 0
        while rounds < MIN_ROUNDS or min(spent) < min_run_time:
            for j in range(len(chains)):
                i = (rounds + j) % len(chains)
                t = timers[i].timeit(numbers[i]).median
                samples[i].append(t)
                spent[i] += t * numbers[i]
            rounds += 1
    result = [statistics.median(s) for s in samples]
    if cache:
        store = _read_cache()
        store.update(zip(keys, result))
        _write_cache(store)
    return result


def time_convs(chain: list[ConvSpec], dtype: str = "fp32", min_run_time: float = 0.2, cache: bool = True) -> float:
    """Median seconds of running one chain of convs (:func:`time_chains` of one)."""
    return time_chains([chain], dtype, min_run_time, cache)[0]


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
    efficiency, overheads = _fit_classes(peak, overhead, seconds)
    return {"name": f"calibrated-{socket.gethostname()}",
            "description": f"measured by archlint calibrate on {device} with torch {torch.__version__}, "
                           f"{torch.get_num_threads()} threads",
            "peak_flops": {"fp32": peak}, "bandwidth": bandwidth, "overhead": overhead, "grouped_channels": 16,
            "efficiency": efficiency, "overheads": overheads,
            "sources": ["archlint calibrate: fp32 matmul, tensor copy and 3x3 convs timed with torch.utils.benchmark"]}


# (size, channels) of the 3x3 convs each class is timed at: from small layers, where the
# fixed cost shows, up to 28 px and 128 channels
FIT_SIZES = ((14, 32), (14, 64), (28, 64), (28, 128))
# input channels per group of each class's convs (None: one group)
FIT_CLASSES = (("dense", None), ("grouped", 16), ("depthwise", 1))


def _fit_classes(peak: float, overhead: float, seconds: float) -> tuple[dict[str, float], dict[str, float]]:
    """Efficiency and fixed cost per conv class, from a least-squares line ``t = a + b*F``
    through 3x3 convs of several sizes (``FIT_SIZES``): ``efficiency = 1/(b*peak)``,
    ``overhead = a``, never below the 1-channel conv's ``overhead``. A degenerate fit (time
    not growing with FLOPs) gives efficiency 1 and the plain ``overhead``.

    On a 2-core CPU ``a`` came out at 70-90 us for dense convs and 90-120 us for grouped and
    depthwise ones, where a 1-channel conv costs 10-15 us: a replacement that splits a small
    conv in two pays it twice. All twelve convs are timed in one interleaved set
    (:func:`time_chains`): timed class by class, a slow second on the VM once made grouped
    convs' fixed cost equal dense ones' and turned 0.7x measured slowdowns into 1.2x estimates."""
    specs, flops = [], []
    for _, per_group in FIT_CLASSES:
        for size, c in FIT_SIZES:
            groups = 1 if per_group is None else c // per_group
            specs.append([ConvSpec(1, c, c, (size, size), (3, 3), (1, 1), groups)])
            flops.append(2 * size * size * c * (c // groups) * 9)
    times = time_chains(specs, "fp32", seconds, cache=False)
    efficiency, overheads = {}, {}
    n = len(FIT_SIZES)
    for i, (cls, _) in enumerate(FIT_CLASSES):
        points = list(zip(flops[i * n:(i + 1) * n], times[i * n:(i + 1) * n]))
        efficiency[cls], overheads[cls] = _fit_line(points, peak, overhead)
    return efficiency, overheads


def _fit_line(points: list[tuple[float, float]], peak: float, overhead: float) -> tuple[float, float]:
    """``(efficiency, fixed cost)`` of the least-squares line through ``(flops, seconds)``."""
    try:
        slope, intercept = statistics.linear_regression(*zip(*points))
    except statistics.StatisticsError:  # every point at the same FLOPs
        slope = 0.0
    if slope <= 0:
        return 1.0, overhead
    return round(min(1.0, 1 / (slope * peak)), 4), max(intercept, overhead)


def to_toml(profile: dict[str, Any]) -> str:
    lines = [f'name = "{profile["name"]}"', f'description = "{profile["description"]}"',
             "peak_flops = { " + ", ".join(f"{k} = {v:.6g}" for k, v in profile["peak_flops"].items()) + " }",
             f'bandwidth = {profile["bandwidth"]:.6g}', f'overhead = {profile["overhead"]:.6g}',
             f'grouped_channels = {profile["grouped_channels"]}',
             "sources = [" + ", ".join(json.dumps(s) for s in profile["sources"]) + "]", "", "[efficiency]"]
    lines += [f"{k} = {v}" for k, v in profile["efficiency"].items()]
    if profile.get("overheads"):
        lines += ["", "[overheads]"] + [f"{k} = {v:.6g}" for k, v in profile["overheads"].items()]
    return "\n".join(lines) + "\n"
