"""onnx's own shape inference, the ceil-mode pool fix on top of it, and reading a
``ValueInfoProto``'s static shape.

Inference is onnx's C++ code and holds the GIL (7 s of a million-node graph). Running it
in a worker process beside the node translation was tried: on the 2-core development
machine it saved 1 s of 19 at a million nodes, both processes slowing each other down, and
the worker needed 1.9 GB of its own; so it runs here, before the translation.
"""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper

DTYPES = {v: helper.tensor_dtype_to_np_dtype(v).name for v in TensorProto.DataType.values()
          if v not in (TensorProto.UNDEFINED, TensorProto.STRING)}


def infer(model: onnx.ModelProto) -> onnx.ModelProto:
    """onnx shape inference with data propagation (shapes computed from constant shape
    arithmetic), lenient about types; raises what onnx raises.

    onnx has no shape functions for onnxruntime's ``com.microsoft`` quantized ops
    (``QLinearAdd``, ``QGemm``, ...), so everything after one would stay unknown: inference
    runs on a shadow copy where each is replaced by the standard op with the same output
    shape (:attr:`onnx_ops.OnnxOp.standard`), and the shapes found are copied back."""
    shadow = _standard_shadow(model)
    if shadow is None:
        return _infer(model)
    inferred = _infer(shadow)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    del out.graph.value_info[:]
    out.graph.value_info.extend(inferred.graph.value_info)
    del out.graph.output[:]
    out.graph.output.extend(inferred.graph.output)
    return out


def _infer(model: onnx.ModelProto) -> onnx.ModelProto:
    return onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False, data_prop=True)


def _standard_shadow(model: onnx.ModelProto) -> onnx.ModelProto | None:
    """A copy of the model with every contrib op that has a standard equivalent replaced by it
    (its data, weight and bias inputs, its attributes but ``channels_last``); None when there is none."""
    from archlint.frontends.onnx_ops import PARAM_ROLES, lookup
    nodes = model.graph.node
    if not any(node.domain == "com.microsoft" for node in nodes):
        return None
    shadow = onnx.ModelProto()
    shadow.CopyFrom(model)
    changed = False
    for node in shadow.graph.node:
        record = lookup(node.domain, node.op_type) if node.domain == "com.microsoft" else None
        if record is None or record.standard is None:
            continue
        inputs = [name for i, name in enumerate(node.input) if record.role(i) in PARAM_ROLES | {"data"}]
        attrs = [a for a in node.attribute if a.name != "channels_last"]
        replacement = helper.make_node(record.standard, inputs, list(node.output), name=node.name)
        replacement.attribute.extend(attrs)
        node.CopyFrom(replacement)
        changed = True
    return shadow if changed else None


def infer_shapes(model: onnx.ModelProto) -> tuple[onnx.ModelProto, str | None]:
    """:func:`infer`, then :func:`fix_ceil_mode_pools` until no pool disagrees. On failure
    keep the declared shapes, with a note saying so, and let the registry's shape rules fill
    the gaps. (Folding constant shape arithmetic where shapes stay unknown is the frontend's
    next step, ``onnx_frontend._fold_and_infer``.)"""
    try:
        inferred = infer(model)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return model, f"onnx shape inference failed ({first[:200]}); shapes filled by archlint's own rules"
    for _ in range(8):
        fixed = fix_ceil_mode_pools(model, inferred)
        if fixed is None:
            break
        inferred = fixed
    return inferred, None


def fix_ceil_mode_pools(model: onnx.ModelProto, inferred: onnx.ModelProto) -> onnx.ModelProto | None:
    """onnx's shape inference keeps a last ceil_mode window that starts in the end padding;
    PyTorch and onnxruntime drop it (PyTorch MaxPool2d documentation; ONNX MaxPool). Where the registry's pool
    shape rule disagrees, pin the pool's output shape and infer again."""
    from archlint.ops.conv import window_output_size
    pools = [node for node in inferred.graph.node
             if node.op_type in ("MaxPool", "AveragePool", "LpPool") and node.output]
    if not pools:
        return None
    wanted = {t for node in pools for t in (node.input[0], node.output[0])}
    shapes = {vi.name: value_shape(vi)[0] for vi in
              list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output)
              if vi.name in wanted}
    fixes = {}
    for node in pools:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if not attrs.get("ceil_mode") or attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            continue
        x, y = shapes.get(node.input[0]), shapes.get(node.output[0])
        kernel = list(attrs.get("kernel_shape", []))
        if x is None or y is None or len(x) != len(kernel) + 2:
            continue
        n = len(kernel)
        stride = list(attrs.get("strides") or [1] * n)
        dilation = list(attrs.get("dilations") or [1] * n)
        pads = list(attrs.get("pads") or [0] * (2 * n))
        spatial = tuple(window_output_size(x[2 + i], kernel[i], stride[i], dilation[i], pads[i], pads[n + i], True)
                        for i in range(n))
        if tuple(y[2:]) != spatial:
            fixes[node.output[0]] = (*y[:2], *spatial)
    if not fixes:
        return None
    # declared shapes downstream of the pool (value_info, graph outputs) carry the same error
    pinned: dict[str, onnx.ValueInfoProto] = {}
    outputs = {o.name: o for o in model.graph.output}
    for out in model.graph.output:
        out.type.tensor_type.ClearField("shape")
    for name, shape in fixes.items():
        elem = next((vi.type.tensor_type.elem_type for vi in list(inferred.graph.value_info) +
                     list(inferred.graph.output) if vi.name == name), TensorProto.FLOAT)
        if name in outputs:
            outputs[name].CopyFrom(helper.make_tensor_value_info(name, elem, list(shape)))
        else:
            pinned[name] = helper.make_tensor_value_info(name, elem, list(shape))
    del model.graph.value_info[:]
    model.graph.value_info.extend(pinned.values())
    try:
        return infer(model)
    except Exception:
        return None


def value_shape(vi: onnx.ValueInfoProto) -> tuple[tuple[int, ...] | None, str | None]:
    """The static shape of a tensor (zero-size dims included), or None when any dim is
    symbolic or unknown."""
    tt = vi.type.tensor_type
    dtype = DTYPES.get(tt.elem_type)
    if not tt.HasField("shape"):
        return None, dtype
    dims = tuple([d.dim_value for d in tt.shape.dim])
    if all(dims):  # every dim_value set and non-zero (an unset or symbolic dim reads 0)
        return (dims, dtype) if min(dims, default=1) > 0 else (None, dtype)
    for d in tt.shape.dim:
        if not d.HasField("dim_value") or d.dim_value < 0:
            return None, dtype
    return dims, dtype
