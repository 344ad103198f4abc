"""One record per ONNX op type: its op kind, the role of each of its inputs, and the
function that normalises its attributes.

Everything the ONNX frontend knows about an op type is here, so that adding an op of an
existing kind is one line of :data:`OPS`. From a record the frontend derives:

- the layer's kind (``MatMul`` becomes ``linear`` when its second operand is a parameter);
- the layer's inputs in the kind's slot order (:meth:`OnnxOp.arrange`): ``QLinearConv``'s
  ``x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, B`` become
  ``x, w, B`` followed by the six scales and zero points, so that the conv formulas read the
  weight at position 1 and the bias at 2 (an absent optional input is ``""``);
- which inputs may be parameters: those in a ``weight`` or ``bias`` role, and float tensors of
  more than one element in a ``data`` role (a learned positional embedding added to the
  activations, an embedding table); never a ``scale``, ``zero_point``, ``state`` (BatchNorm's
  running statistics), ``shape``, ``index``, ``mask`` or ``config`` input (pads, axes, clip
  bounds, Resize's region of interest).

Input orders and attribute defaults are those of the ONNX operator specification
(https://onnx.ai/onnx/operators/) and, for the ``com.microsoft`` quantized ops that
onnxruntime's quantizer writes, onnxruntime's contrib-op documentation
(https://github.com/microsoft/onnxruntime/blob/main/docs/ContribOperators.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from archlint.ir import ModelGraph
from archlint.ops import REGISTRY

Normaliser = Callable[[str, dict[str, Any], list[str], ModelGraph, int], dict[str, Any]]

STANDARD_DOMAINS = ("", "ai.onnx")
PARAM_ROLES = frozenset({"weight", "bias"})
# Roles whose values set how an op computes (a Resize's scales, a Reshape's shape, a Gather's
# indices, quantization scales) rather than carrying its data or weights.
SETTING_ROLES = frozenset({"scale", "zero_point", "shape", "index", "config"})


@dataclass(eq=False)
class OnnxOp:
    """What archlint knows of one ONNX op type.

    ``roles``: the role of each ONNX input position (:data:`archlint.ops.registry.ROLES`);
    positions past the end take ``rest``. ``normalise``: attributes -> the kind's schema,
    run once tensor shapes are known, reading the node's inputs in ONNX order; None when
    the kind's formulas read no attribute. ``quantized``: integer tensors in a weight or data
    role are parameters too (quantized weights). ``promote``: ``(kind, position)``: the kind
    the layer takes when the input at ``position`` is a parameter (a MatMul by a weight is a
    linear layer), that input then filling the weight slot. ``standard``: for a contrib op, the
    standard op of the same output shape, which onnx's shape inference knows."""

    kind: str
    roles: tuple[str, ...] = ("data",)
    rest: str = "data"
    normalise: Normaliser | None = None
    quantized: bool = False
    promote: tuple[str, int] | None = None
    standard: str | None = None
    _orders: dict[tuple[str, bool], tuple[int | None, ...] | None] = field(default_factory=dict, repr=False)

    def role(self, position: int) -> str:
        """The role of the ONNX input at ``position``."""
        return self.roles[position] if position < len(self.roles) else self.rest

    def arrange(self, inputs: list[str], kind: str, promoted: bool = False) -> list[str]:
        """The node's inputs in ``kind``'s slot order, absent ones ``""``, then every other input
        in ONNX order; trailing absent inputs are dropped."""
        key = (kind, promoted)
        order = self._orders[key] if key in self._orders else self._order(kind, promoted)
        if order is None:
            return inputs
        n = len(inputs)
        head = [inputs[i] if i is not None and i < n else "" for i in order]
        taken = set(order)
        out = head + [inputs[i] for i in range(n) if i not in taken]
        while out and not out[-1]:
            out.pop()
        return out

    def _order(self, kind: str, promoted: bool) -> tuple[int | None, ...] | None:
        """ONNX position filling each slot of ``kind`` (None: the identity order)."""
        entry = REGISTRY.get(kind)
        roles = list(self.roles)
        if promoted and self.promote is not None:
            roles[self.promote[1]] = "weight"
        order: tuple[int | None, ...] | None
        if entry is None:
            order = None
        elif entry.variadic:  # data operands first (QLinearAdd's A and B), then the rest
            data = [i for i, r in enumerate(roles) if r == "data"]
            order = tuple(data) if data != list(range(len(data))) else None
        else:
            used: list[int | None] = []
            for slot_role in entry.slots:
                pos = next((i for i, r in enumerate(roles) if r == slot_role and i not in used), None)
                used.append(pos)
            order = tuple(used) if used != list(range(len(used))) else None
        self._orders[(kind, promoted)] = order
        return order


def lookup(domain: str, op_type: str) -> OnnxOp | None:
    """The record of an op type of the standard domain or of ``com.microsoft``; None when unknown."""
    if domain in STANDARD_DOMAINS:
        return OPS.get(op_type)
    if domain == "com.microsoft":
        return MICROSOFT_OPS.get(op_type)
    return None


# ---------------------------------------------------------------------------------------------
# Attribute normalisers: ONNX attributes (and constant inputs) -> the kind's attribute schema.


def _ints(graph: ModelGraph, inputs: list[str], position: int) -> list[Any] | None:
    """The value of a small constant input (pads, axes), or None when absent or not constant."""
    if position >= len(inputs) or not inputs[position]:
        return None
    return graph.constants.get(inputs[position])


def _text(v: Any) -> Any:
    return v.decode() if isinstance(v, bytes) else v


def window(op_type: str, attrs: dict[str, Any], inputs: list[str], graph: ModelGraph,
           opset: int) -> dict[str, Any]:
    """Conv, ConvTranspose, pools: kernel (the attribute, else the weight's spatial dims),
    stride, dilation, pads, groups; output padding for a transposed conv, mode for a pool."""
    weight = WEIGHT_POSITION.get(op_type, 1)
    wname = inputs[weight] if len(inputs) > weight else None
    wshape = graph.shape(wname) if wname else None
    kernel = list(attrs.get("kernel_shape") or (wshape[2:] if wshape else []))
    n = len(kernel)
    out = dict(kernel=kernel, stride=list(attrs.get("strides") or [1] * n),
               dilation=list(attrs.get("dilations") or [1] * n),
               pads=list(attrs.get("pads") or [0] * (2 * n)), auto_pad=_text(attrs.get("auto_pad", "NOTSET")),
               groups=attrs.get("group", 1), ceil_mode=bool(attrs.get("ceil_mode", 0)))
    if op_type == "ConvTranspose":
        out["output_padding"] = list(attrs.get("output_padding") or [0] * n)
        if "output_shape" in attrs:
            out["output_shape"] = list(attrs["output_shape"])
    mode = POOL_MODES.get(op_type)
    if mode is not None:
        out["mode"] = mode
        out["count_include_pad"] = bool(attrs.get("count_include_pad", 0))
    return out


WEIGHT_POSITION = {"QLinearConv": 3}
POOL_MODES = {"MaxPool": "max", "AveragePool": "avg", "LpPool": "lp", "QLinearAveragePool": "avg"}


def gemm(op_type: str, attrs: dict[str, Any], inputs: list[str], graph: ModelGraph, opset: int) -> dict[str, Any]:
    return {"trans_a": bool(attrs.get("transA", 0)), "trans_b": bool(attrs.get("transB", 0))}


def einsum(op_type: str, attrs: dict[str, Any], inputs: list[str], graph: ModelGraph, opset: int) -> dict[str, Any]:
    return {"equation": _text(attrs.get("equation"))}


def softmax(op_type: str, attrs: dict[str, Any], inputs: list[str], graph: ModelGraph, opset: int) -> dict[str, Any]:
    """The default axis changed from 1 to -1 in opset 13."""
    return {"axis": attrs.get("axis", -1 if opset >= 13 else 1)}


def axis(op_type: str, attrs: dict[str, Any], inputs: list[str], graph: ModelGraph, opset: int) -> dict[str, Any]:
    return {"axis": attrs.get("axis", 0)}


def transpose(op_type: str, attrs: dict[str, Any], inputs: list[str], graph: ModelGraph,
              opset: int) -> dict[str, Any]:
    return {"perm": list(attrs["perm"])} if "perm" in attrs else {}


def resize(op_type: str, attrs: dict[str, Any], inputs: list[str], graph: ModelGraph, opset: int) -> dict[str, Any]:
    """Mode and sampling grid. Upsample and Resize before opset 11 read ``x = v/scale``
    (``asymmetric``, nearest by ``floor``); from opset 11 the attributes default to
    ``half_pixel`` and ``round_prefer_floor`` (ONNX operator specification)."""
    mode = _text(attrs.get("mode", "nearest"))
    mode = {"bilinear": "linear", "trilinear": "linear", "bicubic": "cubic"}.get(mode, mode)
    legacy = op_type == "Upsample" or opset < 11
    out = {"mode": mode, "coordinate_transformation_mode": "asymmetric" if legacy else _text(
        attrs.get("coordinate_transformation_mode", "half_pixel"))}
    if mode == "nearest":
        out["nearest_mode"] = "floor" if legacy else _text(attrs.get("nearest_mode", "round_prefer_floor"))
    return out


def pad(op_type: str, attrs: dict[str, Any], inputs: list[str], graph: ModelGraph, opset: int) -> dict[str, Any]:
    """Pads from the attribute (opset < 11) or the constant input, spread over every axis
    when an ``axes`` input names only some."""
    pads = attrs.get("pads") or attrs.get("paddings") or _ints(graph, inputs, 1)
    axes = _ints(graph, inputs, 3)
    if pads is not None and axes is not None:
        rank = len(graph.shape(inputs[0]) or ())
        if rank:
            full = [0] * (2 * rank)
            for i, a in enumerate(axes):
                full[a % rank] = pads[i]
                full[rank + a % rank] = pads[len(axes) + i]
            pads = full
    return {"pads": list(pads) if pads is not None else None, "mode": _text(attrs.get("mode", "constant"))}


def slice_(op_type: str, attrs: dict[str, Any], inputs: list[str], graph: ModelGraph, opset: int) -> dict[str, Any]:
    """Where the slice starts on each axis and its step (the field needs them; its end only
    sets the size)."""
    out: dict[str, Any] = {}
    if opset < 10 or "starts" in attrs:
        starts, axes, steps = attrs.get("starts"), attrs.get("axes"), None
    else:
        starts, axes, steps = _ints(graph, inputs, 1), _ints(graph, inputs, 3), _ints(graph, inputs, 4)
    if starts is not None:
        size = graph.shape(inputs[0])
        rank = len(size or ()) or len(starts)
        axes = list(axes) if axes is not None else list(range(len(starts)))
        steps = list(steps) if steps is not None else [1] * len(starts)
        st = {}
        for a, b in zip(axes, starts):
            a %= rank
            if size is not None:
                b = max(min(b, size[a]), -size[a])
            st[a] = b
        out["starts"] = st
        out["steps"] = {a % rank: step for a, step in zip(axes, steps)}
    return out


def depth_to_space(op_type: str, attrs: dict[str, Any], inputs: list[str], graph: ModelGraph,
                   opset: int) -> dict[str, Any]:
    return {"blocksize": attrs.get("blocksize"), "mode": _text(attrs.get("mode", "DCR"))}


def reduce(op_type: str, attrs: dict[str, Any], inputs: list[str], graph: ModelGraph, opset: int) -> dict[str, Any]:
    """Axes from the attribute or (opset 18) the constant input. An absent or empty ``axes``
    reduces every axis, unless ``noop_with_empty_axes`` is set, when it reduces none (ReduceSum
    since opset 13, the others since 18)."""
    axes = attrs.get("axes")
    if axes is None and len(inputs) > 1 and inputs[1]:
        axes = _ints(graph, inputs, 1)
        if axes is None:
            return {"axes": None, "keepdims": bool(attrs.get("keepdims", 1))}  # not constant: assume every axis
    if not axes:
        axes = [] if attrs.get("noop_with_empty_axes", 0) else None
    return {"axes": list(axes) if axes is not None else None, "keepdims": bool(attrs.get("keepdims", 1))}


def arg_reduce(op_type: str, attrs: dict[str, Any], inputs: list[str], graph: ModelGraph,
               opset: int) -> dict[str, Any]:
    """ArgMax/ArgMin reduce one ``axis`` (default 0)."""
    return {"axes": [attrs.get("axis", 0)], "keepdims": bool(attrs.get("keepdims", 1))}


def cumsum(op_type: str, attrs: dict[str, Any], inputs: list[str], graph: ModelGraph, opset: int) -> dict[str, Any]:
    """CumSum runs along the one axis its second input holds; the output keeps every dim."""
    value = _ints(graph, inputs, 1)
    return {"axes": [int(value[0])] if value else None, "keepdims": True}  # None: not constant, every axis


NORM_NAMES = {"BatchNormalization": "batch", "LayerNormalization": "layer", "InstanceNormalization": "instance",
              "GroupNormalization": "group", "LpNormalization": "lp", "LRN": "lrn",
              "MeanVarianceNormalization": "mvn", "RMSNormalization": "rms"}


def attention(op_type: str, attrs: dict[str, Any], inputs: list[str], graph: ModelGraph,
              opset: int) -> dict[str, Any]:
    """Head counts, needed to split 3-D inputs ``[B, S, heads * head_size]``."""
    return {k: attrs[k] for k in ("q_num_heads", "kv_num_heads") if k in attrs}


GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


def recurrent(op_type: str, attrs: dict[str, Any], inputs: list[str], graph: ModelGraph,
              opset: int) -> dict[str, Any]:
    """Gates per hidden unit, hidden size, directions (``bidirectional``: 2) and layout."""
    return {"gates": GATES[op_type], "hidden_size": attrs.get("hidden_size"),
            "directions": 2 if _text(attrs.get("direction", "forward")) == "bidirectional" else 1,
            "layout": attrs.get("layout", 0)}


def quantization(op_type: str, attrs: dict[str, Any], inputs: list[str], graph: ModelGraph,
                 opset: int) -> dict[str, Any]:
    """QuantizeLinear and DequantizeLinear are quantization boundaries (float <-> integer), which
    onnxruntime fuses into the neighbouring ops (the traffic model reads the attribute)."""
    return {"quantization": "quantize" if op_type == "QuantizeLinear" else "dequantize"}


def norm(op_type: str, attrs: dict[str, Any], inputs: list[str], graph: ModelGraph, opset: int) -> dict[str, Any]:
    return {"norm": NORM_NAMES[op_type]}


# ---------------------------------------------------------------------------------------------
# The records. Roles of the quantized ops follow the specification's input order:
# QLinearConv  x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, B
# ConvInteger  x, w, x_zero_point, w_zero_point
# QLinearMatMul a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point
# MatMulInteger A, B, a_zero_point, b_zero_point

D, W, B, S, Z = "data", "weight", "bias", "scale", "zero_point"
CONV = (D, W, B)
QDQ = (D, S, Z)  # QuantizeLinear, DequantizeLinear
Q_UNARY = (D, S, Z, S, Z)  # com.microsoft QLinear* unary ops: X, X_scale, X_zp, Y_scale, Y_zp

OPS: dict[str, OnnxOp] = {}


def _add(names: str, kind: str, **fields: Any) -> None:
    for name in names.split():
        OPS[name] = OnnxOp(kind, **fields)


_add("Conv", "conv", roles=CONV, normalise=window)
_add("ConvInteger", "conv", roles=(D, W, Z, Z), normalise=window, quantized=True)
_add("QLinearConv", "conv", roles=(D, S, Z, W, S, Z, S, Z, B), normalise=window, quantized=True)
_add("ConvTranspose", "conv_transpose", roles=CONV, normalise=window)
_add("Gemm", "linear", roles=CONV, normalise=gemm)
_add("MatMul", "matmul", roles=(D, D), promote=("linear", 1))
_add("MatMulInteger", "matmul", roles=(D, D, Z, Z), quantized=True, promote=("linear", 1))
_add("QLinearMatMul", "matmul", roles=(D, S, Z, D, S, Z, S, Z), quantized=True, promote=("linear", 3))
_add("Einsum", "einsum", normalise=einsum)
_add("Attention", "attention", roles=(D, D, D, "mask", "state", "state", "config"), normalise=attention)
_add("LSTM", "recurrent", roles=(D, W, W, B, "config", "state", "state", W), normalise=recurrent)
_add("GRU RNN", "recurrent", roles=(D, W, W, B, "config", "state"), normalise=recurrent)
_add("If", "if", roles=("config",))  # the branches: frontends/onnx_bodies.py
_add("Loop", "loop", roles=("config", "config"), rest="state")
_add("Scan", "loop", rest="state")
_add("MaxPool AveragePool LpPool", "pool", normalise=window)
_add("GlobalAveragePool GlobalMaxPool GlobalLpPool", "global_pool")
_add("BatchNormalization", "norm", roles=(D, W, B, "state", "state"), normalise=norm)
_add("LayerNormalization InstanceNormalization GroupNormalization", "norm", roles=CONV, normalise=norm)
_add("RMSNormalization", "norm", roles=(D, W), normalise=norm)
_add("LpNormalization LRN MeanVarianceNormalization", "norm", normalise=norm)
_add("Softmax LogSoftmax Hardmax", "softmax", normalise=softmax)
_add("Concat", "concat", normalise=axis)
_add("Reshape Expand", "reshape", roles=(D, "shape"))
_add("Tile", "reshape", roles=(D, "shape", "config"))
_add("Squeeze Unsqueeze", "reshape", roles=(D, "config"))
_add("Flatten", "reshape")
_add("Transpose", "reshape", normalise=transpose)
_add("Resize", "resize", roles=(D, "config", S, "shape"), normalise=resize)
_add("Upsample", "resize", roles=(D, S), normalise=resize)
_add("Pad", "pad", roles=(D, "config", "config", "config"), normalise=pad)
_add("Slice", "slice", roles=(D, "config", "config", "config", "config"), normalise=slice_)
_add("Split", "split", roles=(D, "config"), normalise=axis)
_add("Gather GatherElements", "gather", roles=(D, "index"), normalise=axis)
_add("GatherND", "gather", roles=(D, "index"))
_add("ScatterND ScatterElements", "gather", roles=(D, "index", D))  # a copy with some elements replaced: no MACs
_add("DepthToSpace", "depth_to_space", normalise=depth_to_space)
_add("SpaceToDepth", "space_to_depth", normalise=depth_to_space)
_add("ReduceMean ReduceSum ReduceMax ReduceMin ReduceProd ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp "
     "ReduceSumSquare", "reduce", roles=(D, "config"), normalise=reduce)
_add("ArgMax ArgMin", "reduce", normalise=arg_reduce)
_add("CumSum", "reduce", roles=(D, "config"), normalise=cumsum)
_add("Shape Size Constant ConstantOfShape EyeLike NonZero", "constant", rest="config")
_add("Range", "constant", roles=("config", "config", "config"))
_add("Identity Dropout Cast CastLike", "identity", rest="config")
_add("QuantizeLinear DequantizeLinear", "identity", roles=QDQ, normalise=quantization)
_add("DynamicQuantizeLinear", "identity")
_add("Relu LeakyRelu Sigmoid HardSigmoid HardSwish Tanh Elu Selu Celu Gelu Softplus Softsign Mish "
     "ThresholdedRelu Swish", "activation")
_add("PRelu", "activation", roles=(D, W))
_add("Clip", "activation", roles=(D, "config", "config"))
_add("Add Sub Mul Div Pow Max Min Sum Mean Where Equal Less LessOrEqual Greater GreaterOrEqual And Or Xor Not Mod "
     "Sqrt Exp Log Neg Abs Reciprocal Erf Floor Ceil Round Sign Sin Cos Tan Atan IsNaN IsInf BitShift", "elementwise")

# onnxruntime's QOperator-format contrib ops (quantize_static with QuantFormat.QOperator).
MICROSOFT_OPS: dict[str, OnnxOp] = {
    "QGemm": OnnxOp("linear", roles=(D, S, Z, W, S, Z, B, S, Z), normalise=gemm, quantized=True, standard="Gemm"),
    "QLinearAdd": OnnxOp("elementwise", roles=(D, S, Z, D, S, Z, S, Z), quantized=True, standard="Add"),
    "QLinearMul": OnnxOp("elementwise", roles=(D, S, Z, D, S, Z, S, Z), quantized=True, standard="Mul"),
    "QLinearSigmoid": OnnxOp("activation", roles=Q_UNARY, standard="Sigmoid"),
    "QLinearLeakyRelu": OnnxOp("activation", roles=Q_UNARY, standard="LeakyRelu"),
    "QLinearAveragePool": OnnxOp("pool", roles=Q_UNARY, normalise=window, standard="AveragePool"),
    "QLinearGlobalAveragePool": OnnxOp("global_pool", roles=Q_UNARY, standard="GlobalAveragePool"),
    "QLinearSoftmax": OnnxOp("softmax", roles=Q_UNARY, normalise=softmax, standard="Softmax"),
    "MatMulIntegerToFloat": OnnxOp("matmul", roles=(D, D, S, S, Z, Z, B), quantized=True, promote=("linear", 1),
                                   standard="MatMul"),
}
