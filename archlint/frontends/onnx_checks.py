"""Refuse ONNX files and input shapes that no runtime would run, with one line naming the
node or tensor (each check raises :class:`ArchlintError`):

- an opset of the standard domain newer than the installed onnx knows;
- an initializer whose stored data does not hold ``prod(dims)`` elements;
- a tensor written by two nodes, a node reading a tensor nothing defines (both found while
  translating, by :mod:`onnx_frontend`);
- once shapes are known, an op whose inputs do not fit each other (a conv whose input has
  other channels than its weight expects, a Concat of 8x8 and 7x7 maps, operands that do not
  broadcast, a matrix product whose inner sizes differ): ``onnx``'s shape inference, run
  lenient, passes these by, and a report of such a model would be wrong numbers printed as
  right. These follow the operator specification (https://onnx.ai/onnx/operators/).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import onnx
from onnx import TensorProto, helper

from archlint.errors import ArchlintError
from archlint.ir import Layer, ModelGraph, Shape

_TYPED_FIELDS = ("float_data", "int32_data", "int64_data", "double_data", "uint64_data", "string_data")


def check_opset(model: onnx.ModelProto, label: str) -> None:
    """The standard domain's opset must be one the installed onnx has operator schemas for."""
    known = onnx.defs.onnx_opset_version()
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx") and entry.version > known:
            raise ArchlintError(f"{label}: the model uses opset {entry.version} of the ONNX standard domain, but the "
                                f"installed onnx {onnx.__version__} knows opsets up to {known}; upgrade onnx")


def check_initializer(init: onnx.TensorProto, label: str, what: str = "initializer") -> None:
    """An embedded initializer's (or a Constant node's, ``what``) data must hold exactly
    ``prod(dims)`` elements (raw bytes at the dtype's size, 4-bit types packed two to a byte,
    or one entry per element of its typed field). External data is not read, so it is not checked."""
    if init.data_location == TensorProto.EXTERNAL:
        return
    n = math.prod(init.dims)
    if init.HasField("raw_data"):
        if init.data_type in (TensorProto.INT4, TensorProto.UINT4):
            expected = (n + 1) // 2
        elif init.data_type == TensorProto.STRING:
            return
        else:
            try:
                expected = n * helper.tensor_dtype_to_np_dtype(init.data_type).itemsize
            except Exception:
                return  # a dtype numpy has no size for: not checked
        got = len(init.raw_data)
        if got != expected:
            raise ArchlintError(f"{label}: {what} '{init.name}' declares dims {list(init.dims)} "
                                f"({n:,} elements, {expected:,} bytes) but stores {got:,} bytes: the file is corrupt")
        return
    for field in _TYPED_FIELDS:
        values = getattr(init, field)
        if len(values):
            per = 2 if init.data_type in (TensorProto.COMPLEX64, TensorProto.COMPLEX128) else 1
            if len(values) != n * per:
                raise ArchlintError(f"{label}: {what} '{init.name}' declares dims {list(init.dims)} "
                                    f"({n:,} elements) but stores {len(values):,} values: the file is corrupt")
            return


def check_given_inputs(names: list[str], given: Iterable[str], positional: int, flag: str,
                       prefix: str = "") -> None:
    """Every input the user named with ``flag`` (``--input-shape``, ``--input-value``) is one of
    the model's ``names``, and no more positional shapes were given than it has inputs."""
    unknown = set(given) - set(names)
    if unknown:
        raise ArchlintError(f"{prefix}{flag} names {', '.join(sorted(unknown))}, but the model's inputs are "
                            f"{', '.join(names)}")
    if positional > len(names):
        raise ArchlintError(f"{prefix}--input-shape gives {positional} shapes but the model has "
                            f"{len(names)} input(s): {', '.join(names)}")


def check_tensor_input(inp: onnx.ValueInfoProto, label: str) -> None:
    """archlint analyses tensor inputs; a sequence, map or optional input is refused by name."""
    which = inp.type.WhichOneof("value")
    if which in (None, "tensor_type", "sparse_tensor_type"):
        return
    what = {"sequence_type": "a sequence of tensors", "map_type": "a map", "optional_type": "an optional value"}
    raise ArchlintError(f"{label}: input '{inp.name}' is {what.get(which, which)}, not a tensor; archlint analyses "
                        f"models whose inputs are tensors")


# ---------------------------------------------------------------------------------------------
# Consistency of an op's input shapes, once they are known.

def _dims(shape: Shape) -> str:
    return "x".join(map(str, shape)) if shape else "scalar"


def _broadcast(layer: Layer, shapes: list[Shape | None]) -> str | None:
    """numpy broadcasting: aligned from the right, sizes equal or one of them 1."""
    known = [s for s in shapes if s is not None]
    for i, a in enumerate(known):
        for b in known[i + 1:]:
            for x, y in zip(reversed(a), reversed(b)):
                if x != y and x != 1 and y != 1:
                    return f"inputs of shapes {_dims(a)} and {_dims(b)} do not broadcast"
    return None


def _concat(layer: Layer, shapes: list[Shape | None]) -> str | None:
    """Every input has the first's rank and sizes except along ``axis``."""
    known = [s for s in shapes if s is not None]
    if len(known) < 2:
        return None
    first = known[0]
    axis = int(layer.attrs.get("axis", 0)) % max(len(first), 1)
    for other in known[1:]:
        if len(other) != len(first):
            return f"inputs of shapes {_dims(first)} and {_dims(other)} have different ranks"
        for a, (x, y) in enumerate(zip(first, other)):
            if a != axis and x != y:
                return f"inputs of shapes {_dims(first)} and {_dims(other)} differ along axis {a} (joined along {axis})"
    return None


def _conv(layer: Layer, shapes: list[Shape | None]) -> str | None:
    """Input channels ``x[1]`` equal ``weight[1] * groups``."""
    x, w = (shapes + [None, None])[:2]
    if x is None or w is None or len(x) < 2 or len(w) < 2:
        return None
    groups = int(layer.attrs.get("groups", 1) or 1)
    if x[1] != w[1] * groups:
        return (f"input of shape {_dims(x)} has {x[1]} channels, but its weight of shape {_dims(w)} with "
                f"{groups} group(s) expects {w[1] * groups}")
    return None


def _matmul(layer: Layer, shapes: list[Shape | None]) -> str | None:
    """The inner sizes of a matrix product agree (Gemm's transposes applied)."""
    a, b = (shapes + [None, None])[:2]
    if a is None or b is None or not a or not b:
        return None
    k_a = a[0] if layer.attrs.get("trans_a") else a[-1]
    k_b = b[-1] if layer.attrs.get("trans_b") else (b[-2] if len(b) > 1 else b[0])
    if k_a != k_b:
        return f"operands of shapes {_dims(a)} and {_dims(b)} have inner sizes {k_a} and {k_b}"
    return None


Check = Callable[[Layer, list[Shape | None]], str | None]
ELEMENTWISE = ("Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "Where", "Equal", "Less",
               "LessOrEqual", "Greater", "GreaterOrEqual", "And", "Or", "Xor", "Mod", "BitShift", "PRelu")
CHECKS: dict[str, Check] = {**dict.fromkeys(ELEMENTWISE, _broadcast), "Concat": _concat,
                            **dict.fromkeys(("Conv", "ConvInteger", "QLinearConv"), _conv),
                            **dict.fromkeys(("MatMul", "Gemm", "MatMulInteger", "QLinearMatMul"), _matmul)}


def check_consistency(graph: ModelGraph, label: str, overrides: dict[str, list[tuple[int, int, int]]]) -> None:
    """Raise on the first layer whose input shapes do not fit each other, naming the layer and the
    shapes, and the ``--input-shape`` override that led there when one changed a fixed dim."""
    tensors = graph.tensors
    for layer in graph.layers_as_added():
        check = CHECKS.get(layer.op)
        if check is None:
            continue
        shapes = [info.shape if (info := tensors.get(t)) is not None else None for t in layer.inputs]
        if layer.op in ("QLinearMatMul", "MatMulInteger"):
            shapes = shapes[:2]
        problem = check(layer, shapes)
        if problem is not None:
            raise ArchlintError(f"{label}: layer '{layer.name}' ({layer.op}) cannot run: {problem}"
                                f"{_override_text(overrides)}")


def _override_text(overrides: dict[str, list[tuple[int, int, int]]]) -> str:
    changes = [f"input '{name}' axis {axis} from {declared} to {given}"
               for name, items in overrides.items() for axis, declared, given in items]
    if not changes:
        return " (is --input-shape one the model can take?)"
    return f"; --input-shape changed the model's fixed {', '.join(changes)}"
