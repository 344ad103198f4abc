"""The shape-preserving properties of the PyTorch op records (torch_ops): wherever the
tracer lets an input stand for an output without running the op, running the real op on
a real tensor gives that shape and dtype; where it cannot be sure, it runs the op."""

from __future__ import annotations

import operator

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from archlint.frontends import torch_ops  # noqa: E402
from archlint.frontends.torch_ops import (  # noqa: E402
    BINARY_SAME_SHAPE,
    FUNCTION_OPS,
    MODULE_OPS,
    UNARY_SAME_SHAPE,
    call_output,
    module_output,
)


def _torch_functions(name: str) -> list:
    return [getattr(m, name) for m in (F, torch, operator) if hasattr(m, name)]


@pytest.mark.parametrize("name", UNARY_SAME_SHAPE)
def test_unary_same_shape_functions(name):
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    functions = _torch_functions(name)
    assert functions and FUNCTION_OPS[name].same_shape == "unary"
    for fn in functions:
        extra = (0.5, False) if fn is torch.dropout else ()  # torch.dropout(input, p, train)
        assert call_output(fn, (x, *extra), {}) is x, fn
        y = fn(x, *extra)
        assert (y.shape, y.dtype) == (x.shape, x.dtype), fn
        assert call_output(fn, (x.to(torch.int64),), {}) is None  # not floating: run it


@pytest.mark.parametrize("name", BINARY_SAME_SHAPE)
def test_binary_same_shape_functions(name):
    x = torch.rand(2, 3, 4, 5) + 1
    functions = _torch_functions(name)
    assert functions and FUNCTION_OPS[name].same_shape == "binary"
    for fn in functions:
        for other in (torch.rand(2, 3, 4, 5) + 1, 2, 0.5):
            assert call_output(fn, (x, other), {}) is x, (fn, other)
            y = fn(x.clone(), other)
            assert (y.shape, y.dtype) == (x.shape, x.dtype), fn
        # broadcasting, dtype promotion, a bool: the op is run
        for other in (torch.rand(1, 3, 1, 1), torch.rand(2, 3, 4, 5, dtype=torch.float64), True):
            assert call_output(fn, (x, other), {}) is None, (fn, other)


def test_only_torch_functions_are_short_cut():
    """A user function that happens to be called ``relu`` is run."""
    def relu(t):
        return t[..., :1]
    assert call_output(relu, (torch.randn(2, 3),), {}) is None


SAME_SHAPE_MODULES = [nn.ReLU(), nn.ReLU6(), nn.GELU(), nn.SiLU(), nn.Sigmoid(), nn.Tanh(), nn.Hardswish(),
                      nn.Hardsigmoid(), nn.LeakyReLU(), nn.ELU(), nn.Mish(), nn.PReLU(), nn.PReLU(3), nn.Hardtanh(),
                      nn.SELU(), nn.CELU(), nn.Softplus(), nn.Dropout(), nn.Dropout2d(), nn.Dropout3d(),
                      nn.Identity(), nn.BatchNorm2d(3), nn.InstanceNorm2d(3), nn.GroupNorm(1, 3), nn.LayerNorm(5),
                      nn.LayerNorm((4, 5)), nn.SyncBatchNorm(3)]


@pytest.mark.parametrize("module", SAME_SHAPE_MODULES, ids=lambda m: repr(m))
def test_same_shape_modules(module):
    """Each module whose record gives its output from its input returns a tensor of that
    shape and dtype when really run (SyncBatchNorm runs as BatchNorm in eval mode)."""
    x = torch.randn(2, 3, 4, 5)
    assert torch_ops.module_op(type(module)).output is not None
    assert module_output(module, x) is x
    y = module.eval()(x)
    assert (y.shape, y.dtype) == (x.shape, x.dtype)


def test_channel_dropouts_are_run_at_ranks_they_reject():
    """F.dropout1d accepts 2-D or 3-D input and raises on 4-D (even in eval mode): the
    4-D call is run, so the model fails as it would in real use."""
    x3, x4 = torch.randn(2, 3, 5), torch.randn(2, 3, 4, 5)
    assert module_output(nn.Dropout1d(), x3) is x3 and nn.Dropout1d().eval()(x3).shape == x3.shape
    assert module_output(nn.Dropout1d(), x4) is None
    with pytest.raises(RuntimeError):
        nn.Dropout1d().eval()(x4)
    assert module_output(nn.Dropout3d(), torch.randn(2, 3)) is None


def test_modules_without_a_shape_rule_are_run():
    """GLU halves a dimension and Softmin keeps it, but neither has a shape rule: both
    are run, as is every module the record table does not cover."""
    for module in (nn.GLU(), nn.Softmin(1), nn.AlphaDropout(), nn.MaxPool2d(2)):
        assert module_output(module, torch.randn(2, 4, 4, 4)) is None
    assert all(op.translate is not None for op in MODULE_OPS)
