"""Receptive fields: published values (Araujo et al., Distill 2019; google-research/receptive_field's
test nets; TF-Slim VGG/AlexNet), hand-derived cases for every
op kind through both frontends, and an independent empirical check from input gradients."""

from __future__ import annotations

from fractions import Fraction

import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

import archlint
from tests.conftest import onnx_path

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from fixtures.networks import build  # noqa: E402
from tests.helpers import analyze_torchscript_export, gradient_span  # noqa: E402


def rf_of(report, name):
    rec = report.layer(name).rf[0]
    return [int(x) if Fraction(x).denominator == 1 else Fraction(x) for x in rec.size], \
        [Fraction(x) for x in rec.stride], [Fraction(x) for x in rec.padding], rec


def torch_rf(model, shape, name):
    return rf_of(archlint.analyze(model.eval(), input_shape=shape), name)


def export_rf(model, shape, match):
    """Through the ONNX path: export with the TorchScript exporter, then the field of the
    last layer whose ONNX name contains ``match``."""
    import io
    import warnings
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (torch.zeros(*shape),), buf, dynamo=False, opset_version=17)
    report = archlint.analyze(onnx.load_from_string(buf.getvalue()))
    name = [r.name for r in report.layers if match in r.name][-1]
    return rf_of(report, name)


def both(model, shape, torch_name, onnx_match):
    a = torch_rf(model, shape, torch_name)
    b = export_rf(model, shape, onnx_match)
    assert a[:3] == b[:3], (a, b)
    return a


# ------------------------------------------------------------------ published values
class Seq(nn.Sequential):
    pass


def test_distill_worked_example():
    """Conv k3 s3 p1 -> Conv k2 s1: r 6, S 3, P 1; output unit 0 sees pixels -1..4."""
    model = Seq(nn.Conv2d(1, 1, 3, 3, 1), nn.Conv2d(1, 1, 2, 1))
    size, stride, pad, _ = both(model, (1, 1, 12, 12), "1", "/1/Conv")
    assert (size, stride, pad) == ([6, 6], [3, 3], [1, 1])
    assert 0 * stride[0] - pad[0] == -1 and -1 + size[0] - 1 == 4


def test_resnet_stem():
    """Conv 7x7 s2 p3 -> BN -> ReLU -> MaxPool 3x3 s2 p1: r 11, S 4, P 5."""
    model = Seq(nn.Conv2d(3, 8, 7, 2, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
    assert both(model, (1, 3, 64, 64), "3", "MaxPool")[:3] == ([11, 11], [4, 4], [5, 5])


def test_three_3x3_chain_and_design_helper():
    model = Seq(nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 3))
    assert both(model, (1, 1, 16, 16), "2", "/2/Conv")[0] == [7, 7]
    rec = archlint.receptive_field(kernels=[3, 3, 3], strides=[1, 1, 1])
    assert rec.to_dict()["size"] == [7] and rec.to_dict()["stride"] == [1]
    stem = archlint.receptive_field(kernels=[7, 3], strides=[2, 2], paddings=[3, 1])
    assert (stem.to_dict()["size"], stem.to_dict()["stride"], stem.to_dict()["padding"]) == ([11], [4], [5])
    dil = archlint.receptive_field(kernels=[3, 3, 3], dilations=[1, 2, 4], paddings=[1, 2, 4])
    assert dil.to_dict()["size"] == [15] and dil.to_dict()["padding"] == [7]
    aniso = archlint.receptive_field(kernels=[(3, 5), (3, 1)], strides=[2, 2])
    assert aniso.to_dict()["size"] == [7, 5]


def test_dilated_stack_fixture():
    """3x3 convs with dilation 1, 2, 4 and padding = dilation: r 15, S 1, P 7."""
    expected = ([15, 15], [1, 1], [7, 7])
    assert torch_rf(build("dilated_stack"), (1, 3, 32, 32), "convs.2")[:3] == expected
    for exporter in ("torchscript", "dynamo"):
        report = archlint.analyze(onnx_path("dilated_stack", exporter))
        convs = [r for r in report.layers if r.kind == "conv"]
        assert rf_of(report, convs[2].name)[:3] == expected


class GoogleNet1(nn.Module):
    """google-research/receptive_field test net 1: 1x1 s4 in one branch; pad 1, 3x3 s2
    (VALID), 1x1 s2 in the other; added. r 3, S 4, P 1."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(1, 1, 1, 4)
        self.b1 = nn.Conv2d(1, 1, 3, 2)
        self.b2 = nn.Conv2d(1, 1, 1, 2)

    def forward(self, x):
        return self.a(x) + self.b2(self.b1(F.pad(x, (1, 1, 1, 1))))


def test_google_net1_branches():
    size, stride, pad, rec = both(GoogleNet1(), (1, 1, 32, 32), "add", "Add")
    assert (size, stride, pad) == ([3, 3], [4, 4], [1, 1])
    assert rec.aligned  # centres: branch a -P+(r-1)/2 = 0; branch b -1 + 1 = 0


def test_google_net5_non_square():
    """kernel [3,5] s2 -> kernel [3,1] s2: r_y 7, r_x 5, S 4, P 0 (axes are separate)."""
    model = Seq(nn.Conv2d(1, 1, (3, 5), 2), nn.Conv2d(1, 1, (3, 1), 2))
    assert both(model, (1, 1, 33, 33), "1", "/1/Conv")[:3] == ([7, 5], [4, 4], [0, 0])


def _vgg16_features():
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    layers, c = [], 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=True)]
            c = v
    return Seq(*layers)


def test_vgg16_pool5_at_224():
    """TF-Slim vgg_16 pool5 at 224 (Distill table): r 212, S 32, P 90. Built on the meta
    device (no weight memory)."""
    with torch.device("meta"):
        model = _vgg16_features()
    assert torch_rf(model, (1, 3, 224, 224), "30")[:3] == ([212, 212], [32, 32], [90, 90])


def test_alexnet_v2_pool5():
    """TF-Slim alexnet_v2 pool5: r 195, S 32 (conv 11 s4 VALID, pool 3 s2, conv 5, pool 3 s2,
    three conv 3, pool 3 s2)."""
    model = Seq(nn.Conv2d(3, 4, 11, 4), nn.MaxPool2d(3, 2), nn.Conv2d(4, 4, 5, padding=2), nn.MaxPool2d(3, 2),
                nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1),
                nn.MaxPool2d(3, 2))
    size, stride, _, _ = both(model, (1, 3, 224, 224), "7", "MaxPool")
    assert (size, stride) == ([195, 195], [32, 32])


# ------------------------------------------------------------------ hand-derived, per op kind
def test_padding_same_and_dilation():
    """padding='same', k4 d2: total d(k-1) = 6, begin 3: r = 7, P = 3."""
    model = Seq(nn.Conv2d(1, 1, 4, padding="same", dilation=2))
    assert both(model, (1, 1, 16, 16), "0", "Conv")[:3] == ([7, 7], [1, 1], [3, 3])


def test_pool_ceil_mode_changes_shape_not_field():
    """MaxPool 3 s2 ceil_mode on 16: out ceil(13/2)+1 = 8 (7 without); field r 3, S 2."""
    model = Seq(nn.MaxPool2d(3, 2, ceil_mode=True))
    report = archlint.analyze(model, input_shape=(1, 1, 16, 16))
    assert report.layers[0].output_shape == (1, 1, 8, 8)
    assert rf_of(report, "0")[:3] == ([3, 3], [2, 2], [0, 0])
    assert export_rf(model, (1, 1, 16, 16), "MaxPool")[:3] == ([3, 3], [2, 2], [0, 0])


def test_adaptive_pool_uniform_and_uneven():
    """16 -> 4: windows 4, stride 4. 10 -> 3: windows [0,4) [3,7) [6,10), then the same 10 further
    on (period 3): largest 4, mean stride 10/3, each window exact, noted as varying."""
    even = torch_rf(Seq(nn.AdaptiveAvgPool2d(4)), (1, 1, 16, 16), "0")
    assert even[:3] == ([4, 4], [4, 4], [0, 0]) and even[3].period == ()
    uneven = torch_rf(Seq(nn.AdaptiveAvgPool2d(3)), (1, 1, 10, 10), "0")
    assert uneven[0] == [4, 4] and uneven[1] == [Fraction(10, 3)] * 2
    assert uneven[3].period == (3, 3) and uneven[3].phases == (((0, 3), (3, 6), (6, 9)),) * 2
    assert [uneven[3].interval(0, u) for u in (3, 4)] == [(10, 13), (13, 16)]
    assert "field varies with output position (period 3)" in uneven[3].notes


class SE(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Conv2d(4, 4, 1)

    def forward(self, x):
        y = self.conv(x)
        return y * torch.sigmoid(self.fc(F.adaptive_avg_pool2d(y, 1)))


def test_global_pool_and_squeeze_excitation_are_global():
    report = archlint.analyze(SE(), input_shape=(1, 4, 16, 16))
    assert report.layer("conv").rf[0].short() == "3x3 s1"
    assert report.layer("adaptive_avg_pool2d").rf[0].is_global
    assert report.layer("mul").rf[0].is_global  # the 1x1 gate broadcast back over the image
    assert report.layer("mul").rf[0].short() == "global"
    onnx_rep = _export(SE(), (1, 4, 16, 16))
    assert [r.rf[0].is_global for r in onnx_rep.layers if r.op == "Mul"] == [True]


def test_flatten_linear_is_global_and_never_a_number():
    report = archlint.analyze(build("plain_cnn"), input_shape=(1, 3, 32, 32))
    fc = report.layer("fc").to_dict()["rf"]
    assert fc["global"] is True
    from archlint.reporters import table
    row = next(line for line in table.render(report).splitlines() if line.startswith("fc "))
    assert "global" in row


_export = analyze_torchscript_export


class Upsamplers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(2, 4, 3, padding=1)
        self.t = nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=1)
        self.ps = nn.PixelShuffle(2)
        self.pu = nn.PixelUnshuffle(2)

    def forward(self, x):
        y = self.c(x)
        return (F.interpolate(y, scale_factor=2, mode="nearest"),
                F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False),
                self.t(y), self.ps(y), self.pu(y), F.pad(y, (1, 2, 3, 4)), y[:, :, 2:10:2, 1:])


def test_upsampling_and_rearrangement():
    """After a 3x3 conv (unit i sees [i-1, i+1]), per axis, units v = 2m and 2m+1 (period 2, mean
    stride 1/2):
    nearest x2: both read m: [m-1, m+1] twice; size 3.
    bilinear x2 (half-pixel): x(v) = (v + 1/2)/2 - 1/2 = m - 1/4 or m + 1/4: v = 2m reads m-1 and m,
    [m-2, m+1]; v = 2m+1 reads m and m+1, [m-1, m+2]; size 4.
    ConvTranspose k3 s2 p1: v gathers i with 2i + j = v + 1: v = 2m reads m (j = 1), [m-1, m+1];
    v = 2m+1 reads m and m+1 (j = 2, 0), [m-1, m+2]; size 4.
    PixelShuffle 2: as nearest. PixelUnshuffle 2: window 2 stride 2: r 4, S 2, P 1 (uniform).
    The bound: P = max(φS - start_φ), cover = max(end_φ - φS) + P + 1: nearest P 3/2, cover 7/2;
    bilinear 2, 9/2; ConvTranspose 3/2, 4.
    F.pad (1,2,3,4): P_h 1 + 3, P_w 1 + 1. y[:, :, 2:10:2, 1:]: S_h 2, P_h 1 - 2, P_w 1 - 1."""
    report = archlint.analyze(Upsamplers(), input_shape=(1, 2, 16, 16))
    half = Fraction(1, 2)
    expected = {"interpolate": (3, ((-1, 1), (-1, 1)), Fraction(3, 2), Fraction(7, 2)),
                "interpolate_1": (4, ((-2, 1), (-1, 2)), 2, Fraction(9, 2)),
                "t": (4, ((-1, 1), (-1, 2)), Fraction(3, 2), 4),
                "ps": (3, ((-1, 1), (-1, 1)), Fraction(3, 2), Fraction(7, 2))}
    for name, (size, phases, pad, cover) in expected.items():
        got = rf_of(report, name)
        assert got[:3] == ([size] * 2, [half] * 2, [pad] * 2), name
        rec = got[3]
        assert (rec.period, rec.phases, rec.cover) == ((2, 2), (phases,) * 2, (cover, cover)), name
        assert "field varies with output position (period 2)" in rec.notes
        for u in range(4, 8):  # the bound holds on every unit
            lo, hi = rec.interval(0, u)
            assert u * half - pad <= lo and hi <= u * half - pad + cover - 1
    assert rf_of(report, "pu")[:3] == ([4, 4], [2, 2], [1, 1])
    assert rf_of(report, "pad")[:3] == ([3, 3], [1, 1], [4, 2])
    assert rf_of(report, "getitem")[:3] == ([3, 3], [2, 1], [-1, 0])
    json_rf = report.layer("interpolate").to_dict()["rf"]
    assert json_rf["stride"] == ["1/2", "1/2"] and json_rf["input_size"] == [16, 16]
    assert json_rf["period"] == [2, 2] and json_rf["phases"] == [[[-1, 1], [-1, 1]]] * 2
    assert json_rf["padding"] == ["3/2", "3/2"] and json_rf["cover"] == ["7/2", "7/2"]
    assert set(report.layer("pu").to_dict()["rf"]) == {"input", "size", "stride", "padding", "global", "aligned",
                                                         "notes", "input_size"}  # no variation: unchanged keys
    # the same through ONNX (Resize, ConvTranspose, DepthToSpace, Pad, Slice)
    onnx_rep = _export(Upsamplers(), (1, 2, 16, 16))
    by_op: dict[str, list] = {}
    for r in onnx_rep.layers:
        if r.rf:
            rec = r.rf[0]
            by_op.setdefault(r.op, []).append((rec.size, rec.stride, rec.padding, rec.phases))
    key = {name: (lambda rec: (rec.size, rec.stride, rec.padding, rec.phases))(report.layer(name).rf[0])
           for name in ("interpolate", "interpolate_1", "t", "ps", "pad", "getitem")}
    assert by_op["Resize"] == [key["interpolate"], key["interpolate_1"]]
    assert by_op["ConvTranspose"] == [key["t"]]
    assert by_op["DepthToSpace"] == [key["ps"]]
    assert key["pad"] in by_op["Pad"]
    assert key["getitem"] in by_op["Slice"]


def test_encoder_decoder_fields_through_both_paths():
    """The U-Net fixture's head: deepest path enc1 (3, S1) -> enc2 (7, S2) -> enc3 (15, S4)
    -> ConvTranspose k2 s2 (15+0*4, S2) -> concat -> dec1 3x3 (19, S2) -> bilinear x2 (21, S1)
    -> concat -> dec2 3x3 (23) -> head 1x1: 23... reported as the larger of the merged fields."""
    report = archlint.analyze(build("encoder_decoder"), input_shape=(1, 3, 32, 32))
    head = rf_of(report, "head")
    assert head[1] == [1, 1]
    for exporter in ("torchscript", "dynamo"):
        o = archlint.analyze(onnx_path("encoder_decoder", exporter))
        last = [r for r in o.layers if r.kind == "conv"][-1]
        assert rf_of(o, last.name)[:3] == head[:3]


def test_unaligned_merge_is_flagged():
    """A 3x3 branch with padding 1 (centre 0) added to a 3x3 branch with padding 0 shifted
    back by F.pad(0, 2) (centre 1): same stride, different centres. Unit u sees [u-1, u+1] in one
    branch and [u, u+2] in the other: the sum sees the union [u-1, u+2], r 4, P 1."""
    from fixtures.lint_models import Unaligned
    report = archlint.analyze(Unaligned(), input_shape=(1, 8, 16, 16))
    assert report.layer("add").rf[0].aligned is False
    assert rf_of(report, "add")[:3] == ([4, 4], [1, 1], [1, 1])
    assert report.layer("a").rf[0].aligned is True


def _onnx_conv(pads=None, auto_pad=None, size=9, k=4, s=2):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, size, size])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w = helper.make_tensor("w", TensorProto.FLOAT, [1, 1, k, k], [1.0] * k * k)
    attrs = {"strides": [s, s]}
    if pads is not None:
        attrs["pads"] = pads
    if auto_pad is not None:
        attrs["auto_pad"] = auto_pad
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", **attrs)
    model = helper.make_model(helper.make_graph([node], "g", [x], [y], [w]),
                              opset_imports=[helper.make_opsetid("", 17)])
    return archlint.analyze(model)


def test_onnx_asymmetric_pads_and_auto_pad():
    """Asymmetric pads [1, 0, 2, 3] (begins h, w; ends h, w): P is the begin pad.
    SAME_UPPER, in 9, k4, s2: total max((ceil(9/2)-1)*2 + 4 - 9, 0) = 3, begin 1, end 2;
    SAME_LOWER puts the odd one first: begin 2. Output ceil(9/2) = 5 either way."""
    asym = _onnx_conv(pads=[1, 0, 2, 3])
    assert rf_of(asym, "conv")[:3] == ([4, 4], [2, 2], [1, 0])
    upper = _onnx_conv(auto_pad="SAME_UPPER")
    assert rf_of(upper, "conv")[2] == [1, 1] and upper.layer("conv").output_shape == (1, 1, 5, 5)
    lower = _onnx_conv(auto_pad="SAME_LOWER")
    assert rf_of(lower, "conv")[2] == [2, 2] and lower.layer("conv").output_shape == (1, 1, 5, 5)


def test_conv1d_and_conv3d():
    one = torch_rf(Seq(nn.Conv1d(1, 1, 5, 2, 2), nn.Conv1d(1, 1, 3)), (1, 1, 32), "1")
    assert one[:3] == ([9], [2], [2])
    three = torch_rf(Seq(nn.Conv3d(1, 1, 3, 1, 1), nn.MaxPool3d(2)), (1, 1, 8, 8, 8), "1")
    assert three[:3] == ([4, 4, 4], [2, 2, 2], [1, 1, 1])


def test_channels_last_pointwise_keeps_field():
    """ConvNeXt-style: permute to channels-last, LayerNorm + Linear over channels, permute
    back: the positions are untouched, so the field is the 7x7 depthwise conv's."""
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.dw = nn.Conv2d(8, 8, 7, padding=3, groups=8)
            self.norm = nn.LayerNorm(8)
            self.pw = nn.Linear(8, 16)

        def forward(self, x):
            y = self.dw(x).permute(0, 2, 3, 1)
            return self.pw(self.norm(y)).permute(0, 3, 1, 2)
    report = archlint.analyze(Block(), input_shape=(1, 8, 16, 16))
    assert rf_of(report, "pw")[:3] == ([7, 7], [1, 1], [3, 3])
    assert rf_of(report, "permute_1")[:3] == ([7, 7], [1, 1], [3, 3])


# ------------------------------------------------------------------ empirical check
layer_st = st.tuples(st.sampled_from(["conv", "pool"]), st.integers(1, 4), st.integers(1, 2), st.integers(1, 2),
                     st.integers(0, 2))


class Chain(nn.Module):
    def __init__(self, specs, branch=None):
        super().__init__()
        self.main = Seq(*[self._layer(*s) for s in specs])
        self.branch = Seq(*[self._layer(*s) for s in branch]) if branch else None

    @staticmethod
    def _layer(kind, k, s, d, p):
        if kind == "pool":
            return nn.AvgPool2d(k, s, min(p, k // 2))
        return nn.Conv2d(1, 1, k, s, p, dilation=d)

    def forward(self, x):
        y = self.main(x)
        return y if self.branch is None else y + self.branch(x)


def _check(model, size):
    report = archlint.analyze(model, input_shape=(1, 1, size, size))
    out = report.layers[-1]
    if min(out.output_shape[2:]) < 1:
        return
    rec = out.rf[0]
    centre, span = gradient_span(model, (1, 1, size, size))
    for axis, (lo, hi) in enumerate(span):
        start = centre[axis] * rec.stride[axis] - rec.padding[axis]
        end = start + rec.size[axis] - 1
        assert (max(start, 0), min(end, size - 1)) == (lo, hi), (axis, rec, span)


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(layer_st, min_size=1, max_size=4))
def test_random_chains_match_gradient_span(specs):
    r = archlint.receptive_field([s[1] for s in specs], [s[2] for s in specs],
                                 [s[3] if s[0] == "conv" else 1 for s in specs])
    size = int(r.size[0]) + 4 * int(r.stride[0]) + 8
    _check(Chain(specs), size)


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from([1, 3, 5]), st.integers(1, 2)), min_size=1, max_size=3),
       st.lists(st.tuples(st.sampled_from([1, 3]), st.integers(1, 2)), min_size=1, max_size=3))
def test_random_aligned_branches_match_gradient_span(a, b):
    """Two centred branches (odd kernels, padding k//2*d) with the same total stride, added."""
    sa = [s for _, s in a]
    sb = [s for _, s in b]
    total_a, total_b = 1, 1
    for s in sa:
        total_a *= s
    for s in sb:
        total_b *= s
    if total_a != total_b:
        b = b + [(1, total_a // total_b)] if total_a % total_b == 0 else b
        a = a + [(1, total_b // total_a)] if total_b % total_a == 0 else a
    main = [("conv", k, s, 1, k // 2) for k, s in a]
    branch = [("conv", k, s, 1, k // 2) for k, s in b]
    size = 64 + 1
    model = Chain(main, branch)
    try:
        report = archlint.analyze(model, input_shape=(1, 1, size, size))
    except archlint.ArchlintError:
        return  # the two branches' shapes differ: not a valid network
    assert report.layers[-1].rf[0].aligned
    _check(model, size)


def test_onnx_path_matches_gradient_span():
    """A few fixed chains through the ONNX path too."""
    for specs in ([("conv", 3, 2, 1, 1), ("pool", 3, 2, 1, 1), ("conv", 3, 1, 2, 2)],
                  [("conv", 4, 2, 1, 0), ("conv", 3, 1, 1, 0), ("pool", 2, 2, 1, 0)]):
        model = Chain(specs)
        size = 48
        a = archlint.analyze(model, input_shape=(1, 1, size, size)).layers[-1].rf[0]
        b = _export(model, (1, 1, size, size))
        last = [r for r in b.layers if r.rf][-1].rf[0]
        assert (a.size, a.stride, a.padding) == (last.size, last.stride, last.padding)
        _check(model, size)
