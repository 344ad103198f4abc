"""The :class:`Report`: what ``archlint.analyze`` returns and every reporter renders."""

from __future__ import annotations

import fnmatch
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from archlint.analyses import cost as cost_analysis
from archlint.analyses import receptive_field as rf_analysis
from archlint.analyses.receptive_field import RFRecord
from archlint.analyses.shapes import fill_missing_shapes
from archlint.ir import ModelGraph, Shape
from archlint.ops import registry


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
        """Shape arithmetic or a pass-through copy: not shown in the table by default."""
        return registry.get(self.kind).hidden or not self.is_data

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


@dataclass(repr=False)
class Report:
    """The analysis of one model: ``model`` (where it came from and its inputs),
    ``layers``, ``totals``, ``findings`` and ``warnings``. ``graph`` is the IR."""

    model: dict[str, Any]
    layers: list[LayerRecord]
    totals: Totals
    findings: list[Any] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    graph: ModelGraph | None = field(default=None, repr=False)
    profile: Any = field(default=None, repr=False)

    def __repr__(self) -> str:
        from archlint.units import human
        t = self.totals
        partial = " (partial)" if t.partial else ""
        return (f"<archlint.Report {self.model.get('path') or self.model.get('class') or 'model'}: "
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
            raise ArchlintError("Report.to_pandas() needs pandas: pip install 'archlint[pandas]' (or pip install pandas)") from None
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
        from archlint import __version__
        return {"archlint_version": __version__, "model": self.model, "totals": self.totals.to_dict(),
                "layers": [layer.to_dict() for layer in self.layers],
                "findings": [f.to_dict() if hasattr(f, "to_dict") else f for f in self.findings],
                "warnings": list(self.warnings)}

    def to_json(self, indent: int | None = 2) -> str:
        """Pretty JSON with one line per layer and finding (readable, grep-able, and fast:
        the C encoder does each line). ``indent=None`` gives a single line."""
        if indent is None:
            return json.dumps(self.to_dict())
        out = io.StringIO()
        self.write_json(out, indent)
        return out.getvalue()

    def write_json(self, fh: IO[str], indent: int = 2) -> None:
        """Write :meth:`to_json`'s text to ``fh`` a layer at a time: a million-layer report
        never exists as one string."""
        from archlint import __version__
        pad = " " * indent
        head = {"archlint_version": __version__, "model": self.model, "totals": self.totals.to_dict()}
        fh.write("{\n" + ",\n".join(f"{pad}{json.dumps(k)}: {json.dumps(v)}" for k, v in head.items()))
        for key, items in (("layers", self.layers), ("findings", self.findings)):
            if not items:
                fh.write(f",\n{pad}{json.dumps(key)}: []")
                continue
            fh.write(f",\n{pad}{json.dumps(key)}: [\n")
            sep = ""
            dumps = _line_dumps()
            for item in items:
                text = dumps(item.to_dict() if hasattr(item, "to_dict") else item)
                fh.write(f"{sep}{pad}{pad}{text}")
                sep = ",\n"
            fh.write(f"\n{pad}]")
        fh.write(f",\n{pad}\"warnings\": {json.dumps(list(self.warnings))}\n}}")


def _line_dumps() -> Callable[[Any], str]:
    """``json.dumps`` with its default settings, for many short lines: ``json.dumps`` makes
    a new C encoder on every call, a third of the time of a layer's line; this makes it
    once. The text is the same (the same encoder, without the circular-reference check:
    report data has no cycles)."""
    try:
        from json.encoder import JSONEncoder, c_make_encoder, encode_basestring_ascii
    except ImportError:  # pragma: no cover
        return json.dumps
    if c_make_encoder is None:  # pragma: no cover  (no C accelerator: e.g. PyPy)
        return json.dumps
    encode = c_make_encoder(None, JSONEncoder().default, encode_basestring_ascii, None, ": ", ", ", False, False,
                            True)
    join = "".join
    return lambda obj: join(encode(obj, 0))


def build_report(graph: ModelGraph, profile: Any = None, dtype: str | None = None) -> Report:
    """Run the analyses over an IR graph and collect the results. ``profile`` and ``dtype``
    (fp32, fp16, bf16, int8) set the device and element size of the roofline estimate."""
    from archlint import profiles
    from archlint.analyses import roofline
    device = profiles.load(profile)
    dtype = normalise_dtype(dtype)
    filled = set(fill_missing_shapes(graph))
    from archlint.analyses.shapes import call_of
    order = graph.layers()
    calls = [call_of(graph, layer) for layer in order]
    costs = cost_analysis.compute(graph, calls)
    fields = rf_analysis.compute(graph, calls)
    del calls
    traffic = roofline.TrafficModel(graph, device, dtype)
    layers: list[LayerRecord] = []
    uncounted: list[dict[str, str]] = []
    activation = sum(cost_analysis.tensor_bytes(graph, t) for t in graph.inputs)
    weights = graph.params | set(graph.constants)
    tensors = graph.tensors
    input_entry: dict[str, dict[str, Any]] = {}  # one {"name", "shape"} per tensor, shared by its readers
    for layer, c, rf in zip(order, costs.layers, fields):
        outputs = layer.outputs
        out_shapes = []
        is_data = False
        out_bytes = 0
        for t in outputs:
            out_shapes.append(tensors[t].shape)
            if cost_analysis.is_data_tensor(graph, t):
                is_data = True
                out_bytes += cost_analysis.tensor_bytes(graph, t)
        if registry.get(layer.kind).data_flow:
            activation += out_bytes
        ins = []
        for t in layer.inputs:
            if t and t not in weights:
                entry = input_entry.get(t)
                if entry is None:
                    info = tensors.get(t)
                    shape = info.shape if info is not None else None
                    entry = input_entry[t] = {"name": t, "shape": list(shape) if shape is not None else None}
                ins.append(entry)
        nbytes, intensity, est = traffic.layer(layer, c.flops)
        # positional, in LayerRecord's field order (a million of these are built)
        layers.append(LayerRecord(
            layer.name, layer.op, layer.kind, ins, out_shapes[0] if out_shapes else None, c.params, c.macs,
            c.flops, layer.module, layer.source, c.shared_params, out_shapes, rf, c.uncounted, is_data,
            out_bytes, nbytes, intensity, est))
        if c.uncounted:
            uncounted.append({"layer": layer.name, "op": layer.op, "reason": c.uncounted})
    totals = Totals(costs.params, costs.macs, costs.flops, activation, uncounted,
                    bytes=sum(r.bytes for r in layers), est_time=sum(r.est_time for r in layers))
    warnings = list(graph.meta.get("warnings", []))
    if filled:
        warnings.append(f"{len(filled)} layer shape(s) came from archlint's own shape rules, not the frontend")
    if uncounted:
        ops = sorted({u["op"] for u in uncounted})
        warnings.append(f"totals are partial: {len(uncounted)} op(s) could not be costed ({', '.join(ops)})")
    model = {"path": graph.meta.get("path"), "format": graph.meta.get("format"),
             "inputs": [{"name": t, "shape": list(s) if (s := graph.shape(t)) is not None else None,
                         "dtype": graph.tensors[t].dtype} for t in graph.inputs]}
    model["dtype"] = dtype
    model["profile"] = device.name
    for key in ("opset", "tracer", "tracer_fallback_reason", "class"):
        if graph.meta.get(key) is not None:
            model[key] = graph.meta[key]
    report = Report(model=model, layers=layers, totals=totals, warnings=warnings, graph=graph)
    report.profile = device
    return report


def normalise_dtype(dtype: Any) -> str:
    """``fp32`` (default), ``fp16``, ``bf16`` or ``int8`` (:func:`archlint.dtypes.normalise`)."""
    from archlint.dtypes import normalise
    return normalise(dtype)


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
