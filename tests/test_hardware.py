"""Memory traffic, intensity and roofline time; device profiles; substitution findings
judged by estimated time; explore, --measure and calibrate (kept fast: tiny shapes)."""

from __future__ import annotations

import json

import pytest

import archlint
from archlint import profiles
from archlint.analyses.roofline import roofline_time
from archlint.config import from_dict
from archlint.errors import ArchlintError
from archlint.lint import lint
from tests.conftest import assert_one_line_error, onnx_path, run_cli

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402


class Seq(nn.Sequential):
    pass


def test_shufflenet_v2_pointwise_traffic():
    """1x1 conv c1=64 -> c2=128 on 14x14, no bias: hw(c1 + c2) + c1*c2 = 196*192 + 8192 = 45,824
    elements; fp32: 183,296 bytes; fp16: 91,648. With G=4: 196*192 + 8192/4 = 39,680 elements.
    FLOPs 2*196*64*128 = 3,211,264; intensity 3,211,264 / 183,296 = 17.52 FLOPs/byte."""
    r32 = archlint.analyze(Seq(nn.Conv2d(64, 128, 1, bias=False)), input_shape=(1, 64, 14, 14))
    conv = r32.layer("0")
    assert conv.bytes == 45_824 * 4 and conv.flops == 3_211_264
    assert abs(conv.intensity - 3_211_264 / 183_296) < 1e-9
    r16 = archlint.analyze(Seq(nn.Conv2d(64, 128, 1, bias=False)), input_shape=(1, 64, 14, 14), dtype="fp16")
    assert r16.layer("0").bytes == 45_824 * 2 and r16.model["dtype"] == "fp16"
    grouped = archlint.analyze(Seq(nn.Conv2d(64, 128, 1, groups=4, bias=False)), input_shape=(1, 64, 14, 14))
    assert grouped.layer("0").bytes == 39_680 * 4


def test_roofline_time_and_views():
    """generic-x86-cpu: 896 GFLOP/s fp32, 51.2 GB/s, 6 us per layer, dense efficiency 0.6.
    3,211,264 FLOPs / (896e9 * 0.6) = 5.97 us > 183,296 B / 51.2e9 = 3.58 us: compute-bound."""
    cpu = profiles.load("generic-x86-cpu")
    t = roofline_time(3_211_264, 183_296, cpu, "fp32", "dense")
    assert abs(t - (6e-6 + 3_211_264 / (896e9 * 0.6))) < 1e-15
    report = archlint.analyze(Seq(nn.Conv2d(64, 128, 1, bias=False), nn.Flatten()), input_shape=(1, 64, 14, 14))
    assert abs(report.layer("0").est_time - t) < 1e-15
    assert report.layer("1").bytes == 0 and report.layer("1").est_time == 0  # a view moves nothing
    assert report.totals.est_time == report.layer("0").est_time
    data = json.loads(report.to_json())
    assert data["layers"][0]["bytes"] == 183_296 and data["totals"]["est_time_s"] == report.totals.est_time


def test_fixed_cost_per_class():
    """A profile may give each conv class its own fixed cost. Depthwise 3x3 on 64x14x14, fp32:
    FLOPs 2*196*64*9 = 225,792, bytes 4*(2*12,544 + 576) = 102,656. At 1e11 FLOP/s with
    depthwise efficiency 0.1: 22.58 us of compute > 102,656 / 1e10 = 10.27 us of traffic, plus the
    class's 80 us: 102.58 us. The ReLU after it (dense class) moves 2*12,544*4 = 100,352 bytes in
    10.04 us and pays the dense class's 20 us; a class without an entry pays ``overhead`` (5 us)."""
    data = {"name": "classes", "peak_flops": {"fp32": 1e11}, "bandwidth": 1e10, "overhead": 5e-6,
            "efficiency": {"dense": 1.0, "depthwise": 0.1, "grouped": 1.0},
            "overheads": {"dense": 2e-5, "depthwise": 8e-5}}
    p = profiles.from_dict(data, "test")
    assert roofline_time(225_792, 102_656, p, "fp32", "depthwise") == pytest.approx(8e-5 + 225_792 / 1e10)
    assert roofline_time(0, 100, p, "fp32", "grouped") == pytest.approx(5e-6 + 100 / 1e10)
    report = archlint.analyze(Seq(nn.Conv2d(64, 64, 3, padding=1, groups=64, bias=False), nn.ReLU()),
                              input_shape=(1, 64, 14, 14), profile=data)
    assert report.layer("0").est_time == pytest.approx(102.58e-6, rel=1e-4)
    assert report.layer("1").est_time == pytest.approx(20e-6 + 100_352 / 1e10)
    assert profiles.load(data).to_dict()["overheads"] == {"dense": 2e-5, "depthwise": 8e-5}


def test_calibration_fit_recovers_a_line(monkeypatch):
    """``_fit_classes`` times every class's convs in one interleaved set and fits
    t = a + F/(peak*eff) per class. Fed exact times (dense: a = 90 us, 40 ps per FLOP, so eff
    0.25 at peak 1e11; grouped: a = 150 us, 50 ps; depthwise: a = 10 us, below the 1-channel
    conv's 20 us), it returns them, and the depthwise fixed cost is floored at 20 us."""
    from archlint import measure
    calls = []

    def fake(chains, dtype, seconds, cache=True):
        calls.append(len(chains))
        out = []
        for c, in chains:
            flops = 2 * c.size[0] * c.size[1] * c.co * (c.ci // c.groups) * 9
            line = {1: (90e-6, 4e-11), c.ci: (10e-6, 1e-10)}.get(c.groups, (150e-6, 5e-11))
            out.append(line[0] + flops * line[1])
        return out
    monkeypatch.setattr(measure, "time_chains", fake)
    eff, fixed = measure._fit_classes(1e11, 2e-5, 0.01)
    assert calls == [12]
    assert eff == {"dense": 0.25, "grouped": 0.2, "depthwise": 0.1}
    assert fixed == pytest.approx({"dense": 90e-6, "grouped": 150e-6, "depthwise": 20e-6})


def test_shipped_profiles_have_sources():
    for name in profiles.available():
        p = profiles.load(name)
        assert p.peak("fp32") > 0 and p.bandwidth > 0 and p.sources and set(p.efficiency) == {"dense", "depthwise",
                                                                                              "grouped"}
    assert {"generic-x86-cpu", "nvidia-h100-sxm", "nvidia-rtx-4090", "jetson-orin-nano"} <= set(profiles.available())


@pytest.mark.parametrize("text,needle", [
    ("peak_flops = { fp32 = 1e12 }\n", "bandwidth"),
    ("bandwidth = 1e9\n", "peak_flops"),
    ("peak_flops = { fp32 = -1 }\nbandwidth = 1e9\n", "peak_flops.fp32"),
    ("peak_flops = { fp32 = 1e12 }\nbandwidth = 1e9\n[efficiency]\ndense = 3\n", "efficiency"),
    ("peak_flops = { fp32 = 1e12 }\nbandwidth = 1e9\ncolour = 'red'\n", "colour"),
    ("peak_flops = [\n", "cannot read"),
    ("peak_flops = { fp32 = 1e12 }\nbandwidth = 1e9\n[overheads]\ndepthwise = -1\n", "overheads"),
])
def test_bad_profile_file(tmp_path, text, needle):
    path = tmp_path / "dev.toml"
    path.write_text(text)
    assert_one_line_error(run_cli(str(onnx_path("plain_cnn")), "--profile", str(path)), needle)
    with pytest.raises(ArchlintError):
        archlint.analyze(onnx_path("plain_cnn"), profile=str(path))


def test_unknown_profile_and_dtype():
    assert_one_line_error(run_cli(str(onnx_path("plain_cnn")), "--profile", "tpu-v9"), "tpu-v9")
    with pytest.raises(ArchlintError):
        archlint.analyze(onnx_path("plain_cnn"), dtype="fp8")


def _dw_finding(profile, severity="warning"):
    report = archlint.analyze(Seq(nn.Conv2d(64, 64, 3, padding=1, bias=False)), input_shape=(1, 64, 28, 28),
                              profile=profile)
    found = [f for f in lint(report, from_dict({"rules": {"AL101": {"severity": severity}}})) if f.code == "AL101"]
    return found[0] if found else None


def test_substitution_kept_downgraded_or_dropped_by_estimated_time():
    """Dense 3x3 64->64 at 28x28, fp32: 57.8 MFLOPs, 545 KB moved. Replacement: depthwise
    0.90 MFLOPs / 402 KB, pointwise 6.42 MFLOPs / 418 KB.
    At 200 GFLOP/s and 150 GB/s: 289 us -> 4.5 + 32 us: kept at the configured severity.
    With depthwise convs at 2% of peak: 289 -> 226 + 32 = 258 us (-11%): downgraded to info.
    At 1% of peak: 451 + 32 us, slower: dropped. Bandwidth-bound (1 GB/s): the intermediate map
    makes the pair move more bytes (545 -> 820 KB), slower: dropped."""
    base = {"name": "balanced", "peak_flops": {"fp32": 2e11}, "bandwidth": 1.5e11,
            "efficiency": {"dense": 1.0, "depthwise": 1.0, "grouped": 1.0}}
    kept = _dw_finding(base)
    assert kept.severity == "warning" and kept.saving.time[1] < 0.2 * kept.saving.time[0]
    slowish = dict(base, name="slowish-dw", efficiency={"dense": 1.0, "depthwise": 0.02, "grouped": 1.0})
    down = _dw_finding(slowish)
    assert down.severity == "info" and down.message.startswith("memory-bound on slowish-dw: MACs -87%, est. time -11%")
    slow = dict(base, name="slow-dw", efficiency={"dense": 1.0, "depthwise": 0.01, "grouped": 1.0})
    assert _dw_finding(slow) is None
    starved = dict(base, name="starved", bandwidth=1e9)
    assert _dw_finding(starved) is None


def test_explore_cli_and_json():
    proc = run_cli("explore", str(onnx_path("plain_cnn")), "--layer", "/conv3/conv3.0/Conv", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    variants = {v["variant"]: v for v in data["variants"]}
    assert set(variants) == {"original", "depthwise-separable", "grouped G=2", "grouped G=4", "grouped G=8",
                             "grouped G=16", "grouped G=32"}
    # conv3: 32->64 3x3 at 8x8: 1,179,648 MACs; G=4 -> 294,912; depthwise-separable 64*32*(9 + 64) = 149,504
    assert variants["original"]["macs"] == 1_179_648 and variants["grouped G=4"]["macs"] == 294_912
    assert variants["depthwise-separable"]["macs"] == 149_504
    table = run_cli("explore", str(onnx_path("plain_cnn")), "--layer", "/conv3/conv3.0/Conv")
    assert "depthwise-separable" in table.stdout and "est. speedup" in table.stdout
    assert_one_line_error(run_cli("explore", str(onnx_path("plain_cnn")), "--layer", "nope"), "nope")


def test_measure_explore_and_check(tmp_path):
    env_cache = {"XDG_CACHE_HOME": str(tmp_path)}
    no_overhead = tmp_path / "no-overhead.toml"  # so that plain_cnn's small convs still get AL101
    no_overhead.write_text('name = "no-overhead"\npeak_flops = { fp32 = 1e11 }\nbandwidth = 1e11\n')
    import os
    import subprocess
    import sys
    from tests.conftest import ROOT
    cmd = [sys.executable, "-m", "archlint", "explore", str(onnx_path("plain_cnn")), "--layer",
           "/conv3/conv3.0/Conv", "--measure", "--format", "json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, **env_cache}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)["variants"]
    assert all(r["measured_s"] > 0 for r in rows) and rows[0]["measured_speedup"] == 1.0
    assert (tmp_path / "archlint" / "measure.json").exists()  # cached per shape
    check = subprocess.run([sys.executable, "-m", "archlint", str(onnx_path("plain_cnn")), "--measure", "--format",
                            "json", "--profile", str(no_overhead)], capture_output=True, text=True, cwd=ROOT,
                           env={**os.environ, **env_cache},
                           timeout=300)
    findings = json.loads(check.stdout)["findings"]
    measured = [f for f in findings if f["code"] == "AL101"]
    assert measured and all(f["details"]["measured_s"]["before"] > 0 for f in measured)


def test_timing_is_interleaved_and_cached(tmp_path, monkeypatch):
    """time_chains times one block of every chain per round, each round starting one chain
    later (A B C, B C A, C A B, ...), so a speedup compares times taken under the same
    conditions. Each chain's time is cached; a set with every chain cached is not re-timed, and
    a set with one chain missing re-times all of them."""
    from torch.utils import benchmark

    from archlint import measure
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    timed: list[int] = []

    class Recorder(benchmark.Timer):
        def __init__(self, *args, globals, **kwargs):
            super().__init__(*args, globals=globals, **kwargs)
            self.channels = globals["model"][0].in_channels

        def timeit(self, number=1000000):
            timed.append(self.channels)
            return super().timeit(number)
    monkeypatch.setattr(benchmark, "Timer", Recorder)
    a, b, c = ([measure.ConvSpec(1, ci, 4, (6, 6), (3, 3), (1, 1), 1)] for ci in (1, 2, 3))
    times = measure.time_chains([a, b, c], "fp32", 0.001)
    assert len(times) == 3 and all(0 < t < 0.1 for t in times)
    rounds = timed[3:]  # after one timing of each chain to size its blocks
    assert timed[:3] == [1, 2, 3] and len(rounds) >= 3 * measure.MIN_ROUNDS and len(rounds) % 3 == 0
    assert rounds[:9] == [1, 2, 3, 2, 3, 1, 3, 1, 2]
    timed.clear()
    assert measure.time_chains([c, a], "fp32", 0.001) == [times[2], times[0]] and timed == []
    store = json.loads((tmp_path / "archlint" / "measure.json").read_text())
    assert sorted(store.values()) == sorted(times)
    fresh = measure.time_chains([a, [measure.ConvSpec(1, 5, 4, (6, 6), (3, 3), (1, 1), 1)]], "fp32", 0.001)
    assert set(timed) == {1, 5} and fresh[0] != times[0]


def test_calibrate_writes_a_loadable_profile(tmp_path):
    out = tmp_path / "me.toml"
    proc = run_cli("calibrate", "--seconds", "0.05", "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    p = profiles.load(str(out))
    assert p.peak("fp32") > 1e8 and p.bandwidth > 1e8 and 0 < p.overhead < 1e-2
    assert set(p.overheads) == {"dense", "grouped", "depthwise"} and min(p.overheads.values()) >= p.overhead
    report = archlint.analyze(onnx_path("plain_cnn"), profile=str(out))
    assert report.model["profile"] == p.name and report.totals.est_time > 0
