"""Per-layer parameters, MACs and FLOPs from the registry's formulas.

Parameters: each weight tensor counts once, on the first layer (in topological
order) that reads it; later readers record it as shared. MACs and FLOPs are counted
on every call. A layer whose cost cannot be computed (unknown op, unknown shape) is
listed, never counted as zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from archlint.analyses.shapes import call_of
from archlint.ir import Layer, ModelGraph
from archlint.ops import REGISTRY, UNKNOWN, OpCall, UnknownShape

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8, "int64": 8, "int32": 4, "int16": 2,
               "int8": 1, "uint8": 1, "bool": 1, "float8_e4m3fn": 1, "float8_e5m2": 1, "complex64": 8,
               "complex128": 16, "uint16": 2, "uint32": 4, "uint64": 8}


@dataclass(slots=True)
class LayerCost:
    params: int = 0
    shared_params: int = 0
    macs: int | None = 0
    flops: int | None = 0
    uncounted: str | None = None


@dataclass
class CostResult:
    layers: dict[str, LayerCost] = field(default_factory=dict)
    params: int = 0
    macs: int = 0
    flops: int = 0


def layer_cost(graph: ModelGraph, layer: Layer, call: OpCall | None = None) -> LayerCost:
    """MACs and FLOPs of one layer (params are assigned by :func:`compute`)."""
    if layer.kind == UNKNOWN or layer.kind not in REGISTRY:
        if layer.attrs.get("malformed"):
            return LayerCost(macs=None, flops=None, uncounted=f"malformed attributes on op '{layer.op}'")
        return LayerCost(macs=None, flops=None, uncounted=f"no cost formula for op '{layer.op}'")
    entry = REGISTRY[layer.kind]
    call = call or call_of(graph, layer)
    try:
        macs = entry.macs_fn(call)
        flops = entry.flops_fn(call, macs)
    except UnknownShape as exc:
        return LayerCost(macs=None, flops=None, uncounted=f"{exc} for op '{layer.op}'")
    except (TypeError, ValueError, IndexError, KeyError, ZeroDivisionError) as exc:
        return LayerCost(macs=None, flops=None, uncounted=f"cannot cost op '{layer.op}' ({type(exc).__name__}: {exc})")
    return LayerCost(macs=int(macs), flops=int(flops))


def compute(graph: ModelGraph, calls: dict[str, OpCall] | None = None) -> CostResult:
    """Every layer's cost; ``calls`` holds layers' :class:`OpCall`s already built."""
    result = CostResult()
    seen: set[str] = set()
    calls = calls or {}
    for layer in graph.layers():
        cost = layer_cost(graph, layer, calls.get(layer.name))
        for w in dict.fromkeys(layer.weights):
            n = graph.tensors[w].numel or 0
            if w in seen:
                cost.shared_params += n
            else:
                seen.add(w)
                cost.params += n
        result.layers[layer.name] = cost
        result.params += cost.params
        result.macs += cost.macs or 0
        result.flops += cost.flops or 0
    # Parameters no layer reads (e.g. an unused module) still belong to the model.
    for w in graph.params - seen:
        result.params += graph.tensors[w].numel or 0
    return result


def tensor_bytes(graph: ModelGraph, name: str) -> int:
    info = graph.tensors.get(name)
    if info is None or info.shape is None:
        return 0
    return (info.numel or 0) * DTYPE_BYTES.get(info.dtype or "float32", 4)


def is_data_tensor(graph: ModelGraph, name: str) -> bool:
    """Floating-point activations (not shape arithmetic on integers)."""
    info = graph.tensors.get(name)
    return info is not None and (info.dtype is None or info.dtype.startswith(("float", "bfloat", "complex")))
