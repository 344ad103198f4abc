"""Fill output shapes the frontend could not give, using the registry's shape rules."""

from __future__ import annotations

from archlint.ir import Layer, ModelGraph
from archlint.ops import REGISTRY, OpCall, UnknownShape


def call_of(graph: ModelGraph, layer: Layer) -> OpCall:
    """The registry's view of a layer: its attributes and the shapes of its tensors."""
    get = graph.tensors.get
    return OpCall(layer.attrs, [info.shape if (info := get(t)) is not None else None for t in layer.inputs],
                  [info.shape if (info := get(t)) is not None else None for t in layer.outputs])


def fill_missing_shapes(graph: ModelGraph) -> list[str]:
    """Walk in topological order; where an output shape is unknown and the op kind has a
    shape rule, apply it. Returns the names of the layers whose shapes were filled."""
    filled = []
    tensors = graph.tensors
    get = tensors.get
    for layer in graph.layers():
        outputs = layer.outputs
        for t in outputs:
            info = get(t)
            if info is None or info.shape is None:
                break
        else:
            continue  # every output has its shape (and a layer with no output needs none)
        entry = REGISTRY.get(layer.kind)
        if entry is None or entry.shape_fn is None:
            continue
        try:
            shapes = entry.shape_fn(call_of(graph, layer))
        except (UnknownShape, TypeError, ValueError, IndexError, KeyError, ZeroDivisionError):
            continue
        if any(d < 0 for shape in shapes for d in shape):
            continue  # the op cannot run on these inputs (a kernel larger than the padded input)
        for t, shape in zip(layer.outputs, shapes):
            if graph.shape(t) is None:
                graph.tensors[t].shape = tuple(int(d) for d in shape)
        filled.append(layer.name)
    return filled
