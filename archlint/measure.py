"""Measured timings with torch (optional): ``archlint calibrate`` and ``--measure``.

Layers are built at their exact shapes and dtype and timed with
``torch.utils.benchmark`` (warm-up, repeated runs, median), on CUDA when present, else
the CPU; the variants of one layer are timed interleaved (:func:`time_chains`). Results
are cached per shape in ``$XDG_CACHE_HOME/archlint/measure.json`` so a rerun is instant.
Only this module imports torch, and only when called.
"""

from __future__ import annotations

import json
import math
import os
import socket
import statistics
from collections.abc import Callable
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


@dataclass(frozen=True)
class Timing:
    """Median seconds per chain, and whether they were read from the cache (measured by an
    earlier run, possibly under other conditions) rather than measured now."""

    seconds: list[float]
    cached: bool


def measure_chains(chains: list[list[ConvSpec]], dtype: str = "fp32", min_run_time: float = 0.2,
                   cache: bool = True, reuse: bool = True) -> Timing:
    """:func:`time_chains`, saying whether the times came from the cache. ``cache``: read and
    write ``measure.json``; ``reuse=False`` (``--no-cache``) re-measures and stores the new times."""
    torch = _torch()
    if dtype == "int8":
        raise ArchlintError("--measure supports fp32, fp16 and bf16 (int8 convs need a quantised backend)")
    device = _device()
    keys = [_chain_key(chain, device, dtype, torch) for chain in chains]
    store = _read_cache() if cache and reuse else {}
    if store and all(k in store for k in keys):
        return Timing([float(store[k]) for k in keys], True)
    result = _time_interleaved(chains, dtype, min_run_time)
    if cache:
        store = _read_cache()
        store.update(zip(keys, result))
        _write_cache(store)
    return Timing(result, False)


def time_chains(chains: list[list[ConvSpec]], dtype: str = "fp32", min_run_time: float = 0.2,
                cache: bool = True) -> list[float]:
    """Median seconds per run of each chain of convs (a replacement may be two), measured
    interleaved (:func:`_time_interleaved`) so that a speedup is a ratio of times taken under
    the same conditions. The cache holds one time per chain; when any chain of the set is
    missing, the whole set is re-timed."""
    return measure_chains(chains, dtype, min_run_time, cache).seconds


def _time_interleaved(chains: list[list[ConvSpec]], dtype: str, min_run_time: float) -> list[float]:
    """Each round times one block of every chain (about ``BLOCK_SECONDS`` of back-to-back runs),
    starting each round at the next chain; rounds repeat until every chain has run for
    ``min_run_time`` and at least ``MIN_ROUNDS`` times; a chain's time is the median of its
    blocks. Timing the original and each replacement one after the other instead, on a busy
    2-core VM, gave the same replacement 0.97x in one run and 1.37x in the next: whatever
    slowed the machine for a fraction of a second landed on one side only."""
    torch = _torch()
    device = _device()
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
    return [statistics.median(s) for s in samples]


def time_convs(chain: list[ConvSpec], dtype: str = "fp32", min_run_time: float = 0.2, cache: bool = True) -> float:
    """Median seconds of running one chain of convs (:func:`time_chains` of one)."""
    return time_chains([chain], dtype, min_run_time, cache)[0]


# ``archlint calibrate`` repeats its whole set of measurements and refuses or warns on what
# one run cannot show: a machine whose speed changed during the run, or a fit that no device has.
REPEATS = 3
# max/min over the repeats of any one measurement: above WARN_SPREAD a warning, above
# REFUSE_SPREAD the profile is refused (the machine ran at half speed in one repeat)
WARN_SPREAD = 1.25
REFUSE_SPREAD = 2.0
# a fixed cost per conv above this is not a property of a device but of a busy machine: a
# 1-channel conv costs 10-15 us on a 2-core VM, and a CUDA launch is a few us
MAX_FIXED_COST = 1e-3
# a class whose convs run faster than the measured matmul peak (efficiency > 1) was timed
# under other conditions than the matmul: warned and set to 1; at twice the peak, refused
MAX_EFFICIENCY = 2.0
# a class whose four 3x3 convs fit the line t = a + b*F worse than this R^2 is reported as noisy
MIN_R2 = 0.9


@dataclass(frozen=True)
class Sample:
    """One repeat's raw measurements: matmul throughput, copy bandwidth, the 1-channel conv's
    time and the median time of each conv of :func:`_fit_specs`, in that order."""

    peak: float
    bandwidth: float
    overhead: float
    convs: tuple[float, ...]

    def values(self) -> dict[str, float]:
        names = [f"{cls} 3x3 conv {c}ch {size}px" for cls, _ in FIT_CLASSES for size, c in FIT_SIZES]
        return {"fp32 matmul": self.peak, "copy bandwidth": self.bandwidth, "1-channel conv": self.overhead,
                **dict(zip(names, self.convs))}


@dataclass
class Calibration:
    """The profile table, the spread of each measurement over the repeats (max/min), and the
    warnings about it (noisy, or a fit that is off)."""

    profile: dict[str, Any]
    spread: dict[str, float]
    warnings: list[str]


def calibrate(seconds: float = 0.1, repeats: int = REPEATS,
              progress: Callable[[str], None] | None = None) -> Calibration:
    """Measure this machine ``repeats`` times (:func:`_sample`): fp32 matmul throughput, copy
    bandwidth, the 1-channel conv and the twelve 3x3 convs of the class fit. The profile
    takes the median of each measurement; the fit (:func:`_fit_classes`) runs on the median
    conv times.

    Refused (:class:`ArchlintError`) when one measurement's max/min over the repeats is above
    ``REFUSE_SPREAD``, when a fixed cost per conv is above ``MAX_FIXED_COST``, or when a class's
    convs run at over ``MAX_EFFICIENCY`` times the matmul peak; warned when a spread is above
    ``WARN_SPREAD``, when a class's efficiency is above 1 (then set to 1), when its line fits
    with R^2 below ``MIN_R2`` or its time does not grow with FLOPs. On a busy 2-core VM, before
    repeats, one run wrote 17.9 ms per conv and the next 0.73 ms, both silently."""
    if repeats < 1:
        raise ArchlintError(f"calibrate needs at least one repeat, not {repeats}")
    torch = _torch()
    device = _device()
    samples: list[Sample] = []

    def say(msg: str) -> None:
        if progress is not None:
            progress(f"repeat {len(samples) + 1}/{repeats}: {msg}")
    for _ in range(repeats):
        samples.append(_sample(seconds, say))
    spread, warnings = _check_spread(samples)
    peak = statistics.median(s.peak for s in samples)
    bandwidth = statistics.median(s.bandwidth for s in samples)
    overhead = statistics.median(s.overhead for s in samples)
    convs = [statistics.median(s.convs[i] for s in samples) for i in range(len(samples[0].convs))]
    efficiency, overheads, fits = _fit_classes(peak, overhead, convs)
    warnings += _check_fit(overhead, efficiency, overheads, fits)
    profile = {"name": f"calibrated-{socket.gethostname()}",
               "description": f"measured by archlint calibrate on {device} with torch {torch.__version__}, "
                              f"{torch.get_num_threads()} threads, median of {repeats} repeats",
               "peak_flops": {"fp32": peak}, "bandwidth": bandwidth, "overhead": overhead, "grouped_channels": 16,
               "efficiency": efficiency, "overheads": overheads,
               "sources": ["archlint calibrate: fp32 matmul, tensor copy and 3x3 convs timed with "
                           "torch.utils.benchmark"]}
    return Calibration(profile, spread, warnings)


def _check_spread(samples: list[Sample]) -> tuple[dict[str, float], list[str]]:
    """Spread (max/min over the repeats) of each measurement; refused over ``REFUSE_SPREAD``,
    warned over ``WARN_SPREAD``."""
    repeats = len(samples)
    values = [s.values() for s in samples]
    spread = {k: max(v[k] for v in values) / min(v[k] for v in values) for k in values[0]}
    for k, v in values[0].items():
        if not all(math.isfinite(x[k]) and x[k] > 0 for x in values):
            raise ArchlintError(f"calibration refused: {k} measured {v:.3g}, not a positive number")
    worst = max(spread, key=lambda k: spread[k])
    if spread[worst] > REFUSE_SPREAD:
        raise ArchlintError(f"calibration refused: {worst} varied {spread[worst]:.2f}x over {repeats} repeats "
                            f"(limit {REFUSE_SPREAD:g}x); the machine is busy, rerun it when idle")
    warnings = [f"{k} varied {x:.2f}x over {repeats} repeats (warning above {WARN_SPREAD:g}x): the machine may be "
                f"busy" for k, x in spread.items() if x > WARN_SPREAD]
    return spread, warnings


def _check_fit(overhead: float, efficiency: dict[str, float], overheads: dict[str, float],
               fits: dict[str, float | None]) -> list[str]:
    """Refuse an implausible fit, cap an efficiency above 1 (in place), and say what was off."""
    warnings: list[str] = []
    for cls, fixed in [("1-channel", overhead), *overheads.items()]:
        if fixed > MAX_FIXED_COST:
            raise ArchlintError(f"calibration refused: fixed cost of a {cls} conv {fixed * 1e3:.3g} ms is "
                                f"implausible (limit {MAX_FIXED_COST * 1e3:g} ms); the machine is busy, rerun it "
                                f"when idle")
    for cls, eff in efficiency.items():
        if eff > MAX_EFFICIENCY:
            raise ArchlintError(f"calibration refused: {cls} convs ran at {eff:.2f}x the measured matmul peak "
                                f"(limit {MAX_EFFICIENCY:g}x); the machine is busy, rerun it when idle")
        if eff > 1:
            warnings.append(f"{cls} convs ran at {eff:.2f}x the measured matmul peak: efficiency set to 1")
            efficiency[cls] = 1.0
    for cls, r2 in fits.items():
        if r2 is None:
            warnings.append(f"{cls} convs: time does not grow with FLOPs; efficiency set to 1")
        elif r2 < MIN_R2:
            warnings.append(f"{cls} convs fit t = overhead + FLOPs/(peak*efficiency) with R^2 {r2:.2f} "
                            f"(warning below {MIN_R2:g}): noisy timings")
    return warnings


def _sample(seconds: float, say: Callable[[str], None]) -> Sample:
    """One full set of measurements (one repeat of :func:`calibrate`)."""
    torch = _torch()
    from torch.utils import benchmark
    device = _device()
    threads = torch.get_num_threads()
    n = 1024 if device == "cpu" else 8192
    say(f"fp32 matmul {n}x{n}")
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    t = benchmark.Timer("a @ b", globals={"a": a, "b": b}, num_threads=threads) \
        .blocked_autorange(min_run_time=seconds).median
    peak = 2 * n ** 3 / t
    elems = 32 * 2 ** 20 if device == "cpu" else 256 * 2 ** 20
    say(f"copy of {elems * 4 // 2 ** 20} MiB")
    src = torch.empty(elems, device=device)
    dst = torch.empty(elems, device=device)
    t = benchmark.Timer("dst.copy_(src)", globals={"src": src, "dst": dst}, num_threads=threads) \
        .blocked_autorange(min_run_time=seconds).median
    bandwidth = 2 * elems * 4 / t
    say("1-channel conv")
    tiny = ConvSpec(1, 1, 1, (1, 1), (1, 1), (1, 1), 1)
    overhead = time_convs([tiny], "fp32", seconds, cache=False)
    specs, _ = _fit_specs()
    say(f"{len(specs)} 3x3 convs, interleaved")
    convs = time_chains([[s] for s in specs], "fp32", seconds, cache=False)
    return Sample(peak, bandwidth, overhead, tuple(convs))


# (size, channels) of the 3x3 convs each class is timed at: from small layers, where the
# fixed cost shows, up to 28 px and 128 channels
FIT_SIZES = ((14, 32), (14, 64), (28, 64), (28, 128))
# input channels per group of each class's convs (None: one group)
FIT_CLASSES = (("dense", None), ("grouped", 16), ("depthwise", 1))


def _fit_specs() -> tuple[list[ConvSpec], list[float]]:
    """The convs of the class fit, class by class, and the FLOPs of each: ``2*H*W*Co*(Ci/G)*9``."""
    specs, flops = [], []
    for _, per_group in FIT_CLASSES:
        for size, c in FIT_SIZES:
            groups = 1 if per_group is None else c // per_group
            specs.append(ConvSpec(1, c, c, (size, size), (3, 3), (1, 1), groups))
            flops.append(2.0 * size * size * c * (c // groups) * 9)
    return specs, flops


def _fit_classes(peak: float, overhead: float, times: list[float]
                 ) -> tuple[dict[str, float], dict[str, float], dict[str, float | None]]:
    """Efficiency, fixed cost and R^2 per conv class, from a least-squares line ``t = a + b*F``
    through the times of :func:`_fit_specs`' convs: ``efficiency = 1/(b*peak)``,
    ``overhead = a``, never below the 1-channel conv's ``overhead``; the efficiency is not
    capped here (above 1 is a finding of :func:`calibrate`). A degenerate fit (time not
    growing with FLOPs) gives efficiency 1, the plain ``overhead`` and R^2 ``None``.

    On a 2-core CPU ``a`` came out at 70-90 us for dense convs and 90-120 us for grouped and
    depthwise ones, where a 1-channel conv costs 10-15 us: a replacement that splits a small
    conv in two pays it twice. All twelve convs are timed in one interleaved set
    (:func:`time_chains`): timed class by class, a slow second on the VM once made grouped
    convs' fixed cost equal dense ones' and turned 0.7x measured slowdowns into 1.2x estimates."""
    _, flops = _fit_specs()
    efficiency, overheads, fits = {}, {}, {}
    n = len(FIT_SIZES)
    for i, (cls, _) in enumerate(FIT_CLASSES):
        points = list(zip(flops[i * n:(i + 1) * n], times[i * n:(i + 1) * n]))
        efficiency[cls], overheads[cls], fits[cls] = _fit_line(points, peak, overhead)
    return efficiency, overheads, fits


def _fit_line(points: list[tuple[float, float]], peak: float, overhead: float) -> tuple[float, float, float | None]:
    """``(efficiency, fixed cost, R^2)`` of the least-squares line through ``(flops, seconds)``;
    ``R^2 = correlation(F, t)^2`` for a simple linear regression."""
    xs, ys = zip(*points)
    try:
        slope, intercept = statistics.linear_regression(xs, ys)
        r2 = statistics.correlation(xs, ys) ** 2
    except statistics.StatisticsError:  # every point at the same FLOPs, or every time equal
        slope = 0.0
    if slope <= 0:
        return 1.0, overhead, None
    return round(1 / (slope * peak), 4), max(intercept, overhead), r2


def to_toml(profile: dict[str, Any], spread: dict[str, float] | None = None) -> str:
    """The profile as TOML; ``spread`` (max/min of each measurement over the repeats) as comments."""
    lines = [f"# spread over the repeats (max/min): {k} {v:.3f}x" for k, v in (spread or {}).items()]
    lines += [f'name = "{profile["name"]}"', f'description = "{profile["description"]}"',
             "peak_flops = { " + ", ".join(f"{k} = {v:.6g}" for k, v in profile["peak_flops"].items()) + " }",
             f'bandwidth = {profile["bandwidth"]:.6g}', f'overhead = {profile["overhead"]:.6g}',
             f'grouped_channels = {profile["grouped_channels"]}',
             "sources = [" + ", ".join(json.dumps(s) for s in profile["sources"]) + "]", "", "[efficiency]"]
    lines += [f"{k} = {v}" for k, v in profile["efficiency"].items()]
    if profile.get("overheads"):
        lines += ["", "[overheads]"] + [f"{k} = {v:.6g}" for k, v in profile["overheads"].items()]
    return "\n".join(lines) + "\n"
