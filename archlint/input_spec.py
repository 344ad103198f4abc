"""Parsing ``--input-shape`` specs (``1x3x224x224``, ``1,3,224,224`` or ``name=1x3x224x224``) and
``--input-value`` specs (``sr=16000``, ``scales=1,1,2,2``)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Integral, Real

from archlint.errors import ArchlintError

_SPEC = re.compile(r"^\s*(?:(?P<name>[^=\s]+)\s*=)?\s*(?P<dims>\d+(?:\s*[x,]\s*\d+)*)\s*$")
_VALUE = re.compile(r"^\s*(?P<name>[^=\s]+)\s*=\s*(?P<values>[^=]+?)\s*$")
MAX_DIM = 2**31 - 1


@dataclass(frozen=True)
class InputShapes:
    """Shapes the user gave: by input name, and positionally for unnamed specs; and the values
    given to inputs (``--input-value``), by name: an ONNX input with a value is a constant, so
    that what depends on it (an ``If`` on a sample rate) folds."""

    named: Mapping[str, tuple[int, ...]]
    positional: Sequence[tuple[int, ...]]
    values: Mapping[str, tuple[int | float, ...]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.named) or bool(self.positional) or bool(self.values)

    def check_names(self, names: Sequence[str], what: str = "the model's inputs are") -> None:
        """Every named shape must name one of ``names``: else a one-line error listing them
        (``what`` says where the names come from: ``forward() takes`` for a torch module)."""
        unknown = set(self.named) - set(names)
        if unknown:
            raise ArchlintError(f"--input-shape names {', '.join(sorted(unknown))}, but {what} "
                                f"{', '.join(names)}")


def parse_one(spec: str) -> tuple[str | None, tuple[int, ...]]:
    """Parse one spec; raise :class:`ArchlintError` naming the problem."""
    match = _SPEC.match(spec)
    if not match:
        raise ArchlintError(
            f"malformed --input-shape {spec!r}: expected dimensions such as 1x3x224x224, 1,3,224,224 "
            f"or name=1x3x224x224")
    dims = tuple(int(d) for d in re.split(r"\s*[x,]\s*", match.group("dims")))
    if any(d <= 0 or d > MAX_DIM for d in dims):
        raise ArchlintError(f"malformed --input-shape {spec!r}: every dimension must be between 1 and {MAX_DIM}")
    return match.group("name"), dims


def parse(specs: Iterable[str] | str | None) -> InputShapes:
    """Parse specs; several may be given, or separated by ``;`` in one string."""
    if specs is None:
        return InputShapes({}, [])
    if isinstance(specs, str):
        specs = [specs]
    named: dict[str, tuple[int, ...]] = {}
    positional: list[tuple[int, ...]] = []
    for chunk in specs:
        for spec in chunk.split(";"):
            if not spec.strip():
                continue
            name, dims = parse_one(spec)
            if name is None:
                positional.append(dims)
            else:
                named[name] = dims
    return InputShapes(named, positional)


def parse_values(specs: Iterable[str] | str | None) -> dict[str, tuple[int | float, ...]]:
    """``name=16000`` or ``name=1,1,2,2`` (integers or decimals); several may be given, or
    separated by ``;`` in one string."""
    if specs is None:
        return {}
    if isinstance(specs, str):
        specs = [specs]
    out: dict[str, tuple[int | float, ...]] = {}
    for chunk in specs:
        for spec in chunk.split(";"):
            if not spec.strip():
                continue
            match = _VALUE.match(spec)
            try:
                if not match:
                    raise ValueError
                out[match.group("name")] = tuple(_number(v) for v in match.group("values").split(","))
            except ValueError:
                raise ArchlintError(f"malformed --input-value {spec!r}: expected name=VALUE or name=V1,V2,... "
                                    f"with numbers, e.g. sr=16000") from None
    return out


def _number(text: str) -> int | float:
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(text)
    return value


def with_values(shapes: InputShapes, values: Mapping[str, object] | Iterable[str] | str | None) -> InputShapes:
    """``shapes`` with input values: a mapping ``{"sr": 16000}`` (a number or a sequence of
    numbers each) or ``--input-value`` specs."""
    if not values:
        return shapes
    if isinstance(values, Mapping):
        parsed: dict[str, tuple[int | float, ...]] = {}
        for name, value in values.items():
            items = list(value) if isinstance(value, (list, tuple)) else [value]
            numbers: list[int | float] = [int(v) if isinstance(v, Integral) else float(v) for v in items
                                          if isinstance(v, Real) and not isinstance(v, bool)]  # numpy scalars too
            if not items or len(numbers) != len(items):
                raise ArchlintError(f"malformed input value for {name!r}: expected a number or a sequence of numbers")
            parsed[str(name)] = tuple(numbers)
    else:
        parsed = parse_values(values)
    return InputShapes(shapes.named, shapes.positional, {**shapes.values, **parsed})


def from_python(shape: object) -> InputShapes:
    """Accept the API's forms: ``(1, 3, 224, 224)``, ``[(1, 3, 8, 8), (1, 4)]``,
    ``{"x": (1, 3, 8, 8)}``, or a spec string."""
    if shape is None:
        return InputShapes({}, [])
    if isinstance(shape, (str, InputShapes)):
        return shape if isinstance(shape, InputShapes) else parse(shape)
    if isinstance(shape, Mapping):
        return InputShapes({k: _dims(v) for k, v in shape.items()}, [])
    seq = list(shape)  # type: ignore[call-overload]
    if seq and all(isinstance(d, int) for d in seq):
        return InputShapes({}, [_dims(seq)])
    return InputShapes({}, [_dims(s) for s in seq])


def _dims(value: object) -> tuple[int, ...]:
    if isinstance(value, str):
        return parse_one(value)[1]
    try:
        dims = tuple(int(d) for d in value)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        raise ArchlintError(f"malformed input shape {value!r}: expected a sequence of positive integers") from None
    if not dims or any(d <= 0 or d > MAX_DIM for d in dims):
        raise ArchlintError(f"malformed input shape {value!r}: expected a sequence of positive integers")
    return dims
