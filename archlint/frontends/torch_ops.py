"""Translation tables from PyTorch modules, functions, methods and aten ops to the
shared op vocabulary with normalised attributes. Translation only: no costs here.

Functional calls (``F.conv2d``), tensor methods (``x.view``) and aten ops from
``torch.export`` (``aten.conv2d.default``) are looked up by one op name, since their
argument orders agree; the few that differ are handled by name.

One record per module family (:data:`MODULE_OPS`) and per op name (:data:`FUNCTION_OPS`)
holds everything the frontend knows about it: how it translates, and whether its output
has a shape the tracer can read off its input without running it (the speed layer:
``ModuleOp.output``, ``FunctionOp.same_shape``).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import torch
from torch import nn

Attrs = dict[str, Any]


def _tuple(v: Any, n: int) -> list[int]:
    if isinstance(v, (list, tuple)):
        vals = [int(x) for x in v]
        return vals * n if len(vals) == 1 else vals
    return [int(v)] * n


def same_pads(kernel: Sequence[int], dilation: Sequence[int]) -> list[int]:
    """PyTorch ``padding='same'`` (stride 1): total ``d*(k-1)``, begin ``floor(total/2)``, rest at the end."""
    totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
    return [t // 2 for t in totals] + [t - t // 2 for t in totals]


def conv_attrs(kernel: Sequence[int], stride: Any, padding: Any, dilation: Any, groups: int) -> Attrs:
    n = len(kernel)
    stride, dilation = _tuple(stride, n), _tuple(dilation, n)
    if padding == "same":
        pads = same_pads(kernel, dilation)
    elif padding == "valid":
        pads = [0] * (2 * n)
    else:
        pads = _tuple(padding, n) * 2
    return {"kernel": list(kernel), "stride": stride, "dilation": dilation, "pads": pads, "groups": int(groups),
            "auto_pad": "NOTSET"}


def torch_pad_to_onnx(pad: Sequence[int], rank: int) -> list[int]:
    """``F.pad``'s ``(last_begin, last_end, prev_begin, prev_end, ...)`` -> ONNX all-begins-then-all-ends."""
    begins, ends = [0] * rank, [0] * rank
    for i in range(len(pad) // 2):
        axis = rank - 1 - i
        begins[axis], ends[axis] = int(pad[2 * i]), int(pad[2 * i + 1])
    return begins + ends


# ---------------------------------------------------------------- modules
Entry = tuple[str, Attrs, list[str]]


@dataclass(frozen=True)
class ModuleOp:
    """One family of ``torch.nn`` modules.

    ``translate(module, input_rank)`` gives (kind, attrs, parameter attribute names in the
    registry's input order). ``output(module, x)``, for families whose output shape follows
    from the input and the module's attributes, gives a tensor standing for the output
    without running the module (fake BatchNorm runs its full decomposition, half the tracing
    time of a ResNet, and every fake op costs a dispatch; only shapes and dtypes are read
    downstream), or None when the input does not fit the module, so that it is run and a
    wrong ``num_features`` fails as it would in real use."""

    match: Callable[[type], bool]
    translate: Callable[[Any, int | None], Entry]
    output: Callable[[Any, torch.Tensor], torch.Tensor | None] | None = None


def _is(*types: type) -> Callable[[type], bool]:
    return lambda cls: issubclass(cls, types)


def _conv_entry(mod: Any, in_rank: int | None) -> Entry:
    attrs = conv_attrs(mod.kernel_size, mod.stride, mod.padding, mod.dilation, mod.groups)
    if mod.transposed:
        attrs["output_padding"] = list(mod.output_padding)
        return "conv_transpose", attrs, ["weight", "bias"]
    return "conv", attrs, ["weight", "bias"]


def _conv_output(mod: Any, x: torch.Tensor) -> torch.Tensor | None:
    """A batched conv's output from the registry's window geometry (one fake allocation
    instead of a fake convolution and a fake copy of the weight); None when anything is
    unusual (a subclass, unbatched input, string padding, dtype or channel mismatch, empty output)."""
    if type(mod) not in (nn.Conv1d, nn.Conv2d, nn.Conv3d):
        return None
    from archlint.ops.conv import window_output_size
    nd = len(mod.kernel_size)
    weight = mod.weight
    if x.dim() != nd + 2 or isinstance(mod.padding, str) or x.shape[1] != mod.in_channels \
            or x.dtype != weight.dtype or (x.device != weight.device and weight.device.type != "meta"):
        return None
    spatial = []
    for i in range(nd):
        p = mod.padding[i]
        size = window_output_size(int(x.shape[2 + i]), mod.kernel_size[i], mod.stride[i], mod.dilation[i], p, p)
        if size <= 0:
            return None
        spatial.append(size)
    return torch.empty((x.shape[0], mod.out_channels, *spatial), dtype=x.dtype, device=x.device)


def _linear_output(mod: Any, x: torch.Tensor) -> torch.Tensor | None:
    """``[..., in_features] -> [..., out_features]`` (exactly ``nn.Linear``, matching dtype)."""
    if type(mod) is not nn.Linear or x.shape[-1] != mod.in_features or x.dtype != mod.weight.dtype:
        return None
    return torch.empty((*x.shape[:-1], mod.out_features), dtype=x.dtype, device=x.device)


def _channel_norm_output(mod: Any, x: torch.Tensor) -> torch.Tensor | None:
    """BatchNorm / InstanceNorm: the input, when its channel axis (1) has ``num_features``."""
    return x if x.dim() >= 2 and x.shape[1] == mod.num_features and x.is_floating_point() else None


def _group_norm_output(mod: Any, x: torch.Tensor) -> torch.Tensor | None:
    return x if x.dim() >= 2 and x.shape[1] == mod.num_channels and x.is_floating_point() else None


def _layer_norm_output(mod: Any, x: torch.Tensor) -> torch.Tensor | None:
    n = len(mod.normalized_shape)
    return x if tuple(x.shape[-n:]) == tuple(mod.normalized_shape) and x.is_floating_point() else None


def _elementwise_output(mod: Any, x: torch.Tensor) -> torch.Tensor | None:
    """Elementwise modules: the input itself (PReLU only when its slope count fits the channels)."""
    if isinstance(mod, nn.PReLU) and mod.num_parameters not in (1, x.shape[1] if x.dim() > 1 else 1):
        return None
    return x


# the input ranks F.dropout1d/2d/3d accept (others raise, so they are run to fail as in real use)
_DROPOUT_RANKS = {nn.Dropout1d: (2, 3), nn.Dropout2d: (3, 4), nn.Dropout3d: (4, 5)}


def _dropout_output(mod: Any, x: torch.Tensor) -> torch.Tensor | None:
    """Dropouts and Identity: the input (channel dropouts only at the ranks they accept)."""
    ranks = _DROPOUT_RANKS.get(type(mod))
    return x if ranks is None or x.dim() in ranks else None


def _pool_entry(mod: Any, in_rank: int | None) -> Entry:
    n = _spatial(mod, in_rank)
    kernel = _tuple(mod.kernel_size, n)
    stride = _tuple(mod.stride if mod.stride is not None else mod.kernel_size, n)
    return "pool", {"kernel": kernel, "stride": stride, "pads": _tuple(mod.padding, n) * 2,
                    "dilation": _tuple(getattr(mod, "dilation", 1), n), "ceil_mode": bool(mod.ceil_mode),
                    "mode": "max" if isinstance(mod, nn.modules.pooling._MaxPoolNd) else "avg"}, []


def _adaptive_pool_entry(mod: Any, in_rank: int | None) -> Entry:
    size = mod.output_size
    sizes = size if isinstance(size, (list, tuple)) else [size]
    kind = "global_pool" if all(s == 1 for s in sizes) else "adaptive_pool"
    return kind, {"mode": "avg" if "Avg" in type(mod).__name__ else "max"}, []


def _norm_entry(mod: Any, in_rank: int | None) -> Entry:
    return "norm", {"norm": _norm_name(mod)}, ["weight", "bias"]


def _mha_entry(mod: Any, in_rank: int | None) -> Entry:
    return "multihead_attention", {"embed_dim": mod.embed_dim, "num_heads": mod.num_heads, "kdim": mod.kdim,
                                   "vdim": mod.vdim, "batch_first": mod.batch_first}, \
        [n for n, _ in mod.named_parameters()]


def _activation_entry(mod: Any, in_rank: int | None) -> Entry:
    return "activation", {}, [n for n, _ in mod.named_parameters(recurse=False)]


def _pad_entry(mod: Any, in_rank: int | None) -> Entry:
    rank = in_rank or (len(mod.padding) // 2 + 2)
    return "pad", {"pads": torch_pad_to_onnx(mod.padding, rank)}, []


def _fixed(kind: str, params: Sequence[str] = (), **attrs: Any) -> Callable[[Any, int | None], Entry]:
    return lambda mod, in_rank: (kind, dict(attrs), list(params))


# activations and dropouts whose output is their input's shape and dtype
_ELEMENTWISE_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Hardsigmoid,
                            nn.LeakyReLU, nn.ELU, nn.Mish, nn.PReLU, nn.Hardtanh, nn.SELU, nn.CELU, nn.Softplus)
_SAME_SHAPE_IDENTITIES = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.Identity)

# first match wins: the order is that of the translation's precedence
MODULE_OPS: tuple[ModuleOp, ...] = (
    ModuleOp(_is(nn.modules.conv._ConvNd), _conv_entry, _conv_output),
    ModuleOp(_is(nn.Linear), _fixed("linear", ("weight", "bias"), weight_layout="out_in"), _linear_output),
    ModuleOp(_is(nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd), _pool_entry),
    ModuleOp(_is(nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd),
             _adaptive_pool_entry),
    ModuleOp(_is(nn.modules.batchnorm._NormBase), _norm_entry, _channel_norm_output),
    ModuleOp(_is(nn.LayerNorm), _norm_entry, _layer_norm_output),
    ModuleOp(_is(nn.GroupNorm), _norm_entry, _group_norm_output),
    ModuleOp(lambda cls: issubclass(cls, nn.LocalResponseNorm) or cls.__name__ == "RMSNorm", _norm_entry),
    ModuleOp(_is(nn.Softmax, nn.LogSoftmax, nn.Softmin),
             lambda mod, in_rank: ("softmax", {"axis": mod.dim if mod.dim is not None else -1}, [])),
    ModuleOp(_is(nn.MultiheadAttention), _mha_entry),
    ModuleOp(lambda cls: issubclass(cls, _ELEMENTWISE_ACTIVATIONS) and cls.__module__ == "torch.nn.modules.activation",
             _activation_entry, _elementwise_output),
    ModuleOp(lambda cls: cls.__module__ == "torch.nn.modules.activation", _activation_entry),
    ModuleOp(_is(*_SAME_SHAPE_IDENTITIES), _fixed("identity"), _dropout_output),
    ModuleOp(_is(nn.AlphaDropout), _fixed("identity")),
    ModuleOp(_is(nn.Flatten, nn.Unflatten), _fixed("reshape")),
    ModuleOp(_is(nn.Upsample), lambda mod, in_rank: ("resize", resize_attrs(mod.mode, mod.align_corners), [])),
    ModuleOp(_is(nn.PixelShuffle), lambda mod, in_rank: ("depth_to_space", {"blocksize": mod.upscale_factor}, [])),
    ModuleOp(_is(nn.PixelUnshuffle),
             lambda mod, in_rank: ("space_to_depth", {"blocksize": mod.downscale_factor}, [])),
    ModuleOp(lambda cls: issubclass(cls, (nn.modules.padding._ConstantPadNd, nn.modules.padding._ReflectionPadNd,
                                          nn.modules.padding._ReplicationPadNd))
             or cls.__name__.startswith(("ZeroPad", "CircularPad")), _pad_entry),
    ModuleOp(_is(nn.Embedding), _fixed("gather", ("weight",), axis=0)),
)


_MODULE_OP_OF: dict[type, ModuleOp | None] = {}  # the first match, per class


def module_op(cls: type) -> ModuleOp | None:
    """The record for a module class, or None when modules of that class are not
    translated as one layer (they are traced through)."""
    try:
        return _MODULE_OP_OF[cls]
    except KeyError:
        op = _MODULE_OP_OF[cls] = next((op for op in MODULE_OPS if op.match(cls)), None)
        return op


def module_entry(mod: nn.Module, in_rank: int | None) -> Entry | None:
    """(kind, attrs, parameter attribute names in the registry's input order), or None
    when the module is not one we translate as a single layer (it is traced through)."""
    op = module_op(type(mod))
    return op.translate(mod, in_rank) if op is not None else None


def module_output(mod: nn.Module, x: torch.Tensor) -> torch.Tensor | None:
    """A tensor standing for ``mod(x)`` without running it, for the shape-preserving
    families of :data:`MODULE_OPS`; None when the module must be run."""
    op = module_op(type(mod))
    return op.output(mod, x) if op is not None and op.output is not None else None


def _norm_name(mod: nn.Module) -> str:
    """``batch`` for BatchNorm (any rank, SyncBatchNorm), ``instance``, ``layer``, ``group``, ..."""
    if isinstance(mod, nn.modules.batchnorm._BatchNorm):
        return "batch"
    if isinstance(mod, nn.modules.instancenorm._InstanceNorm):
        return "instance"
    return {"LayerNorm": "layer", "GroupNorm": "group", "LocalResponseNorm": "lrn", "RMSNorm": "rms"}.get(
        type(mod).__name__, "other")


def _spatial(mod: nn.Module, in_rank: int | None) -> int:
    digits = [c for c in type(mod).__name__ if c.isdigit()]
    if digits:
        return int(digits[-1])
    return (in_rank or 4) - 2


def _interp_mode(mode: str) -> str:
    if mode in ("bilinear", "linear", "trilinear"):
        return "linear"
    if mode == "bicubic":
        return "cubic"
    return "nearest"


# ---------------------------------------------------------------- functions, methods, aten ops
# Each handler gets (args, kwargs) where tensor arguments are already replaced by
# their shapes (tuples) and returns (kind, attrs) or (kind, attrs, input_order) where
# input_order lists the positions of the tensor arguments in registry order.
Handler = Callable[[list[Any], dict[str, Any]], tuple]
SameShape = Literal["", "unary", "binary"]


@dataclass(frozen=True)
class FunctionOp:
    """One function / tensor method / aten op name.

    ``same_shape``: ``unary`` when the result has the first argument's shape and dtype
    (a floating tensor, no other tensor argument), ``binary`` for elementwise binary
    operators whose result has the shape and dtype of two equal tensors, or of a tensor
    combined with a Python number. The tracer then lets the first argument stand for the
    result instead of running the op on fake tensors."""

    handler: Handler
    same_shape: SameShape = ""


def _arg(args: list[Any], kwargs: dict[str, Any], i: int, name: str, default: Any = None) -> Any:
    if name in kwargs:
        return kwargs[name]
    return args[i] if i < len(args) else default


def _conv(args: list[Any], kwargs: dict[str, Any]) -> tuple:
    w = _arg(args, kwargs, 1, "weight")
    return "conv", conv_attrs(w[2:], _arg(args, kwargs, 3, "stride", 1), _arg(args, kwargs, 4, "padding", 0),
                              _arg(args, kwargs, 5, "dilation", 1), _arg(args, kwargs, 6, "groups", 1))


def _conv_transpose(args: list[Any], kwargs: dict[str, Any]) -> tuple:
    w = _arg(args, kwargs, 1, "weight")
    attrs = conv_attrs(w[2:], _arg(args, kwargs, 3, "stride", 1), _arg(args, kwargs, 4, "padding", 0),
                       _arg(args, kwargs, 7, "dilation", 1), _arg(args, kwargs, 6, "groups", 1))
    attrs["output_padding"] = _tuple(_arg(args, kwargs, 5, "output_padding", 0), len(w) - 2)
    return "conv_transpose", attrs


def _convolution(args: list[Any], kwargs: dict[str, Any]) -> tuple:
    """aten.convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups)."""
    w = args[1]
    attrs = conv_attrs(w[2:], args[3], args[4], args[5], args[8])
    if args[6]:
        attrs["output_padding"] = _tuple(args[7], len(w) - 2)
        return "conv_transpose", attrs
    return "conv", attrs


def _pool(mode: str) -> Handler:
    def handler(args: list[Any], kwargs: dict[str, Any]) -> tuple:
        x = args[0]
        n = len(x) - 2
        kernel = _tuple(_arg(args, kwargs, 1, "kernel_size"), n)
        stride = _arg(args, kwargs, 2, "stride", None)
        stride = kernel if stride in (None, [], ()) else _tuple(stride, n)
        pads = _tuple(_arg(args, kwargs, 3, "padding", 0), n) * 2
        if mode == "max":
            dilation = _tuple(_arg(args, kwargs, 4, "dilation", 1), n)
            ceil = _arg(args, kwargs, 5, "ceil_mode", False)
        else:
            dilation, ceil = [1] * n, _arg(args, kwargs, 4, "ceil_mode", False)
        return "pool", {"kernel": kernel, "stride": stride, "pads": pads, "dilation": dilation,
                        "ceil_mode": bool(ceil), "mode": mode}
    return handler


def _adaptive(args: list[Any], kwargs: dict[str, Any]) -> tuple:
    size = _arg(args, kwargs, 1, "output_size")
    sizes = size if isinstance(size, (list, tuple)) else [size]
    return ("global_pool" if all(s == 1 for s in sizes) else "adaptive_pool"), {}


def resize_attrs(mode: str, align_corners: bool | None = None) -> Attrs:
    """PyTorch's sampling grid in ONNX Resize terms: ``nearest`` reads ``floor(v*in/out)``
    (asymmetric, floor); ``nearest-exact`` ``floor((v + 1/2)*in/out)`` (half-pixel, rounding
    halves up); linear and cubic are half-pixel unless ``align_corners=True``."""
    kind = _interp_mode(mode)
    if mode == "nearest-exact":
        return {"mode": kind, "coordinate_transformation_mode": "half_pixel", "nearest_mode": "round_prefer_ceil"}
    if kind == "nearest":
        return {"mode": kind, "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}
    return {"mode": kind, "coordinate_transformation_mode": "align_corners" if align_corners else "half_pixel"}


def _interpolate(args: list[Any], kwargs: dict[str, Any]) -> tuple:
    """``F.interpolate(input, size, scale_factor, mode, align_corners, ...)``."""
    mode = _arg(args, kwargs, 3, "mode", "nearest")
    if mode == "area":
        return "adaptive_pool", {"mode": "avg"}
    return "resize", resize_attrs(mode, _arg(args, kwargs, 4, "align_corners", None))


def _upsample_aten(mode: str) -> Handler:
    """aten ``upsample_<mode>(input, output_size, align_corners, ...)`` for linear and cubic;
    the nearest overloads take no ``align_corners``."""
    def handler(args: list[Any], kwargs: dict[str, Any]) -> tuple:
        if mode in ("nearest", "nearest-exact"):
            return "resize", resize_attrs(mode)
        align = _arg(args, kwargs, 2, "align_corners", False)
        return "resize", resize_attrs(mode, align if isinstance(align, bool) else False)
    return handler


def _dim_attr(kind: str, key: str, pos: int, name: str = "dim", default: Any = -1) -> Handler:
    return lambda args, kwargs: (kind, {key: _arg(args, kwargs, pos, name, default)})


def _reduce(args: list[Any], kwargs: dict[str, Any]) -> tuple:
    dim = _arg(args, kwargs, 1, "dim", None)
    if isinstance(dim, int):
        dim = [dim]
    keep = _arg(args, kwargs, 2, "keepdim", False)
    return "reduce", {"axes": list(dim) if dim is not None else None, "keepdims": bool(keep)}


def _vector_norm(args: list[Any], kwargs: dict[str, Any]) -> tuple:
    """``linalg_vector_norm(x, ord=2, dim=None, keepdim=False)``: a reduction over ``dim``."""
    dim = _arg(args, kwargs, 2, "dim", None)
    if isinstance(dim, int):
        dim = [dim]
    return "reduce", {"axes": list(dim) if dim is not None else None,
                      "keepdims": bool(_arg(args, kwargs, 3, "keepdim", False))}


def _transpose(args: list[Any], kwargs: dict[str, Any]) -> tuple:
    x = args[0]
    rank = len(x)
    if rank < 2:
        return "reshape", {}
    d0, d1 = (_arg(args, kwargs, 1, "dim0", 0) % rank, _arg(args, kwargs, 2, "dim1", 1) % rank) if len(args) > 1 \
        else (0, 1)
    perm = list(range(rank))
    perm[d0], perm[d1] = perm[d1], perm[d0]
    return "reshape", {"perm": perm}


def _permute(args: list[Any], kwargs: dict[str, Any]) -> tuple:
    dims = args[1:] if len(args) > 2 or (len(args) == 2 and isinstance(args[1], int)) else \
        _arg(args, kwargs, 1, "dims")
    rank = len(args[0])
    return "reshape", {"perm": [int(d) % rank for d in dims]}


def _pad(args: list[Any], kwargs: dict[str, Any]) -> tuple:
    return "pad", {"pads": torch_pad_to_onnx(_arg(args, kwargs, 1, "pad"), len(args[0]))}


def _cat(args: list[Any], kwargs: dict[str, Any]) -> tuple:
    return "concat", {"axis": _arg(args, kwargs, 1, "dim", 0)}


def _einsum(args: list[Any], kwargs: dict[str, Any]) -> tuple:
    return "einsum", {"equation": args[0]}


def _addmm(args: list[Any], kwargs: dict[str, Any]) -> tuple:
    """addmm(bias, a, b): registry order is (a, b, bias)."""
    return "linear", {}, [1, 2, 0]


def _slice_aten(args: list[Any], kwargs: dict[str, Any]) -> tuple:
    """aten.slice(x, dim, start, end, step)."""
    dim = _arg(args, kwargs, 1, "dim", 0) % len(args[0])
    start = _arg(args, kwargs, 2, "start", 0) or 0
    step = _arg(args, kwargs, 4, "step", 1) or 1
    return "slice", {"starts": {dim: start}, "steps": {dim: step}}


def _select(args: list[Any], kwargs: dict[str, Any]) -> tuple:
    return "gather", {"axis": _arg(args, kwargs, 1, "dim", 0)}


def _const(kind: str, **attrs: Any) -> Handler:
    return lambda args, kwargs: (kind, dict(attrs))


def _pixel(kind: str) -> Handler:
    return lambda args, kwargs: (kind, {"blocksize": int(_arg(args, kwargs, 1, "upscale_factor"))})


ACTIVATION_NAMES = ("relu", "relu6", "gelu", "silu", "sigmoid", "tanh", "hardswish", "hardsigmoid", "hardtanh",
                    "leaky_relu", "elu", "selu", "celu", "softplus", "softsign", "mish", "prelu", "clamp", "clip",
                    "clamp_min", "clamp_max", "threshold", "logsigmoid", "glu", "rrelu", "tanhshrink", "softshrink",
                    "hardshrink", "erf")
ELEMENTWISE_NAMES = ("add", "sub", "mul", "truediv", "div", "floordiv", "pow", "mod", "neg", "abs", "exp", "log",
                     "sqrt", "rsqrt", "reciprocal", "maximum", "minimum", "where", "masked_fill", "eq", "ne", "lt",
                     "le", "gt", "ge", "logical_and", "logical_or", "logical_not", "and_", "or_", "invert", "sin",
                     "cos", "square", "iadd", "isub", "imul", "itruediv", "rsub", "floor", "ceil", "round",
                     "sign", "lerp", "addcmul", "addcdiv", "bitwise_and", "bitwise_or", "remainder", "fmod",
                     "floor_divide", "exp2", "log1p", "expm1", "sigmoid_", "add_", "mul_", "copysign", "atan2",
                     "logit", "nan_to_num", "isnan", "isinf", "clamp_",
                     # Python's operators on tensors as torch.export records them (boolean masks)
                     "__and__", "__or__", "__xor__", "__invert__", "bitwise_xor", "bitwise_not", "logical_xor",
                     "xor")
RESHAPE_NAMES = ("view", "reshape", "flatten", "unflatten", "squeeze", "unsqueeze", "expand", "expand_as",
                 "view_as", "reshape_as", "_unsafe_view", "t", "repeat", "tile", "broadcast_to", "movedim",
                 "moveaxis", "swapaxes", "roll", "flip", "repeat_interleave", "stack", "as_strided", "unfold",
                 "alias", "lift_fresh_copy", "index_put")
IDENTITY_NAMES = ("dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_dropout", "contiguous",
                  "clone", "detach", "to", "float", "half", "bfloat16", "double", "type", "type_as", "_to_copy",
                  "cpu", "cuda", "copy_", "requires_grad_", "native_dropout", "stochastic_depth",
                  "copy", "fill", "zero", "slice_scatter", "select_scatter", "detach_", "set_grad_enabled")
CONSTANT_NAMES = ("zeros", "ones", "full", "empty", "arange", "zeros_like", "ones_like", "full_like", "empty_like",
                  "rand", "randn", "rand_like", "randn_like", "tensor", "linspace", "eye", "new_zeros", "new_ones",
                  "new_full", "new_empty", "scalar_tensor", "triu", "tril", "sym_size", "_assert_tensor_metadata",
                  "meshgrid", "one_hot")
REDUCE_NAMES = ("mean", "sum", "amax", "amin", "max", "min", "std", "var", "prod", "norm", "logsumexp", "argmax",
                "argmin", "cumsum", "all", "any", "topk", "sort", "var_mean", "std_mean", "count_nonzero")

_HANDLERS: dict[str, Handler] = {
    "conv1d": _conv, "conv2d": _conv, "conv3d": _conv,
    "conv_transpose1d": _conv_transpose, "conv_transpose2d": _conv_transpose, "conv_transpose3d": _conv_transpose,
    "convolution": _convolution, "_convolution": _convolution,
    "linear": _const("linear", weight_layout="out_in"), "addmm": _addmm,
    "matmul": _const("matmul"), "mm": _const("matmul"), "bmm": _const("matmul"), "baddbmm": _addmm,
    "einsum": _einsum, "linalg_vector_norm": _vector_norm,
    "scaled_dot_product_attention": _const("attention"),
    "_scaled_dot_product_flash_attention_for_cpu": _const("attention"),
    "_scaled_dot_product_efficient_attention": _const("attention"),
    "_scaled_dot_product_flash_attention": _const("attention"),
    "max_pool1d": _pool("max"), "max_pool2d": _pool("max"), "max_pool3d": _pool("max"),
    "max_pool1d_with_indices": _pool("max"), "max_pool2d_with_indices": _pool("max"),
    "max_pool3d_with_indices": _pool("max"),
    "avg_pool1d": _pool("avg"), "avg_pool2d": _pool("avg"), "avg_pool3d": _pool("avg"),
    "adaptive_avg_pool1d": _adaptive, "adaptive_avg_pool2d": _adaptive, "adaptive_avg_pool3d": _adaptive,
    "adaptive_max_pool1d": _adaptive, "adaptive_max_pool2d": _adaptive, "adaptive_max_pool3d": _adaptive,
    "_adaptive_avg_pool2d": _adaptive,
    "interpolate": _interpolate, "upsample": _interpolate,
    "upsample_nearest1d": _upsample_aten("nearest"), "upsample_nearest2d": _upsample_aten("nearest"),
    "upsample_nearest3d": _upsample_aten("nearest"), "upsample_bilinear2d": _upsample_aten("linear"),
    "upsample_linear1d": _upsample_aten("linear"), "upsample_trilinear3d": _upsample_aten("linear"),
    "upsample_bicubic2d": _upsample_aten("cubic"), "_upsample_nearest_exact2d": _upsample_aten("nearest-exact"),
    "_upsample_bicubic2d_aa": _upsample_aten("cubic"), "_upsample_bilinear2d_aa": _upsample_aten("linear"),
    "im2col": _const("reshape"), "col2im": _const("reshape"), "unfold": _const("reshape"), "fold": _const("reshape"),
    "batch_norm": _const("norm", norm="batch"), "layer_norm": _const("norm", norm="layer"),
    "group_norm": _const("norm", norm="group"), "instance_norm": _const("norm", norm="instance"),
    "normalize": _const("norm", norm="lp"), "rms_norm": _const("norm", norm="rms"),
    "local_response_norm": _const("norm", norm="lrn"), "native_layer_norm": _const("norm", norm="layer"),
    "_native_batch_norm_legit_no_training": _const("norm", norm="batch"),
    "native_group_norm": _const("norm", norm="group"),
    "softmax": _dim_attr("softmax", "axis", 1), "log_softmax": _dim_attr("softmax", "axis", 1),
    "_softmax": _dim_attr("softmax", "axis", 1), "_log_softmax": _dim_attr("softmax", "axis", 1),
    "softmin": _dim_attr("softmax", "axis", 1),
    "cat": _cat, "concat": _cat, "concatenate": _cat,
    "transpose": _transpose, "permute": _permute,
    "pad": _pad, "constant_pad_nd": _pad,
    "slice": _slice_aten, "narrow": _slice_aten, "select": _select, "index_select": _select,
    "gather": _select, "embedding": _const("gather", axis=0), "index": _const("gather", axis=0),
    "split": _const("split"), "chunk": _const("split"), "unbind": _const("split"), "split_with_sizes": _const("split"),
    "tensor_split": _const("split"),
    "pixel_shuffle": _pixel("depth_to_space"), "pixel_unshuffle": _pixel("space_to_depth"),
}
_HANDLERS.update({n: _const("activation") for n in ACTIVATION_NAMES})
_HANDLERS.update({n: _const("elementwise") for n in ELEMENTWISE_NAMES})
_HANDLERS.update({n: _const("reshape") for n in RESHAPE_NAMES})
_HANDLERS.update({n: _const("identity") for n in IDENTITY_NAMES})
_HANDLERS.update({n: _const("constant") for n in CONSTANT_NAMES})
_HANDLERS.update({n: _reduce for n in REDUCE_NAMES})
_HANDLERS["flatten"] = _const("reshape")

# names whose functions keep their first argument's shape and dtype (see FunctionOp)
UNARY_SAME_SHAPE = ("relu", "relu6", "silu", "gelu", "hardswish", "hardsigmoid", "sigmoid", "tanh", "mish", "elu",
                    "leaky_relu", "hardtanh", "dropout")
BINARY_SAME_SHAPE = ("add", "mul", "sub", "iadd", "imul", "isub", "truediv")
FUNCTION_OPS: dict[str, FunctionOp] = {
    name: FunctionOp(handler, "unary" if name in UNARY_SAME_SHAPE else "binary" if name in BINARY_SAME_SHAPE else "")
    for name, handler in _HANDLERS.items()}


@lru_cache(maxsize=1024)
def _same_shape(target: Any) -> SameShape:
    """The ``same_shape`` property of a torch or ``operator`` function (never of user code)."""
    module = getattr(target, "__module__", None) or ""
    if not (module.startswith("torch") or module == operator.__name__ or module == "_operator"):
        return ""
    op = FUNCTION_OPS.get(op_name(target))
    return op.same_shape if op is not None else ""


def call_output(target: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor | None:
    """The first argument standing for the result of a call to a ``same_shape`` function
    (see :class:`FunctionOp`); None when that is not certain (broadcasting, dtype
    promotion, keyword arguments of a binary operator, non-floating input)."""
    if not args or not isinstance(args[0], torch.Tensor) or not args[0].is_floating_point():
        return None
    try:
        rule = _same_shape(target)
    except TypeError:  # an unhashable callable: not a torch function
        return None
    x = args[0]
    if rule == "unary":
        if any(isinstance(a, torch.Tensor) for a in args[1:]) or \
                any(isinstance(v, torch.Tensor) for v in kwargs.values()):
            return None
        return x
    if rule == "binary" and len(args) == 2 and not kwargs:
        y = args[1]
        if isinstance(y, torch.Tensor):
            return x if y.shape == x.shape and y.dtype == x.dtype and y.device == x.device else None
        if isinstance(y, (int, float)) and not isinstance(y, bool):
            return x
    return None


def op_name(target: Any) -> str:
    """One name for a function, tensor method or aten overload: ``F.conv2d``,
    ``aten.conv2d.default`` and ``torch.conv2d`` are all ``conv2d``; in-place variants
    (``relu_``) are their out-of-place op."""
    if isinstance(target, str):
        name = target
    elif hasattr(target, "_opname"):
        name = target._opname
    else:
        name = getattr(target, "__name__", None) or type(target).__name__
    if name.endswith("_") and not name.startswith("_") and name not in ("and_", "or_"):
        name = name[:-1]
    return name
