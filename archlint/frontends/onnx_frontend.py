"""ONNX -> graph IR. Translation only: no cost is computed here.

The model is loaded without its external weight data (parameter counts come from
initializer dims), input shapes are fixed from ``--input-shape``, local functions are
inlined (``dynamo=True`` exports), and onnx's own shape inference with data
propagation gives the intermediate shapes.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
from onnx import TensorProto, helper, numpy_helper

from archlint.errors import ArchlintError
from archlint.frontends import onnx_fold, onnx_infer
from archlint.frontends.onnx_infer import DTYPES
from archlint.frontends.onnx_infer import value_shape as _value_shape
from archlint.input_spec import InputShapes
from archlint.ir import Layer, ModelGraph
from archlint.ops.registry import UNKNOWN

STANDARD_DOMAINS = ("", "ai.onnx")
MAX_CONST_ELEMENTS = 64  # small integer tensors whose values we read (pads, axes, scales)

# ONNX op type -> op kind of the shared vocabulary.
OP_KINDS: dict[str, str] = {
    "Conv": "conv", "ConvInteger": "conv", "QLinearConv": "conv",
    "ConvTranspose": "conv_transpose",
    "Gemm": "linear", "MatMul": "matmul", "MatMulInteger": "matmul", "Einsum": "einsum", "Attention": "attention",
    "MaxPool": "pool", "AveragePool": "pool", "LpPool": "pool",
    "GlobalAveragePool": "global_pool", "GlobalMaxPool": "global_pool", "GlobalLpPool": "global_pool",
    "BatchNormalization": "norm", "LayerNormalization": "norm", "InstanceNormalization": "norm",
    "GroupNormalization": "norm", "LpNormalization": "norm", "LRN": "norm", "MeanVarianceNormalization": "norm",
    "RMSNormalization": "norm",
    "Softmax": "softmax", "LogSoftmax": "softmax", "Hardmax": "softmax",
    "Concat": "concat",
    "Reshape": "reshape", "Flatten": "reshape", "Transpose": "reshape", "Squeeze": "reshape",
    "Unsqueeze": "reshape", "Expand": "reshape", "Tile": "reshape",
    "Resize": "resize", "Upsample": "resize",
    "Pad": "pad", "Slice": "slice", "Split": "split",
    "Gather": "gather", "GatherElements": "gather", "GatherND": "gather",
    "DepthToSpace": "depth_to_space", "SpaceToDepth": "space_to_depth",
    "ReduceMean": "reduce", "ReduceSum": "reduce", "ReduceMax": "reduce", "ReduceMin": "reduce",
    "ReduceProd": "reduce", "ReduceL1": "reduce", "ReduceL2": "reduce", "ReduceLogSumExp": "reduce",
    "ReduceSumSquare": "reduce", "ArgMax": "reduce", "ArgMin": "reduce", "CumSum": "reduce",
    "Shape": "constant", "Size": "constant", "Constant": "constant", "ConstantOfShape": "constant",
    "Range": "constant", "EyeLike": "constant", "NonZero": "constant",
    "Identity": "identity", "Dropout": "identity", "Cast": "identity", "CastLike": "identity",
    "QuantizeLinear": "identity", "DequantizeLinear": "identity",
}
ACTIVATIONS = ("Relu", "LeakyRelu", "PRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Elu", "Selu", "Celu",
               "Gelu", "Softplus", "Softsign", "Mish", "Clip", "ThresholdedRelu", "Swish")
ELEMENTWISE = ("Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "Where", "Equal", "Less",
               "LessOrEqual", "Greater", "GreaterOrEqual", "And", "Or", "Xor", "Not", "Mod", "Sqrt", "Exp", "Log",
               "Neg", "Abs", "Reciprocal", "Erf", "Floor", "Ceil", "Round", "Sign", "Sin", "Cos", "Tan", "Atan",
               "IsNaN", "IsInf", "BitShift")
OP_KINDS.update({op: "activation" for op in ACTIVATIONS})
OP_KINDS.update({op: "elementwise" for op in ELEMENTWISE})

# Inputs that are never trainable parameters even when they are float initializers.
NON_PARAM_SLOTS: dict[str, tuple[int, ...]] = {
    "BatchNormalization": (3, 4),  # running mean and variance are buffers
    "Resize": (1, 2, 3), "Upsample": (1,), "Clip": (1, 2), "Pad": (1, 2, 3),
    "Reshape": (1,), "Expand": (1,), "Tile": (1,), "Range": (0, 1, 2),
}
FLOAT_TYPES = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16, TensorProto.DOUBLE}


def load(path: str | os.PathLike[str], input_shapes: InputShapes | None = None) -> ModelGraph:
    """Read an ONNX file into a :class:`ModelGraph`; raise :class:`ArchlintError` on bad input."""
    graph = _load(read_model(path), input_shapes, str(path))
    graph.meta["path"] = str(path)
    return graph


def load_proto(model: onnx.ModelProto, input_shapes: InputShapes | None = None,
               label: str = "model") -> ModelGraph:
    """Translate an in-memory ``ModelProto`` (it is not modified)."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    return _load(copy, input_shapes, label)


def _load(model: onnx.ModelProto, input_shapes: InputShapes | None, label: str) -> ModelGraph:
    model = _inline(model)
    _apply_input_shapes(model, input_shapes or InputShapes({}, []), label)
    inferred, note = onnx_infer.infer_shapes(model)
    graph = _attach_shapes(_translate_nodes(model), inferred, note)
    if note is None and _missing_output_shape(graph):
        folded = _fold_and_infer(inferred)
        if folded is not None:
            graph = _translate(folded, note)
    graph.meta.update(format="onnx",
                      opset=max((o.version for o in model.opset_import if o.domain in STANDARD_DOMAINS), default=None))
    return graph


def read_model(path: str | os.PathLike[str]) -> onnx.ModelProto:
    """Parse the protobuf without loading external data; every failure is a one-line error."""
    p = Path(path)
    if not p.exists():
        raise ArchlintError(f"{path}: no such file")
    if p.is_dir():
        raise ArchlintError(f"{path}: is a directory, not an ONNX file")
    try:
        model = _parse_mapped(p) if p.suffix.lower() == ".onnx" else None
        if model is None:
            model = onnx.load_model(str(p), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ArchlintError(f"{path}: not a readable ONNX model (corrupt or truncated protobuf: {reason})") from None
    if model.ir_version <= 0 or not model.HasField("graph") or not model.opset_import:
        raise ArchlintError(f"{path}: not an ONNX model (no IR version, graph or opset; is it the right file?)")
    if not model.graph.node:
        raise ArchlintError(f"{path}: the ONNX graph has no nodes")
    _check_text(model, str(path))
    _strip_weight_data(model)
    return model


def _parse_mapped(path: Path) -> onnx.ModelProto | None:
    """Parse a binary ``.onnx`` file through a memory map: a TorchScript export holds its
    weights inline, and reading 350 MB into a buffer first (``onnx.load_model``) took more
    than half of the time of the whole run. None when the file cannot be mapped (empty,
    not a regular file): the caller reads it the usual way."""
    with open(path, "rb") as fh:
        try:
            mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            return None
        with mapped, memoryview(mapped) as view:
            model = onnx.ModelProto()
            model.ParseFromString(view)  # protobuf copies what it keeps: nothing points into the map
            return model


def _check_text(model: onnx.ModelProto, path: str) -> None:
    """Names must be text: protobuf hands back bytes for invalid UTF-8 (a corrupt file).
    ``str.join`` refuses bytes, which makes this one C-level pass per node."""
    g = model.graph
    join = "".join
    try:
        for node in g.node:
            join((node.name, node.op_type, node.domain))
            join(node.input)
            join(node.output)
    except TypeError:
        raise ArchlintError(f"{path}: corrupt ONNX model (a node name or tensor name is not valid UTF-8)") from None
    try:
        join([item.name for item in (*g.initializer, *g.input, *g.output, *g.value_info)])
    except TypeError:
        raise ArchlintError(f"{path}: corrupt ONNX model (a tensor name is not valid UTF-8)") from None


def _strip_weight_data(model: onnx.ModelProto) -> None:
    """Drop the contents of large initializers, keeping dims and dtype (all archlint
    needs), so shape inference does not copy hundreds of MB. They are marked as
    external data, which nothing here reads."""
    for init in model.graph.initializer:
        n = 1
        for d in init.dims:
            n *= d
        if n > onnx_fold.MAX_ELEMENTS and init.data_location != TensorProto.EXTERNAL:
            for field in ("raw_data", "float_data", "int32_data", "int64_data", "double_data", "uint64_data"):
                init.ClearField(field)
            init.data_location = TensorProto.EXTERNAL
            entry = init.external_data.add()
            entry.key, entry.value = "location", "archlint-stripped"


def _inline(model: onnx.ModelProto) -> onnx.ModelProto:
    """Inline model-local functions (``dynamo=True`` exports may nest modules as functions)."""
    if not model.functions:
        return model
    try:
        from onnx import inliner
        return inliner.inline_local_functions(model)
    except Exception as exc:
        raise ArchlintError(f"cannot inline the model's local functions: {exc}") from None


def _graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """Real inputs: graph inputs that are not initializers (old exports list both)."""
    inits = {i.name for i in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in inits]


def _apply_input_shapes(model: onnx.ModelProto, shapes: InputShapes, path: str) -> None:
    """Write the user's shapes into the inputs; fail on a symbolic dim left unresolved.

    Declared intermediate shapes and output shapes are cleared, since they may
    disagree with an overridden input size; shape inference recomputes them.
    """
    inputs = _graph_inputs(model)
    names = [i.name for i in inputs]
    unknown = set(shapes.named) - set(names)
    if unknown:
        raise ArchlintError(f"--input-shape names {', '.join(sorted(unknown))}, but the model's inputs are "
                            f"{', '.join(names)}")
    if len(shapes.positional) > len(inputs):
        raise ArchlintError(f"--input-shape gives {len(shapes.positional)} shapes but the model has "
                            f"{len(inputs)} input(s): {', '.join(names)}")
    changed = bool(shapes)
    for idx, inp in enumerate(inputs):
        given = shapes.named.get(inp.name)
        if given is None and idx < len(shapes.positional):
            given = shapes.positional[idx]
        tensor_type = inp.type.tensor_type
        if given is not None:
            declared = tensor_type.shape.dim if tensor_type.HasField("shape") else []
            if declared and len(declared) != len(given):
                raise ArchlintError(f"--input-shape for input '{inp.name}' has {len(given)} dimensions, "
                                    f"the model declares {len(declared)} ({_dims_text(declared)})")
            tensor_type.shape.ClearField("dim")
            for d in given:
                tensor_type.shape.dim.add().dim_value = d
            continue
        if not tensor_type.HasField("shape"):
            raise ArchlintError(f"input '{inp.name}' has no declared shape; pass --input-shape "
                                f"{inp.name}=1x3x224x224 (with its real dimensions)")
        for pos, d in enumerate(tensor_type.shape.dim):
            if d.HasField("dim_value") and d.dim_value <= 0:
                raise ArchlintError(f"input '{inp.name}' declares dimension {d.dim_value} at position {pos} "
                                    f"(shape {_dims_text(tensor_type.shape.dim)}); pass --input-shape "
                                    f"{inp.name}=... with positive sizes")
            if not d.HasField("dim_value"):
                label = f"'{d.dim_param}'" if d.dim_param else "unknown"
                raise ArchlintError(
                    f"input '{inp.name}' has a symbolic dimension {label} at position {pos} "
                    f"(shape {_dims_text(tensor_type.shape.dim)}); pass --input-shape "
                    f"{inp.name}={'x'.join(str(x.dim_value) if x.dim_value > 0 else '1' for x in tensor_type.shape.dim)}"
                    f" (with your real sizes)")
    if changed or any(d.dim_param for vi in model.graph.value_info for d in vi.type.tensor_type.shape.dim):
        del model.graph.value_info[:]
        for out in model.graph.output:
            out.type.tensor_type.ClearField("shape")


def _dims_text(dims: Any) -> str:
    return "[" + ", ".join(str(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?") for d in dims) + "]"


def _fold_and_infer(inferred: onnx.ModelProto) -> onnx.ModelProto | None:
    """Where shapes stay unknown, fold the constant shape arithmetic (:mod:`onnx_fold`) and
    infer again, up to 4 rounds; None when folding changed nothing."""
    changed = None
    for _ in range(4):
        if not _missing_shapes(inferred):
            break
        candidate = onnx.ModelProto()
        candidate.CopyFrom(inferred)
        if not onnx_fold.fold(candidate):
            break
        try:
            inferred = changed = onnx_infer.infer(candidate)
        except Exception:
            break
    return changed


def _missing_shapes(model: onnx.ModelProto) -> bool:
    known = set()
    for vi in (*model.graph.value_info, *model.graph.output, *model.graph.input):
        tt = vi.type.tensor_type
        if tt.HasField("shape"):
            for d in tt.shape.dim:
                if not d.HasField("dim_value"):
                    break
            else:
                known.add(vi.name)
    return any(o and o not in known for n in model.graph.node for o in n.output)


def _constant_value(tensor: onnx.TensorProto) -> list[Any] | None:
    """Values of a small, embedded tensor (pads, axes, scales), as a flat list."""
    if tensor.data_location == TensorProto.EXTERNAL:
        return None
    n = 1
    for d in tensor.dims:
        n *= d
    if n > MAX_CONST_ELEMENTS:
        return None
    try:
        return numpy_helper.to_array(tensor).reshape(-1).tolist()
    except Exception:
        return None


def _translate(model: onnx.ModelProto, note: str | None) -> ModelGraph:
    """Both steps of the translation, on one model whose shapes are already inferred."""
    return _attach_shapes(_translate_nodes(model), model, note)


@dataclass
class _Nodes:
    """The nodes translated, before shapes are known (:func:`_translate_nodes`)."""

    graph: ModelGraph
    opset: int
    normalise: list[Layer]  # layers with a :data:`NORMALISERS` entry: run once shapes are known
    ignores: list[tuple[Layer, str]]  # ``archlint.ignore`` metadata, added after normalising


def _translate_nodes(model: onnx.ModelProto) -> _Nodes:
    """Layers, parameters and constants: everything that needs no tensor shape (the
    attributes that do are normalised by :func:`_attach_shapes`)."""
    g = model.graph
    graph = ModelGraph()
    opset = max((o.version for o in model.opset_import if o.domain in STANDARD_DOMAINS), default=21)
    add_tensor = graph.add_tensor
    initializers = {}
    for init in g.initializer:
        if any(d < 0 for d in init.dims):
            raise ArchlintError(f"initializer '{init.name}' has a negative dimension ({list(init.dims)}): "
                                f"the file is corrupt")
        initializers[init.name] = init
        graph.add_tensor(init.name, tuple(init.dims), DTYPES.get(init.data_type))
        value = _constant_value(init)
        if value is not None:
            graph.constants[init.name] = value
    for sparse in g.sparse_initializer:
        graph.add_tensor(sparse.values.name, tuple(sparse.dims), DTYPES.get(sparse.values.data_type))
        initializers[sparse.values.name] = sparse.values

    graph.inputs = [i.name for i in _graph_inputs(model)]
    graph.outputs = [o.name for o in g.output]
    # TorchScript exports store parameters with equal values once and re-create the
    # others with Identity nodes: each Identity output is a parameter of its own (found in
    # the node loop: nodes are topologically sorted, so the Identity precedes its readers).
    aliases = set()
    tensors = graph.tensors
    constants = graph.constants
    ints_type, int_type = onnx.AttributeProto.INTS, onnx.AttributeProto.INT
    attribute_value = helper.get_attribute_value
    no_inits = initializers.keys().isdisjoint
    normalise: list[Layer] = []
    ignores: list[tuple[Layer, str]] = []
    for index, node in enumerate(g.node):
        op_type = node.op_type
        inputs = node.input[:]
        raw_outputs = node.output[:]
        outputs = raw_outputs if len(raw_outputs) == 1 and raw_outputs[0] else [t for t in raw_outputs if t]
        if op_type == "Identity" and inputs and raw_outputs and inputs[0] in initializers:
            src = initializers[inputs[0]]
            if src.data_type in FLOAT_TYPES:
                initializers[raw_outputs[0]] = src
                aliases.add(raw_outputs[0])
        attributes = node.attribute
        if op_type == "Constant" and raw_outputs:
            for attr in attributes:
                if attr.name == "value" and attr.type == onnx.AttributeProto.TENSOR:
                    value = _constant_value(attr.t)
                    if value is not None:
                        constants[raw_outputs[0]] = value
                    add_tensor(raw_outputs[0], tuple(attr.t.dims), DTYPES.get(attr.t.data_type))
        domain = node.domain
        standard = domain in STANDARD_DOMAINS
        kind = OP_KINDS.get(op_type, UNKNOWN) if standard else UNKNOWN
        # helper.get_attribute_value, with the two commonest types read directly
        attrs = {a.name: list(a.ints) if a.type == ints_type else a.i if a.type == int_type else attribute_value(a)
                 for a in attributes} if attributes else {}
        op = op_type if standard else f"{domain}.{op_type}"
        weights = ([] if no_inits(inputs) or raw_outputs and raw_outputs[0] in aliases
                   else _param_inputs(node, initializers))
        props = node.metadata_props
        name = node.name
        layer = Layer(name or f"{op_type}_{index}", op, kind, inputs, outputs, attrs, weights,
                      _module_name(node) if props or name.startswith("/") else None)
        if kind != UNKNOWN:
            if op_type in NORMALISERS:
                normalise.append(layer)  # may read tensor shapes: done once they are known
            else:
                layer.attrs = {}  # the kind's formulas read no attribute
            if op_type == "MatMul" and len(inputs) > 1 and inputs[1] in weights:
                layer.kind = "linear"
        graph.add_layer(layer)
        if weights:
            graph.params.update(weights)
        for t in outputs:
            if t not in tensors:
                add_tensor(t)
        for t in inputs:
            if t and t not in tensors:
                add_tensor(t)
        if props:
            ignore = [p.value for p in props if p.key == "archlint.ignore"]
            if ignore:
                ignores.append((layer, ignore[0]))
    return _Nodes(graph, opset, normalise, ignores)


def _attach_shapes(nodes: _Nodes, inferred: onnx.ModelProto, note: str | None) -> ModelGraph:
    """Shapes from the inferred model's value_info, then the attributes that depend on them,
    then the edges."""
    graph = nodes.graph
    if note:
        graph.meta.setdefault("warnings", []).append(note)
    g = inferred.graph
    # Reading a shape through protobuf's Python objects costs about 5 us a tensor; most
    # tensors of a network share a few types, so each distinct type is decoded once (its
    # serialized bytes are the key) and its shape tuple is shared.
    decoded: dict[bytes, tuple[tuple[int, ...] | None, str | None]] = {}
    add_tensor = graph.add_tensor
    for vi in (*g.input, *g.value_info, *g.output):
        key = vi.type.SerializeToString()
        found = decoded.get(key)
        if found is None:
            found = decoded[key] = _value_shape(vi)
        add_tensor(vi.name, *found)
    opset = nodes.opset
    for layer in nodes.normalise:
        op_type = layer.op
        try:
            layer.attrs = NORMALISERS[op_type](op_type, layer.attrs, layer.inputs, graph, opset)
        except (TypeError, ValueError, IndexError, KeyError, AttributeError, ZeroDivisionError):
            layer.kind = UNKNOWN  # malformed attributes: listed as not costed, never guessed
            layer.attrs["malformed"] = True
    for layer, text in nodes.ignores:
        layer.attrs["archlint.ignore"] = text
    graph.connect()
    return graph


def _missing_output_shape(graph: ModelGraph) -> bool:
    """Some layer output has no static shape (read off the translated graph, not the proto)."""
    tensors = graph.tensors
    return any(tensors[t].shape is None for layer in graph.layers_as_added() for t in layer.outputs)


def _param_inputs(node: onnx.NodeProto, initializers: dict[str, onnx.TensorProto]) -> list[str]:
    """Float initializers read in a data slot: trainable parameters.

    Scalars are left out (scaling constants such as ``1/sqrt(d)`` are not parameters),
    and so are slots that hold buffers or shape data (BatchNorm's running statistics,
    Resize scales, Pad values).
    """
    skip = NON_PARAM_SLOTS.get(node.op_type, ())
    out = []
    for slot, name in enumerate(node.input):
        init = initializers.get(name)
        if init is None or slot in skip or init.data_type not in FLOAT_TYPES:
            continue
        numel = 1
        for d in init.dims:
            numel *= d
        weight_slot = node.op_type in ("Conv", "ConvTranspose", "Gemm", "BatchNormalization",
                                       "LayerNormalization", "InstanceNormalization", "GroupNormalization", "PRelu")
        if numel > 1 or (weight_slot and slot > 0):
            out.append(name)
    return out


def _module_name(node: onnx.NodeProto) -> str | None:
    """The PyTorch module path a node came from, when the exporter recorded it.

    TorchScript exports name nodes ``/layer1/layer1.0/conv1/Conv``; the components are
    partial qualified names, joined here into ``layer1.0.conv1``. ``dynamo=True``
    exports record ``pkg.torch.onnx.name_scopes`` in the node's metadata.
    """
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            # the last entry names the op itself, not a module
            scopes = [s.strip(" '\"") for s in prop.value.strip("[]").split(",")][:-1]
            scopes = [s for s in scopes if s]
            return _join_scopes(scopes) if scopes else None
    name = node.name
    if not name.startswith("/") or name.count("/") < 2:
        return None
    return _join_scopes(name.strip("/").split("/")[:-1]) or None


def _join_scopes(parts: list[str]) -> str:
    """Each part names a module relative to its parent, prefixed by the parent's own
    attribute when the parent is a container: ``layer1 / layer1.0 / conv1 / conv1.0``
    is ``layer1.0.conv1.0``."""
    qualified = ""
    for part in parts:
        if not qualified or part.startswith(qualified + "."):
            qualified = part
            continue
        head, _, last = qualified.rpartition(".")
        if part.startswith(last + "."):
            qualified = f"{head}.{part}" if head else part
        elif part != qualified:
            qualified = f"{qualified}.{part}"
    return qualified


def _ints(graph: ModelGraph, name: str | None) -> list[Any] | None:
    if not name:
        return None
    return graph.constants.get(name)


def _text(v: Any) -> Any:
    return v.decode() if isinstance(v, bytes) else v


def _norm_window(op_type: str, attrs: dict[str, Any], inputs: list[str], graph: ModelGraph,
                 opset: int) -> dict[str, Any]:
    """Conv, ConvTranspose, pools: kernel (the attribute, else the weight's spatial dims),
    stride, dilation, pads, groups; output padding for a transposed conv, mode for a pool."""
    wname = inputs[3] if op_type == "QLinearConv" else (inputs[1] if len(inputs) > 1 else None)
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
    if op_type in ("MaxPool", "AveragePool", "LpPool"):
        out["mode"] = {"MaxPool": "max", "AveragePool": "avg", "LpPool": "lp"}[op_type]
        out["count_include_pad"] = bool(attrs.get("count_include_pad", 0))
    return out


def _norm_gemm(op_type: str, attrs: dict[str, Any], inputs: list[str], graph: ModelGraph,
               opset: int) -> dict[str, Any]:
    return {"trans_a": bool(attrs.get("transA", 0)), "trans_b": bool(attrs.get("transB", 0))}


def _norm_einsum(op_type: str, attrs: dict[str, Any], inputs: list[str], graph: ModelGraph,
                 opset: int) -> dict[str, Any]:
    return {"equation": _text(attrs.get("equation"))}


def _norm_softmax(op_type: str, attrs: dict[str, Any], inputs: list[str], graph: ModelGraph,
                  opset: int) -> dict[str, Any]:
    """The default axis changed from 1 to -1 in opset 13."""
    return {"axis": attrs.get("axis", -1 if opset >= 13 else 1)}


def _norm_axis(op_type: str, attrs: dict[str, Any], inputs: list[str], graph: ModelGraph,
               opset: int) -> dict[str, Any]:
    return {"axis": attrs.get("axis", 0)}


def _norm_transpose(op_type: str, attrs: dict[str, Any], inputs: list[str], graph: ModelGraph,
                    opset: int) -> dict[str, Any]:
    return {"perm": list(attrs["perm"])} if "perm" in attrs else {}


def _norm_resize(op_type: str, attrs: dict[str, Any], inputs: list[str], graph: ModelGraph,
                 opset: int) -> dict[str, Any]:
    mode = _text(attrs.get("mode", "nearest"))
    return {"mode": {"bilinear": "linear", "trilinear": "linear", "bicubic": "cubic"}.get(mode, mode),
            "coordinate_transformation_mode": _text(attrs.get("coordinate_transformation_mode", "half_pixel"))}


def _norm_pad(op_type: str, attrs: dict[str, Any], inputs: list[str], graph: ModelGraph,
              opset: int) -> dict[str, Any]:
    """Pads from the attribute (opset < 11) or the constant input, spread over every axis
    when an ``axes`` input names only some."""
    pads = attrs.get("pads") or attrs.get("paddings") or _ints(graph, inputs[1] if len(inputs) > 1 else None)
    axes = _ints(graph, inputs[3] if len(inputs) > 3 else None)
    if pads is not None and axes is not None:
        rank = len(graph.shape(inputs[0]) or ())
        if rank:
            full = [0] * (2 * rank)
            for i, a in enumerate(axes):
                full[a % rank] = pads[i]
                full[rank + a % rank] = pads[len(axes) + i]
            pads = full
    return {"pads": list(pads) if pads is not None else None, "mode": _text(attrs.get("mode", "constant"))}


def _norm_slice(op_type: str, attrs: dict[str, Any], inputs: list[str], graph: ModelGraph,
                opset: int) -> dict[str, Any]:
    """Where the slice starts on each axis and its step (the field needs them; its end only
    sets the size)."""
    out: dict[str, Any] = {}
    if opset < 10 or "starts" in attrs:
        starts, axes, steps = attrs.get("starts"), attrs.get("axes"), None
    else:
        starts = _ints(graph, inputs[1] if len(inputs) > 1 else None)
        axes = _ints(graph, inputs[3] if len(inputs) > 3 else None)
        steps = _ints(graph, inputs[4] if len(inputs) > 4 else None)
    if starts is not None:
        rank = len(graph.shape(inputs[0]) or ()) or len(starts)
        axes = list(axes) if axes is not None else list(range(len(starts)))
        steps = list(steps) if steps is not None else [1] * len(starts)
        size = graph.shape(inputs[0])
        st = {}
        for a, b, step in zip(axes, starts, steps):
            a %= rank
            if size is not None:
                b = max(min(b, size[a]), -size[a])
            st[a] = b
        out["starts"] = st
        out["steps"] = {a % rank: step for a, step in zip(axes, steps)}
    return out


def _norm_depth_to_space(op_type: str, attrs: dict[str, Any], inputs: list[str], graph: ModelGraph,
                         opset: int) -> dict[str, Any]:
    return {"blocksize": attrs.get("blocksize"), "mode": _text(attrs.get("mode", "DCR"))}


def _norm_reduce(op_type: str, attrs: dict[str, Any], inputs: list[str], graph: ModelGraph,
                 opset: int) -> dict[str, Any]:
    """Axes from the attribute or (opset 18) the constant input; ArgMax/ArgMin reduce one ``axis``."""
    axes = attrs.get("axes")
    if axes is None and len(inputs) > 1:
        axes = _ints(graph, inputs[1])
    if op_type in ("ArgMax", "ArgMin"):
        axes = [attrs.get("axis", 0)]
    if axes is None and attrs.get("noop_with_empty_axes", 0):
        axes = []
    return {"axes": list(axes) if axes is not None else None, "keepdims": bool(attrs.get("keepdims", 1))}


_NORM_NAMES = {"BatchNormalization": "batch", "LayerNormalization": "layer", "InstanceNormalization": "instance",
               "GroupNormalization": "group", "LpNormalization": "lp", "LRN": "lrn",
               "MeanVarianceNormalization": "mvn", "RMSNormalization": "rms"}


def _norm_norm(op_type: str, attrs: dict[str, Any], inputs: list[str], graph: ModelGraph,
               opset: int) -> dict[str, Any]:
    return {"norm": _NORM_NAMES[op_type]}


Normaliser = Callable[[str, dict[str, Any], list[str], ModelGraph, int], dict[str, Any]]

# ONNX op type -> the function that translates its attributes into the registry's
# normalised attributes (they may read tensor shapes, so they run once shapes are known).
# An op type not listed here keeps no attributes: its kind's formulas read none.
NORMALISERS: dict[str, Normaliser] = {
    **dict.fromkeys(("Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool", "ConvInteger", "QLinearConv"),
                    _norm_window),
    "Gemm": _norm_gemm, "Einsum": _norm_einsum,
    **dict.fromkeys(("Softmax", "LogSoftmax", "Hardmax"), _norm_softmax),
    **dict.fromkeys(("Concat", "Gather", "GatherElements", "Split"), _norm_axis),
    "Transpose": _norm_transpose, "Resize": _norm_resize, "Upsample": _norm_resize, "Pad": _norm_pad,
    **dict.fromkeys(_NORM_NAMES, _norm_norm),
    "Slice": _norm_slice, "DepthToSpace": _norm_depth_to_space, "SpaceToDepth": _norm_depth_to_space,
    **dict.fromkeys([op for op in OP_KINDS if op.startswith("Reduce")] + ["ArgMax", "ArgMin"], _norm_reduce),
}
