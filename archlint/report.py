"""The report's data model: :class:`Report` (what ``archlint.analyze`` returns and every
reporter renders), its :class:`ModelInfo`, :class:`LayerRecord` and :class:`Totals`.

The pipeline that fills it is :mod:`archlint.pipeline`; the JSON, HTML and chart writers are
in :mod:`archlint.reporters`. This module imports neither: it sits below both.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from archlint.analyses.receptive_field import RFRecord
from archlint.findings import Finding
from archlint.ir import ModelGraph, Shape
from archlint.ops import registry

if TYPE_CHECKING:
    from archlint.profiles import Profile


@dataclass(slots=True)
class LayerRecord:
    """One layer's results. ``macs``/``flops`` are ``None`` when the layer could not be costed."""

    name: str
    op: str
    kind: str
    inputs: list[dict[str, Any]]
    output_shape: Shape | None
    params: int
    macs: int | None
    flops: int | None
    module: str | None = None
    source: tuple[str, int] | None = None
    shared_params: int = 0
    output_shapes: list[Shape | None] = field(default_factory=list)
    rf: list[RFRecord] = field(default_factory=list)
    uncounted: str | None = None
    is_data: bool = True
    output_bytes: int = 0
    bytes: int = 0
    intensity: float | None = None
    est_time: float = 0.0

    @property
    def plumbing(self) -> bool:
        """Shape arithmetic or a pass-through copy: not shown in the table by default, unless it
        moves data (a QuantizeLinear on the model's input, which no neighbour absorbs)."""
        return (registry.get(self.kind).hidden or not self.is_data) and not self.bytes

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name, "op": self.op, "kind": self.kind, "module": self.module,
            "inputs": self.inputs,
            "output_shape": list(self.output_shape) if self.output_shape is not None else None,
            "params": self.params, "macs": self.macs, "flops": self.flops,
            "rf": self.rf[0].to_dict() if self.rf else None,
            "bytes": self.bytes, "intensity": round(self.intensity, 3) if self.intensity is not None else None,
            "est_time_s": self.est_time,
        }
        if len(self.output_shapes) > 1:
            d["output_shapes"] = [list(s) if s is not None else None for s in self.output_shapes]
        if self.shared_params:
            d["shared_params"] = self.shared_params
        if len(self.rf) > 1:
            d["rf_by_input"] = {r.input: r.to_dict() for r in self.rf}
        if self.source:
            d["source"] = {"file": self.source[0], "line": self.source[1]}
        if self.uncounted:
            d["uncounted"] = self.uncounted
        return d


@dataclass
class Totals:
    """Model totals. ``partial`` is true when some op could not be costed: then
    ``macs``/``flops`` are lower bounds and ``uncounted_ops`` says which ops."""

    params: int
    macs: int
    flops: int
    activation_bytes: int
    uncounted_ops: list[dict[str, str]]
    bytes: int = 0
    est_time: float = 0.0

    @property
    def partial(self) -> bool:
        return bool(self.uncounted_ops)

    def to_dict(self) -> dict[str, Any]:
        return {"params": self.params, "macs": self.macs, "flops": self.flops,
                "activation_bytes": self.activation_bytes, "bytes": self.bytes, "est_time_s": self.est_time,
                "partial": self.partial, "uncounted_ops": self.uncounted_ops}


@dataclass
class ModelInfo:
    """Where the model came from and how it was analysed: the JSON report's ``model`` object.

    ``inputs`` holds one ``{"name", "shape", "dtype"}`` per graph input (and ``"value"`` for
    an input fixed by ``--input-value``); ``class_name`` is the
    ``module.qualname`` of a PyTorch model (JSON key ``class``). :attr:`label` is the one
    display name every reporter and message uses."""

    path: str | None
    format: str | None
    inputs: list[dict[str, Any]]
    dtype: str = "fp32"
    profile: str | None = None
    opset: int | None = None
    tracer: str | None = None
    tracer_fallback_reason: str | None = None
    class_name: str | None = None

    @property
    def label(self) -> str:
        """The model's display name: its path or target (``model.onnx``, ``pkg.mod:build``), else
        the class name of an in-memory PyTorch module, else ``model``."""
        if self.path:
            return self.path
        if self.class_name:
            return self.class_name.rpartition(".")[2]
        return "model"

    def to_dict(self) -> dict[str, Any]:
        """The JSON ``model`` object: the optional keys only when set, in this order."""
        d: dict[str, Any] = {"path": self.path, "format": self.format, "inputs": self.inputs,
                             "dtype": self.dtype, "profile": self.profile}
        for key, value in (("opset", self.opset), ("tracer", self.tracer),
                           ("tracer_fallback_reason", self.tracer_fallback_reason), ("class", self.class_name)):
            if value is not None:
                d[key] = value
        return d

    # Read access by the JSON key (``report.model["tracer"]``), as when ``model`` was a dict.
    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_dict().get(key, default)


@dataclass(repr=False)
class Report:
    """The analysis of one model: ``model`` (where it came from and its inputs),
    ``layers``, ``totals``, ``findings`` and ``warnings``. ``graph`` is the IR.

    ``to_json``, ``to_dict``, ``to_html``, ``plot`` and the notebook view are kept here for
    API users and delegate to :mod:`archlint.reporters`, importing it when called: the
    reporters import this module, so a module-level import would run back up the pipeline
    (and load matplotlib-sized dependencies on ``import archlint``)."""

    model: ModelInfo
    layers: list[LayerRecord]
    totals: Totals
    findings: list[Finding] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    graph: ModelGraph | None = field(default=None, repr=False)
    profile: Profile | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        from archlint.units import human
        t = self.totals
        partial = " (partial)" if t.partial else ""
        return (f"<archlint.Report {self.model.label}: "
                f"{human(t.params)} params, {human(t.macs)} MACs{partial}, {len(self.layers)} layers, "
                f"{len(self.findings)} findings>")

    def layer(self, name: str) -> LayerRecord:
        for rec in self.layers:
            if rec.name == name:
                return rec
        raise KeyError(name)

    def filter(self, kind: str | Sequence[str] | None = None, name: str | None = None) -> list[LayerRecord]:
        """Layers of the given op kind(s) whose name matches a glob (``"layer1.*"``)."""
        kinds = {kind} if isinstance(kind, str) else set(kind) if kind is not None else None
        return [r for r in self.layers if (kinds is None or r.kind in kinds)
                and (name is None or fnmatch.fnmatchcase(r.name, name))]

    def top(self, k: int = 10, by: str = "macs") -> list[LayerRecord]:
        """The ``k`` layers with the most ``macs``, ``params``, ``flops``, ``bytes`` or ``est_time``."""
        return sorted(self.layers, key=lambda r: getattr(r, by) or 0, reverse=True)[:k]

    def to_pandas(self) -> Any:
        """One row per layer (needs pandas: ``pip install pandas``)."""
        try:
            import pandas as pd
        except ImportError:
            from archlint.errors import ArchlintError
            raise ArchlintError("Report.to_pandas() needs pandas: pip install 'archlint[pandas]' "
                                "(or pip install pandas)") from None
        rows = []
        for r in self.layers:
            d = r.to_dict()
            d.pop("inputs", None)
            d["rf"] = r.rf[0].short() if r.rf else None
            rows.append(d)
        return pd.DataFrame(rows)

    def plot(self, kind: str = "rf", ax: Any = None) -> Any:
        """A matplotlib chart (``pip install 'archlint[plot]'``): ``"rf"`` receptive field per layer
        against the input size, ``"macs"``, ``"params"``, ``"cost"`` (both), or ``"roofline"``
        on the report's device profile. Returns the ``Axes``."""
        from archlint.reporters.plot import plot
        return plot(self, kind, ax)

    def to_html(self) -> str:
        """A self-contained HTML page (what ``--format html`` writes)."""
        from archlint.reporters.html import render
        return render([self])

    def _repr_html_(self) -> str:
        from archlint.reporters.html import render_notebook
        return render_notebook(self)

    def to_dict(self) -> dict[str, Any]:
        """The JSON report as Python objects (:func:`archlint.reporters.json_report.report_dict`)."""
        from archlint.reporters.json_report import report_dict
        return report_dict(self)

    def to_json(self, indent: int | None = 2) -> str:
        """Pretty JSON with one line per layer and finding (:func:`archlint.reporters.json_report.
        report_json`); ``indent=None`` gives a single line."""
        from archlint.reporters.json_report import report_json
        return report_json(self, indent)

    def write_json(self, fh: IO[str], indent: int = 2) -> None:
        """Write :meth:`to_json`'s text to ``fh`` a layer at a time."""
        from archlint.reporters.json_report import write_report
        write_report(self, fh, indent)


def __getattr__(name: str) -> Any:
    """``from archlint.report import build_report`` (its home before :mod:`archlint.pipeline`)
    still works: resolved on first use, since the pipeline imports this module."""
    if name == "build_report":
        from archlint.pipeline import build_report
        return build_report
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def compare(before: Report, after: Report) -> dict[str, Any]:
    """Before/after deltas of two reports: totals, and per layer matched by name (layers only
    in one report are listed as added or removed)."""
    totals = {}
    for key in ("params", "macs", "flops", "activation_bytes", "bytes", "est_time"):
        a, b = getattr(before.totals, key), getattr(after.totals, key)
        totals[key] = {"before": a, "after": b, "delta": b - a,
                       "ratio": (b / a) if a else None}
    old = {r.name: r for r in before.layers}
    new = {r.name: r for r in after.layers}
    layers = []
    for name in list(old) + [n for n in new if n not in old]:
        a, b = old.get(name), new.get(name)
        row: dict[str, Any] = {"name": name, "status": "changed" if a and b else "removed" if a else "added"}
        for key in ("params", "macs", "bytes"):
            va = getattr(a, key) if a else 0
            vb = getattr(b, key) if b else 0
            row[key] = {"before": va, "after": vb, "delta": (vb or 0) - (va or 0)}
        if a and b and all(row[k]["delta"] == 0 for k in ("params", "macs", "bytes")) and \
                a.output_shape == b.output_shape:
            row["status"] = "same"
        layers.append(row)
    return {"totals": totals, "layers": layers}
