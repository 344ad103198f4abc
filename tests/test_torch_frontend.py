"""The PyTorch frontend: MACs against FlopCounterMode, params against the module's own
count, weight sharing, the torch.export fallback, meta-device models, source
locations, command-line targets and bad input."""

from __future__ import annotations

import json

import pytest

import archlint
from archlint.errors import ArchlintError
from tests.conftest import assert_one_line_error, run_cli

torch = pytest.importorskip("torch")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from archlint.frontends import torch_frontend  # noqa: E402
from archlint.input_spec import from_python  # noqa: E402
from archlint.report import build_report  # noqa: E402
from fixtures import torch_models as tm  # noqa: E402
from fixtures.networks import NETWORKS, build  # noqa: E402


def reference(model, shape):
    counter = FlopCounterMode(display=False)
    with torch.nn.attention.sdpa_kernel(torch.nn.attention.SDPBackend.MATH), counter:
        model(torch.randn(*shape))
    return counter.get_total_flops() // 2, sum(p.numel() for p in model.parameters())


EXTRA = [(tm.FunctionalNet, (1, 3, 16, 16)), (tm.EinsumAttention, (2, 10, 32)), (tm.MHANet, (2, 7, 32)),
         (tm.SharedNet, (1, 3, 16, 16)), (tm.ShapeBranchNet, (1, 3, 32, 32))]


@pytest.mark.parametrize("cls,shape", EXTRA, ids=[c.__name__ for c, _ in EXTRA])
def test_extra_networks_match_flop_counter(cls, shape):
    torch.manual_seed(0)
    model = cls().eval()
    macs, params = reference(model, shape)
    report = archlint.analyze(model, input_shape=shape)
    assert (report.totals.macs, report.totals.params) == (macs, params)
    assert not report.totals.partial


@pytest.mark.parametrize("name", list(NETWORKS))
def test_export_path_agrees_with_fx_path(name):
    """Forcing torch.export gives the same totals and the same per-module conv/linear shapes."""
    model = build(name)
    shape = NETWORKS[name][1]
    fx_report = archlint.analyze(model, input_shape=shape)
    ex_report = build_report(torch_frontend.load_module(model, from_python(shape), tracer="export"))
    assert ex_report.model["tracer"] == "torch.export"
    assert (ex_report.totals.macs, ex_report.totals.params) == (fx_report.totals.macs, fx_report.totals.params)

    def by_module(report):
        return {(r.module, r.kind): r.output_shape for r in report.layers if r.kind in ("conv", "linear")}
    assert by_module(ex_report) == by_module(fx_report)


def test_attention_counted_through_sdpa():
    """tiny_vit: attention runs through F.scaled_dot_product_attention on q, k, v of
    [1, 4 heads, 17 tokens, 8]: B*H*Sq*Sk*(D+Dv) = 4*17*17*16 = 18,496 MACs (softmax(QK^T)V: QK^T and the product with V)."""
    report = archlint.analyze(build("tiny_vit"), input_shape=(1, 3, 32, 32))
    att = [r for r in report.layers if r.kind == "attention"]
    assert len(att) == 1 and att[0].macs == 4 * 17 * 17 * 16
    assert att[0].name == "attn.scaled_dot_product_attention"


def test_multihead_attention_formula():
    """MHA, E=32, L=S=7, N=2: projections 4*N*L*E*E = 57,344, attention N*L*S*2E = 6,272,
    head 2*7*32*5 = 2,240; total 65,856 (also FlopCounterMode's)."""
    report = archlint.analyze(tm.MHANet(), input_shape=(2, 7, 32))
    assert report.layer("mha").macs == 57_344 + 6_272
    assert report.totals.macs == 65_856


def test_weight_sharing_counts_params_once_and_macs_per_call():
    """SharedNet: 'shared' (8->8 3x3, 584 params) runs twice at 16x16: 2*16*16*8*8*9 MACs;
    fc2's weight is tied to fc1's, so fc2 adds only its bias (8)."""
    report = archlint.analyze(tm.SharedNet(), input_shape=(1, 3, 16, 16))
    calls = [r for r in report.layers if r.module == "shared"]
    assert [r.macs for r in calls] == [147_456, 147_456]
    assert [r.params for r in calls] == [584, 0] and calls[1].shared_params == 584
    assert report.layer("fc2").params == 8
    assert report.totals.params == 224 + 584 + 72 + 8


def test_fallback_to_export_says_why():
    report = archlint.analyze(tm.ShapeBranchNet(), input_shape=(1, 3, 32, 32))
    assert report.model["tracer"] == "torch.export"
    assert "control flow" in report.model["tracer_fallback_reason"]
    # the branch is taken at 32 px (pool present), not at 16 px
    assert any(r.kind == "pool" for r in report.layers)
    small = archlint.analyze(tm.ShapeBranchNet(), input_shape=(1, 3, 16, 16))
    assert not any(r.kind == "pool" for r in small.layers)


def test_meta_device_model():
    model = tm.meta_resnet()
    assert next(model.parameters()).device.type == "meta"
    report = archlint.analyze(model, input_shape=(1, 3, 64, 64))
    assert report.totals.macs == 6_865_216
    assert report.totals.params == sum(p.numel() for p in model.parameters())


def test_no_real_arithmetic_runs():
    """Forward hooks see fake tensors only: no weight memory is read."""
    seen = []
    model = build("plain_cnn")
    model.stem[0].register_forward_hook(lambda m, i, o: seen.append(type(o).__name__))
    archlint.analyze(model, input_shape=(1, 3, 32, 32))
    assert seen and set(seen) == {"FakeTensor"}


def test_example_inputs_and_dtype():
    model = build("plain_cnn")
    a = archlint.analyze(model, example_inputs=torch.zeros(2, 3, 32, 32))
    b = archlint.analyze(model, example_inputs=(torch.zeros(2, 3, 32, 32),))
    c = archlint.analyze(model, example_inputs={"x": torch.zeros(2, 3, 32, 32)})
    assert a.totals.macs == b.totals.macs == c.totals.macs == 2 * 1_917_568
    half = archlint.analyze(model.half(), input_shape=(1, 3, 32, 32), dtype="float16")
    assert half.model["inputs"][0]["dtype"] == "float16"


def test_source_locations():
    """Modules point at their construction line, functional calls at the call line."""
    import inspect
    report = archlint.analyze(tm.SharedNet(), input_shape=(1, 3, 16, 16))
    src, start = inspect.getsourcelines(tm.SharedNet)
    lines = {text.strip(): start + i for i, text in enumerate(src)}
    file, line = report.layer("shared").source
    assert file.endswith("fixtures/torch_models.py")
    assert line == next(v for k, v in lines.items() if k.startswith("self.shared = nn.Conv2d"))
    _, relu_line = report.layer("relu").source
    assert relu_line == next(v for k, v in lines.items() if k.startswith("x = self.shared(F.relu("))
    nested = archlint.analyze(build("resnet_small"), input_shape=(1, 3, 64, 64))
    file, line = nested.layer("layer1.0.conv1.0").source  # inside a Sequential built by conv_bn()
    assert file.endswith("fixtures/networks.py")


# ------------------------------------------------------------------ command line
def test_cli_file_target():
    proc = run_cli("fixtures/torch_models.py:shared_net", "--input-shape", "1x3x16x16", "--format", "json",
                   "--no-lint")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["totals"]["macs"] == 350_336 and data["model"]["tracer"] == "torch.fx"


def test_cli_module_target_class_and_instance():
    for target in ("fixtures.networks:PlainCNN", "fixtures.torch_models:meta_resnet"):
        proc = run_cli(target, "--input-shape", "1x3x32x32", "--format", "json", "--no-lint")
        assert proc.returncode == 0, proc.stderr


def test_cli_missing_attr():
    assert_one_line_error(run_cli("fixtures.torch_models:nope", "--input-shape", "1x3x8x8"), "nope")


def test_cli_missing_module():
    assert_one_line_error(run_cli("no_such_pkg.models:net", "--input-shape", "1x3x8x8"), "no_such_pkg")


def test_cli_factory_raises():
    assert_one_line_error(run_cli("fixtures/torch_models.py:broken_factory", "--input-shape", "1x3x8x8"),
                          "RuntimeError", "weights file missing")


def test_cli_not_a_module():
    assert_one_line_error(run_cli("fixtures.torch_models:not_a_module", "--input-shape", "1x3x8x8"), "int")


def test_cli_input_shape_rejected_names_the_layer():
    proc = run_cli("fixtures.networks:PlainCNN", "--input-shape", "1x4x32x32")
    assert_one_line_error(proc, "stem.0", "[1, 4, 32, 32]")


def test_cli_torch_target_needs_input_shape():
    assert_one_line_error(run_cli("fixtures.networks:PlainCNN"), "input shape")


def test_api_errors_are_archlint_errors():
    with pytest.raises(ArchlintError):
        archlint.analyze(build("plain_cnn"))
    with pytest.raises(ArchlintError):
        archlint.analyze(build("plain_cnn"), input_shape=(1, 3))


@pytest.mark.parametrize("bad", [torch.nn.BatchNorm2d(16), torch.nn.GroupNorm(4, 16), torch.nn.LayerNorm(31),
                                 torch.nn.PReLU(16)])
def test_shape_preserving_modules_still_check_their_input(bad) -> None:
    """Norms and activations are not executed on fake tensors when their input fits them
    (their output has the input's shape); an input that does not fit still fails the way
    the real model would, naming the layer."""
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), bad)
    with pytest.raises(ArchlintError, match=r"layer '1' \(1\) failed on input shape\(s\) \[1, 8, 32, 32\]"):
        archlint.analyze(model, input_shape=(1, 3, 32, 32))
    good = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.GELU())
    report = archlint.analyze(good, input_shape=(1, 3, 32, 32))
    assert [r.output_shape for r in report.layers] == [(1, 8, 32, 32)] * 3


@pytest.mark.parametrize("conv,shape", [
    (torch.nn.Conv2d(4, 8, 3, stride=2, padding=1), (2, 4, 15, 17)),
    (torch.nn.Conv2d(4, 8, (5, 3), stride=(2, 3), padding=(2, 0), dilation=(1, 2), groups=2), (1, 4, 20, 21)),
    (torch.nn.Conv1d(3, 6, 7, stride=3, padding=3, padding_mode="reflect"), (1, 3, 50)),
    (torch.nn.Conv3d(2, 4, 3, stride=(1, 2, 2), padding=1), (1, 2, 5, 9, 9)),
    (torch.nn.Conv2d(4, 8, 3, padding="same"), (1, 4, 10, 10)),
])
def test_conv_output_shapes_equal_pytorch(conv, shape) -> None:
    """The traced output shape of a conv (taken from the window geometry, without a fake
    convolution) equals what PyTorch computes on a real tensor."""
    expected = tuple(conv(torch.zeros(shape)).shape)
    report = archlint.analyze(torch.nn.Sequential(conv), input_shape=shape)
    assert report.layers[0].output_shape == expected


def test_conv_on_too_small_input_fails_like_pytorch() -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 7))
    with pytest.raises(ArchlintError, match=r"layer '0' .* failed on input shape\(s\) \[1, 3, 4, 4\]"):
        archlint.analyze(model, input_shape=(1, 3, 4, 4))


class _Elementwise(torch.nn.Module):
    """Elementwise calls whose result archlint reads off the input, next to ones it must run
    (broadcasting, dtype promotion)."""

    def forward(self, x):
        a = torch.nn.functional.relu(x) + 1           # same shape: read off x
        b = a * x[:, :1]                              # broadcast over channels: run
        c = torch.sigmoid(b) - x.mean((2, 3), keepdim=True)  # broadcast over space: run
        d = c + torch.ones(1, dtype=torch.float64)    # dtype promotion to float64: run
        return torch.add(d, d) * 0.5


def test_elementwise_shortcuts_match_pytorch_shapes_and_dtypes() -> None:
    model = _Elementwise()
    x = torch.randn(2, 3, 5, 7)
    expected = model(x)
    report = archlint.analyze(model, example_inputs=(x,))
    last = report.layers[-1]
    assert last.output_shape == tuple(expected.shape)
    assert report.graph.tensors[report.graph.outputs[0]].dtype == "float64" == str(expected.dtype).split(".")[1]
    shapes = [r.output_shape for r in report.layers if r.op in ("operator.mul", "operator.sub", "mul", "sub")]
    assert (2, 3, 5, 7) in shapes


def _window_sizes(shift: list[int], size: list[int], window: list[int]) -> tuple[list[int], list[int]]:
    """torchvision's swin3d ``_get_window_and_shift_size``: mutates its list arguments."""
    for i in range(len(size)):
        if size[i] <= window[i]:
            window[i] = size[i]
            shift[i] = 0
    return window, shift


def _cosine_scores(q, k):
    """swin_v2's cosine attention: ``F.normalize`` lowers to aten.linalg_vector_norm on export."""
    import torch.nn.functional as F
    return F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)


torch.fx.wrap("_window_sizes")
torch.fx.wrap("_cosine_scores")


class _WrappedCalls(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(8, 8)

    def forward(self, x):
        window, _ = _window_sizes([1, 1], list(x.shape[1:3]), [4, 4])
        q = self.proj(x).flatten(1, 2)
        return _cosine_scores(q, q) * window[0]


def test_wrapped_functions_that_mutate_lists_and_normalize():
    """A torch.fx.wrap'ed function that mutates its list arguments (swin3d) runs with plain lists,
    and F.normalize's aten.linalg_vector_norm is a reduction, not an uncosted op (swin_v2).
    x [1, 4, 4, 8]: Linear 8->8 on 16 positions: 16*8*8 = 1,024 MACs; q [1, 16, 8], q q^T:
    16*16*8 = 2,048 MACs; total 3,072, as FlopCounterMode/2 measures."""
    from torch.utils.flop_counter import FlopCounterMode
    model = _WrappedCalls().eval()
    report = archlint.analyze(model, input_shape=(1, 4, 4, 8), lint=False)
    assert not report.totals.partial, report.totals.uncounted_ops
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 4, 4, 8))
    assert report.totals.macs == counter.get_total_flops() // 2 == 3_072
