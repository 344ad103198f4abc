"""The op registry: one entry per op kind of the shared vocabulary.

Each :class:`OpKind` holds small pure functions, each documenting its formula:

- ``shape(call)``: output shapes, used only where the frontend could not give them;
- ``macs(call)``: multiply-accumulates (conv, linear/matmul, einsum, attention only);
- ``flops(call, macs)``: floating-point operations, as defined in the README;
- ``rf(call, fields)``: receptive-field transfer from the input tensors' fields to the
  output's (see :mod:`archlint.analyses.receptive_field`).

Parameters are not a per-kind formula: a layer's params are the element counts of
the weight tensors it owns, each shared tensor counted once (see ``analyses.cost``).
Formulas are registered with decorators, in the style of
``torch/utils/flop_counter.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

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


def _per_output(call: OpCall, macs: int = 0) -> int:
    """One FLOP per output element: ``numel(out)``."""
    return sum(numel(s) for s in call.out_shapes if s is not None)


@dataclass
class OpKind:
    """One entry of the op vocabulary with its formulas."""

    name: str
    description: str
    costed: bool = True
    shape_fn: Callable[[OpCall], list[Shape]] | None = None
    macs_fn: Callable[[OpCall], int] = _zero
    flops_fn: Callable[[OpCall, int], int] = _zero
    rf_fn: Callable[..., Any] | None = None
    examples: tuple[str, ...] = field(default_factory=tuple)

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
         examples: tuple[str, ...] = ()) -> OpKind:
    """Create and register an op kind.

    ``flops_per_output``: FLOPs default to one per output element instead of 0.
    """
    entry = OpKind(name, description, costed=costed, examples=examples)
    if flops_per_output:
        entry.flops_fn = _per_output
    REGISTRY[name] = entry
    return entry


def get(name: str) -> OpKind:
    return REGISTRY[name]
