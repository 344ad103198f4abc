"""The op registry: one entry per op kind of the shared vocabulary.

Each :class:`OpKind` holds small pure functions, each documenting its formula:

- ``shape(call)``: output shapes, used only where the frontend could not give them;
- ``macs(call)``: multiply-accumulates (conv, linear/matmul, einsum, attention only);
- ``flops(call, macs)``: floating-point operations, as defined in the README;
- ``rf(call, fields)``: receptive-field transfer from the input tensors' fields to the
  output's (see :mod:`archlint.analyses.receptive_field`).

Besides the formulas, an entry declares every property of the kind that the rest of
archlint needs, so that nothing outside ``archlint/ops/`` compares kind names:

- ``slots``: the role of each input position the formulas index (``data``, ``weight``,
  ``bias``, ...); frontends put a layer's inputs in this order (an absent optional input is
  ``""``), and any further inputs (quantization scales, zero points, shape tensors) after them;
- ``moves_data``, ``data_flow``, ``hidden``: memory traffic, activation memory, table display;
- ``spatially_pointwise``, ``token_mixing``, ``sliding_window``, ``is_conv``,
  ``channel_axis``: what the rules ask about a layer's spatial and channel structure;
- ``conv_class``: dense, grouped or depthwise (the roofline's efficiency classes);
- ``quant_boundary``: ``quantize`` or ``dequantize`` for a layer that only converts between float
  and a quantized integer type, which a runtime fuses into its neighbours where it can (the
  traffic model);
- ``attrs``: the normalised attribute schema (a ``TypedDict``) both frontends produce.

Parameters are not a per-kind formula: a layer's params are the element counts of
the weight tensors it owns, each shared tensor counted once (see ``analyses.cost``).
Formulas are registered with decorators, in the style of
``torch/utils/flop_counter.py``, and registering a kind twice is an error.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypedDict

from archlint.ir import Shape


@dataclass(slots=True)
class OpCall:
    """What a formula sees of one layer: normalised attributes and tensor shapes.

    Formulas only read it. Not frozen: a frozen dataclass costs three times as much to
    build, and one is built per layer."""

    attrs: dict[str, Any]
    in_shapes: list[Shape | None]
    out_shapes: list[Shape | None]

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)

    @property
    def x(self) -> Shape:
        """The first input's shape (the data input)."""
        shape = self.in_shapes[0]
        if shape is None:
            raise UnknownShape("input shape unknown")
        return shape

    @property
    def y(self) -> Shape:
        """The first output's shape."""
        shape = self.out_shapes[0] if self.out_shapes else None
        if shape is None:
            raise UnknownShape("output shape unknown")
        return shape

    def input(self, i: int) -> Shape:
        shape = self.in_shapes[i] if i < len(self.in_shapes) else None
        if shape is None:
            raise UnknownShape(f"shape of input {i} unknown")
        return shape


class UnknownShape(Exception):
    """A formula needed a shape that neither the frontend nor shape rules could give."""


def numel(shape: Shape) -> int:
    return math.prod(shape)


def broadcast(*shapes: Shape) -> Shape:
    """numpy broadcasting: align right, each axis the size that is not 1."""
    n = max(len(s) for s in shapes)
    padded = [(1,) * (n - len(s)) + tuple(s) for s in shapes]
    return tuple(max(sizes) if 0 not in sizes else 0 for sizes in zip(*padded))


def _zero(call: OpCall, *_: Any) -> int:
    """No arithmetic: 0."""
    return 0


def product_flops(call: OpCall, macs: int) -> int:
    """``2 * MACs``, plus ``numel(out)`` for the bias add when there is a bias (input 2)."""
    bias = len(call.in_shapes) > 2 and call.in_shapes[2] is not None
    return 2 * macs + (numel(call.y) if bias else 0)


def _per_output(call: OpCall, macs: int = 0) -> int:
    """One FLOP per output element: ``numel(out)``."""
    return sum(numel(s) for s in call.out_shapes if s is not None)


# Input roles: what a tensor read by a layer is to the op. ``config``: an input that carries
# what could be an attribute (pads, axes, clip bounds, a region of interest).
ROLES = ("data", "weight", "bias", "scale", "zero_point", "state", "shape", "index", "mask", "config")
# Attributes any layer may carry beside its kind's schema (suppressions, a malformed-file flag).
COMMON_ATTRS = frozenset({"archlint.ignore", "malformed"})
CONV_CLASSES = ("dense", "grouped", "depthwise")


class AxisAttrs(TypedDict, total=False):
    """The one axis an op works along (softmax, concat, gather, split)."""

    axis: int


def _dense_class(attrs: dict[str, Any], x: Shape | None) -> str:
    """Every op that is not a grouped convolution runs as one dense product."""
    return "dense"


@dataclass
class OpKind:
    """One entry of the op vocabulary: its formulas and properties (module docstring)."""

    name: str
    description: str
    costed: bool = True
    shape_fn: Callable[[OpCall], list[Shape]] | None = None
    macs_fn: Callable[[OpCall], int] = _zero
    flops_fn: Callable[[OpCall, int], int] = _zero
    rf_fn: Callable[..., Any] | None = None
    examples: tuple[str, ...] = field(default_factory=tuple)
    slots: tuple[str, ...] = ("data",)
    variadic: bool = False
    moves_data: bool = True
    data_flow: bool = True
    hidden: bool = False
    spatially_pointwise: bool = False
    token_mixing: bool = False
    sliding_window: bool = False
    is_conv: bool = False
    channel_axis: int | None = None
    attrs: type | None = None
    conv_class_fn: Callable[[dict[str, Any], Shape | None], str] = _dense_class
    absorbs_bias_fn: Callable[[dict[str, Any]], bool] | None = None
    note_fn: Callable[[OpCall, str], str | None] | None = None  # a caveat the report states about a costed layer
    quant_boundary_fn: Callable[[dict[str, Any]], str | None] | None = None

    def slot(self, role: str) -> int | None:
        """The input position of ``role`` (``weight``, ``bias``), or None when the kind has none."""
        return self.slots.index(role) if role in self.slots else None

    @property
    def data_slots(self) -> int:
        """How many leading inputs are activations (all of them when ``variadic``)."""
        n = 0
        for role in self.slots:
            if role != "data":
                break
            n += 1
        return n

    def conv_class(self, attrs: dict[str, Any], x: Shape | None) -> str:
        """``dense``, ``grouped`` or ``depthwise`` for a layer with these attributes and input shape."""
        return self.conv_class_fn(attrs, x)

    def absorbs_bias(self, attrs: dict[str, Any]) -> bool:
        """Whether a bias added just before this layer is cancelled by it (BatchNorm's mean
        subtraction)."""
        return self.absorbs_bias_fn is not None and self.absorbs_bias_fn(attrs)

    def quant_boundary(self, attrs: dict[str, Any]) -> str | None:
        """``quantize`` (float -> integer, ONNX QuantizeLinear) or ``dequantize`` (integer -> float) when
        a layer with these attributes is a quantization boundary, else None. onnxruntime fuses
        ``DequantizeLinear -> op -> QuantizeLinear`` into the quantized op, so the float tensors inside
        the pattern exist only as integers; a boundary outside one runs standalone (see
        ``analyses.roofline``)."""
        return self.quant_boundary_fn(attrs) if self.quant_boundary_fn is not None else None

    def attr_names(self) -> frozenset[str]:
        """The attribute names the schema allows (plus :data:`COMMON_ATTRS`)."""
        names = set(getattr(self.attrs, "__annotations__", {})) if self.attrs is not None else set()
        return frozenset(names | COMMON_ATTRS)

    def shape(self, fn: Callable[[OpCall], list[Shape]]) -> Callable[[OpCall], list[Shape]]:
        self.shape_fn = fn
        return fn

    def macs(self, fn: Callable[[OpCall], int]) -> Callable[[OpCall], int]:
        self.macs_fn = fn
        return fn

    def flops(self, fn: Callable[[OpCall, int], int]) -> Callable[[OpCall, int], int]:
        self.flops_fn = fn
        return fn

    def rf(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        self.rf_fn = fn
        return fn


REGISTRY: dict[str, OpKind] = {}

UNKNOWN = "unknown"


def kind(name: str, description: str, *, costed: bool = True, flops_per_output: bool = False,
         examples: tuple[str, ...] = (), **properties: Any) -> OpKind:
    """Create and register an op kind; ``properties`` set the :class:`OpKind` fields.

    ``flops_per_output``: FLOPs default to one per output element instead of 0. A name
    registered twice is an error (as ``register_flop_formula`` refuses a second formula).
    """
    if name in REGISTRY or name == UNKNOWN:
        raise ValueError(f"op kind {name!r} is already registered")
    bad = [r for r in properties.get("slots", ()) if r not in ROLES]
    if bad:
        raise ValueError(f"op kind {name!r}: unknown input role(s) {bad}")
    entry = OpKind(name, description, costed=costed, examples=examples, **properties)
    if flops_per_output:
        entry.flops_fn = _per_output
    REGISTRY[name] = entry
    return entry


# What archlint knows of an op it has no kind for: it moves data, and nothing else is assumed.
UNKNOWN_KIND = OpKind(UNKNOWN, "An op archlint has no entry for: not costed, field not tracked.", costed=False,
                      variadic=True)


def get(name: str) -> OpKind:
    """The registry entry of a kind; :data:`UNKNOWN_KIND` for a name that has none."""
    entry = REGISTRY.get(name)
    return entry if entry is not None else UNKNOWN_KIND
