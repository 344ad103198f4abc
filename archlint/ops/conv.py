"""Convolution and transposed convolution.

Normalised attributes (both frontends): ``kernel``, ``stride``, ``dilation`` (one int per
spatial axis), ``pads`` (ONNX layout: all begins then all ends), ``auto_pad``
(``NOTSET``, ``SAME_UPPER``, ``SAME_LOWER``, ``VALID``), ``groups``; for transposed
convolution also ``output_padding``. Inputs: ``x [N, Ci, *spatial]``, weight, optional bias.
Conv weight is ``[Co, Ci/G, *k]``; ConvTranspose weight is ``[Ci, Co/G, *k]``.
"""

from __future__ import annotations

from typing import Any, TypedDict

from archlint.ir import Shape
from archlint.ops import rf
from archlint.ops.registry import OpCall, kind, numel, product_flops
from archlint.ops.rf import effective_kernel


class WindowAttrs(TypedDict, total=False):
    """Normalised attributes of sliding-window ops (conv, conv_transpose, pool)."""

    kernel: list[int]
    stride: list[int]
    dilation: list[int]
    pads: list[int]
    auto_pad: str
    groups: int
    ceil_mode: bool
    output_padding: list[int]
    output_shape: list[int]
    mode: str
    count_include_pad: bool


def conv_class(attrs: dict[str, Any], x: Shape | None) -> str:
    """``depthwise`` when groups equal the input channels (> 1), ``grouped`` for any other
    groups > 1, else ``dense``."""
    groups = int(attrs.get("groups", 1) or 1)
    if groups > 1 and x is not None and len(x) > 1 and groups == x[1]:
        return "depthwise"
    return "grouped" if groups > 1 else "dense"




def resolve_pads(call: OpCall) -> tuple[list[int], list[int]]:
    """Begin and end padding per spatial axis, resolving ``auto_pad``.

    ``SAME_UPPER``: total ``max((ceil(in/s) - 1)*s + k_eff - in, 0)``, begin ``floor(total/2)``;
    ``SAME_LOWER`` puts the odd one at the beginning; ``VALID`` is 0 (ONNX operator specification, Conv).
    """
    kernel = call.attr("kernel")
    n = len(kernel)
    auto_pad = call.attr("auto_pad", "NOTSET")
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        stride = call.attr("stride") or [1] * n
        dilation = call.attr("dilation") or [1] * n
        begins, ends = [], []
        for i in range(n):
            size = call.x[2 + i]
            k_eff = effective_kernel(kernel[i], dilation[i])
            total = max((-(-size // stride[i]) - 1) * stride[i] + k_eff - size, 0)
            small = total // 2
            begin = small if auto_pad == "SAME_UPPER" else total - small
            begins.append(begin)
            ends.append(total - begin)
        return begins, ends
    if auto_pad == "VALID":
        return [0] * n, [0] * n
    pads = call.attr("pads") or [0] * (2 * n)
    return list(pads[:n]), list(pads[n:])


def window_output_size(size: int, k: int, s: int, d: int, begin: int, end: int, ceil_mode: bool = False) -> int:
    """``floor((in + pb + pe - d*(k-1) - 1)/s) + 1``; with ``ceil_mode`` use ceil and drop a
    last window that would start inside the end padding (PyTorch/ONNX rule)."""
    span = size + begin + end - effective_kernel(k, d)
    if not ceil_mode:
        return span // s + 1
    out = -(-span // s) + 1
    if (out - 1) * s >= size + begin:
        out -= 1
    return out


def _window_shape(call: OpCall, channels: int) -> Shape:
    kernel = call.attr("kernel")
    n = len(kernel)
    stride = call.attr("stride") or [1] * n
    dilation = call.attr("dilation") or [1] * n
    begins, ends = resolve_pads(call)
    x = call.x
    spatial = [window_output_size(x[2 + i], kernel[i], stride[i], dilation[i], begins[i], ends[i],
                                  bool(call.attr("ceil_mode", False))) for i in range(n)]
    return (x[0], channels, *spatial)


def _kernel_for(call: OpCall, field: rf.Field) -> list[int]:
    """The kernel, checked against the field's spatial rank (a malformed file may disagree)."""
    kernel = call.attr("kernel")
    if len(kernel) != len(field.axes):
        raise ValueError("kernel rank does not match the input's spatial rank")
    return kernel


def _window_rf(call: OpCall, fields: list[rf.Field | None]) -> rf.Field | None:
    """Sliding window (conv, pooling): ``r' = r + (k_eff-1)S``, ``S' = sS``, ``P' = P + p_begin*S`` per axis."""
    field = fields[0] if fields else None
    if field is None or field.is_global:
        return field
    kernel = _kernel_for(call, field)
    n = len(kernel)
    begins, _ = resolve_pads(call)
    return rf.window(field, kernel, call.attr("stride") or [1] * n, begins, call.attr("dilation") or [1] * n)


CONV = kind("conv", "Convolution (any spatial rank, grouped and depthwise included).",
            examples=("Conv", "nn.Conv2d", "F.conv2d"), slots=("data", "weight", "bias"), sliding_window=True,
            is_conv=True, channel_axis=1, attrs=WindowAttrs, conv_class_fn=conv_class)


@CONV.shape
def conv_shape(call: OpCall) -> list[Shape]:
    """``[N, Co, *out]`` with ``out = floor((in + pb + pe - d*(k-1) - 1)/s) + 1`` per axis; ``Co = W.shape[0]``."""
    return [_window_shape(call, call.input(1)[0])]


@CONV.macs
def conv_macs(call: OpCall) -> int:
    """``N * prod(out_spatial) * Co * (Ci/G) * prod(k)`` = ``numel(out) * W.shape[1] * prod(W.shape[2:])``,
    since the weight is ``[Co, Ci/G, *k]``."""
    w = call.input(1)
    return numel(call.y) * numel(w[1:])


CONV.flops(product_flops)


CONV.rf(_window_rf)


CONV_TRANSPOSE = kind("conv_transpose", "Transposed (fractionally strided) convolution.",
                      examples=("ConvTranspose", "nn.ConvTranspose2d", "F.conv_transpose2d"),
                      slots=("data", "weight", "bias"), attrs=WindowAttrs, conv_class_fn=conv_class)


@CONV_TRANSPOSE.shape
def conv_transpose_shape(call: OpCall) -> list[Shape]:
    """``out = (in - 1)*s + d*(k-1) + 1 - pb - pe + output_padding``; ``Co = W.shape[1] * G``."""
    kernel = call.attr("kernel")
    n = len(kernel)
    stride = call.attr("stride") or [1] * n
    dilation = call.attr("dilation") or [1] * n
    pads = call.attr("pads") or [0] * (2 * n)
    out_pad = call.attr("output_padding") or [0] * n
    x = call.x
    spatial = [(x[2 + i] - 1) * stride[i] + effective_kernel(kernel[i], dilation[i]) - pads[i] - pads[n + i]
               + out_pad[i]
               for i in range(n)]
    return [(x[0], call.input(1)[1] * call.attr("groups", 1), *spatial)]


@CONV_TRANSPOSE.macs
def conv_transpose_macs(call: OpCall) -> int:
    """Counted over input positions: ``N * prod(in_spatial) * Ci * (Co/G) * prod(k)``
    = ``numel(x) * W.shape[1] * prod(W.shape[2:])`` with weight ``[Ci, Co/G, *k]``."""
    return numel(call.x) * numel(call.input(1)[1:])


CONV_TRANSPOSE.flops(product_flops)


@CONV_TRANSPOSE.rf
def conv_transpose_rf(call: OpCall, fields: list[rf.Field | None]) -> rf.Field | None:
    """Fractional stride ``1/s``; each output unit gathers up to ``ceil(k_eff/s)`` input units,
    a number that varies with the output position (exact per phase, see
    :func:`archlint.ops.rf.transposed_window`)."""
    field = fields[0] if fields else None
    if field is None or field.is_global:
        return field
    kernel = _kernel_for(call, field)
    n = len(kernel)
    pads = call.attr("pads") or [0] * (2 * n)
    return rf.transposed_window(field, kernel, call.attr("stride") or [1] * n, pads[:n],
                                call.attr("dilation") or [1] * n)
