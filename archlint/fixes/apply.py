"""``archlint.apply``: rewrite a model with the fixes of its findings.

Safe and unsafe as ruff names them: a safe fix keeps the function up to float rounding
(AL106); an unsafe one changes it and needs fine-tuning (AL101, AL102, AL103, AL105) and
is applied only with ``unsafe=True``. Every fix not applied is listed with the reason.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from archlint.analyses import rewrite
from archlint.analyses.rewrite import Fix, NotApplicable
from archlint.errors import ArchlintError
from archlint.ir import ModelGraph
from archlint.report import Report


def _grouped_best(graph: ModelGraph, name: str, finding: Any) -> Fix:
    """AL102 with the group count of the finding's option with the lowest estimated time."""
    options = finding.details.get("options") if finding is not None else None
    if not options:
        raise NotApplicable("the finding lists no group count")
    best = min(options, key=lambda r: r["est_time_s"])["groups"]
    return rewrite.grouped(graph, graph.layer(name), int(best))


def _bias_fold(graph: ModelGraph, name: str, finding: Any) -> Fix:
    consumers = graph.successors(name)
    if len(consumers) != 1:
        raise NotApplicable(f"'{name}' does not feed exactly one layer")
    return rewrite.drop_bias_into_batchnorm(graph, graph.layer(name), graph.layer(consumers[0]))


# rule code -> Fix constructor from (graph, layer name, finding)
CONSTRUCTORS: dict[str, Callable[[ModelGraph, str, Any], Fix]] = {
    "AL101": lambda g, n, f: rewrite.depthwise_separable(g, g.layer(n)),
    "AL102": _grouped_best,
    "AL103": lambda g, n, f: rewrite.stacked_3x3(g, g.layer(n)),
    "AL105": lambda g, n, f: rewrite.pool_then_pointwise(g, g.layer(n)),
    "AL106": _bias_fold,
}
SAFE = frozenset({"AL106"})


@dataclass
class Applied:
    """The rewritten model (``onnx.ModelProto`` or ``nn.Module``) and one outcome per fix
    (``applied`` and ``skipped`` split them). Unpacks as ``model, outcomes``. ``base_dir`` is
    where an ONNX model's external data lives (:meth:`save` keeps it external)."""

    model: Any
    outcomes: list[Any] = field(default_factory=list)
    base_dir: str | None = None
    not_fixable: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def applied(self) -> list[Any]:
        return [o for o in self.outcomes if o.applied]

    @property
    def skipped(self) -> list[Any]:
        return [o for o in self.outcomes if not o.applied]

    def __iter__(self) -> Iterator[Any]:
        return iter((self.model, self.outcomes))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the ONNX model (external data kept external, copied next to ``path``)."""
        if not _is_onnx(self.model):
            raise ArchlintError("save() writes ONNX models; export a torch module with torch.onnx.export")
        from archlint.fixes.onnx_writer import save
        save(self.model, path, self.base_dir)


def fixes_from_report(report: Report, select: Sequence[str] | None = None,
                      layers: str | Sequence[str] | None = None) -> tuple[list[Fix], list[tuple[str, str, str]]]:
    """The fixes of ``report.findings`` (the one each finding carries, built and costed by its
    rule; for a finding without one, built here and costed on the report's profile and dtype)
    and the findings that have none, as ``(code, layer, reason)``."""
    graph = report.graph
    if graph is None:
        raise ArchlintError("the report holds no graph to rewrite")
    fixes, missing = [], []
    for finding in report.findings:
        code, name = finding.code, finding.layer
        if code not in CONSTRUCTORS or name is None or not _selected(code, name, select, layers):
            continue
        if finding.fix is not None:  # the rule built and costed it
            fixes.append(finding.fix)
            continue
        try:
            fix = CONSTRUCTORS[code](graph, name, finding)
            fix.compute_cost(graph, report.profile, report.model.get("dtype") or "fp32")
        except NotApplicable as exc:
            missing.append((code, name, str(exc)))
            continue
        fixes.append(fix)
    return fixes, missing


def _selected(code: str, name: str, select: Sequence[str] | None, layers: str | Sequence[str] | None) -> bool:
    if select is not None and not any(code.startswith(s.upper()) for s in ([select] if isinstance(select, str)
                                                                           else select)):
        return False
    if layers is None:
        return True
    globs = [layers] if isinstance(layers, str) else list(layers)
    return any(fnmatch.fnmatchcase(name, g) for g in globs)


def _is_onnx(model: Any) -> bool:
    return type(model).__name__ == "ModelProto" and type(model).__module__.startswith("onnx")


def apply(model: Any, report_or_fixes: Report | Sequence[Fix], select: Sequence[str] | str | None = None,
          layers: str | Sequence[str] | None = None, unsafe: bool = False, measure: bool = True) -> Applied:
    """Rewrite ``model`` (an ``onnx.ModelProto``, an ``.onnx`` path or a torch ``nn.Module``)
    with the fixes of a :class:`Report`'s findings (or a list of :class:`Fix`), keeping those
    whose code starts with one of ``select`` and whose layer matches a glob of ``layers``.
    Unsafe fixes (AL101, AL102, AL103, AL105) need ``unsafe=True``. Returns an :class:`Applied`
    (``model, outcomes = archlint.apply(...)``); the input model is never modified."""
    from archlint.fixes.carry import Outcome
    if isinstance(report_or_fixes, Report):
        fixes, missing = fixes_from_report(report_or_fixes, select, layers)
    else:
        fixes = [f for f in report_or_fixes if _selected(f.code, f.layer, select, layers)]
        missing = []
    chosen, outcomes = [], []
    for fix in fixes:
        if not fix.safe and not unsafe:
            outcomes.append(Outcome(fix, False, "unsafe fix (changes the function; fine-tune after it): pass "
                                                "unsafe=True"))
        else:
            chosen.append(fix)
    base_dir = None
    if isinstance(model, (str, os.PathLike)):
        import onnx
        model_path = os.fspath(model)
        base_dir = os.path.dirname(os.path.abspath(model_path))
        try:
            model = onnx.load(model_path, load_external_data=False)
        except Exception as exc:  # noqa: BLE001  (protobuf decode errors have several types)
            raise ArchlintError(f"{model_path}: cannot read the ONNX model ({str(exc).splitlines()[0]})") from None
    if _is_onnx(model):
        from archlint.fixes import onnx_writer
        new, done = onnx_writer.rewrite(model, chosen, base_dir, measure)
    elif any(c.__module__.startswith("torch.nn") and c.__name__ == "Module" for c in type(model).__mro__):
        from archlint.fixes import torch_writer
        new, done = torch_writer.rewrite(model, chosen, measure)
    else:
        raise ArchlintError(f"cannot rewrite an object of type {type(model).__name__}: pass an ONNX model or path, "
                            f"or a torch nn.Module")
    return Applied(new, outcomes + done, base_dir, missing)
