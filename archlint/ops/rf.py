"""Receptive-field records and the primitive transfers the op registry composes.

Following Araujo, Norris & Sim (Distill, 2019), a tensor's field per spatial axis is
``(r, S, P)``: output unit ``u`` sees input pixels ``[u*S - P, u*S - P + r - 1]``.
The Distill recursion runs from the output back; walking forward from the input is
the same recursion read the other way. For a window op (kernel ``k``, dilation ``d``,
stride ``s``, begin padding ``p``) applied to a tensor whose field is ``(r, S, P)``:

    k_eff = d*(k-1) + 1
    r' = r + (k_eff - 1) * S
    S' = S * s
    P' = P + p * S

Strides and paddings are exact fractions so that upsampling (stride ``1/f``) stays exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction


@dataclass(frozen=True, slots=True)
class AxisRF:
    """Field along one spatial axis: size ``r``, effective stride ``S``, effective padding ``P``."""

    size: Fraction | int
    stride: Fraction | int
    padding: Fraction | int

    @property
    def centre_offset(self) -> Fraction:
        """Centre of unit 0's field in input pixels: ``-P + (r - 1)/2``."""
        return -self.padding + Fraction(self.size - 1, 2)


@dataclass(frozen=True, slots=True)
class Field:
    """A tensor's receptive field with respect to one model input.

    ``is_global``: the tensor depends on the whole input (after global pooling, a
    flatten that mixes positions, attention over all positions, or a 1x1 map broadcast
    back over the image); its axes then no longer describe it and are not shown.
    ``aligned``: False once a merge joined branches with different stride or centre.
    ``notes``: caveats picked up on the way (non-uniform adaptive windows, ...).
    ``dims``: which dimension of the tensor holds each spatial axis (they move under
    transposes and reshapes, e.g. to channels-last and back in ConvNeXt).
    """

    axes: tuple[AxisRF, ...]
    dims: tuple[int, ...]
    is_global: bool = False
    aligned: bool = True
    notes: tuple[str, ...] = ()

    @classmethod
    def identity(cls, rank: int) -> Field:
        """The field of an ``N, C, *spatial`` model input: each unit sees itself (r 1, S 1, P 0)."""
        # ints while the values are whole (fast); Fractions appear with upsampling
        ndim = rank - 2
        return cls(tuple(AxisRF(1, 1, 0) for _ in range(ndim)), tuple(range(2, rank)))

    def with_note(self, note: str) -> Field:
        return self if note in self.notes else replace(self, notes=self.notes + (note,))


def effective_kernel(k: int, d: int) -> int:
    """A dilated kernel's extent: ``d*(k-1) + 1``."""
    return d * (k - 1) + 1


def window(field: Field, kernel: Sequence[int], stride: Sequence[int], pad_begin: Sequence[int],
           dilation: Sequence[int] | None = None) -> Field:
    """Apply a sliding window (conv, pooling) per axis: ``r' = r + (k_eff-1)S``, ``S' = sS``, ``P' = P + pS``."""
    dilation = dilation or [1] * len(kernel)
    if all(k == 1 for k in kernel) and all(s == 1 for s in stride) and not any(pad_begin):
        return field  # a 1x1, stride-1 window sees exactly what its input sees
    axes = []
    for ax, k, s, p, d in zip(field.axes, kernel, stride, pad_begin, dilation):
        k_eff = effective_kernel(k, d)
        axes.append(AxisRF(ax.size + (k_eff - 1) * ax.stride, ax.stride * s, ax.padding + p * ax.stride))
    return Field(tuple(axes), field.dims, field.is_global, field.aligned, field.notes)


def upsample(field: Field, factors: Sequence[Fraction], mode: str = "nearest") -> Field:
    """Upsampling by ``f`` per axis: ``S' = S/f``.

    nearest (and PixelShuffle/DepthToSpace): output ``u`` reads input ``floor(u/f)``, so
    ``r' = r``, ``P' = P``. linear (half-pixel): output ``u`` reads inputs around
    ``(u + 1/2)/f - 1/2``, two neighbours, so ``r' = r + S`` and the centre is kept exact
    with ``P' = P + S - S/(2f)``. Cubic reads four neighbours: ``r' = r + 3S``.
    """
    axes = []
    varies = False
    for ax, f in zip(field.axes, factors):
        f = Fraction(f)
        if f == 1:
            axes.append(ax)
            continue
        if f.denominator != 1 and mode == "nearest":
            varies = True
        stride = ax.stride / f
        if mode == "nearest":
            axes.append(AxisRF(ax.size, stride, ax.padding))
        else:
            taps = 4 if mode == "cubic" else 2
            size = ax.size + (taps - 1) * ax.stride
            centre = ax.centre_offset + (Fraction(1, 2) / f - Fraction(1, 2)) * ax.stride
            axes.append(AxisRF(size, stride, Fraction(size - 1, 2) - centre))
    out = replace(field, axes=tuple(axes))
    return out.with_note("field varies with output position; largest shown") if varies else out


def transposed_window(field: Field, kernel: Sequence[int], stride: Sequence[int], pad_begin: Sequence[int],
                      dilation: Sequence[int] | None = None) -> Field:
    """ConvTranspose: output ``u`` gathers input units ``i`` with ``i*s + j*d = u + p`` for taps ``j``.

    Those ``i`` span ``n_u`` consecutive units, so ``r' = r + (n_u - 1)S`` with ``n_u``
    the largest over output positions (at most ``ceil(k_eff/s)``), ``S' = S/s``, and
    ``P' = P - i_min(0) * S`` where ``i_min(0) = ceil((p - k_eff + 1)/s)`` is the first
    input unit that output 0 reads.
    """
    dilation = dilation or [1] * len(kernel)
    axes = []
    varies = False
    for ax, k, s, p, d in zip(field.axes, kernel, stride, pad_begin, dilation):
        spans = set()
        for u in range(s):
            taps = [(u + p - j * d) // s for j in range(k) if (u + p - j * d) % s == 0]
            spans.add(max(taps) - min(taps) + 1 if taps else 0)
        n = max(spans)
        varies |= len(spans) > 1
        taps0 = [(p - j * d) // s for j in range(k) if (p - j * d) % s == 0]
        i_min = min(taps0) if taps0 else -(-(p - effective_kernel(k, d) + 1) // s)
        axes.append(AxisRF(ax.size + (n - 1) * ax.stride, Fraction(ax.stride) / s, ax.padding - i_min * ax.stride))
    out = replace(field, axes=tuple(axes))
    return out.with_note("field varies with output position; largest shown") if varies else out


def make_global(field: Field, why: str | None = None) -> Field:
    """The output depends on the whole input."""
    out = replace(field, is_global=True)
    return out.with_note(why) if why else out


def merge(fields: Iterable[Field | None]) -> Field | None:
    """Join several inputs' fields (add, mul, concat, ...): keep the largest, per axis.

    The branches are aligned when they have equal effective stride and equal centre
    offset ``-P + (r-1)/2`` on every axis (REFERENCE.md section 3). A global input makes
    the output global (e.g. a squeeze-and-excitation map broadcast back over the image).
    """
    present = [f for f in fields if f is not None]
    if not present:
        return None
    first = present[0]
    if len(present) == 1 or all(f is first for f in present):
        return first
    ndims = {len(f.axes) for f in present}
    if len(ndims) > 1:
        return make_global(max(present, key=lambda f: len(f.axes)), "inputs with different spatial rank merged")
    is_global = any(f.is_global for f in present)
    aligned = all(f.aligned for f in present)
    first = present[0]
    if all(f.axes == first.axes for f in present[1:]):  # the common case: identical branches
        notes = tuple(dict.fromkeys(n for f in present for n in f.notes))
        return Field(first.axes, first.dims, is_global, aligned, notes)
    axes = []
    for i in range(len(present[0].axes)):
        # per axis, the branch that sees most along it (a 7x1 and a 1x7 branch each win one axis)
        best = max((f.axes[i] for f in present), key=lambda a: a.size)
        if not is_global and any(f.axes[i].stride != best.stride or f.axes[i].centre_offset != best.centre_offset
                                 for f in present):
            aligned = False
        axes.append(best)
    notes = tuple(dict.fromkeys(n for f in present for n in f.notes))
    return Field(tuple(axes), present[0].dims, is_global, aligned, notes)
