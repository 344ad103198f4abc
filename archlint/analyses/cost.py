"""Per-layer parameters, MACs and FLOPs from the registry's formulas.

Parameters: each weight tensor counts once, on the first layer (in topological
order) that reads it; later readers record it as shared. MACs and FLOPs are counted
on every call. A layer whose cost cannot be computed (unknown op, unknown shape) is
listed, never counted as zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from archlint.analyses.shapes import call_of
from archlint.dtypes import element_bytes, is_float
from archlint.ir import Layer, ModelGraph
from archlint.ops import REGISTRY, UNKNOWN, OpCall, UnknownShape


@dataclass(slots=True)
class LayerCost:
    params: int = 0
    shared_params: int = 0
    macs: int | None = 0
    flops: int | None = 0
    uncounted: str | None = None


@dataclass
class CostResult:
    """``layers``: one :class:`LayerCost` per layer, in ``graph.layers()`` order."""

    layers: list[LayerCost] = field(default_factory=list)
    params: int = 0
    macs: int = 0
    flops: int = 0


def layer_cost(graph: ModelGraph, layer: Layer, call: OpCall | None = None) -> LayerCost:
    """MACs and FLOPs of one layer (params are assigned by :func:`compute`)."""
    entry = REGISTRY.get(layer.kind)
    if entry is None or layer.kind == UNKNOWN:
        if layer.attrs.get("malformed"):
            return LayerCost(macs=None, flops=None, uncounted=f"malformed attributes on op '{layer.op}'")
        return LayerCost(macs=None, flops=None, uncounted=f"no cost formula for op '{layer.op}'")
    if call is None:
        call = call_of(graph, layer)
    try:
        macs = entry.macs_fn(call)
        flops = entry.flops_fn(call, macs)
    except UnknownShape as exc:
        return LayerCost(macs=None, flops=None, uncounted=f"{exc} for op '{layer.op}'")
    except (TypeError, ValueError, IndexError, KeyError, ZeroDivisionError) as exc:
        return LayerCost(macs=None, flops=None, uncounted=f"cannot cost op '{layer.op}' ({type(exc).__name__}: {exc})")
    return LayerCost(0, 0, int(macs), int(flops))  # params, shared_params, macs, flops


def compute(graph: ModelGraph, calls: Sequence[OpCall] | None = None) -> CostResult:
    """Every layer's cost, in ``graph.layers()`` order; ``calls`` holds those layers'
    :class:`OpCall`s when they are already built (same order)."""
    result = CostResult()
    seen: set[str] = set()
    tensors = graph.tensors
    order = graph.layers()
    per_layer = result.layers
    macs = flops = params = 0
    for layer, call in zip(order, calls if calls is not None else [None] * len(order)):
        cost = layer_cost(graph, layer, call)
        weights = layer.weights
        if weights:
            for w in (dict.fromkeys(weights) if len(weights) > 1 else weights):
                n = tensors[w].numel or 0
                if w in seen:
                    cost.shared_params += n
                else:
                    seen.add(w)
                    cost.params += n
            params += cost.params
        per_layer.append(cost)
        if cost.macs:
            macs += cost.macs
        if cost.flops:
            flops += cost.flops
    # Parameters no layer reads (e.g. an unused module) still belong to the model.
    for w in graph.params - seen:
        params += tensors[w].numel or 0
    result.params, result.macs, result.flops = params, macs, flops
    return result


def tensor_bytes(graph: ModelGraph, name: str) -> int:
    info = graph.tensors.get(name)
    if info is None or info.shape is None:
        return 0
    return (info.numel or 0) * element_bytes(info.dtype)


def is_data_tensor(graph: ModelGraph, name: str) -> bool:
    """Floating-point activations (not shape arithmetic on integers)."""
    info = graph.tensors.get(name)
    return info is not None and is_float(info.dtype)
