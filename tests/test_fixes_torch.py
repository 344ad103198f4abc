"""``archlint.apply`` on torch modules: a deep copy with standard modules, weights carried over,
safe fixes exact, functional convs not applicable; the torch and ONNX writers agree; every fix
on random networks keeps the model valid with the same output shape."""

from __future__ import annotations

import io
import os
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import archlint
from archlint.analyses import rewrite

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from tests.random_nets import build, networks  # noqa: E402

SHAPE = (2, 8, 15, 15)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(8, 16, 5, padding=2)
        self.bn = nn.BatchNorm2d(16)
        self.b = nn.Conv2d(16, 32, 3, padding=1)
        self.c = nn.Conv2d(32, 32, 1, stride=2)
        self.w = nn.Parameter(torch.randn(32, 32, 3, 3) / 30)
        self.fc = nn.Linear(32, 10)
        self.bn1 = nn.BatchNorm1d(10)

    def forward(self, x):  # type: ignore[no-untyped-def]
        x = self.c(self.b(torch.relu(self.bn(self.a(x)))))
        x = F.conv2d(x, self.w, padding=1)
        return self.bn1(self.fc(x.mean((2, 3))))


def net() -> Net:
    torch.manual_seed(0)
    m = Net().eval()
    with torch.no_grad():
        for bn in (m.bn, m.bn1):
            bn.running_mean.normal_()
            bn.running_var.uniform_(0.5, 2)
    return m


def _report(m):  # type: ignore[no-untyped-def]
    return archlint.analyze(m, input_shape=SHAPE, lint=False)


def _out_field(report):  # type: ignore[no-untyped-def]
    return [r.rf[0].to_dict() for r in report.layers if r.name == "c"]


@pytest.mark.parametrize("code, layer", [("AL101", "a"), ("AL101", "b"), ("AL102", "b"), ("AL103", "a"),
                                         ("AL105", "c")])
def test_unsafe_fix_reanalyses_to_promise(code, layer):
    """Params and MACs of the rewritten module = before - fix.before + fix.after; the field at the
    end of the conv chain is unchanged (AL105 changes it: 1x1 -> 2x2 windows)."""
    m = net()
    report = _report(m)
    g = report.graph
    make = {"AL101": rewrite.depthwise_separable, "AL102": lambda g, la: rewrite.grouped(g, la, 4),
            "AL103": rewrite.stacked_3x3, "AL105": rewrite.pool_then_pointwise}[code]
    fix = make(g, g.layer(layer)).compute_cost(g, report.profile)
    result = archlint.apply(m, [fix], unsafe=True)
    (outcome,) = result.outcomes
    assert outcome.applied and 0 < outcome.weight_error <= 1 or code == "AL105"
    assert outcome.output_error is not None
    after = _report(result.model)
    assert after.totals.params == report.totals.params - fix.before.params + fix.after.params
    assert after.totals.macs == report.totals.macs - fix.before.macs + fix.after.macs
    assert (_out_field(after) == _out_field(report)) is (code != "AL105")
    x = torch.randn(SHAPE)
    with torch.no_grad():
        assert result.model(x).shape == m(x).shape
    assert isinstance(m.a, nn.Conv2d) and isinstance(m.b, nn.Conv2d)  # the original is untouched


def test_safe_fixes_keep_outputs_and_need_no_flag():
    """AL106 on conv->BatchNorm2d and linear->BatchNorm1d: outputs equal within 1e-5 in eval mode,
    params drop by 16 + 10 bias elements."""
    m = net()
    report = _report(m)
    g = report.graph
    fixes = [rewrite.drop_bias_into_batchnorm(g, g.layer("a"), g.layer("bn")),
             rewrite.drop_bias_into_batchnorm(g, g.layer("fc"), g.layer("bn1")),
             rewrite.depthwise_separable(g, g.layer("b"))]
    new, outcomes = archlint.apply(m, fixes)
    assert [o.applied for o in outcomes] == [False, True, True]  # the unsafe one is listed first, skipped
    assert "unsafe=True" in outcomes[0].reason
    x = torch.randn(SHAPE)
    with torch.no_grad():
        torch.testing.assert_close(new(x), m(x), atol=1e-5, rtol=1e-5)
    assert new.a.bias is None and m.a.bias is not None
    assert _report(new).totals.params == report.totals.params - 26


def test_functional_conv_is_reported_not_applicable():
    m = net()
    report = _report(m)
    g = report.graph
    fix = rewrite.depthwise_separable(g, g.layer("conv2d"))
    (outcome,) = archlint.apply(m, [fix], unsafe=True).outcomes
    assert not outcome.applied and "functional call" in outcome.reason


def test_stacked_3x3_exact_for_a_centre_only_kernel():
    """A 5x5 kernel that is zero outside its centre 3x3: the stack (centre crop, then identity;
    padding 1 each) computes the same outputs, weight error 0."""
    m = net()
    with torch.no_grad():
        keep = torch.zeros(5, 5)
        keep[1:4, 1:4] = 1
        m.a.weight.mul_(keep)
    g = _report(m).graph
    new, (outcome,) = archlint.apply(m, [rewrite.stacked_3x3(g, g.layer("a"))], unsafe=True)
    assert outcome.weight_error < 1e-7 and outcome.output_error < 1e-6
    x = torch.randn(SHAPE)
    with torch.no_grad():
        torch.testing.assert_close(new(x), m(x), atol=1e-5, rtol=1e-5)


def test_report_driven_apply_with_select_and_layers():
    """From a Report: AL106 fires on 'a' and 'fc'; select and layer globs pick among them."""
    m = net()
    report = archlint.analyze(m, input_shape=SHAPE)
    assert {f.layer for f in report.findings if f.code == "AL106"} == {"a", "fc"}
    result = archlint.apply(m, report, select=["AL106"], layers="f*")
    assert [(o.code, o.layer, o.applied) for o in result.outcomes] == [("AL106", "fc", True)]
    assert result.model.fc.bias is None and result.model.a.bias is not None


def test_meta_module_gets_shapes_only_fix():
    with torch.device("meta"):
        m = Net()
    g = archlint.analyze(m, input_shape=SHAPE, lint=False).graph
    new, (outcome,) = archlint.apply(m, [rewrite.depthwise_separable(g, g.layer("b"))], unsafe=True)
    assert outcome.applied and outcome.weight_error is None and "shapes only" in outcome.notes[0]
    assert new.b[0].weight.device.type == "meta" and new.b[0].groups == 16


@pytest.mark.parametrize("code", ["AL101", "AL102", "AL103", "AL105"])
def test_torch_and_onnx_writers_agree(code):
    """The same fix applied to the module and to its ONNX export: onnxruntime's outputs on the
    rewritten ONNX equal torch's on the rewritten module (same carried weights)."""
    ort = pytest.importorskip("onnxruntime")
    import onnx
    m = nn.Sequential(nn.Conv2d(8, 16, 5, padding=2), nn.ReLU(), nn.Conv2d(16, 16, 1, stride=2)).eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(m, (torch.randn(SHAPE),), buf, dynamo=False, opset_version=17, input_names=["x"])
    proto = onnx.load_from_string(buf.getvalue())
    results = []
    for model in (m, proto):
        report = archlint.analyze(model, input_shape=SHAPE, lint=False)
        g = report.graph
        convs = [la for la in g.layers() if la.weights]
        layer = convs[1] if code == "AL105" else convs[0]
        fix = {"AL101": rewrite.depthwise_separable, "AL102": lambda g, la: rewrite.grouped(g, la, 2),
               "AL103": rewrite.stacked_3x3, "AL105": rewrite.pool_then_pointwise}[code](g, layer)
        new, (outcome,) = archlint.apply(model, [fix], unsafe=True)
        assert outcome.applied
        results.append((new, outcome))
    x = np.random.default_rng(0).standard_normal(SHAPE).astype("float32")
    with torch.no_grad():
        y_torch = results[0][0](torch.from_numpy(x)).numpy()
    sess = ort.InferenceSession(results[1][0].SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], y_torch, atol=1e-4, rtol=1e-4)
    assert results[0][1].weight_error == pytest.approx(results[1][1].weight_error, rel=1e-5)


EXAMPLES = min(int(os.environ.get("ARCHLINT_EXAMPLES", "6")), 25)
MAKERS = (rewrite.depthwise_separable, lambda g, la: rewrite.grouped(g, la, 2), rewrite.stacked_3x3,
          rewrite.pool_then_pointwise)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(networks(attention=False))
def test_every_fix_on_random_networks_keeps_the_model_valid(spec):
    """Each conv gets the first fix that fits it; the rewritten module runs, its output shape is
    unchanged, and re-analysis gives exactly the promised params and MACs."""
    m = build(spec).eval()
    report = archlint.analyze(m, input_shape=spec.input_shape, lint=False)
    g = report.graph
    fixes = []
    for layer in g.layers():
        for make in MAKERS:
            try:
                fixes.append(make(g, layer).compute_cost(g, report.profile))
                break
            except rewrite.NotApplicable:
                continue
    result = archlint.apply(m, fixes, unsafe=True)
    for o in result.skipped:  # only asymmetric padding has no nn.ConvNd form
        assert "asymmetric" in o.reason, o.reason
    x = torch.randn(spec.input_shape)
    with torch.no_grad():
        assert result.model(x).shape == m(x).shape
    applied = [o.fix for o in result.applied]
    after = archlint.analyze(result.model, input_shape=spec.input_shape, lint=False)
    assert after.totals.params == report.totals.params + sum(f.after.params - f.before.params for f in applied)
    assert after.totals.macs == report.totals.macs + sum(f.after.macs - f.before.macs for f in applied)
