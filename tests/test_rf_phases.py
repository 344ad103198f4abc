"""Receptive fields that vary with the output position (issue 19): nearest, linear and cubic
resampling, ConvTranspose, PixelShuffle and uneven adaptive pooling make output unit ``u``'s
field depend on ``u mod T``. Every unit of two whole periods in the middle of a long strip is
checked against the gradient span (tests/helpers.py: float64, positive weights, BatchNorm as
identity, max-pool as average-pool), through the PyTorch path and, for the 1-D networks, the
ONNX path (TorchScript exporter) too; the single ``(r, S, P)`` bound must contain every unit's
exact interval."""

from __future__ import annotations

import os
from fractions import Fraction

import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archlint
from archlint.ops import rf

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from fixtures.upsampling_nets import MinimalNearest, ResNet34UNet, UNetLike, UpChain, YoloNeckLike  # noqa: E402
from tests.helpers import analyze_torchscript_export, gradient_spans  # noqa: E402

EXAMPLES = int(os.environ.get("ARCHLINT_EXAMPLES", "30"))  # ARCHLINT_EXAMPLES=1000: the long run


_export = analyze_torchscript_export


def _key(rec):
    return rec.size, rec.stride, rec.padding, rec.period, rec.phases, rec.cover, rec.aligned


def check_every_phase(model, shape, name=None, onnx_path=True, onnx_only=False, margin=0):
    """The field of layer ``name`` (default: the last) on every unit of two periods in the middle
    of each axis equals the gradient span, and lies inside the ``(cover, S, P)`` bound. Returns
    the record. ``onnx_only``: the record of the ONNX export's last layer is checked (for what only
    the export says, such as ``align_corners``). ``margin``: the intervals must stay this far
    from the borders (random chains: intermediate borders then cannot clip)."""
    if onnx_only:
        report = _export(model, shape)
        layer = [r for r in report.layers if r.rf][-1]
    else:
        report = archlint.analyze(model.eval(), input_shape=shape)
        layer = report.layer(name) if name else report.layers[-1]
    rec = layer.rf[0]
    out = layer.output_shape[2:]
    if onnx_path and not onnx_only and len(out) == 1:
        exported = _export(model, shape)
        last = [r for r in exported.layers if r.rf and r.output_shape == layer.output_shape][-1]
        assert _key(last.rf[0]) == _key(rec)
    periods = rec.period or (1,) * len(out)
    positions = []
    for axis, (n, t) in enumerate(zip(out, periods)):
        start = (n // 2 // t) * t
        for u in range(start, start + 2 * t):
            pos = [m // 2 for m in out]
            pos[axis] = u
            positions.append(tuple(pos))
    spans = gradient_spans(model, shape, positions)
    cover = rec.cover or rec.size
    for pos, span in zip(positions, spans):
        expected = [rec.interval(axis, u) for axis, u in enumerate(pos)]
        if None in expected:  # a transposed conv's unit that reads no input: no gradient
            assert span is None, (pos, span)
            continue
        for axis, (lo, hi) in enumerate(expected):  # far from the borders: nothing is clipped
            assert margin <= lo and hi < shape[2 + axis] - margin, (pos, expected)
            start = pos[axis] * rec.stride[axis] - rec.padding[axis]
            assert start <= lo and hi <= start + cover[axis] - 1, (pos, expected, rec)
        assert span == expected, (pos, span, expected)
    return rec


def test_minimal_case_from_the_issue():
    """conv 3 s2 p1 (unit i sees [2i-1, 2i+1]) -> nearest x2 (v reads floor(v/2)) -> conv 3 p1:
    u = 2n reads v = 2n-1, 2n, 2n+1, i.e. i = n-1 and n: [2n-3, 2n+1] = [u-3, u+1];
    u = 2n+1 reads i = n and n+1: [2n-1, 2n+3] = [u-2, u+2]. u = 12: [9, 13]."""
    rec = check_every_phase(MinimalNearest(1), (1, 1, 64))
    assert rec.interval(0, 12) == (9, 13) and rec.interval(0, 13) == (11, 15)
    assert (rec.size, rec.stride, rec.period, rec.phases) == ((5,), (1,), (2,), (((-3, 1), (-1, 3)),))
    assert rec.padding == (3,) and rec.cover == (6,)  # [u-3, u+2] holds for both
    assert rec.short() == "5 s1 (period 2)" and "field varies with output position (period 2)" in rec.notes
    check_every_phase(MinimalNearest(2), (1, 1, 32, 32), onnx_path=False)


def test_unet_like_decoder():
    """Three max-pool levels and three nearest x2 upsamplings with skip concatenations: period 8.
    As in the issue's segmentation U-Net, the size itself differs between phases (76 and 84
    here), the largest is reported, and the concat of an upsampled branch with its skip is
    unaligned (their centres differ on alternate units)."""
    model = UNetLike(1, depth=3)
    rec = check_every_phase(model, (1, 1, 512))
    assert rec.period == (8,)
    sizes = {hi - lo + 1 for lo, hi in rec.phases[0]}
    assert sizes == {76, 84} and rec.size == (84,)
    report = archlint.analyze(model, input_shape=(1, 1, 512))
    cats = [r for r in report.layers if r.name.startswith("cat")]
    assert len(cats) == 3 and not any(r.rf[0].aligned for r in cats)
    assert all(r.to_dict()["rf"]["aligned"] is False for r in cats)
    check_every_phase(UNetLike(2, depth=2), (1, 1, 96, 96), onnx_path=False)


def test_resnet34_unet_reproduces_the_issue():
    """segmentation_models_pytorch's Unet(resnet34) layout (1-D, width 2; the field is per axis):
    the issue measured, by gradient span, 995 at u mod 32 in {31, 0} and 1027 elsewhere, where
    archlint used to print 1025 (s1, P512) everywhere. Checked here on all 64 units of two
    periods, both paths."""
    rec = check_every_phase(ResNet34UNet(1), (1, 1, 4096))
    sizes = [hi - lo + 1 for lo, hi in rec.phases[0]]
    assert rec.period == (32,) and sizes == [995] + [1027] * 30 + [995]
    assert rec.size == (1027,) and rec.stride == (1,)
    assert rec.phases[0][0] == (-513, 481) and rec.phases[0][31] == (-481, 513)


def test_yolov8_neck_like():
    """YOLOv8's layout (strides 8/16/32, C2f, SPPF, two nearest x2 upsamplings into P3): the P3
    output's field is 879 wide, as the issue measured on YOLOv8n, with mean stride 8, but it
    moves 32 px every 4 units (units 4q+2 .. 4q+5 share one field) instead of 8 px per unit."""
    rec = check_every_phase(YoloNeckLike(1), (1, 1, 2048))
    assert (rec.size, rec.stride, rec.period) == ((879,), (8,), (4,))
    (a, b, c, d), = rec.phases
    assert a == b and c == d and c == (a[0] + 32, a[1] + 32)
    assert [rec.interval(0, u)[0] - rec.interval(0, 2)[0] for u in range(2, 10)] == [0] * 4 + [32] * 4


@pytest.mark.parametrize("kind", ["nearest", "linear", "transpose", "transpose4"])
def test_upsampling_chains_1d(kind):
    """Two stride-2 convs, then two x2 upsamplings each followed by a 3x3 conv: period 4."""
    rec = check_every_phase(UpChain(kind, 1), (1, 1, 256))
    assert rec.period == (4,) and rec.stride == (1,)


@pytest.mark.parametrize("kind", ["cubic", "pixelshuffle"])
def test_upsampling_chains_2d(kind):
    """Bicubic and PixelShuffle exist in 2-D only; both axes checked on every phase."""
    rec = check_every_phase(UpChain(kind, 2, c=2), (1, 1, 64, 64))
    assert rec.period == (4, 4)


class Resample(nn.Module):
    def __init__(self, size, mode):
        super().__init__()
        self.size, self.mode = size, mode
        self.conv = nn.Conv1d(1, 2, 3, 1, 1)

    def forward(self, x):
        kw = {} if self.mode == "nearest" else {"align_corners": False}
        return self.conv(F.interpolate(self.conv(x)[:, :1], size=self.size, mode=self.mode, **kw))


@pytest.mark.parametrize("mode", ["nearest", "linear"])
@pytest.mark.parametrize("size", [180, 90, 30])
def test_resampling_factors(mode, size):
    """60 -> 180 (x3: linear's middle phase lands on a whole input and reads it alone), 60 -> 90
    (x3/2: period 3, step 2), 60 -> 30 (a strided pick, or two taps for linear)."""
    check_every_phase(Resample(size, mode), (1, 1, 60))


def test_linear_x3_middle_phase():
    """linear x3, half-pixel: x(v) = (v + 1/2)/3 - 1/2; v = 3m+1 gives x = m exactly, whose
    neighbour has weight 0: the unit reads m alone. v = 3m: x = m - 1/3 reads m-1, m."""
    report = archlint.analyze(Resample(180, "linear"), input_shape=(1, 1, 60))
    up = report.layer("interpolate").rf[0]
    assert up.phases == (((-2, 1), (-1, 1), (-1, 2)),)


class AlignCorners(nn.Module):
    def __init__(self, size, mode):
        super().__init__()
        self.size, self.mode = size, mode
        self.conv = nn.Conv1d(1, 1, 3, 1, 1)

    def forward(self, x):
        return self.conv(F.interpolate(self.conv(x), size=self.size, mode=self.mode, align_corners=True))


@pytest.mark.parametrize("size", [129, 97])
def test_align_corners_through_onnx(size):
    """align_corners: x(v) = v*(n_in - 1)/(n_out - 1); 65 -> 129 is x = v/2 (period 2), 65 -> 97 is
    x = 2v/3 (period 3). The PyTorch frontend does not record ``align_corners``; the ONNX export
    does (``coordinate_transformation_mode``), and that record is checked."""
    rec = check_every_phase(AlignCorners(size, "linear"), (1, 1, 65), onnx_only=True)
    assert rec.period == ({129: 2, 97: 3}[size],)


@pytest.mark.parametrize("size", [129, 97])
def test_align_corners_on_the_torch_path(size):
    """The PyTorch frontend records ``align_corners=True`` as ONNX's ``align_corners`` coordinate
    mode: the same gradient-span check on every phase, and the same record as the export's."""
    rec = check_every_phase(AlignCorners(size, "linear"), (1, 1, 65))
    assert rec.period == ({129: 2, 97: 3}[size],)


class NearestExact(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 1, 3, 1, 1)

    def forward(self, x):
        return self.conv(F.interpolate(self.conv(x), size=90, mode="nearest-exact"))


def test_nearest_exact_on_the_torch_path():
    """nearest-exact 60 -> 90 reads floor((v + 1/2)*2/3): v = 0, 1, 2 read 0, 1, 1 (period 3,
    step 2), where plain nearest reads floor(2v/3) = 0, 0, 1: checked against the gradient span."""
    rec = check_every_phase(NearestExact(), (1, 1, 60), onnx_path=False)
    assert rec.period == (3,)


class RandomChain(nn.Module):
    def __init__(self, specs):
        super().__init__()
        self.specs = specs
        layers = []
        for kind, a, b, c in specs:
            if kind == "conv":
                layers.append(nn.Conv1d(1, 1, a, b, c))
            elif kind == "pool":
                layers.append(nn.MaxPool1d(a, b, min(c, a // 2)))
            elif kind == "tconv":
                layers.append(nn.ConvTranspose1d(1, 1, a, b, min(c, a - 1)))
            else:
                layers.append(nn.Identity())
        self.layers = nn.ModuleList(layers)

    def forward(self, x):
        for (kind, a, _, _), layer in zip(self.specs, self.layers):
            if kind in ("nearest", "linear"):
                kw = {} if kind == "nearest" else {"align_corners": False}
                x = F.interpolate(x, scale_factor=a, mode=kind, **kw)
            else:
                x = layer(x)
        return x


chain_op = st.one_of(
    st.tuples(st.just("conv"), st.integers(1, 4), st.integers(1, 3), st.integers(0, 2)),
    st.tuples(st.just("pool"), st.integers(2, 3), st.integers(1, 2), st.integers(0, 1)),
    st.tuples(st.just("tconv"), st.integers(1, 4), st.integers(2, 3), st.integers(0, 2)),
    st.tuples(st.sampled_from(["nearest", "linear"]), st.integers(2, 3), st.just(0), st.just(0)))


@settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 50, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(st.lists(chain_op, min_size=2, max_size=5))
def test_random_resampling_chains_match_gradient_span(specs):
    """Random 1-D chains of convs, pools, transposed convs and nearest/linear x2/x3 upsamplings:
    every unit of two periods in the middle, against the gradient span, through both paths."""
    n = 600
    model = RandomChain(specs)
    try:
        report = archlint.analyze(model, input_shape=(1, 1, n))
    except archlint.ArchlintError:
        return
    rec = report.layers[-1].rf[0]
    out = report.layers[-1].output_shape[2]
    if rec.is_global or out < 4 * max(rec.period or (1,)) or (rec.cover or rec.size)[0] > n // 3:
        return
    check_every_phase(model, (1, 1, n), margin=n // 5)


class PhaseMerge(nn.Module):
    """A nearest x2 branch added to a ConvTranspose k2 s2 branch (the same per-phase fields:
    aligned) or to a stride-1 branch of equal mean stride (centres differ on odd units)."""

    def __init__(self, other):
        super().__init__()
        self.other = other
        self.down = nn.Conv1d(1, 1, 3, 2, 1)
        self.t = nn.ConvTranspose1d(1, 1, 2, 2)
        self.c = nn.Conv1d(1, 1, 3, 1, 1)

    def forward(self, x):
        d = self.down(x)
        a = F.interpolate(d, scale_factor=2, mode="nearest")
        b = self.t(d) if self.other == "transpose" else self.c(x)
        return a + b


def test_merge_of_branches_differing_in_phase():
    """nearest x2 after conv 3 s2: v = 2m, 2m+1 see [2m-1, 2m+1]. ConvTranspose k2 s2: v reads
    floor(v/2) too: identical, aligned. conv 3 p1 on the input: v sees [v-1, v+1]; on v = 2m
    the centres agree (2m), on v = 2m+1 they do not (2m against 2m+1): unaligned, and the
    merge is the union: v = 2m [2m-1, 2m+1], v = 2m+1 [2m-1, 2m+2]."""
    same = check_every_phase(PhaseMerge("transpose"), (1, 1, 64))
    assert same.aligned and same.phases == (((-1, 1), (-1, 1)),)
    differ = check_every_phase(PhaseMerge("conv"), (1, 1, 64))
    assert not differ.aligned and differ.phases == (((-1, 1), (-1, 2)),)
    # per-phase centre offsets (start + end)/2 - φS of the branches, for messages: 0 and -1 against 0
    report = archlint.analyze(PhaseMerge("conv"), input_shape=(1, 1, 64))
    assert report.layer("interpolate").rf[0].centres == ((Fraction(0), Fraction(-1)),)
    assert report.layer("c").rf[0].centres == ((Fraction(0),),)
    assert report.layer("interpolate").rf[0].alignment_text() == (
        "stride 1, centre offset [-1..0] (varies with position, period 2)")
    assert report.layer("c").rf[0].alignment_text() == "stride 1, centre offset 0"


class GlobalHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 7, 2, 3)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):
        y = self.conv(x)
        return self.bn(y * torch.sigmoid(F.adaptive_avg_pool2d(y, 1)))


def test_global_field_carries_no_local_numbers():
    """efficientnet_b0's bn2 case: after a squeeze-and-excitation gate the field is global; its
    JSON says so and nothing else (no size, stride or padding of the last local layer)."""
    report = archlint.analyze(GlobalHead(), input_shape=(1, 1, 32, 32))
    d = report.layer("bn").to_dict()["rf"]
    assert d == {"input": "x", "global": True, "notes": [], "input_size": [32, 32]}
    rec = report.layer("bn").rf[0]
    assert rec.short() == "global" and rec.size == (32, 32) and rec.stride == ()
    from archlint.reporters import table
    assert any(line.startswith("bn ") and "global" in line for line in table.render(report).splitlines())


def test_long_periods_fall_back_to_a_bound():
    """An axis of period 601 (a stand-in for a long chain of odd resizes) through a map of period
    3 and step 1 needs period 1803 > MAX_PERIOD: the result is the uniform bound of the input
    run through the map, noted, and contains every exact interval."""
    phases = tuple((u - (u % 7), u + 3) for u in range(601))
    axis = rf.periodic(phases, 601)
    assert axis is not None and axis.period == 601
    op = rf.resize_map(10, 30, "nearest")
    assert op is not None and (op.period, op.step) == (3, 1)
    field = rf.apply(rf.Field((axis,), (2,)), [op])
    assert field is not None and rf.BOUND_NOTE in field.notes
    out = field.axes[0]
    for v in range(0, 4000, 7):
        lo = hi = None
        for i in op.taps(v):
            iv = axis.interval(i)
            lo, hi = iv if lo is None else (min(lo, iv[0]), max(hi, iv[1]))
        got = out.interval(v)
        assert got[0] <= lo and hi <= got[1]


def test_resize_maps_by_hand():
    """ONNX Resize coordinate modes, by hand. half_pixel nearest x2 (round_prefer_floor):
    x = v/2 - 1/4 rounds to floor(v/2). asymmetric x3/2 (floor(2v/3)): 0, 0, 1, 2, 2, 3.
    align_corners 5 -> 9 linear: x = v/2: even v reads v/2 alone, odd v reads (v-1)/2 and
    (v+1)/2. cubic x2 half-pixel: v = 0 at x = -1/4 reads -2 .. 1."""
    m = rf.resize_map(8, 16, "nearest", "half_pixel")
    assert [m.taps(v) for v in range(4)] == [(0,), (0,), (1,), (1,)]
    m = rf.resize_map(10, 15, "nearest", "asymmetric")
    assert (m.period, m.step) == (3, 2) and [m.taps(v)[0] for v in range(6)] == [0, 0, 1, 2, 2, 3]
    m = rf.resize_map(5, 9, "linear", "align_corners")
    assert [list(m.taps(v)) for v in range(4)] == [[0], [0, 1], [1], [1, 2]]
    m = rf.resize_map(8, 16, "cubic")
    assert list(m.taps(0)) == [-2, -1, 0, 1]
    assert rf.resize_map(8, 8, "linear") is None
    with pytest.raises(ValueError):
        rf.resize_map(8, 16, "nearest", "tf_crop_and_resize")


@pytest.mark.parametrize("nearest_mode", ["floor", "ceil", "round_prefer_floor", "round_prefer_ceil"])
@pytest.mark.parametrize("coordinate", ["half_pixel", "asymmetric"])
def test_onnx_nearest_mode_against_onnxruntime(nearest_mode, coordinate):
    """ONNX Resize nearest 16 -> 40 (x5/2) with each nearest_mode: feeding x = 0, 1, ..., 15,
    onnxruntime's output y[u] is the input index unit u reads; archlint's field of every unit
    must be exactly that one index (half_pixel x(u) = (u + 1/2)*2/5 - 1/2, asymmetric u*2/5).
    Units whose x rounds outside the input are clamped by onnxruntime, while fields are not
    clipped to the input: only the units inside are compared."""
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper
    scales = helper.make_tensor("scales", TensorProto.FLOAT, [3], [1.0, 1.0, 2.5])
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="nearest",
                            coordinate_transformation_mode=coordinate, nearest_mode=nearest_mode)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 40])], [scales])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    read = sess.run(None, {"x": np.arange(16, dtype=np.float32).reshape(1, 1, 16)})[0].reshape(-1)
    rec = archlint.analyze(model, lint=False).layers[-1].rf[0]
    for u in range(2, 37):
        assert rec.interval(0, u) == (int(read[u]), int(read[u])), (u, rec.interval(0, u), read[u])
