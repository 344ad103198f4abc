"""Memory traffic, arithmetic intensity and a roofline time estimate per layer.

Bytes moved by a layer (ShuffleNet V2's memory access cost, for one pass with no cache
reuse across layers): every data input it reads, every output it writes, and every
weight it reads, each at its element size (below)::

    bytes = sum(numel(t) * elem_bytes(t) for t in inputs + outputs + weights)

A 1x1 conv c1 -> c2 on an h x w map moves ``hw(c1 + c2) + c1*c2`` elements (``c1*c2/G``
with G groups). Views (reshape, transpose, identity) and shape arithmetic move nothing.

Element sizes:

- a float tensor moves at the report dtype's size (``--dtype``: fp32 4, fp16/bf16 2, int8 1),
  whatever it is stored as: the dtype is what the model would run in;
- an integer tensor of a quantized type (int8, uint8, int16, uint16, int4, uint4) read in a
  ``data``, ``weight`` or ``bias`` slot of the layer's kind (``archlint.ops.registry`` slots; every
  input of a variadic kind is data), and any integer parameter (QLinearConv's int32 bias), moves
  at its stored size; so does every non-bool integer output of a layer that reads a quantized
  data or weight operand (uint8 maps, ConvInteger's int32 accumulator);
- other integer tensors move nothing: indices (a Gather's index, a torch embedding's int64 ids),
  shape tensors, bool masks, int64 shape arithmetic; constants that are not parameters (axes,
  scalar scales and zero points) move nothing either.

Quantization boundaries (QDQ format): onnxruntime fuses ``DequantizeLinear -> op ->
QuantizeLinear`` into the quantized op (``QLinearConv``, ...), so the float tensors around a
boundary never exist in memory. The registry names boundaries (``quant_boundary``, set on ONNX
QuantizeLinear / DequantizeLinear by their op record), and:

- a dequantize boundary's output moves at the size of its integer input (its consumer reads
  the int8 weight or uint8 map);
- a tensor written by a layer and read only by quantize boundaries (and not a model output)
  moves at the size of their output;
- the boundary layers themselves move nothing (as every identity).

So a model quantized by ``onnxruntime.quantization.quantize_static`` moves the same bytes in
QDQ and QOperator format: the float model's tensors with activations and weights at 1 byte,
biases at 4 (int32), and the ops the quantizer folds (a Relu after a conv) gone. Not modelled: a
per-channel scale vector of more than 64 elements is not a constant in the IR, so it counts as
float traffic where a QOperator layer reads it and as nothing in QDQ (its reader is the
dequantize boundary); an op with no quantized kernel that onnxruntime would run in float after
a real DequantizeLinear is still counted at the integer size.

    intensity = FLOPs / bytes
    time = overhead(class) + max(FLOPs / (peak(dtype) * efficiency(class)), bytes / bandwidth)

``peak(dtype)`` is the profile's peak for the report dtype, except for a layer whose every
moving ``data`` and ``weight`` operand is an 8-bit quantized integer (stored, or behind a
dequantize boundary): it runs on the profile's ``int8`` peak (the fp32 peak when a profile
has none, as for any dtype it lacks). ``efficiency`` is the share of peak a dense, depthwise or
grouped convolution reaches on the device, and ``overhead`` its fixed cost per layer (from the
profile, or measured by ``archlint calibrate``, which fits both per class: on a 2-core CPU the
fixed cost of a 3x3 conv came out at 70-90 us for dense convs and 90-120 us for grouped and
depthwise ones, against 10-15 us for a 1-channel conv).
"""

from __future__ import annotations

import math

from archlint.dtypes import element_bytes, is_float, is_quantized_integer
from archlint.ir import Layer, ModelGraph
from archlint.ops import REGISTRY, OpKind, registry
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
        """``(bytes, class, bytes per element)`` of a tensor (class FLOAT, QUANT or INT), cached."""
        found = self.moved.get(t)
        if found is None:
            graph = self.graph
            n = moved_elements(graph, t)
            dtype = graph.tensors[t].dtype if t in graph.tensors else None
            if not n:
                found = (0, FLOAT, 0)  # nothing moves, whatever the slot
            elif is_float(dtype):
                size, quant = self.fused.get(t, (self.elem, False))
                found = (n * size, QUANT if quant else FLOAT, size)
            elif is_quantized_integer(dtype):
                size = element_bytes(dtype)
                found = (n * size, QUANT, size)
            else:
                size = element_bytes(dtype)
                found = (n * size, INT, size)
            self.moved[t] = found
        return found

    def layer(self, layer: Layer, flops: int | None) -> tuple[int, float | None, float]:
        """``(bytes, intensity, time)`` of one layer (module docstring for the formulas)."""
        spec = registry.get(layer.kind)
        if not spec.moves_data:
            return 0, None, 0.0
        graph, moved, tensor = self.graph, self.moved, self._tensor
        inputs = layer.inputs
        tensors = inputs + layer.outputs
        nbytes = 0
        reads_quant = False  # a quantized integer in a data or weight slot
        for t in (dict.fromkeys(tensors) if len(tensors) > 2 else tensors):  # a tensor counts once
            if t:
                b, cls, _ = moved.get(t) or tensor(t)
                if cls:  # an integer, or a float fused into a quantized op: it depends on the slot
                    nbytes, reads_quant = self._by_slot(layer, spec)
                    break
                nbytes += b
        f = flops or 0
        cls_name = layer_class(graph, layer)
        cpg = None
        if cls_name == "grouped":
            x = graph.shape(inputs[0])
            cpg = x[1] // int(layer.attrs.get("groups", 1)) if x is not None and len(x) > 1 else None
        dtype = INT8 if reads_quant and self._int8_operands(layer, spec) else self.dtype
        time = roofline_time(f, nbytes, self.profile, dtype, cls_name, cpg)
        return nbytes, (f / nbytes) if nbytes else None, time

    def _by_slot(self, layer: Layer, spec: OpKind) -> tuple[int, bool]:
        """Bytes of a layer that reads or writes a tensor of class QUANT or INT, and whether it reads
        a quantized integer in a data or weight slot (module docstring for the rules)."""
        graph, tensor = self.graph, self._tensor
        slots, rest = spec.slots, ("data" if spec.variadic else None)
        nslots = len(slots)
        counted: set[str] = set()
        nbytes = 0
        reads_quant = False
        for i, t in enumerate(layer.inputs):
            if not t or t in counted:
                continue
            b, cls, _ = tensor(t)
            if not b:
                continue
            if cls:
                role = slots[i] if i < nslots else rest
                if cls == QUANT and role in MOVING_ROLES:
                    reads_quant = reads_quant or role in DATA_ROLES
                elif t not in graph.params:
                    continue  # index, shape and mask tensors
            counted.add(t)
            nbytes += b
        for t in layer.outputs:
            if not t or t in counted:
                continue
            b, cls, _ = tensor(t)
            if b and (cls != INT or (reads_quant and graph.tensors[t].dtype != "bool")):
                nbytes += b
        return nbytes, reads_quant

    def _int8_operands(self, layer: Layer, spec: OpKind) -> bool:
        """Whether every moving tensor in a data or weight slot is an 8-bit quantized integer."""
        slots, rest = spec.slots, ("data" if spec.variadic else None)
        nslots = len(slots)
        for i, t in enumerate(layer.inputs):
            role = slots[i] if i < nslots else rest
            if t and role in DATA_ROLES:
                b, cls, size = self._tensor(t)
                if b and (cls != QUANT or size != 1):
                    return False
        return True
