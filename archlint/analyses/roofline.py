"""Memory traffic, arithmetic intensity and a roofline time estimate per layer.

Bytes moved by a layer (ShuffleNet V2's memory access cost, for one pass with no cache
reuse across layers): every data input it reads, every output it writes, and every
weight it reads, at the element size of the chosen dtype::

    bytes = (sum(numel(inputs)) + sum(numel(outputs)) + sum(numel(weights))) * elem_bytes

A 1x1 conv c1 -> c2 on an h x w map moves ``hw(c1 + c2) + c1*c2`` elements (``c1*c2/G``
with G groups). Views (reshape, transpose, identity) and shape arithmetic move nothing.

    intensity = FLOPs / bytes
    time = overhead(class) + max(FLOPs / (peak(dtype) * efficiency(class)), bytes / bandwidth)

``efficiency`` is the share of peak a dense, depthwise or grouped convolution reaches on
the device, and ``overhead`` its fixed cost per layer (from the profile, or measured by
``archlint calibrate``, which fits both per class: on a 2-core CPU the fixed cost of a 3x3
conv came out at 70-90 us for dense convs and 90-120 us for grouped and depthwise ones,
against 10-15 us for a 1-channel conv).
"""

from __future__ import annotations

import math

from archlint.dtypes import element_bytes, is_float
from archlint.ir import Layer, ModelGraph
from archlint.ops import registry
from archlint.profiles import Profile


def layer_class(graph: ModelGraph, layer: Layer) -> str:
    """The registry's conv class of the layer: ``dense``, ``grouped`` or ``depthwise``."""
    return registry.get(layer.kind).conv_class(layer.attrs, graph.shape(layer.inputs[0]) if layer.inputs else None)


def roofline_time(flops: float, nbytes: float, profile: Profile, dtype: str, cls: str = "dense",
                  group_channels: int | None = None) -> float:
    """``overhead(class) + max(flops / (peak * efficiency), bytes / bandwidth)`` in seconds.

    A grouped conv runs one small matrix product per group: its efficiency is the profile's
    (measured at ``grouped_channels`` input channels per group) scaled by
    ``min(1, group_channels / grouped_channels)``."""
    eff = profile.efficiency.get(cls, 1.0)
    if cls == "grouped" and group_channels:
        eff *= min(1.0, group_channels / profile.grouped_channels)
    compute = flops / (profile.peak(dtype) * eff)
    return profile.overhead_for(cls) + max(compute, nbytes / profile.bandwidth)


def moved_elements(graph: ModelGraph, tensor: str) -> int:
    """Elements of a tensor that count as memory traffic: 0 for shape arithmetic (non-parameter
    constants such as axes and scales) and integer index or shape tensors."""
    info = graph.tensors.get(tensor)
    if info is None or info.shape is None:
        return 0
    if tensor not in graph.params:
        if tensor in graph.constants:
            return 0  # shape arithmetic, axes, scales
        if not is_float(info.dtype):
            return 0  # integer index and shape tensors
    return math.prod(info.shape)


class TrafficModel:
    """The traffic and roofline estimate of one report's layers, with each tensor's
    :func:`moved_elements` computed once (a tensor is read by several layers)."""

    def __init__(self, graph: ModelGraph, profile: Profile, dtype: str) -> None:
        self.graph, self.profile, self.dtype = graph, profile, dtype
        self.elem = element_bytes(dtype)
        self.moved: dict[str, int] = {}

    def layer(self, layer: Layer, flops: int | None) -> tuple[int, float | None, float]:
        """``(bytes, intensity, time)`` of one layer (module docstring for the formulas)."""
        if not registry.get(layer.kind).moves_data:
            return 0, None, 0.0
        graph, moved = self.graph, self.moved
        tensors = layer.inputs + layer.outputs
        elements = 0
        for t in (dict.fromkeys(tensors) if len(tensors) > 2 else tensors):
            if t:
                n = moved.get(t)
                if n is None:
                    n = moved[t] = moved_elements(graph, t)
                elements += n
        nbytes = elements * self.elem
        f = flops or 0
        cls = layer_class(graph, layer)
        cpg = None
        if cls == "grouped":
            x = graph.shape(layer.inputs[0])
            cpg = x[1] // int(layer.attrs.get("groups", 1)) if x is not None and len(x) > 1 else None
        time = roofline_time(f, nbytes, self.profile, self.dtype, cls, cpg)
        return nbytes, (f / nbytes) if nbytes else None, time
