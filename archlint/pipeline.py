"""The analysis pipeline: run the analyses over an IR graph and collect a :class:`Report`.

frontends -> IR -> analyses -> **pipeline** -> report -> rules -> reporters. ``build_report``
is on the path of every model, up to a million layers: one pass, positional record
construction, shared per-tensor input entries.
"""

from __future__ import annotations

from typing import Any

from archlint import profiles
from archlint.analyses import cost as cost_analysis
from archlint.analyses import receptive_field as rf_analysis
from archlint.analyses import roofline
from archlint.analyses.shapes import call_of, fill_missing_shapes
from archlint.dtypes import normalise
from archlint.ir import ModelGraph
from archlint.ops import registry
from archlint.report import LayerRecord, ModelInfo, Report, Totals


def build_report(graph: ModelGraph, profile: Any = None, dtype: str | None = None) -> Report:
    """Run the analyses over an IR graph and collect the results. ``profile`` and ``dtype``
    (fp32, fp16, bf16, int8) set the device and element size of the roofline estimate."""
    device = profiles.load(profile)
    dtype = normalise(dtype)
    filled = set(fill_missing_shapes(graph))
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
    notes: list[str] = []  # the registry's caveats about costed layers (a data-dependent If)
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
        spec = registry.get(layer.kind)
        if spec.data_flow:
            activation += out_bytes
        if spec.note_fn is not None and not c.uncounted:
            note = spec.note_fn(call_of(graph, layer), layer.name)
            if note:
                notes.append(note)
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
    warnings = list(graph.meta.get("warnings", [])) + notes
    if filled:
        warnings.append(f"{len(filled)} layer shape(s) came from archlint's own shape rules, not the frontend")
    if uncounted:
        ops = sorted({u["op"] for u in uncounted})
        warnings.append(f"totals are partial: {len(uncounted)} op(s) could not be costed ({', '.join(ops)})")
    report = Report(model=model_info(graph, dtype, device.name), layers=layers, totals=totals, warnings=warnings,
                    graph=graph)
    report.profile = device
    return report


def model_info(graph: ModelGraph, dtype: str, profile: str) -> ModelInfo:
    """The report's :class:`ModelInfo` from the frontend's graph metadata."""
    meta = graph.meta
    inputs = [{"name": t, "shape": list(s) if (s := graph.shape(t)) is not None else None,
               "dtype": graph.tensors[t].dtype} for t in graph.inputs]
    inputs += [{"name": name, **fixed} for name, fixed in meta.get("input_values", {}).items()]
    return ModelInfo(path=meta.get("path"), format=meta.get("format"), inputs=inputs, dtype=dtype, profile=profile,
                     opset=meta.get("opset"), tracer=meta.get("tracer"),
                     tracer_fallback_reason=meta.get("tracer_fallback_reason"), class_name=meta.get("class"))
