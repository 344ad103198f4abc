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

Resampling breaks that form. Nearest upsampling by ``f`` makes output unit ``u`` read
input unit ``floor(u/f)``, so its field depends on ``u mod f``: the field is *periodic*.
An axis is then described exactly by a period ``T`` and the interval
``[start_φ, end_φ]`` of each of the units ``φ = 0 .. T-1``; unit ``u = q*T + φ`` sees
``[q*T*S + start_φ, q*T*S + end_φ]`` (``S`` the mean stride, ``T*S`` whole). Every op that
moves positions is an :class:`IndexMap` (output unit ``v`` reads input units
``taps(v)``, with ``taps(v + period) = taps(v) + step``), and one composition rule,
:func:`compose`, serves convolution, pooling, transposed convolution, resizing in every
mode, PixelShuffle/DepthToSpace and adaptive pooling (whose map lives with its window
formula). The common case (period 1) keeps the closed form above, in ints.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from math import ceil, floor, gcd, lcm

Num = int | Fraction
Interval = tuple[Num, Num]
Phase = Interval | None  # None: the unit sees no input (a transposed conv with stride > kernel)

MAX_PERIOD = 1024
"""Longest period tracked exactly; past it the field is replaced by a bound (noted)."""

BOUND_NOTE = "field varies with a period too long to track; a bound is shown"


def _whole(x: Num) -> Num:
    """A Fraction with denominator 1 as an int (ints keep arithmetic fast)."""
    return x.numerator if type(x) is Fraction and x.denominator == 1 else x


@dataclass(frozen=True, slots=True)
class AxisRF:
    """Field along one spatial axis.

    Uniform (``phases is None``): unit ``u`` sees exactly ``[u*S - P, u*S - P + r - 1]`` with
    ``r = size``, ``S = stride``, ``P = padding``.

    Periodic (``phases`` holds the exact ``(start, end)`` of units ``0 .. T-1``, ``T`` the
    period): unit ``u = q*T + φ`` sees ``[q*T*S + start_φ, q*T*S + end_φ]``. ``size`` is then the
    largest field over the phases, ``stride`` the mean stride ``S``, and ``padding`` with
    :attr:`cover` give the single ``(r, S, P)`` interval ``[u*S - P, u*S - P + cover - 1]``
    that contains every unit's exact interval (the tightest one with stride ``S``).
    """

    size: Num
    stride: Num
    padding: Num
    phases: tuple[Phase, ...] | None = None

    @property
    def period(self) -> int:
        return 1 if self.phases is None else len(self.phases)

    @property
    def cover(self) -> Num:
        """Size of the uniform interval ``[u*S - P, ...]`` containing every phase's interval:
        ``max_φ(end_φ - φS) + P + 1`` (``size`` when uniform)."""
        if self.phases is None:
            return self.size
        s = self.stride
        return _whole(max(p[1] - i * s for i, p in enumerate(self.phases) if p is not None) + self.padding + 1)

    @property
    def centre_offset(self) -> Fraction:
        """Centre of unit 0's field in input pixels: ``-P + (r - 1)/2`` (of the cover when periodic)."""
        return -self.padding + Fraction(self.cover - 1, 2)

    def interval(self, u: int) -> Phase:
        """The exact input interval unit ``u`` sees (``None``: none)."""
        if self.phases is None:
            lo = u * self.stride - self.padding
            return lo, lo + self.size - 1
        t = len(self.phases)
        q, i = divmod(u, t)
        p = self.phases[i]
        if p is None:
            return None
        shift = _whole(q * t * self.stride)
        return p[0] + shift, p[1] + shift

    def bounded(self) -> AxisRF:
        """The uniform axis ``(cover, S, P)``: contains every phase's interval."""
        return self if self.phases is None else AxisRF(self.cover, self.stride, self.padding)


def periodic(phases: Sequence[Phase], block: Num) -> AxisRF | None:
    """The axis whose units ``0 .. T-1`` see ``phases`` and unit ``u + T`` sees unit ``u``'s
    interval moved by ``block``, reduced to its shortest period (uniform when 1).
    ``None`` when no unit sees any input."""
    t = len(phases)
    if all(p is None for p in phases):
        return None
    for d in range(1, t):
        if t % d:
            continue
        step = _whole(Fraction(block * d, t))
        if all((a is None and b is None) or (a is not None and b is not None and b[0] == a[0] + step
                                              and b[1] == a[1] + step)
               for a, b in zip(phases, phases[d:])):
            phases, block, t = phases[:d], step, d
            break
    if t == 1:
        lo, hi = phases[0]  # type: ignore[misc]
        return AxisRF(_whole(hi - lo + 1), _whole(block), _whole(-lo))
    stride = _whole(Fraction(block, t))
    present = [(i, p) for i, p in enumerate(phases) if p is not None]
    size = max(p[1] - p[0] + 1 for _, p in present)
    padding = _whole(max(i * stride - p[0] for i, p in present))
    return AxisRF(_whole(size), stride, padding, tuple(phases))


@dataclass(frozen=True, slots=True)
class IndexMap:
    """One axis of an op: output unit ``v`` reads input units ``taps(v)`` (ascending, an
    arithmetic progression), and ``taps(v + period) = taps(v) + step`` for every ``v``."""

    period: int
    step: int
    taps: Callable[[int], Sequence[int]]


def compose(axis: AxisRF, op: IndexMap) -> tuple[AxisRF | None, bool]:
    """The field of ``op``'s output: unit ``v`` sees the union of its taps' intervals.

    The output period is ``T_op * T/gcd(step, T)`` (the smallest shift of ``v`` that moves the
    taps by whole input periods), the shift per period ``step/gcd(step, T) * T*S``. Since every
    interval moves forward with its unit, only the first and last ``T`` taps can hold the
    extremes. Returns the axis and whether it is a bound (period past :data:`MAX_PERIOD`)."""
    t_in = axis.period
    g = gcd(op.step, t_in)
    t_out = op.period * (t_in // g)
    if t_out > MAX_PERIOD:
        if t_in == 1 or op.period > MAX_PERIOD:
            raise ValueError("resampling period too long to track")
        return compose(axis.bounded(), op)[0], True
    block = _whole((op.step // g) * t_in * axis.stride)
    interval = axis.interval
    phases: list[Phase] = []
    for v in range(t_out):
        taps = op.taps(v)
        if len(taps) > 2 * t_in:
            taps = [*taps[:t_in], *taps[-t_in:]]
        lo: Num | None = None
        hi: Num | None = None
        for i in taps:
            iv = interval(i)
            if iv is None:
                continue
            if lo is None or iv[0] < lo:
                lo = iv[0]
            if hi is None or iv[1] > hi:
                hi = iv[1]
        phases.append(None if lo is None or hi is None else (lo, hi))
    return periodic(phases, block), False


@dataclass(frozen=True, slots=True)
class Field:
    """A tensor's receptive field with respect to one model input.

    ``is_global``: the tensor depends on the whole input (after global pooling, a
    flatten that mixes positions, attention over all positions, or a 1x1 map broadcast
    back over the image); its axes then no longer describe it and are not shown.
    ``aligned``: False once a merge joined branches whose units see differently placed
    regions (a different stride, or a different centre on some output position).
    ``notes``: caveats picked up on the way. ``dims``: which dimension of the tensor holds
    each spatial axis (they move under transposes and reshapes, e.g. to channels-last and
    back in ConvNeXt).
    """

    axes: tuple[AxisRF, ...]
    dims: tuple[int, ...]
    is_global: bool = False
    aligned: bool = True
    notes: tuple[str, ...] = ()

    @classmethod
    def identity(cls, rank: int) -> Field:
        """The field of an ``N, C, *spatial`` model input: each unit sees itself (r 1, S 1, P 0)."""
        # ints while the values are whole (fast); periods appear with resampling
        ndim = rank - 2
        return cls(tuple(AxisRF(1, 1, 0) for _ in range(ndim)), tuple(range(2, rank)))

    def with_note(self, note: str) -> Field:
        return self if note in self.notes else replace(self, notes=self.notes + (note,))

    @property
    def varies(self) -> bool:
        """Whether the field depends on the output position beyond the shift ``u*S``."""
        return any(a.phases is not None for a in self.axes)


def effective_kernel(k: int, d: int) -> int:
    """A dilated kernel's extent: ``d*(k-1) + 1``."""
    return d * (k - 1) + 1


def apply(field: Field, maps: Sequence[IndexMap | None]) -> Field | None:
    """Apply one :class:`IndexMap` per axis (``None``: the axis is unchanged); ``None`` when
    some axis's units see no input at all."""
    return _rebuild(field, ((ax, False) if m is None else compose(ax, m) for ax, m in zip(field.axes, maps)))


def _rebuild(field: Field, axes: Iterable[tuple[AxisRF | None, bool]]) -> Field | None:
    """``field`` with new axes, each ``(axis, approximate)``: ``None`` as soon as one axis sees
    no input; the bound note when any is approximate."""
    out = []
    bound = False
    for ax, approx in axes:
        if ax is None:
            return None
        bound |= approx
        out.append(ax)
    result = Field(tuple(out), field.dims, field.is_global, field.aligned, field.notes)
    return result.with_note(BOUND_NOTE) if bound else result


def window_map(k: int, s: int, p: int, d: int = 1) -> IndexMap:
    """Sliding window: output ``v`` reads ``v*s - p + j*d`` for ``j < k``."""
    return IndexMap(1, s, lambda v: range(v * s - p, v * s - p + d * (k - 1) + 1, d))


def window(field: Field, kernel: Sequence[int], stride: Sequence[int], pad_begin: Sequence[int],
           dilation: Sequence[int] | None = None) -> Field | None:
    """Apply a sliding window (conv, pooling) per axis: ``r' = r + (k_eff-1)S``, ``S' = sS``, ``P' = P + pS``
    on a uniform axis, :func:`compose` with :func:`window_map` on a periodic one. ``None`` when
    the window only reads units that see no input (a strided pick of a transposed conv's
    empty phase)."""
    dilation = dilation or [1] * len(kernel)
    if all(k == 1 for k in kernel) and all(s == 1 for s in stride) and not any(pad_begin):
        return field  # a 1x1, stride-1 window sees exactly what its input sees
    return _rebuild(field, ((AxisRF(ax.size + (effective_kernel(k, d) - 1) * ax.stride, ax.stride * s,
                                    ax.padding + p * ax.stride), False) if ax.phases is None
                            else compose(ax, window_map(k, s, p, d))
                            for ax, k, s, p, d in zip(field.axes, kernel, stride, pad_begin, dilation)))


def transposed_map(k: int, s: int, p: int, d: int = 1) -> IndexMap:
    """ConvTranspose: output ``v`` gathers input units ``i`` with ``i*s + j*d = v + p`` for taps
    ``j < k``; period ``s``, step 1 (``output_padding`` only adds units at the end)."""
    def taps(v: int) -> list[int]:
        return sorted((v + p - j * d) // s for j in range(k) if (v + p - j * d) % s == 0)
    return IndexMap(s, 1, taps)


def transposed_window(field: Field, kernel: Sequence[int], stride: Sequence[int], pad_begin: Sequence[int],
                      dilation: Sequence[int] | None = None) -> Field | None:
    """ConvTranspose per axis (:func:`transposed_map`): output units gather up to
    ``ceil(k_eff/s)`` input units, a number that can vary with ``v mod s``; exact per phase."""
    dilation = dilation or [1] * len(kernel)
    return apply(field, [transposed_map(k, s, p, d) if (k, s, p) != (1, 1, 0) else None
                         for k, s, p, d in zip(kernel, stride, pad_begin, dilation)])


COORDINATE_MODES = ("half_pixel", "pytorch_half_pixel", "half_pixel_symmetric", "asymmetric", "align_corners",
                    "tf_half_pixel_for_nn")


def resize_map(n_in: int, n_out: int, mode: str = "nearest", coordinate: str | None = None,
               nearest: str | None = None) -> IndexMap | None:
    """Resampling ``n_in -> n_out`` along one axis (ONNX Resize, torch ``interpolate``).

    Output ``v`` reads around ``x(v) = a*v + b`` (ONNX Resize's coordinate transformations):
    ``half_pixel`` ``a = n_in/n_out, b = a/2 - 1/2``; ``asymmetric`` ``b = 0``; ``align_corners``
    ``a = (n_in-1)/(n_out-1), b = 0``; ``tf_half_pixel_for_nn`` ``b = a/2``. nearest reads one
    unit, ``x`` rounded by ``nearest`` (floor, ceil, round_prefer_floor, round_prefer_ceil);
    linear reads ``floor(x)`` and ``floor(x) + 1``, cubic ``floor(x) - 1 .. floor(x) + 2``,
    except where ``x`` is whole: the other taps then have weight 0 and the unit reads
    ``x`` alone. ``x(v + den(a)) = x(v) + num(a)``: period ``den(a)``, step ``num(a)``.
    Default coordinates are PyTorch's: nearest ``asymmetric`` with floor, linear and cubic
    ``half_pixel`` (``align_corners=False``); a half-pixel nearest rounds (ONNX's default
    ``round_prefer_floor``). ``None`` when the axis is not resized.
    """
    if coordinate is None:
        coordinate = "asymmetric" if mode == "nearest" else "half_pixel"
    if coordinate not in COORDINATE_MODES:
        raise ValueError(f"resize coordinate mode {coordinate} not modelled")
    if n_in == n_out and coordinate != "tf_half_pixel_for_nn":
        return None  # x(v) = v for every mode
    if coordinate == "align_corners":
        a = Fraction(n_in - 1, n_out - 1) if n_out > 1 else Fraction(0)
        b = Fraction(0)
    else:
        a = Fraction(n_in, n_out)
        b = {"asymmetric": Fraction(0), "tf_half_pixel_for_nn": a / 2}.get(coordinate, a / 2 - Fraction(1, 2))
    if nearest is None:
        nearest = "floor" if coordinate == "asymmetric" else "round_prefer_floor"
    half = Fraction(1, 2)
    rounding: dict[str, Callable[[Fraction], int]] = {
        "floor": floor, "ceil": ceil, "round_prefer_floor": lambda x: ceil(x - half),
        "round_prefer_ceil": lambda x: floor(x + half)}
    if mode == "nearest":
        pick = rounding[nearest]
        return IndexMap(a.denominator or 1, a.numerator, lambda v: (pick(a * v + b),))
    before, after = (0, 1) if mode == "linear" else (1, 2)

    def taps(v: int) -> range:
        x = a * v + b
        x0 = floor(x)
        return range(x0, x0 + 1) if x == x0 else range(x0 - before, x0 + after + 1)
    return IndexMap(a.denominator, a.numerator, taps)


def make_global(field: Field, why: str | None = None) -> Field:
    """The output depends on the whole input."""
    out = replace(field, is_global=True)
    return out.with_note(why) if why else out


def _merge_axis(branch: list[AxisRF]) -> tuple[AxisRF, bool]:
    """One axis of a merge: the union of the branches' intervals on every output unit, and
    whether they were aligned (equal stride, and equal centres ``(start + end)/2`` on every unit
    of the common period ``lcm(T_i)``). Different mean strides: the largest branch (no exact
    periodic union exists), unaligned."""
    first = branch[0]
    stride = first.stride
    if any(a.stride != stride for a in branch):
        return max(branch, key=lambda a: a.size), False
    if all(a.phases is None for a in branch):  # the common case: ints, no period
        lo = min(-a.padding for a in branch)
        hi = max(a.size - 1 - a.padding for a in branch)
        centre = first.size - 1 - 2 * first.padding
        aligned = all(a.size - 1 - 2 * a.padding == centre for a in branch)
        for a in branch:
            if -a.padding == lo and a.size - 1 - a.padding == hi:
                return a, aligned
        return AxisRF(_whole(hi - lo + 1), stride, _whole(-lo)), aligned
    t = lcm(*(a.period for a in branch))
    if t > MAX_PERIOD:
        return _merge_axis([a.bounded() for a in branch])[0], False
    phases: list[Phase] = []
    aligned = True
    for u in range(t):
        ivs = [a.interval(u) for a in branch]
        seen = [iv for iv in ivs if iv is not None]
        if not seen:
            phases.append(None)
            continue
        if len(seen) < len(ivs) or any(iv[0] + iv[1] != seen[0][0] + seen[0][1] for iv in seen):
            aligned = False
        phases.append((min(iv[0] for iv in seen), max(iv[1] for iv in seen)))
    out = periodic(phases, _whole(stride * t))
    assert out is not None
    return out, aligned


def merge(fields: Iterable[Field | None]) -> Field | None:
    """Join several inputs' fields (add, mul, concat, ...): per axis and output unit, the union
    of what the branches see (the widest branch when they are aligned).

    The branches are aligned when on every axis they have equal effective stride and every
    output unit's interval has the same centre in each (Araujo et al., Distill 2019: equal
    ``S`` and centre offset ``-P + (r-1)/2``, checked on every phase of a periodic field). A
    global input makes the output global (e.g. a squeeze-and-excitation map broadcast back
    over the image).
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
    notes = tuple(dict.fromkeys(n for f in present for n in f.notes))
    if all(f.axes == first.axes for f in present[1:]):  # the common case: identical branches
        return Field(first.axes, first.dims, is_global, aligned, notes)
    axes = []
    for i in range(len(first.axes)):
        branch = [f.axes[i] for f in present]
        if is_global:
            axes.append(max(branch, key=lambda a: a.size))
            continue
        ax, ok = _merge_axis(branch)
        aligned &= ok
        axes.append(ax)
    return Field(tuple(axes), first.dims, is_global, aligned, notes)
