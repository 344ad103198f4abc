"""``--input-value``: inputs whose value the user fixes become constants of the graph.

An input that selects what the model computes rather than carrying data (silero VAD's sample
rate ``sr``, which an ``If`` branches on) makes the cost depend on its value, not only on the
input shapes. Given a value, the input is replaced by an initializer holding it, so the
constant shape arithmetic and ``If`` inlining (:mod:`onnx_fold`) take the branch it selects.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from archlint.errors import ArchlintError
from archlint.frontends import onnx_checks
from archlint.input_spec import InputShapes

VALUE_MARK = "archlint: --input-value"  # the doc_string of an initializer holding a value the user fixed


def apply(model: onnx.ModelProto, shapes: InputShapes, label: str) -> tuple[InputShapes, dict[str, dict[str, Any]]]:
    """Turn each input named in ``shapes.values`` into an initializer, in place. Returns the
    shapes left for the other inputs (positional shapes resolved to names first, since the
    valued inputs leave the input list) and, per fixed input, its shape, dtype and value."""
    if not shapes.values:
        return shapes, {}
    inits = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    names = [i.name for i in inputs]
    onnx_checks.check_given_inputs(names, shapes.values, len(shapes.positional), "--input-value", f"{label}: ")
    named = dict(shapes.named)
    for name, dims in zip(names, shapes.positional):
        named.setdefault(name, dims)
    fixed: dict[str, dict[str, Any]] = {}
    for inp in inputs:
        if inp.name not in shapes.values:
            continue
        values = shapes.values[inp.name]
        onnx_checks.check_tensor_input(inp, label)
        array = _array(inp, values, named.get(inp.name), label)
        tensor = numpy_helper.from_array(array, inp.name)
        tensor.doc_string = VALUE_MARK  # a setting, never a parameter (onnx_params, onnx_fold)
        model.graph.initializer.append(tensor)
        model.graph.input.remove(inp)
        named.pop(inp.name, None)
        fixed[inp.name] = {"shape": list(array.shape), "dtype": array.dtype.name, "value": list(values)}
    return InputShapes(named, []), fixed


def _array(inp: onnx.ValueInfoProto, values: tuple[int | float, ...], given: tuple[int, ...] | None,
           label: str) -> np.ndarray:
    """The input's value at its declared element type and shape (``given`` by --input-shape, else
    declared; a 0-D or 1-D input of unset length takes the number of values)."""
    tt = inp.type.tensor_type
    if tt.elem_type in (TensorProto.UNDEFINED, TensorProto.STRING):
        raise ArchlintError(f"{label}: input '{inp.name}' has no numeric element type; --input-value cannot set it")
    dtype = helper.tensor_dtype_to_np_dtype(tt.elem_type)
    dims: tuple[int, ...]
    declared = list(tt.shape.dim) if tt.HasField("shape") else None
    if given is not None:
        dims = tuple(given)
    elif declared is not None and all(d.HasField("dim_value") for d in declared):
        dims = tuple(d.dim_value for d in declared)
    elif declared is None:
        dims = () if len(values) == 1 else (len(values),)
    elif len(declared) == 1:
        dims = (len(values),)
    else:
        text = "[" + ", ".join(str(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?")
                               for d in declared) + "]"
        raise ArchlintError(f"{label}: input '{inp.name}' has shape {text}: give its shape with --input-shape "
                            f"{inp.name}=... as well as its value")
    if math.prod(dims) != len(values):
        source = " (from --input-shape)" if given is not None else ""
        raise ArchlintError(f"{label}: --input-value {inp.name} gives {len(values)} value(s), but the input's shape "
                            f"{list(dims)}{source} holds {math.prod(dims)}")
    if dtype == np.bool_ and any(v not in (0, 1) for v in values):
        raise ArchlintError(f"{label}: input '{inp.name}' is bool; --input-value {inp.name} must be 0 or 1")
    if np.issubdtype(dtype, np.integer) or dtype == np.bool_:
        if any(float(v) != int(v) for v in values):
            raise ArchlintError(f"{label}: input '{inp.name}' is {dtype.name}; --input-value {inp.name} must be "
                                f"whole numbers")
        info = np.iinfo(dtype) if dtype != np.bool_ else None
        if info is not None and any(not info.min <= int(v) <= info.max for v in values):
            raise ArchlintError(f"{label}: --input-value {inp.name} is out of the range of {dtype.name}")
        return np.array([int(v) for v in values], dtype=dtype).reshape(dims)
    return np.array(values, dtype=dtype).reshape(dims)
