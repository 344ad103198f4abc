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

from archlint.dtypes import element_bytes, is_float, is_quantized_integer
from archlint.ir import Layer, ModelGraph
from archlint.ops import REGISTRY, registry
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
    """Elements of a tensor that can count as memory traffic: 0 when its shape is unknown and for
    constants that are not parameters (shape arithmetic, axes, scales, zero points). Whether an
    integer tensor counts depends on the slot it is read in (:meth:`TrafficModel.layer`)."""
    info = graph.tensors.get(tensor)
    if info is None or info.shape is None:
        return 0
    if tensor in graph.constants and tensor not in graph.params:
        return 0
    return math.prod(info.shape)


# How a tensor moves (TrafficModel._tensor): a float at the report dtype's size, a quantized value
# (an integer of QUANTIZED_INTEGERS, or a float that a quantization boundary fuses away), or another
# integer (index, shape, mask, int32 accumulator).
FLOAT, QUANT, INT = 0, 1, 2
DATA_ROLES = frozenset({"data", "weight"})
MOVING_ROLES = frozenset({"data", "weight", "bias"})
INT8 = "int8"


def fused_sizes(graph: ModelGraph) -> dict[str, tuple[int, bool]]:
    """Float tensors that exist only as integers once a runtime fuses the quantization boundaries
    (QDQ format), with the bytes per element they move at and whether that is a quantized integer:

    - a dequantize boundary's output: the size of its (integer) input;
    - a tensor written by a layer and read only by quantize boundaries (not a model output):
      the size of their outputs (the largest when they differ).
    """
    boundary_kinds = {name for name, entry in REGISTRY.items() if entry.quant_boundary_fn is not None}
    tensors = graph.tensors
    fused: dict[str, tuple[int, bool]] = {}
    quantized: dict[str, list[Layer]] = {}
    for layer in graph.layers_as_added():
        if layer.kind not in boundary_kinds or not layer.inputs or not layer.outputs:
            continue
        side = registry.get(layer.kind).quant_boundary(layer.attrs)
        if side == "dequantize":
            src = tensors.get(layer.inputs[0])
            if src is not None and src.dtype is not None:
                fused[layer.outputs[0]] = (element_bytes(src.dtype), is_quantized_integer(src.dtype))
        elif side == "quantize":
            quantized.setdefault(layer.inputs[0], []).append(layer)
    outputs = set(graph.outputs)
    for t, readers in quantized.items():
        producer = graph.producer.get(t)
        if producer is None or t in outputs or t in fused:
            continue
        consumers = [graph.layer(n) for n in graph.successors(producer)]
        if any(t in c.inputs and c not in readers for c in consumers):
            continue  # also read as a float
        sizes = [(element_bytes(d), is_quantized_integer(d)) for q in readers
                 if (d := getattr(tensors.get(q.outputs[0]), "dtype", None)) is not None]
        if sizes and len(sizes) == len(readers):
            fused[t] = max(sizes)
    return fused


class TrafficModel:
    """The traffic and roofline estimate of one report's layers, with each tensor's size and class
    computed once (a tensor is read by several layers). Module docstring for the rules."""

    def __init__(self, graph: ModelGraph, profile: Profile, dtype: str) -> None:
        self.graph, self.profile, self.dtype = graph, profile, dtype
        self.elem = element_bytes(dtype)
        self.fused = fused_sizes(graph)
        self.moved: dict[str, tuple[int, int, int]] = {}

    def _tensor(self, t: str) -> tuple[int, int, int]:
        """``(elements, bytes per element, class)`` of a tensor (FLOAT, QUANT or INT)."""
        found = self.moved.get(t)
        if found is None:
            graph = self.graph
            n = moved_elements(graph, t)
            dtype = graph.tensors[t].dtype if t in graph.tensors else None
            if is_float(dtype):
                size, quant = self.fused.get(t, (self.elem, False))
                found = (n, size, QUANT if quant else FLOAT)
            elif is_quantized_integer(dtype):
                found = (n, element_bytes(dtype), QUANT)
            else:
                found = (n, element_bytes(dtype), INT)
            self.moved[t] = found
        return found

    def layer(self, layer: Layer, flops: int | None) -> tuple[int, float | None, float]:
        """``(bytes, intensity, time)`` of one layer (module docstring for the formulas)."""
        spec = registry.get(layer.kind)
        if not spec.moves_data:
            return 0, None, 0.0
        graph = self.graph
        slots, rest = spec.slots, ("data" if spec.variadic else None)
        nslots = len(slots)
        counted: set[str] = set()
        nbytes = 0
        int8 = None  # whether every data and weight operand moves as an 8-bit quantized integer
        reads_quant = False
        for i, t in enumerate(layer.inputs):
            if not t or t in counted:
                continue
            n, size, cls = self._tensor(t)
            if not n:
                continue
            role = slots[i] if i < nslots else rest
            if cls == QUANT:
                if role not in MOVING_ROLES and t not in graph.params:
                    continue
                reads_quant = reads_quant or role in DATA_ROLES
            elif cls == INT and t not in graph.params:
                continue  # index, shape and mask tensors
            counted.add(t)
            nbytes += n * size
            if role in DATA_ROLES:
                int8 = (int8 is not False) and cls == QUANT and size == 1
        for t in layer.outputs:
            if not t or t in counted:
                continue
            n, size, cls = self._tensor(t)
            if n and (cls != INT or (reads_quant and graph.tensors[t].dtype != "bool")):
                counted.add(t)
                nbytes += n * size
        f = flops or 0
        cls_name = layer_class(graph, layer)
        cpg = None
        if cls_name == "grouped":
            x = graph.shape(layer.inputs[0])
            cpg = x[1] // int(layer.attrs.get("groups", 1)) if x is not None and len(x) > 1 else None
        dtype = INT8 if int8 else self.dtype
        time = roofline_time(f, nbytes, self.profile, dtype, cls_name, cpg)
        return nbytes, (f / nbytes) if nbytes else None, time
