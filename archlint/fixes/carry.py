"""The new tensors' values of a :class:`~archlint.analyses.rewrite.Fix`, from the replaced
layer's weights (:mod:`archlint.fixes.weights` gives the formulas), and what a fix did.

``get(name)`` returns an IR tensor's values as a numpy array, or None when the model holds
no values (meta device, ONNX without initializer data): the fix is then shapes-only, its new
weights are drawn at random (He initialisation, ``N(0, 2/fan_in)``) and no error is reported.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from archlint.analyses.rewrite import Fix
from archlint.fixes import weights as W

Getter = Callable[[str], "np.ndarray | None"]
SHAPES_ONLY = "shapes only: the model holds no weight values; new weights randomly initialised"


@dataclass
class Outcome:
    """What happened to one fix: ``applied`` or not (``reason``), the weight and output errors
    (relative Frobenius norms), and notes (shapes-only)."""

    fix: Fix
    applied: bool
    reason: str = ""
    weight_error: float | None = None
    output_error: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def code(self) -> str:
        return self.fix.code

    @property
    def layer(self) -> str:
        return self.fix.layer

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "layer": self.layer, "applied": self.applied, "reason": self.reason,
                "weight_error": self.weight_error, "output_error": self.output_error, "notes": self.notes,
                "description": self.fix.description}

    def __str__(self) -> str:
        if not self.applied:
            return f"{self.code} {self.layer}: skipped ({self.reason})"
        errors = []
        if self.weight_error is not None:
            errors.append(f"weight error {self.weight_error:.3g}")
        if self.output_error is not None:
            errors.append(f"output error {self.output_error:.3g}")
        extra = f" ({', '.join(errors + self.notes)})" if errors or self.notes else ""
        return f"{self.code} {self.layer}: {self.fix.description}{extra}"


def carry(fix: Fix, get: Getter, rng: np.random.Generator | None = None) -> tuple[dict[str, np.ndarray],
                                                                                    float | None]:
    """``(values of the new tensors, relative weight error)``; the error is None when shapes-only."""
    original = fix.original[0]
    code = fix.code
    if code == "AL106":
        mean = fix.details.get("mean")
        if not mean:
            return {}, 0.0
        m, b = get(mean), get(fix.details["bias"])
        if m is None or b is None:
            raise ValueError("BatchNorm's running mean or the bias holds no values")
        new_mean = next(iter(fix.tensors))
        return {new_mean: W.fold_bias(m, b)}, 0.0
    if code == "AL105":
        return {}, 0.0  # the same weights, read at stride 1 after the pool
    w = get(original.inputs[1])
    if w is None:
        return _random(fix, rng or np.random.default_rng(0)), None
    if code == "AL101":
        dw, pw, w_hat = W.depthwise_separable(w)
        names = fix.weights
        return {names[0]: dw, names[1]: pw}, W.relative_error(w, w_hat)
    if code == "AL102":
        wg, w_hat = W.grouped(w, fix.details["groups"])
        return {fix.weights[0]: wg}, W.relative_error(w, w_hat)
    if code == "AL103":
        groups = int(original.attrs.get("groups", 1) or 1)
        kernels, w_hat = W.stacked_3x3(w, fix.details["stacked_3x3"], groups)
        out: dict[str, np.ndarray] = {}
        weights = [la.inputs[1] for la in fix.layers]
        for name, kernel in zip(weights, kernels):
            out[name] = kernel
        for la in fix.layers[:-1]:
            if len(la.inputs) > 2 and la.inputs[2]:
                out[la.inputs[2]] = np.zeros(fix.tensors[la.inputs[2]].shape or ())
        return out, W.relative_error(w, w_hat)
    raise ValueError(f"no weight transfer for {code}")


def _random(fix: Fix, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """He-initialised new weights (``std = sqrt(2/fan_in)``), zero new biases."""
    out = {}
    for name in fix.weights:
        shape = fix.tensors[name].shape or ()
        if len(shape) <= 1:
            out[name] = np.zeros(shape)
        else:
            fan_in = math.prod(shape[1:])
            out[name] = rng.normal(0.0, math.sqrt(2.0 / fan_in), shape)
    return out
