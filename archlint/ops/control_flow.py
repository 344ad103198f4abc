"""Control flow: ONNX ``If``, ``Loop`` and ``Scan``, whose bodies are subgraphs.

The frontend translates each body into its own :class:`~archlint.ir.ModelGraph` (attribute
``branches`` of an ``if``, ``body`` of a ``loop``). An ``If`` whose condition is not a constant
under the fixed input shapes may take either branch: it is costed as the larger one (an upper
bound; which branch runs depends on the data). A ``Loop``/``Scan`` runs its body ``trips``
times, a count fixed by a constant trip-count input (``Loop``) or by the scanned axis
(``Scan``); with no static count it is not costed (the ONNX operator specification,
https://onnx.ai/onnx/operators/onnx__If.html, onnx__Loop.html, onnx__Scan.html).
"""

from __future__ import annotations

from typing import Any, TypedDict

from archlint.ir import ModelGraph
from archlint.ops import rf
from archlint.ops.registry import REGISTRY, UNKNOWN, OpCall, UnknownShape, kind


class IfAttrs(TypedDict, total=False):
    """``branches``: branch name (``then_branch``, ``else_branch``) -> its translated graph;
    ``depends_on``: the model inputs whose values the condition is computed from."""

    branches: dict[str, Any]
    depends_on: list[str]
    fixed_upstream: list[str]


class LoopAttrs(TypedDict, total=False):
    """``body``: the translated loop body; ``trips``: the static iteration count (None: unknown)."""

    body: Any
    trips: int | None


IF = kind("if", "Conditional (If): costed as the larger of its two branches.", examples=("If",),
          slots=("config",), attrs=IfAttrs)
LOOP = kind("loop", "Loop or Scan: trip count x the cost of its body.", examples=("Loop", "Scan"),
            slots=("config", "config"), variadic=True, attrs=LoopAttrs)


def graph_cost(graph: ModelGraph) -> tuple[int, int]:
    """``(MACs, FLOPs)`` of a body graph: the sum of its layers' formulas. Raises ValueError
    naming the first layer that cannot be costed (a body is costed whole or not at all)."""
    macs = flops = 0
    get = graph.tensors.get
    for layer in graph.layers():
        entry = REGISTRY.get(layer.kind)
        if entry is None or layer.kind == UNKNOWN:
            raise ValueError(f"its op '{layer.op}' ({layer.name}) has no cost formula")
        call = OpCall(layer.attrs, [i.shape if (i := get(t)) is not None else None for t in layer.inputs],
                      [i.shape if (i := get(t)) is not None else None for t in layer.outputs])
        try:
            m = entry.macs_fn(call)
            f = entry.flops_fn(call, m)
        except UnknownShape as exc:
            raise ValueError(f"its op '{layer.op}' ({layer.name}): {exc}") from None
        macs, flops = macs + int(m), flops + int(f)
    return macs, flops


def branch_costs(call: OpCall) -> dict[str, tuple[int, int]]:
    """Each branch's ``(MACs, FLOPs)``; a branch that cannot be costed (its shapes unknown
    at these inputs: it may be the branch these inputs never take) names the inputs that
    select the branch."""
    branches = call.attr("branches")
    try:
        if not branches:
            raise ValueError("its branches could not be translated")
        return {name: graph_cost(g) for name, g in branches.items()}
    except ValueError as exc:
        raise ValueError(f"{exc}{_selector_hint(call)}") from None


def _selector_hint(call: OpCall) -> str:
    inputs = call.attr("depends_on") or []
    fixed = call.attr("fixed_upstream") or []
    text = ""
    if inputs:
        text = (f"; its condition depends on the value of {', '.join(repr(i) for i in inputs)}: "
                f"{' '.join(f'--input-value {i}=...' for i in inputs)} selects a branch")
    if fixed:
        text += (f"; it reads {', '.join(repr(i) for i in fixed)}, fixed with --input-value, through an op "
                 f"archlint does not evaluate")
    return text


def if_note(call: OpCall, name: str) -> str | None:
    """The report says which branch a data-dependent If was costed as, with both costs."""
    from archlint.units import human
    text = ", ".join(f"{branch} {human(m)} MACs" for branch, (m, _) in branch_costs(call).items())
    return (f"If '{name}': its condition is not constant under the fixed input shapes; costed as its "
            f"larger branch ({text}){_selector_hint(call)}")


IF.note_fn = if_note


@IF.macs
def if_macs(call: OpCall) -> int:
    """``max(MACs(then_branch), MACs(else_branch))``."""
    return max(m for m, _ in branch_costs(call).values())


@IF.flops
def if_flops(call: OpCall, macs: int) -> int:
    """The FLOPs of the branch with more MACs (ties: the larger FLOPs)."""
    return max(branch_costs(call).values())[1]


def _trips(call: OpCall) -> int:
    trips = call.attr("trips")
    if trips is None:
        raise ValueError("its trip count is not static")
    return int(trips)


@LOOP.macs
def loop_macs(call: OpCall) -> int:
    """``trips * MACs(body)``."""
    body = call.attr("body")
    if body is None:
        raise ValueError("its body could not be translated")
    return _trips(call) * graph_cost(body)[0]


@LOOP.flops
def loop_flops(call: OpCall, macs: int) -> int:
    """``trips * FLOPs(body)``."""
    return _trips(call) * graph_cost(call.attr("body"))[1]


@IF.rf
def if_rf(call: OpCall, fields: list[rf.Field | None]) -> rf.Field | None:
    """Not tracked through a branch."""
    return None


@LOOP.rf
def loop_rf(call: OpCall, fields: list[rf.Field | None]) -> rf.Field | None:
    """Not tracked through a body."""
    return None
