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

Quantization boundaries: onnxruntime fuses ``DequantizeLinear -> op -> QuantizeLinear`` into the
quantized op (``QLinearConv``, ...), so the float tensors inside such a pattern never exist in
memory; a boundary outside one runs as an op of its own. The registry names boundaries
(``quant_boundary``, set on ONNX QuantizeLinear / DequantizeLinear by their op record), and
(:func:`quant_fusion`):

- a tensor written by a layer and read only by quantize boundaries (as their data input), and
  not a model output, is quantized on write: it moves at the size of their output;
- a dequantize boundary is fused when it reads a constant (an int8 weight, an int32 bias: fused
  into its reader, or folded once at load time), or when its output is not a model output and
  each of its readers is a quantize boundary or a layer whose every output is quantized on write.
  Its output then moves at the size of its integer input (the reader reads the int8 weight or
  uint8 map);
- a quantize boundary is fused when its input is a constant, quantized on write, or a fused
  dequantize boundary's output;
- fused boundaries move nothing (as every identity). Every other boundary runs standalone and
  moves data like any layer: its data input and its output, each at its size above (the float
  side at the report dtype's, the integer side at its stored size; scales and zero points
  nothing). These are the QuantizeLinear of a model input or of a tensor float layers also
  read, and the DequantizeLinear that writes a model output or feeds a layer running in float.

So a model quantized by ``onnxruntime.quantization.quantize_static`` moves the same bytes in
QDQ and QOperator format: the float model's tensors with activations and weights at 1 byte,
biases at 4 (int32), the ops the quantizer folds (a Relu after a conv) gone, plus the same
standalone conversions at the model's float edges (QOperator writes them as the same nodes).
Not modelled: a per-channel scale vector of more than 64 elements is not a constant in the IR,
so it counts as float traffic where a QOperator layer reads it and as nothing in QDQ (its reader
is the dequantize boundary); the rule is structural, not a list of the ops onnxruntime has
quantized kernels for: a ``DequantizeLinear -> op -> QuantizeLinear`` whose op has none still
counts as fused, and onnxruntime's few fusions without a trailing QuantizeLinear (a MatMul with
a float output into ``MatMulIntegerToFloat``) or through a view (``DequantizeLinear -> Reshape
-> Conv``) count a standalone DequantizeLinear and a float read.

    intensity = FLOPs / bytes
    time = overhead(class) + max(FLOPs / (peak(dtype) * efficiency(class)), bytes / bandwidth)

``peak(dtype)`` is the profile's peak for the report dtype, except for a layer whose every
moving ``data`` and ``weight`` operand is an 8-bit quantized integer (stored, or behind a
fused dequantize boundary): it runs on the profile's ``int8`` peak (the fp32 peak when a profile
has none, as for any dtype it lacks). ``efficiency`` is the share of peak a dense, depthwise or
grouped convolution reaches on the device, and ``overhead`` its fixed cost per layer (from the
profile, or measured by ``archlint calibrate``, which fits both per class: on a 2-core CPU the
fixed cost of a 3x3 conv came out at 70-90 us for dense convs and 90-120 us for grouped and
depthwise ones, against 10-15 us for a 1-channel conv). A standalone quantization boundary
counts no FLOPs: its time is the dense overhead plus its bytes over the bandwidth.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from archlint.dtypes import element_bytes, is_float, is_quantized_integer
from archlint.ir import Layer, ModelGraph
from archlint.ops import OpKind, registry
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


class QuantFusion(NamedTuple):
    """What a runtime makes of a graph's quantization boundaries (module docstring for the rules):
    ``sizes``: each float tensor that exists only as an integer, with the bytes per element it
    moves at and whether that is a quantized integer; ``standalone``: the names of the boundary
    layers that run on their own and move data."""

    sizes: dict[str, tuple[int, bool]]
    standalone: frozenset[str]


def _size(graph: ModelGraph, t: str) -> tuple[int, bool] | None:
    """Bytes per element of a tensor's stored dtype and whether it is a quantized integer."""
    dtype = getattr(graph.tensors.get(t), "dtype", None)
    return (element_bytes(dtype), is_quantized_integer(dtype)) if dtype is not None else None


def _boundaries(graph: ModelGraph) -> tuple[dict[str, str], dict[str, list[Layer]]]:
    """The quantization boundary layers (name -> ``quantize`` or ``dequantize``), in graph order,
    and the readers of every tensor (each reader once)."""
    sides: dict[str, str] = {}
    readers: dict[str, list[Layer]] = {}
    for layer in graph.layers_as_added():
        for t in dict.fromkeys(layer.inputs):
            if t:
                readers.setdefault(t, []).append(layer)
        side = registry.get(layer.kind).quant_boundary(layer.attrs)
        if side and layer.inputs and layer.outputs:
            sides[layer.name] = side
    return sides, readers


def _quantized_on_write(graph: ModelGraph, sides: dict[str, str],
                        readers: dict[str, list[Layer]]) -> dict[str, tuple[int, bool]]:
    """Tensors written by a layer, not model outputs, read only by quantize boundaries as their
    data input: the size they move at (the largest of the boundaries' outputs)."""
    outputs = set(graph.outputs)
    found: dict[str, tuple[int, bool]] = {}
    for t, rs in readers.items():
        if t in outputs or t not in graph.producer:
            continue
        if all(sides.get(r.name) == "quantize" and r.inputs[0] == t for r in rs):
            sizes = [s for r in rs if (s := _size(graph, r.outputs[0])) is not None]
            if len(sizes) == len(rs):
                found[t] = max(sizes)
    return found


def quant_fusion(graph: ModelGraph) -> QuantFusion:
    """Which quantization boundaries a runtime fuses (QDQ format) and the sizes that leaves, by
    the rules of the module docstring ("Quantization boundaries")."""
    outputs, constants, params = set(graph.outputs), graph.constants, graph.params
    sides, readers = _boundaries(graph)
    fused = _quantized_on_write(graph, sides, readers)
    on_write = set(fused)

    def absorbs(r: Layer) -> bool:
        side = sides.get(r.name)
        if side is not None:
            return side == "quantize"
        return all(o in on_write for o in r.outputs if o)

    standalone: set[str] = set()
    for name, side in sides.items():
        layer = graph.layer(name)
        src, out = layer.inputs[0], layer.outputs[0]
        if side != "dequantize":
            continue
        if src in constants or src in params or (out not in outputs and all(map(absorbs, readers.get(out, [])))):
            size = _size(graph, src)
            if size is not None:
                fused[out] = size
        else:
            standalone.add(name)
            fused.pop(out, None)  # a DequantizeLinear -> QuantizeLinear pair that also writes a model output
    for name, side in sides.items():
        src = graph.layer(name).inputs[0]
        if side == "quantize" and not (src in constants or src in params or src in fused):
            standalone.add(name)
    return QuantFusion(fused, frozenset(standalone))


class TrafficModel:
    """The traffic and roofline estimate of one report's layers, with each tensor's size and class
    computed once (a tensor is read by several layers). Module docstring for the rules."""

    def __init__(self, graph: ModelGraph, profile: Profile, dtype: str) -> None:
        self.graph, self.profile, self.dtype = graph, profile, dtype
        self.elem = element_bytes(dtype)
        self.fused, self.standalone = quant_fusion(graph)
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
            if layer.name not in self.standalone:
                return 0, None, 0.0
            # a standalone quantization boundary: its data input and output (scales, zero points: nothing)
            nbytes = self._tensor(layer.inputs[0])[0] + self._tensor(layer.outputs[0])[0]
            f = flops or 0
            time = roofline_time(f, nbytes, self.profile, self.dtype)
            return nbytes, (f / nbytes) if nbytes else None, time
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
