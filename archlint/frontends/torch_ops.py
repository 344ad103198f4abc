"""Translation tables from PyTorch modules, functions, methods and aten ops to the
shared op vocabulary with normalised attributes. Translation only: no costs here.

Functional calls (``F.conv2d``), tensor methods (``x.view``) and aten ops from
``torch.export`` (``aten.conv2d.default``) are looked up by one op name, since their
argument orders agree; the few that differ are handled by name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

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
def module_entry(mod: nn.Module, in_rank: int | None) -> tuple[str, Attrs, list[str]] | None:
    """(kind, attrs, parameter attribute names in the registry's input order), or None
    when the module is not one we translate as a single layer (it is traced through)."""
    if isinstance(mod, nn.modules.conv._ConvNd):
        if mod.transposed:
            attrs = conv_attrs(mod.kernel_size, mod.stride, mod.padding, mod.dilation, mod.groups)
            attrs["output_padding"] = list(mod.output_padding)
            return "conv_transpose", attrs, ["weight", "bias"]
        return "conv", conv_attrs(mod.kernel_size, mod.stride, mod.padding, mod.dilation, mod.groups), \
            ["weight", "bias"]
    if isinstance(mod, nn.Linear):
        return "linear", {"weight_layout": "out_in"}, ["weight", "bias"]
    if isinstance(mod, (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd)):
        n = _spatial(mod, in_rank)
        kernel = _tuple(mod.kernel_size, n)
        stride = _tuple(mod.stride if mod.stride is not None else mod.kernel_size, n)
        return "pool", {"kernel": kernel, "stride": stride, "pads": _tuple(mod.padding, n) * 2,
                        "dilation": _tuple(getattr(mod, "dilation", 1), n), "ceil_mode": bool(mod.ceil_mode),
                        "mode": "max" if isinstance(mod, nn.modules.pooling._MaxPoolNd) else "avg"}, []
    if isinstance(mod, (nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd)):
        size = mod.output_size
        sizes = size if isinstance(size, (list, tuple)) else [size]
        kind = "global_pool" if all(s == 1 for s in sizes) else "adaptive_pool"
        return kind, {"mode": "avg" if "Avg" in type(mod).__name__ else "max"}, []
    if isinstance(mod, (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm)) or \
            type(mod).__name__ == "RMSNorm":
        return "norm", {"norm": _norm_name(mod)}, ["weight", "bias"]
    if isinstance(mod, (nn.Softmax, nn.LogSoftmax, nn.Softmin)):
        return "softmax", {"axis": mod.dim if mod.dim is not None else -1}, []
    if isinstance(mod, nn.MultiheadAttention):
        return "multihead_attention", {"embed_dim": mod.embed_dim, "num_heads": mod.num_heads,
                                       "kdim": mod.kdim, "vdim": mod.vdim, "batch_first": mod.batch_first}, \
            [n for n, _ in mod.named_parameters()]
    if type(mod).__module__ == "torch.nn.modules.activation":
        return "activation", {}, [n for n, _ in mod.named_parameters(recurse=False)]
    if isinstance(mod, (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.Identity)):
        return "identity", {}, []
    if isinstance(mod, (nn.Flatten, nn.Unflatten)):
        return "reshape", {}, []
    if isinstance(mod, nn.Upsample):
        return "resize", {"mode": _interp_mode(mod.mode)}, []
    if isinstance(mod, nn.PixelShuffle):
        return "depth_to_space", {"blocksize": mod.upscale_factor}, []
    if isinstance(mod, nn.PixelUnshuffle):
        return "space_to_depth", {"blocksize": mod.downscale_factor}, []
    if isinstance(mod, (nn.modules.padding._ConstantPadNd, nn.modules.padding._ReflectionPadNd,
                        nn.modules.padding._ReplicationPadNd)) or type(mod).__name__.startswith(("ZeroPad",
                                                                                                   "CircularPad")):
        rank = in_rank or (len(mod.padding) // 2 + 2)
        return "pad", {"pads": torch_pad_to_onnx(mod.padding, rank)}, []
    if isinstance(mod, nn.Embedding):
        return "gather", {"axis": 0}, ["weight"]
    return None


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
# Each handler gets (args, kwargs, ctx) where tensor arguments are already replaced by
# their shapes (tuples) and returns (kind, attrs) or (kind, attrs, input_order) where
# input_order lists the positions of the tensor arguments in registry order.
Handler = Callable[[list[Any], dict[str, Any]], tuple]


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


def _interpolate(args: list[Any], kwargs: dict[str, Any]) -> tuple:
    mode = _arg(args, kwargs, 3, "mode", "nearest")
    if mode == "area":
        return "adaptive_pool", {"mode": "avg"}
    return "resize", {"mode": _interp_mode(mode)}


def _upsample_aten(mode: str) -> Handler:
    return lambda args, kwargs: ("resize", {"mode": mode})


def _dim_attr(kind: str, key: str, pos: int, name: str = "dim", default: Any = -1) -> Handler:
    return lambda args, kwargs: (kind, {key: _arg(args, kwargs, pos, name, default)})


def _reduce(args: list[Any], kwargs: dict[str, Any]) -> tuple:
    dim = _arg(args, kwargs, 1, "dim", None)
    if isinstance(dim, int):
        dim = [dim]
    keep = _arg(args, kwargs, 2, "keepdim", False)
    return "reduce", {"axes": list(dim) if dim is not None else None, "keepdims": bool(keep)}


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
                     "logit", "nan_to_num", "isnan", "isinf", "clamp_")
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

OP_HANDLERS: dict[str, Handler] = {
    "conv1d": _conv, "conv2d": _conv, "conv3d": _conv,
    "conv_transpose1d": _conv_transpose, "conv_transpose2d": _conv_transpose, "conv_transpose3d": _conv_transpose,
    "convolution": _convolution, "_convolution": _convolution,
    "linear": _const("linear", weight_layout="out_in"), "addmm": _addmm,
    "matmul": _const("matmul"), "mm": _const("matmul"), "bmm": _const("matmul"), "baddbmm": _addmm,
    "einsum": _einsum,
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
    "upsample_bicubic2d": _upsample_aten("cubic"), "_upsample_nearest_exact2d": _upsample_aten("nearest"),
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
OP_HANDLERS.update({n: _const("activation") for n in ACTIVATION_NAMES})
OP_HANDLERS.update({n: _const("elementwise") for n in ELEMENTWISE_NAMES})
OP_HANDLERS.update({n: _const("reshape") for n in RESHAPE_NAMES})
OP_HANDLERS.update({n: _const("identity") for n in IDENTITY_NAMES})
OP_HANDLERS.update({n: _const("constant") for n in CONSTANT_NAMES})
OP_HANDLERS.update({n: _reduce for n in REDUCE_NAMES})
OP_HANDLERS["flatten"] = _const("reshape")


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
