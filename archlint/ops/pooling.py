"""Pooling: windowed (max/avg/lp), adaptive and global.

Windowed pooling uses the conv attributes (``kernel``, ``stride``, ``dilation``, ``pads``,
``auto_pad``) plus ``mode`` and ``ceil_mode``. Adaptive pooling takes its output size from
the output shape. Global pooling reduces every spatial axis to 1.
"""

from __future__ import annotations

import math
from math import gcd
from typing import TypedDict

from archlint.ir import Shape
from archlint.ops import rf
from archlint.ops.conv import WindowAttrs, _window_rf, _window_shape
from archlint.ops.registry import OpCall, kind, numel


class PoolModeAttrs(TypedDict, total=False):
    mode: str


POOL = kind("pool", "Max, average or Lp pooling over a sliding window.",
            examples=("MaxPool", "AveragePool", "nn.MaxPool2d", "F.avg_pool2d"), sliding_window=True,
            attrs=WindowAttrs)


@POOL.shape
def pool_shape(call: OpCall) -> list[Shape]:
    """``[N, C, *out]``, ``out`` as for conv, with ``ceil_mode`` rounding up (last window kept
    only if it starts inside the input or begin padding)."""
    return [_window_shape(call, call.x[1])]


@POOL.flops
def pool_flops(call: OpCall, macs: int) -> int:
    """``numel(out) * prod(kernel)``: one compare or add per window element."""
    return numel(call.y) * math.prod(call.attr("kernel"))


POOL.rf(_window_rf)


GLOBAL_POOL = kind("global_pool", "Global average or max pooling over every spatial axis.",
                   examples=("GlobalAveragePool", "nn.AdaptiveAvgPool2d(1)", "x.mean((2, 3))"), attrs=PoolModeAttrs)


@GLOBAL_POOL.shape
def global_pool_shape(call: OpCall) -> list[Shape]:
    """``[N, C, 1, ..., 1]``."""
    x = call.x
    return [(*x[:2], *([1] * (len(x) - 2)))]


@GLOBAL_POOL.flops
def global_pool_flops(call: OpCall, macs: int) -> int:
    """``numel(x)``: every input element is added or compared once."""
    return numel(call.x)


@GLOBAL_POOL.rf
def global_pool_rf(call: OpCall, fields: list[rf.Field | None]) -> rf.Field | None:
    """The whole input: flagged global."""
    return rf.make_global(fields[0]) if fields and fields[0] is not None else None


ADAPTIVE_POOL = kind("adaptive_pool", "Adaptive average or max pooling to a fixed output size.",
                     examples=("nn.AdaptiveAvgPool2d((7, 7))", "F.adaptive_max_pool2d"), attrs=PoolModeAttrs)


@ADAPTIVE_POOL.flops
def adaptive_pool_flops(call: OpCall, macs: int) -> int:
    """``sum over outputs of window size``: windows ``[floor(i*in/out), ceil((i+1)*in/out))`` per axis."""
    x, y = call.x, call.y
    total = numel(x[:2])
    for size, out in zip(x[2:], y[2:]):
        total *= sum(_adaptive_window(i, size, out)[1] - _adaptive_window(i, size, out)[0] for i in range(out))
    return total


def _adaptive_window(i: int, size: int, out: int) -> tuple[int, int]:
    """PyTorch's window for output ``i``: ``[floor(i*in/out), ceil((i+1)*in/out))``."""
    return (i * size) // out, -(-((i + 1) * size) // out)


@ADAPTIVE_POOL.rf
def adaptive_pool_rf(call: OpCall, fields: list[rf.Field | None]) -> rf.Field | None:
    """When ``in % out == 0`` the windows are uniform: kernel = stride = ``in/out``.
    Otherwise the windows differ in size and place with period ``out/gcd(in, out)``
    (:func:`archlint.ops.rf.adaptive_map`), tracked exactly per output position. An output
    of 1 along every axis is global pooling."""
    field = fields[0] if fields else None
    if field is None or field.is_global:
        return field
    x, y = call.x, call.y
    if all(o == 1 for o in y[2:]):
        return rf.make_global(field)
    if all(size % out == 0 for size, out in zip(x[2:], y[2:])):
        kernel = [size // out for size, out in zip(x[2:], y[2:])]
        return rf.window(field, kernel, kernel, [0] * len(kernel))
    return rf.apply(field, [_adaptive_map(size, out) if size != out else None for size, out in zip(x[2:], y[2:])])


def _adaptive_map(size: int, out: int) -> rf.IndexMap:
    """Output ``v`` reads :func:`_adaptive_window`; ``v + out/g`` reads it moved by ``in/g``
    (``g = gcd(in, out)``), the formula being exact for every ``v``, not only ``0 <= v < out``."""
    g = gcd(size, out)
    return rf.IndexMap(out // g, size // g, lambda v: range(*_adaptive_window(v, size, out)))
