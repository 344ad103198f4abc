"""Data-movement ops: no arithmetic (FLOPs 0 unless stated), but they move, crop, pad
or resample positions, which the receptive-field transfer must follow."""

from __future__ import annotations

from dataclasses import replace
from typing import TypedDict

from archlint.ir import Shape
from archlint.ops import rf
from archlint.ops.registry import AxisAttrs, OpCall, kind, numel


class ReshapeAttrs(TypedDict, total=False):
    """``perm``: a transpose's permutation (other reshapes carry none)."""

    perm: list[int]


class ResizeAttrs(TypedDict, total=False):
    mode: str  # nearest, linear or cubic
    coordinate_transformation_mode: str  # ONNX Resize's; PyTorch's grids map onto it
    nearest_mode: str  # floor, ceil, round_prefer_floor, round_prefer_ceil


class PadAttrs(TypedDict, total=False):
    pads: list[int] | None  # ONNX layout: every begin, then every end
    mode: str


class SliceAttrs(TypedDict, total=False):
    starts: dict[int, int]  # axis -> first index kept
    steps: dict[int, int]


class BlockAttrs(TypedDict, total=False):
    blocksize: int
    mode: str


CONCAT = kind("concat", "Concatenation along an axis.", examples=("Concat", "torch.cat"), variadic=True,
              attrs=AxisAttrs)


@CONCAT.shape
def concat_shape(call: OpCall) -> list[Shape]:
    """Inputs' shapes with the ``axis`` sizes summed."""
    shapes = [call.input(i) for i in range(len(call.in_shapes))]
    axis = call.attr("axis", 0) % len(shapes[0])
    out = list(shapes[0])
    out[axis] = sum(s[axis] for s in shapes)
    return [tuple(out)]


@CONCAT.rf
def concat_rf(call: OpCall, fields: list[rf.Field | None]) -> rf.Field | None:
    """A merge point (like add): the union of the inputs' fields, alignment recorded."""
    return rf.merge(fields)


RESHAPE = kind("reshape", "Reshape, Flatten, Transpose, Squeeze/Unsqueeze, Expand: no arithmetic.",
               examples=("Reshape", "Flatten", "Transpose", "x.view", "torch.flatten"), slots=("data", "shape"),
               moves_data=False, attrs=ReshapeAttrs)


@RESHAPE.rf
def reshape_rf(call: OpCall, fields: list[rf.Field | None]) -> rf.Field | None:
    """Follow the spatial axes: a transpose with ``perm`` moves them; a reshape that keeps
    the run of spatial dims intact (same sizes, same number of elements before it) shifts
    them; anything else (Flatten of ``[N, C, H, W]``, tokens from a patch embedding)
    mixes positions, so the field becomes global."""
    field = fields[0] if fields else None
    x = call.in_shapes[0] if call.in_shapes else None
    y = call.out_shapes[0] if call.out_shapes else None
    if field is None or field.is_global or x is None or y is None:
        return field
    perm = call.attr("perm")
    if perm is not None:
        return replace(field, dims=tuple(list(perm).index(d) for d in field.dims))
    lo, hi = min(field.dims), max(field.dims)
    run = tuple(x[lo:hi + 1])
    before = numel(x[:lo])
    for pos in range(len(y) - len(run) + 1):
        if tuple(y[pos:pos + len(run)]) == run and numel(y[:pos]) == before:
            return replace(field, dims=tuple(d - lo + pos for d in field.dims))
    return rf.make_global(field, "flatten mixes positions")


RESIZE = kind("resize", "Resampling (Resize, Upsample, F.interpolate): nearest, linear or cubic.",
              examples=("Resize", "nn.Upsample", "F.interpolate"), attrs=ResizeAttrs)


@RESIZE.flops
def resize_flops(call: OpCall, macs: int) -> int:
    """nearest: 0 (a copy); linear: ``numel(out) * 2^n`` and cubic ``numel(out) * 4^n`` for
    ``n`` resized axes (one multiply-add per tap)."""
    mode = call.attr("mode", "nearest")
    if mode == "nearest":
        return 0
    n = sum(1 for a, b in zip(call.x[2:], call.y[2:]) if a != b) or len(call.x) - 2
    return numel(call.y) * (2 if mode == "linear" else 4) ** n


@RESIZE.rf
def resize_rf(call: OpCall, fields: list[rf.Field | None]) -> rf.Field | None:
    """Per axis, output ``v`` reads the input units around ``x(v) = a*v + b`` given by the mode
    and the coordinate transformation (:func:`archlint.ops.rf.resize_map`): nearest by ``f``
    repeats each field ``f`` times (the field then varies with ``v mod f``), linear and
    cubic join 2 and 4 neighbours; downsampling is a strided pick."""
    field = fields[0] if fields else None
    if field is None or field.is_global:
        return field
    x, y = call.x, call.y
    mode = call.attr("mode", "nearest")
    coordinate = call.attr("coordinate_transformation_mode")
    nearest = call.attr("nearest_mode")
    return rf.apply(field, [rf.resize_map(x[d], y[d], mode, coordinate, nearest) for d in field.dims])


PAD = kind("pad", "Constant, reflect or edge padding (negative pads crop).", examples=("Pad", "F.pad"),
           spatially_pointwise=True, attrs=PadAttrs)


@PAD.shape
def pad_shape(call: OpCall) -> list[Shape]:
    """``in + pad_begin + pad_end`` per axis; ``pads`` in ONNX layout (all begins, then all ends)."""
    x = call.x
    pads = call.attr("pads")
    n = len(x)
    return [tuple(x[i] + pads[i] + pads[n + i] for i in range(n))]


@PAD.rf
def pad_rf(call: OpCall, fields: list[rf.Field | None]) -> rf.Field | None:
    """A 1-wide window with begin padding ``p``: ``P' = P + p*S`` (negative ``p`` is a crop)."""
    field = fields[0] if fields else None
    pads = call.attr("pads")
    if field is None or field.is_global or pads is None:
        return field
    rank = len(pads) // 2
    begins = [pads[d] for d in field.dims if d < rank]
    if len(begins) != len(field.axes):
        return field
    return rf.window(field, [1] * len(begins), [1] * len(begins), begins)


SLICE = kind("slice", "Slice or crop (Slice, x[..., a:b:s], narrow).", examples=("Slice", "operator.getitem"),
             attrs=SliceAttrs)


@SLICE.rf
def slice_rf(call: OpCall, fields: list[rf.Field | None]) -> rf.Field | None:
    """Keeping ``start, start+step, ...`` of an axis is a 1-wide window with stride ``step``
    and begin padding ``-start``. ``starts``/``steps`` map axis -> value; an axis whose
    size changes with no known start is flagged in a note."""
    field = fields[0] if fields else None
    if field is None or field.is_global:
        return field
    starts = call.attr("starts") or {}
    steps = call.attr("steps") or {}
    x, y = call.in_shapes[0], call.out_shapes[0] if call.out_shapes else None
    begins, strides = [], []
    unknown = False
    for d in field.dims:
        start = starts.get(d)
        if start is None:
            if x is not None and y is not None and x[d] != y[d]:
                unknown = True
            start = 0
        elif x is not None and start < 0:
            start += x[d]
        begins.append(-start)
        strides.append(steps.get(d, 1))
    out = rf.window(field, [1] * len(begins), strides, begins)
    return out.with_note("crop offset unknown; assumed 0") if unknown and out is not None else out


SPLIT = kind("split", "Split into several tensors along an axis.", examples=("Split", "torch.chunk"),
             moves_data=False, attrs=AxisAttrs)


@SPLIT.rf
def split_rf(call: OpCall, fields: list[rf.Field | None]) -> rf.Field | None:
    """Every piece keeps the input's field (splits are along channels in practice)."""
    return fields[0] if fields else None


GATHER = kind("gather", "Gather / index_select / embedding lookup.", examples=("Gather", "nn.Embedding"),
              attrs=AxisAttrs)


@GATHER.rf
def gather_rf(call: OpCall, fields: list[rf.Field | None]) -> rf.Field | None:
    """Picking along a spatial axis by data indices: global; along another axis: no change."""
    field = fields[0] if fields else None
    if field is None or field.is_global or call.in_shapes[0] is None:
        return field
    axis = call.attr("axis", 0) % len(call.in_shapes[0])
    return rf.make_global(field, "gather along a spatial axis") if axis in field.dims else field


DEPTH_TO_SPACE = kind("depth_to_space", "DepthToSpace / PixelShuffle: channels to an upsampled grid.",
                      examples=("DepthToSpace", "nn.PixelShuffle"), attrs=BlockAttrs)


@DEPTH_TO_SPACE.shape
def depth_to_space_shape(call: OpCall) -> list[Shape]:
    """``[N, C/b^n, *(in*b)]`` for block size ``b`` over ``n`` spatial axes."""
    x, b = call.x, call.attr("blocksize")
    n = len(x) - 2
    return [(x[0], x[1] // b ** n, *(s * b for s in x[2:]))]


@DEPTH_TO_SPACE.rf
def depth_to_space_rf(call: OpCall, fields: list[rf.Field | None]) -> rf.Field | None:
    """Output ``u`` (all channels) comes from input ``floor(u/b)``: nearest upsampling by ``b``
    (period ``b``, see :func:`archlint.ops.rf.resize_map`)."""
    field = fields[0] if fields else None
    if field is None or field.is_global:
        return field
    b = call.attr("blocksize")
    return rf.apply(field, [rf.resize_map(1, b, "nearest", "asymmetric", "floor")] * len(field.axes))


SPACE_TO_DEPTH = kind("space_to_depth", "SpaceToDepth / PixelUnshuffle: a grid folded into channels.",
                      examples=("SpaceToDepth", "nn.PixelUnshuffle"), attrs=BlockAttrs)


@SPACE_TO_DEPTH.shape
def space_to_depth_shape(call: OpCall) -> list[Shape]:
    """``[N, C*b^n, *(in/b)]``."""
    x, b = call.x, call.attr("blocksize")
    n = len(x) - 2
    return [(x[0], x[1] * b ** n, *(s // b for s in x[2:]))]


@SPACE_TO_DEPTH.rf
def space_to_depth_rf(call: OpCall, fields: list[rf.Field | None]) -> rf.Field | None:
    """A ``b x b`` window with stride ``b`` and no padding."""
    field = fields[0] if fields else None
    if field is None or field.is_global:
        return field
    b = call.attr("blocksize")
    n = len(field.axes)
    return rf.window(field, [b] * n, [b] * n, [0] * n)


CONSTANT = kind("constant", "Shape arithmetic and constants (Shape, Constant, Range, ...): no data flow.",
                examples=("Shape", "Constant", "ConstantOfShape"), moves_data=False, data_flow=False, hidden=True,
                variadic=True)


@CONSTANT.rf
def constant_rf(call: OpCall, fields: list[rf.Field | None]) -> rf.Field | None:
    """Shape arithmetic carries no field."""
    return None
