"""Apply :class:`~archlint.analyses.rewrite.Fix`es to an ``onnx.ModelProto``.

The replaced node(s) give way to new nodes built from the fix's layers (a layer whose
attributes are unchanged is a copy of its original node with new inputs, so op-specific
attributes such as Gemm's ``transB`` survive), placed where the original node was; the new
weights become initializers (inline), initializers no longer read are removed, and
everything else (opset, metadata, external data references, node metadata) is kept. A node
with ``archlint.ignore`` metadata naming the fix's code (or nothing, meaning every rule) is
left alone. The result must pass ``onnx.checker.check_model`` and strict shape inference
with the same output shapes, or :class:`RewriteError` is raised: a model failing
validation is never returned.
"""

from __future__ import annotations

import copy
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from archlint.analyses.rewrite import Fix
from archlint.errors import ArchlintError
from archlint.fixes.carry import SHAPES_ONLY, Outcome, carry
from archlint.ir import Layer
from archlint.ops import registry


class RewriteError(ArchlintError):
    """The rewritten model failed validation."""


def node_names(model: onnx.ModelProto) -> dict[str, int]:
    """IR layer name -> node index, named as the ONNX frontend names layers (the node's name,
    else ``OpType_index``, a repeated name getting ``_1``, ``_2``...)."""
    out: dict[str, int] = {}
    for index, node in enumerate(model.graph.node):
        base = node.name or f"{node.op_type}_{index}"
        name = base
        i = 1
        while name in out:
            name = f"{base}_{i}"
            i += 1
        out[name] = index
    return out


def suppressed(node: onnx.NodeProto, code: str) -> bool:
    """``archlint.ignore`` metadata naming ``code``, or naming nothing (every rule)."""
    for prop in node.metadata_props:
        if prop.key == "archlint.ignore":
            codes = {c.strip().upper() for c in prop.value.split(",") if c.strip()}
            return not codes or code in codes or "*" in codes
    return False


def _has_external(model: onnx.ModelProto) -> bool:
    return any(init.data_location == onnx.TensorProto.EXTERNAL for init in model.graph.initializer)


def with_data(model: onnx.ModelProto, base_dir: str | None) -> onnx.ModelProto:
    """A copy with external data read in (for onnxruntime and the checker), or the model itself."""
    if not _has_external(model):
        return model
    loaded = copy.deepcopy(model)
    from onnx.external_data_helper import load_external_data_for_model
    try:
        load_external_data_for_model(loaded, base_dir or ".")
    except (OSError, onnx.checker.ValidationError):  # the data file is missing (shapes only): zeros stand in
        for init in loaded.graph.initializer:
            if init.data_location == onnx.TensorProto.EXTERNAL:
                size = int(np.prod(init.dims)) * helper.tensor_dtype_to_np_dtype(init.data_type).itemsize
                del init.external_data[:]
                init.data_location = onnx.TensorProto.DEFAULT
                init.raw_data = bytes(size)
    return loaded


def rewrite(model: onnx.ModelProto, fixes: Sequence[Fix], base_dir: str | None = None,
            measure: bool = True) -> tuple[onnx.ModelProto, list[Outcome]]:
    """The rewritten copy of ``model`` and one :class:`Outcome` per fix (applied or why not).
    ``base_dir`` is where external data files live (the model file's folder)."""
    if model.functions:
        from onnx import inliner
        model = inliner.inline_local_functions(model)
    rewriter = _Rewriter(copy.deepcopy(model), base_dir, measure)
    outcomes = [rewriter.apply(fix) for fix in fixes]
    out = rewriter.model
    if not rewriter.replaced:
        return out, outcomes
    new_nodes = []
    for i, node in enumerate(rewriter.nodes):
        new_nodes.extend(rewriter.replaced.get(i, [node]))
    del out.graph.node[:]
    out.graph.node.extend(new_nodes)
    _drop_dead_aliases(out, {t for node in rewriter.nodes for t in node.input})
    _drop_unused(out)
    validate(model, out, base_dir)
    return out, outcomes


class _Rewriter:
    """One model being rewritten: fixes are applied one by one (:meth:`apply`); the new nodes
    wait in ``replaced`` (original node index -> nodes) until every fix is placed."""

    def __init__(self, model: onnx.ModelProto, base_dir: str | None, measure: bool) -> None:
        self.model, self.base_dir, self.measure = model, base_dir, measure
        self.inits = {init.name: init for init in model.graph.initializer}
        # paddle2onnx stores every weight as a Constant node: its value is the weight as well
        self.inits.update({node.output[0]: a.t for node in model.graph.node if node.op_type == "Constant"
                           and node.output for a in node.attribute
                           if a.name == "value" and a.type == onnx.AttributeProto.TENSOR})
        self.names = node_names(model)
        self.nodes = list(model.graph.node)
        self.replaced: dict[int, list[onnx.NodeProto]] = {}
        self.cache: dict[str, np.ndarray | None] = {}

    def get(self, name: str) -> np.ndarray | None:
        """An initializer's values; None when it has none (missing external data: shapes only)."""
        if name not in self.cache:
            init = self.inits.get(name)
            try:
                self.cache[name] = None if init is None else numpy_helper.to_array(init, self.base_dir or "")
            except Exception:  # noqa: BLE001  (missing external data file, no raw data: shapes only)
                self.cache[name] = None
        return self.cache[name]

    def locate(self, fix: Fix) -> list[int] | str:
        """The node indices the fix replaces, or why it cannot apply."""
        index = [self.names.get(n) for n in fix.replaces]
        idx = [i for i in index if i is not None]
        if len(idx) != len(index):
            return "layer not found in the model (gone or renamed)"
        if any(i in self.replaced for i in idx):
            return "the layer is already rewritten by another fix"
        hit = [self.nodes[i].name or fix.replaces[k] for k, i in enumerate(idx) if suppressed(self.nodes[i], fix.code)]
        if hit:
            return f"suppressed by archlint.ignore metadata on node '{hit[0]}'"
        for la in fix.original[:1]:
            info = fix.boundary.get(la.inputs[1]) if len(la.inputs) > 1 else None
            init = self.inits.get(la.inputs[1]) if len(la.inputs) > 1 else None
            if info is not None and init is not None and tuple(init.dims) != info.shape:
                expected = list(info.shape or ())
                return f"shapes changed: '{la.inputs[1]}' is {list(init.dims)}, the fix expects {expected}"
        return idx

    def apply(self, fix: Fix) -> Outcome:
        idx = self.locate(fix)
        if isinstance(idx, str):
            return Outcome(fix, False, idx)
        originals = {n: self.nodes[i] for n, i in zip(fix.replaces, idx)}
        getter = self.get
        first = originals[fix.replaces[0]]
        if fix.code == "AL106" and first.op_type == "Gemm":
            beta = next((a.f for a in first.attribute if a.name == "beta"), 1.0)
            getter = _scaled(self.get, fix.details["bias"], beta)
        try:
            values, error = carry(fix, getter)
        except ValueError as exc:
            return Outcome(fix, False, str(exc))
        outcome = Outcome(fix, True, weight_error=error)
        if error is None:
            outcome.notes.append(SHAPES_ONLY)
        new_inits = [numpy_helper.from_array(np.asarray(value).astype(self._dtype(fix)), name)
                     for name, value in values.items()]
        by_origin: dict[str, list[onnx.NodeProto]] = {n: [] for n in fix.replaces}
        for la in fix.layers:
            origin = fix.origin.get(la.name, fix.replaces[0])
            by_origin[origin].append(_node(la, fix.original[fix.replaces.index(origin)], originals[origin]))
        for n, i in zip(fix.replaces, idx):
            self.replaced[i] = by_origin[n]
        self.model.graph.initializer.extend(new_inits)
        self.inits.update({t.name: t for t in new_inits})
        if self.measure and error is not None:
            outcome.output_error = _output_error(self.model, self.base_dir, fix, list(originals.values()),
                                                 [nd for n in fix.replaces for nd in by_origin[n]], self.inits)
        return outcome

    def _dtype(self, fix: Fix) -> np.dtype:
        """The element type of the new tensors: the running mean's (AL106) or the weight's."""
        source = self.inits.get(fix.details.get("mean") or "") if fix.code == "AL106" else None
        if source is None and fix.original and len(fix.original[0].inputs) > 1:
            source = self.inits.get(fix.original[0].inputs[1])
        return np.dtype(helper.tensor_dtype_to_np_dtype(source.data_type)) if source is not None \
            else np.dtype(np.float32)


def _scaled(get: Any, name: str, scale: float) -> Any:
    def inner(n: str) -> np.ndarray | None:
        v = get(n)
        return v * scale if v is not None and n == name else v
    return inner


def _node(layer: Layer, original: Layer, node: onnx.NodeProto) -> onnx.NodeProto:
    """An ONNX node for ``layer``: a copy of ``node`` with new inputs when the attributes are
    unchanged, else built from the normalised attributes (Conv, AveragePool)."""
    if layer.attrs == original.attrs:
        new = copy.deepcopy(node)
        new.name = layer.name
        del new.input[:]
        new.input.extend(layer.inputs)
        del new.output[:]
        new.output.extend(layer.outputs)
        return new
    a = layer.attrs
    entry = registry.get(layer.kind)
    if entry.is_conv:
        new = helper.make_node("Conv", layer.inputs, layer.outputs, name=layer.name, kernel_shape=a["kernel"],
                               strides=a["stride"], pads=a["pads"], dilations=a["dilation"], group=a["groups"])
    elif entry.sliding_window and a.get("mode") == "avg":
        new = helper.make_node("AveragePool", layer.inputs, layer.outputs, name=layer.name, kernel_shape=a["kernel"],
                               strides=a["stride"], pads=a["pads"], ceil_mode=int(bool(a.get("ceil_mode"))),
                               count_include_pad=int(bool(a.get("count_include_pad"))))
    else:
        raise ValueError(f"no ONNX op for a new '{layer.kind}' layer")
    new.metadata_props.extend(node.metadata_props)
    if node.domain:
        new.domain = node.domain
    return new


def _drop_dead_aliases(model: onnx.ModelProto, read_before: set[str]) -> None:
    """Identity nodes re-creating a replaced weight (TorchScript exports store equal parameters
    once and copy them with Identity) whose output no node reads any more: left in place, their
    output would still count as a parameter."""
    g = model.graph
    inits = {i.name for i in g.initializer}
    read = _reads(g) | {o.name for o in g.output}
    keep = [n for n in g.node if not (n.op_type == "Identity" and n.input and n.input[0] in inits
                                      and all(o in read_before and o not in read for o in n.output))]
    if len(keep) != len(g.node):
        del g.node[:]
        g.node.extend(keep)


def _reads(g: onnx.GraphProto) -> set[str]:
    """Every tensor a node of ``g`` reads, in control-flow bodies too (a branch may read a
    Constant of the enclosing graph)."""
    read: set[str] = set()
    for node in g.node:
        read.update(node.input)
        for a in node.attribute:
            for sub in ([a.g] if a.type == onnx.AttributeProto.GRAPH else
                        a.graphs if a.type == onnx.AttributeProto.GRAPHS else []):
                read |= _reads(sub)
    return read


def _drop_unused(model: onnx.ModelProto) -> None:
    """Initializers (and their graph-input entries in old exports) and Constant nodes that no
    node reads any more."""
    g = model.graph
    read = _reads(g) | {o.name for o in g.output}
    nodes = [n for n in g.node if not (n.op_type == "Constant" and n.output and n.output[0] not in read)]
    if len(nodes) != len(g.node):
        del g.node[:]
        g.node.extend(nodes)
    keep = [init for init in g.initializer if init.name in read]
    if len(keep) != len(g.initializer):
        gone = {init.name for init in g.initializer} - {init.name for init in keep}
        del g.initializer[:]
        g.initializer.extend(keep)
        inputs = [i for i in g.input if i.name not in gone]
        del g.input[:]
        g.input.extend(inputs)
        infos = [v for v in g.value_info if v.name not in gone]
        del g.value_info[:]
        g.value_info.extend(infos)


def _output_shapes(model: onnx.ModelProto) -> list[list[Any]]:
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    return [[d.dim_value if d.HasField("dim_value") else d.dim_param for d in o.type.tensor_type.shape.dim]
            for o in inferred.graph.output]


def validate(before: onnx.ModelProto, after: onnx.ModelProto, base_dir: str | None) -> None:
    """``onnx.checker.check_model`` and strict shape inference pass, with the same output
    shapes as ``before``; :class:`RewriteError` otherwise."""
    try:
        onnx.checker.check_model(with_data(after, base_dir))
        shapes = _output_shapes(after)
    except Exception as exc:  # noqa: BLE001  (checker and inference raise several types)
        raise RewriteError(f"the rewritten model fails validation: {str(exc).splitlines()[0]}") from None
    try:
        expected = _output_shapes(before)
    except Exception:  # noqa: BLE001
        return  # the input itself does not pass strict inference: nothing to compare against
    if shapes != expected:
        raise RewriteError(f"the rewritten model's output shapes {shapes} differ from the original's {expected}")


def _output_error(model: onnx.ModelProto, base_dir: str | None, fix: Fix, old: list[onnx.NodeProto],
                  new: list[onnx.NodeProto], inits: dict[str, onnx.TensorProto]) -> float | None:
    """``||y - y_hat|| / ||y||`` of the replaced layers against their replacement on one random
    input (onnxruntime; None when it is not installed)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    x_name, y_name = fix.original[0].inputs[0], fix.original[-1].outputs[0]
    x_info = fix.boundary.get(x_name)
    if x_info is None or x_info.shape is None:
        return None
    x = np.random.default_rng(0).standard_normal(x_info.shape).astype(np.float32)
    results = []
    for nodes in (old, new):
        used = {t for n in nodes for t in n.input}
        tensors = [copy.deepcopy(inits[t]) for t in used if t in inits]
        g = helper.make_graph(list(nodes), "layer",
                              [helper.make_tensor_value_info(x_name, onnx.TensorProto.FLOAT, list(x_info.shape))],
                              [helper.make_tensor_value_info(y_name, onnx.TensorProto.FLOAT, None)], tensors)
        m = helper.make_model(g, opset_imports=list(model.opset_import), ir_version=model.ir_version)
        m = with_data(m, base_dir)
        try:
            sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
            results.append(sess.run(None, {x_name: x})[0].astype(np.float64))
        except Exception:  # noqa: BLE001  (a non-float layer, an op onnxruntime lacks)
            return None
    norm = float(np.linalg.norm(results[0]))
    diff = float(np.linalg.norm(results[0] - results[1]))
    return diff / norm if norm else diff


def save(model: onnx.ModelProto, path: str | os.PathLike[str], base_dir: str | None = None) -> None:
    """Write ``model``; its external data stays external: files it references next to the
    input (``base_dir``) are copied next to ``path`` when that is another folder."""
    target = Path(path)
    if _has_external(model) and base_dir is not None:
        src_dir, dst_dir = Path(base_dir).resolve(), target.parent.resolve()
        if src_dir != dst_dir:
            locations = {e.value for init in model.graph.initializer
                         if init.data_location == onnx.TensorProto.EXTERNAL
                         for e in init.external_data if e.key == "location"}
            for loc in locations:
                dst = dst_dir / loc
                if dst.exists():
                    raise ArchlintError(f"{dst}: exists; will not overwrite another model's external data")
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src_dir / loc, dst)
    onnx.save_model(model, os.fspath(target))
