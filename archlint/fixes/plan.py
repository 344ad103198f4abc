"""A budget-driven plan: pick unsafe fixes until the model meets a budget (``macs=2G``,
``params=10M``, ``time=5ms``).

Candidates are every fix the constructors accept on every layer (AL101, AL102 for each
group count, AL103, AL105), each costed by the registry formulas (:class:`Fix.before` and
``after``) and with its relative weight error measured on the model's weights. Greedy:
the candidate with the most estimated time saved per unit of weight error first (a fix
that saves no time ranks by the budgeted quantity it saves, last), at most one fix per
layer, until every budgeted total holds. When no plan meets the budget, the plan says how
close it got (``met`` false, ``totals`` the best reached).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from archlint.analyses import rewrite
from archlint.analyses.rewrite import Fix
from archlint.errors import ArchlintError
from archlint.report import Report

GROUP_COUNTS = (2, 4, 8, 16, 32)
_SUFFIX = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
_TIME = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
# budget key -> (Cost attribute, Totals attribute)
KEYS = {"macs": ("macs", "macs"), "params": ("params", "params"), "time": ("est_time", "est_time")}


def parse_budget(text: str) -> dict[str, float]:
    """``"macs=2G,params=5M,time=3ms"`` -> ``{"macs": 2e9, "params": 5e6, "time": 0.003}``."""
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, _, value = part.partition("=")
        key = key.strip().lower()
        if key not in KEYS:
            raise ArchlintError(f"budget '{part}': the key must be one of {', '.join(KEYS)}")
        m = re.fullmatch(r"\s*([0-9.]+(?:e[+-]?[0-9]+)?)\s*([a-zA-Z]*)\s*", value)
        unit = m.group(2) if m else None
        scale = _TIME.get(unit or "s") if key == "time" else _SUFFIX.get(unit or "")
        if m is None or scale is None:
            raise ArchlintError(f"budget '{part}': expected a number with an optional suffix (k, M, G; s, ms, us)")
        out[key] = float(m.group(1)) * scale
    if not out:
        raise ArchlintError("empty budget: give e.g. macs=2G")
    return out


@dataclass
class Plan:
    """The chosen fixes (in the order picked), the totals they reach, and whether the budget holds."""

    fixes: list[Fix]
    budget: dict[str, float]
    before: dict[str, float]
    totals: dict[str, float]
    met: bool
    errors: dict[int, float | None] = field(default_factory=dict)

    def summary(self) -> str:
        parts = [f"{k} {self.before[k]:.4g} -> {self.totals[k]:.4g} (budget {v:.4g})" for k, v in self.budget.items()]
        verdict = "meets the budget" if self.met else "cannot meet the budget; closest reached"
        return f"{len(self.fixes)} fixes: " + "; ".join(parts) + f": {verdict}"


def candidates(report: Report, codes: Sequence[str] = ("AL101", "AL102", "AL103", "AL105")) -> list[Fix]:
    """Every unsafe fix the constructors accept on the report's layers, costed."""
    graph = report.graph
    if graph is None:
        raise ArchlintError("the report holds no graph")
    makers: list[tuple[str, Callable[[Any, Any], Fix]]] = [
        ("AL101", rewrite.depthwise_separable), ("AL103", rewrite.stacked_3x3),
        ("AL105", rewrite.pool_then_pointwise)]
    makers += [("AL102", functools.partial(_grouped, groups=n)) for n in GROUP_COUNTS]
    dtype = report.model.get("dtype") or "fp32"
    out = []
    for layer in graph.layers():
        for code, make in makers:
            if code not in codes:
                continue
            try:
                out.append(make(graph, layer).compute_cost(graph, report.profile, dtype))
            except rewrite.NotApplicable:
                continue
    return out


def _grouped(graph: Any, layer: Any, groups: int) -> Fix:
    return rewrite.grouped(graph, layer, groups)


def getter(model: Any, base_dir: str | None = None) -> Callable[[str], Any]:
    """IR tensor name -> numpy values, from an ONNX model's initializers or a torch module's
    parameters (None where the model holds no values)."""
    if type(model).__name__ == "ModelProto":
        from onnx import numpy_helper
        inits = {i.name: i for i in model.graph.initializer}

        def onnx_get(name: str) -> Any:
            try:
                return numpy_helper.to_array(inits[name], base_dir or "") if name in inits else None
            except Exception:  # noqa: BLE001  (missing external data)
                return None
        return onnx_get
    params = dict(model.named_parameters())

    def torch_get(name: str) -> Any:
        p = params.get(name)
        return None if p is None or p.device.type == "meta" else p.detach().cpu().double().numpy()
    return torch_get


def plan(report: Report, budget: dict[str, float] | str, model: Any = None,
         fixes: Sequence[Fix] | None = None) -> Plan:
    """Greedy plan for ``budget`` over ``fixes`` (default: :func:`candidates`); ``model`` (ONNX
    model or path, or torch module) gives the weight errors, else every error counts as 1."""
    from archlint.fixes.carry import carry
    goal = parse_budget(budget) if isinstance(budget, str) else dict(budget)
    pool = list(fixes) if fixes is not None else candidates(report)
    get = None
    if model is not None:
        if isinstance(model, (str, os.PathLike)):
            import onnx
            base = os.path.dirname(os.path.abspath(model))
            model = onnx.load(os.fspath(model), load_external_data=False)
            get = getter(model, base)
        else:
            get = getter(model)
    errors: dict[int, float | None] = {}
    for fix in pool:
        try:
            errors[id(fix)] = carry(fix, get)[1] if get is not None else None
        except (ValueError, KeyError):
            errors[id(fix)] = None
    before = {k: float(getattr(report.totals, KEYS[k][1])) for k in goal}
    totals = dict(before)

    def saved(fix: Fix, key: str) -> float:
        assert fix.before is not None and fix.after is not None
        attr = KEYS[key][0]
        return float(getattr(fix.before, attr) - getattr(fix.after, attr))

    def score(fix: Fix) -> tuple[int, float]:
        err = errors.get(id(fix))
        err = 1.0 if err is None else max(err, 1e-9)
        time = saved(fix, "time")
        if time > 0:
            return 1, time / err
        return 0, sum(saved(fix, k) / max(before[k], 1e-30) for k in goal) / err

    useful = [f for f in pool if any(saved(f, k) > 0 for k in goal)]
    chosen: list[Fix] = []
    taken: set[str] = set()
    for fix in sorted(useful, key=score, reverse=True):
        if all(totals[k] <= v for k, v in goal.items()):
            break
        if taken & set(fix.replaces):
            continue
        if not any(saved(fix, k) > 0 and totals[k] > goal[k] for k in goal):
            continue  # saves nothing on a total still over budget
        chosen.append(fix)
        taken.update(fix.replaces)
        for k in goal:
            totals[k] -= saved(fix, k)
    met = all(totals[k] <= v for k, v in goal.items())
    return Plan(chosen, goal, before, totals, met, {id(f): errors.get(id(f)) for f in chosen})
