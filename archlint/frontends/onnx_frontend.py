"""ONNX -> graph IR. Translation only: no cost is computed here.

The model is loaded without its external weight data (parameter counts come from
initializer dims), input shapes are fixed from ``--input-shape``, local functions are
inlined (``dynamo=True`` exports), and onnx's own shape inference with data
propagation gives the intermediate shapes.
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx
from onnx import TensorProto, helper, numpy_helper

from archlint.errors import ArchlintError
from archlint.frontends import onnx_bodies, onnx_checks, onnx_fold, onnx_infer, onnx_ops, onnx_params, onnx_values
from archlint.frontends.onnx_infer import DTYPES
from archlint.frontends.onnx_infer import value_shape as _value_shape
from archlint.input_spec import InputShapes
from archlint.ir import Layer, ModelGraph
from archlint.ops.registry import UNKNOWN

STANDARD_DOMAINS = onnx_ops.STANDARD_DOMAINS
MAX_CONST_ELEMENTS = 64  # small integer tensors whose values we read (pads, axes, scales)

def load(path: str | os.PathLike[str], input_shapes: InputShapes | None = None) -> ModelGraph:
    """Read an ONNX file into a :class:`ModelGraph`; raise :class:`ArchlintError` on bad input."""
    graph = _load(read_model(path), input_shapes, str(path))
    graph.meta["path"] = str(path)
    return graph


def load_proto(model: onnx.ModelProto, input_shapes: InputShapes | None = None,
               label: str = "model") -> ModelGraph:
    """Translate an in-memory ``ModelProto`` (it is not modified)."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    _strip_weight_data(copy, label)  # as for a file: large values are never read, and inference copies them
    return _load(copy, input_shapes, label)


def _load(model: onnx.ModelProto, input_shapes: InputShapes | None, label: str) -> ModelGraph:
    onnx_checks.check_opset(model, label)
    model = _inline(model)
    shapes, fixed = onnx_values.apply(model, input_shapes or InputShapes({}, []), label)
    onnx_fold.inline_constant_ifs(model)
    applied = _apply_input_shapes(model, shapes, label)
    inferred, note = onnx_infer.infer_shapes(model)
    nodes = _translate_nodes(model, label=label)
    graph = _attach_shapes(nodes, inferred, note)
    folded = None
    if note is None and (_missing_output_shape(graph) or _has_if(model)):
        folded = _fold_and_infer(inferred)
        if folded is not None:  # parameters are those of the graph as written (onnx_params)
            _add_inlined_sources(nodes.sources, model, folded)
            graph = _attach_shapes(_translate_nodes(folded, nodes.sources, label), folded, note)
    if _has_control_flow(folded if folded is not None else inferred):
        _attach_bodies(graph, folded if folded is not None else inferred, label)
    if input_shapes:
        onnx_checks.check_consistency(graph, label, applied.overrides)
    if applied.notes:
        graph.meta.setdefault("warnings", []).extend(applied.notes)
    if fixed:
        graph.meta["input_values"] = fixed
    graph.meta.update(format="onnx",
                      opset=max((o.version for o in model.opset_import if o.domain in STANDARD_DOMAINS), default=None))
    return graph


def read_model(path: str | os.PathLike[str]) -> onnx.ModelProto:
    """Parse the protobuf without loading external data; every failure is a one-line error."""
    p = Path(path)
    if not p.exists():
        raise ArchlintError(f"{path}: no such file")
    if p.is_dir():
        raise ArchlintError(f"{path}: is a directory, not an ONNX file")
    try:
        model = _parse_mapped(p) if p.suffix.lower() == ".onnx" else None
        if model is None:
            model = onnx.load_model(str(p), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ArchlintError(f"{path}: not a readable ONNX model (corrupt or truncated protobuf: {reason})") from None
    if model.ir_version <= 0 or not model.HasField("graph") or not model.opset_import:
        raise ArchlintError(f"{path}: not an ONNX model (no IR version, graph or opset; is it the right file?)")
    if not model.graph.node:
        raise ArchlintError(f"{path}: the ONNX graph has no nodes")
    _check_text(model, str(path))
    _strip_weight_data(model, str(path))
    return model


def _parse_mapped(path: Path) -> onnx.ModelProto | None:
    """Parse a binary ``.onnx`` file through a memory map: a TorchScript export holds its
    weights inline, and reading 350 MB into a buffer first (``onnx.load_model``) took more
    than half of the time of the whole run. None when the file cannot be mapped (empty,
    not a regular file): the caller reads it the usual way."""
    with open(path, "rb") as fh:
        try:
            mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            return None
        with mapped, memoryview(mapped) as view:
            model = onnx.ModelProto()
            model.ParseFromString(view)  # protobuf copies what it keeps: nothing points into the map
            return model


def _check_text(model: onnx.ModelProto, path: str) -> None:
    """Names must be text: protobuf hands back bytes for invalid UTF-8 (a corrupt file).
    ``str.join`` refuses bytes, which makes this one C-level pass per node."""
    g = model.graph
    join = "".join
    try:
        for node in g.node:
            join((node.name, node.op_type, node.domain))
            join(node.input)
            join(node.output)
    except TypeError:
        raise ArchlintError(f"{path}: corrupt ONNX model (a node name or tensor name is not valid UTF-8)") from None
    try:
        join([item.name for item in (*g.initializer, *g.input, *g.output, *g.value_info)])
    except TypeError:
        raise ArchlintError(f"{path}: corrupt ONNX model (a tensor name is not valid UTF-8)") from None


def _strip_weight_data(model: onnx.ModelProto, label: str) -> None:
    """Drop the contents of large tensors, keeping dims and dtype (all archlint needs), so
    that shape inference, which serializes the whole model at each call, does not copy
    hundreds of MB: initializers, and the values of ``Constant`` nodes (paddle2onnx stores
    every weight in one), in the graph and in control-flow bodies. They are marked as
    external data, which nothing here reads. Each initializer is checked against its dims first."""
    for init in model.graph.initializer:
        onnx_checks.check_initializer(init, label)
        _strip(init)
    _strip_constants(model.graph, label)


def _strip_constants(graph: onnx.GraphProto, label: str) -> None:
    """:func:`_strip` each Constant node's tensor (checked against its dims first) and each
    initializer of a control-flow body, recursively."""
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR and node.op_type == "Constant":
                onnx_checks.check_initializer(attr.t, label, f"Constant node '{node.name or node.output[0]}' tensor")
                _strip(attr.t)
            elif attr.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
                for sub in [attr.g] if attr.type == onnx.AttributeProto.GRAPH else attr.graphs:
                    for init in sub.initializer:
                        onnx_checks.check_initializer(init, label)
                        _strip(init)
                    _strip_constants(sub, label)


def _strip(tensor: onnx.TensorProto) -> None:
    """Empty a tensor of more than :data:`onnx_fold.MAX_ELEMENTS` elements (values up to that
    size may be shape arithmetic, which folding reads)."""
    n = 1
    for d in tensor.dims:
        n *= d
    if n > onnx_fold.MAX_ELEMENTS and tensor.data_location != TensorProto.EXTERNAL:
        for name in ("raw_data", "float_data", "int32_data", "int64_data", "double_data", "uint64_data"):
            tensor.ClearField(name)
        tensor.data_location = TensorProto.EXTERNAL
        entry = tensor.external_data.add()
        entry.key, entry.value = "location", "archlint-stripped"


def _inline(model: onnx.ModelProto) -> onnx.ModelProto:
    """Inline model-local functions (``dynamo=True`` exports may nest modules as functions)."""
    if not model.functions:
        return model
    try:
        from onnx import inliner
        return inliner.inline_local_functions(model)
    except Exception as exc:
        raise ArchlintError(f"cannot inline the model's local functions: {exc}") from None


def _graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """Real inputs: graph inputs that are not initializers (old exports list both)."""
    inits = {i.name for i in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in inits]


def _apply_input_shapes(model: onnx.ModelProto, shapes: InputShapes, path: str) -> _Applied:
    """Write the user's shapes into the inputs; a symbolic leading (batch) dim left unset is
    taken as 1, with a note; fail on any other symbolic dim left unresolved.

    Declared intermediate shapes and output shapes are cleared, since they may
    disagree with an overridden input size; shape inference recomputes them.
    """
    inputs = _graph_inputs(model)
    onnx_checks.check_given_inputs([i.name for i in inputs], shapes.named, len(shapes.positional), "--input-shape")
    applied = _Applied(changed=bool(shapes))
    for idx, inp in enumerate(inputs):
        onnx_checks.check_tensor_input(inp, path)
        given = shapes.named.get(inp.name)
        if given is None and idx < len(shapes.positional):
            given = shapes.positional[idx]
        if given is not None:
            _override(inp, given, applied)
        else:
            _check_declared(inp, applied)
    if applied.changed or any(d.dim_param for vi in model.graph.value_info for d in vi.type.tensor_type.shape.dim):
        del model.graph.value_info[:]
        for out in model.graph.output:
            out.type.tensor_type.ClearField("shape")
    return applied


@dataclass
class _Applied:
    """What :func:`_apply_input_shapes` did: whether any shape changed, the fixed dims the user
    overrode (input -> ``(axis, declared, given)``), and notes for the report."""

    changed: bool = False
    overrides: dict[str, list[tuple[int, int, int]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _override(inp: onnx.ValueInfoProto, given: tuple[int, ...], applied: _Applied) -> None:
    tensor_type = inp.type.tensor_type
    declared = tensor_type.shape.dim if tensor_type.HasField("shape") else []
    if declared and len(declared) != len(given):
        raise ArchlintError(f"--input-shape for input '{inp.name}' has {len(given)} dimensions, "
                            f"the model declares {len(declared)} ({_dims_text(declared)})")
    changed = [(axis, d.dim_value, g) for axis, (d, g) in enumerate(zip(declared, given))
               if d.HasField("dim_value") and d.dim_value != g]
    if changed:
        applied.overrides[inp.name] = changed
    tensor_type.shape.ClearField("dim")
    for d in given:
        tensor_type.shape.dim.add().dim_value = d


def _check_declared(inp: onnx.ValueInfoProto, applied: _Applied) -> None:
    """A declared shape must be fully static, but for a symbolic leading dim (the batch),
    which is taken as 1."""
    tensor_type = inp.type.tensor_type
    if not tensor_type.HasField("shape"):
        raise ArchlintError(f"input '{inp.name}' has no declared shape; pass --input-shape "
                            f"{inp.name}=1x3x224x224 (with its real dimensions), or set it under "
                            f"[tool.archlint.input-shapes] in pyproject.toml")
    dims = tensor_type.shape.dim
    for pos, d in enumerate(dims):
        if d.HasField("dim_value") and d.dim_value < 0:
            raise ArchlintError(f"input '{inp.name}' declares dimension {d.dim_value} at position {pos} "
                                f"(shape {_dims_text(dims)}); pass --input-shape {inp.name}=... with sizes >= 0")
    symbolic = [pos for pos, d in enumerate(dims) if not d.HasField("dim_value")]
    if symbolic == [0] and len(dims) > 1:
        label = f"'{dims[0].dim_param}'" if dims[0].dim_param else "unknown"
        applied.notes.append(f"input '{inp.name}': symbolic batch dimension {label} taken as 1 "
                             f"(--input-shape {inp.name}=... sets it)")
        dims[0].dim_value = 1
        applied.changed = True
        return
    if symbolic:
        pos = symbolic[0] if symbolic[0] != 0 else symbolic[-1]
        label = f"'{dims[pos].dim_param}'" if dims[pos].dim_param else "unknown"
        example = "x".join(str(x.dim_value) if x.dim_value > 0 else "1" for x in dims)
        raise ArchlintError(f"input '{inp.name}' has a symbolic dimension {label} at position {pos} "
                            f"(shape {_dims_text(dims)}); pass --input-shape {inp.name}={example} (with your real "
                            f"sizes), or set {inp.name} = \"{example}\" under [tool.archlint.input-shapes] "
                            f"in pyproject.toml")


def _dims_text(dims: Any) -> str:
    return "[" + ", ".join(str(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?") for d in dims) + "]"


def _fold_and_infer(inferred: onnx.ModelProto) -> onnx.ModelProto | None:
    """Where shapes stay unknown or an ``If`` remains, fold the constant shape arithmetic
    (:mod:`onnx_fold`), inline each ``If`` whose condition became constant, and infer again, until
    folding changes nothing (at most 64 rounds: each block whose shape arithmetic reads the
    shape of the previous block's output needs one; torchvision's swin_t exported through
    TorchScript needs more than 4); None when folding changed nothing."""
    changed = None
    cache: dict[str, Any] = {}
    for _ in range(64):
        if not _missing_shapes(inferred) and not _has_if(inferred):
            break
        candidate = onnx.ModelProto()
        candidate.CopyFrom(inferred)
        if not (onnx_fold.fold(candidate, cache) | onnx_fold.inline_constant_ifs(candidate)):
            break
        try:
            inferred = changed = onnx_infer.infer(candidate)
        except Exception:
            break
    return changed


def _add_inlined_sources(sources: onnx_params.Sources, model: onnx.ModelProto, folded: onnx.ModelProto) -> None:
    """Parameters of ``If`` branches inlined while folding: the branch's initializers and nodes
    are new to the folded graph (a folded tensor is an output of a node of the original)."""
    produced = {o for node in model.graph.node for o in node.output}
    for init in folded.graph.initializer:
        if init.name not in sources.of and init.name not in produced:
            sources.initializer(init)
    for node in folded.graph.node:
        if node.output and node.output[0] not in produced:
            sources.visit(node, {})


def _has_control_flow(model: onnx.ModelProto) -> bool:
    return any(node.op_type in onnx_bodies.CONTROL_FLOW for node in model.graph.node)


def _attach_bodies(graph: ModelGraph, model: onnx.ModelProto, label: str) -> None:
    """Translate the bodies of the ``If``/``Loop``/``Scan`` nodes left (:mod:`onnx_bodies`); the
    ``if`` kind's cost and note say how a data-dependent ``If`` is costed."""
    onnx_bodies.attach(graph, model, label, lambda sub, where: load_proto(sub, None, where))


def _has_if(model: onnx.ModelProto) -> bool:
    return any(node.op_type == "If" for node in model.graph.node)


def _missing_shapes(model: onnx.ModelProto) -> bool:
    known = set()
    for vi in (*model.graph.value_info, *model.graph.output, *model.graph.input):
        tt = vi.type.tensor_type
        if tt.HasField("shape"):
            for d in tt.shape.dim:
                if not d.HasField("dim_value"):
                    break
            else:
                known.add(vi.name)
    return any(o and o not in known for n in model.graph.node for o in n.output)


def _constant_value(tensor: onnx.TensorProto) -> list[Any] | None:
    """Values of a small, embedded tensor (pads, axes, scales), as a flat list."""
    if tensor.data_location == TensorProto.EXTERNAL:
        return None
    n = 1
    for d in tensor.dims:
        n *= d
    if n > MAX_CONST_ELEMENTS:
        return None
    try:
        return numpy_helper.to_array(tensor).reshape(-1).tolist()
    except Exception:
        return None


@dataclass
class _Nodes:
    """The nodes translated, before shapes are known (:func:`_translate_nodes`)."""

    graph: ModelGraph
    opset: int
    sources: onnx_params.Sources
    # layers whose record has a normaliser, with the node's inputs in ONNX order: normalised
    # once shapes are known
    normalise: list[tuple[Layer, onnx_ops.Normaliser, list[str]]] = field(default_factory=list)
    ignores: list[tuple[Layer, str]] = field(default_factory=list)  # ``archlint.ignore`` metadata
    # (layer, tensor) read before any node wrote it: defined later (an unsorted graph) or never
    undefined: list[tuple[str, str]] = field(default_factory=list)


def _translate_nodes(model: onnx.ModelProto, sources: onnx_params.Sources | None = None,
                     label: str = "model") -> _Nodes:
    """Layers, parameters and constants: everything that needs no tensor shape (the
    attributes that do are normalised by :func:`_attach_shapes`). ``sources``: the parameter
    sources found on the graph before folding (:mod:`onnx_params`); found here when None."""
    g = model.graph
    graph = ModelGraph()
    opset = max((o.version for o in model.opset_import if o.domain in STANDARD_DOMAINS), default=21)
    fresh = sources is None
    nodes = _Nodes(graph, opset, sources if sources is not None else onnx_params.Sources())
    _add_initializers(g, graph, nodes.sources if fresh else None, label)
    graph.inputs = [i.name for i in _graph_inputs(model)]
    graph.outputs = [o.name for o in g.output]
    for name in graph.inputs:
        graph.add_tensor(name)
    for index, node in enumerate(g.node):
        if node.op_type == "Constant" and node.output:
            _add_constant(node, graph)
        if fresh:
            nodes.sources.visit(node, graph.constants)
        _add_node(node, index, nodes, label)
    for layer, tensor in nodes.undefined:
        if tensor not in graph.producer:
            raise ArchlintError(f"{label}: node '{layer}' reads tensor '{tensor}', which no node, input or "
                                f"initializer defines")
    return nodes


def _add_initializers(g: onnx.GraphProto, graph: ModelGraph, sources: onnx_params.Sources | None,
                      label: str) -> None:
    """Initializers (dense and sparse) as tensors; small ones' values as constants."""
    for init in g.initializer:
        onnx_checks.check_initializer(init, label)
        if any(d < 0 for d in init.dims):
            raise ArchlintError(f"initializer '{init.name}' has a negative dimension ({list(init.dims)}): "
                                f"the file is corrupt")
        graph.add_tensor(init.name, tuple(init.dims), DTYPES.get(init.data_type))
        value = _constant_value(init)
        if value is not None:
            graph.constants[init.name] = value
        if sources is not None:
            sources.initializer(init)
    for sparse in g.sparse_initializer:
        graph.add_tensor(sparse.values.name, tuple(sparse.dims), DTYPES.get(sparse.values.data_type))
        if sources is not None:
            sources.of[sparse.values.name] = onnx_params.stored(sparse.values.name, tuple(sparse.dims),
                                                                sparse.values.data_type)


def _add_constant(node: onnx.NodeProto, graph: ModelGraph) -> None:
    """A Constant node's output tensor, and its value when small."""
    out = node.output[0]
    for attr in node.attribute:
        if attr.name == "value" and attr.type == onnx.AttributeProto.TENSOR:
            value = _constant_value(attr.t)
            if value is not None:
                graph.constants[out] = value
            graph.add_tensor(out, tuple(attr.t.dims), DTYPES.get(attr.t.data_type))
        elif attr.name in ("value_int", "value_ints", "value_float", "value_floats"):
            value = helper.get_attribute_value(attr)
            many = isinstance(value, list)
            graph.constants[out] = list(value) if many else [value]
            graph.add_tensor(out, (len(value),) if many else (), "int64" if "int" in attr.name else "float32")


_INTS, _INT = onnx.AttributeProto.INTS, onnx.AttributeProto.INT


def _add_node(node: onnx.NodeProto, index: int, nodes: _Nodes, label: str) -> None:
    """One node as a layer: its kind and inputs from its :mod:`onnx_ops` record, its parameters
    from the graph's sources."""
    graph = nodes.graph
    op_type, domain = node.op_type, node.domain
    raw_inputs = node.input[:]
    raw_outputs = node.output[:]
    outputs = raw_outputs if len(raw_outputs) == 1 and raw_outputs[0] else [t for t in raw_outputs if t]
    record = onnx_ops.lookup(domain, op_type)
    attributes = node.attribute
    # helper.get_attribute_value, with the two commonest types read directly
    attrs = {a.name: list(a.ints) if a.type == _INTS else a.i if a.type == _INT else helper.get_attribute_value(a)
             for a in attributes} if attributes else {}
    weights = nodes.sources.claims(record, op_type, raw_inputs)
    kind, inputs = UNKNOWN, raw_inputs
    if record is not None:
        kind, promoted = record.kind, False
        if record.promote is not None and weights:
            position = record.promote[1]
            if position < len(raw_inputs) and nodes.sources.of.get(raw_inputs[position]) is not None \
                    and nodes.sources.of[raw_inputs[position]].root in weights:
                kind, promoted = record.promote[0], True
        inputs = record.arrange(raw_inputs, kind, promoted)
    props = node.metadata_props
    name = node.name
    layer = Layer(name or f"{op_type}_{index}", op_type if domain in STANDARD_DOMAINS else f"{domain}.{op_type}",
                  kind, inputs, outputs, attrs, weights, _module_name(node) if props or name.startswith("/") else None)
    if record is not None:
        if record.normalise is not None:
            nodes.normalise.append((layer, record.normalise, raw_inputs))  # may read tensor shapes: done once known
        else:
            layer.attrs = {}  # the kind's formulas read no attribute
    producer = graph.producer
    for t in outputs:
        if t in producer:
            raise ArchlintError(f"{label}: tensor '{t}' is written by two nodes ('{producer[t]}' and "
                                f"'{layer.name}'): output names must be unique")
    graph.add_layer(layer)
    if weights:
        graph.params.update(weights)
    tensors, add_tensor = graph.tensors, graph.add_tensor
    for t in raw_inputs:
        if t and t not in tensors:
            nodes.undefined.append((layer.name, t))
            add_tensor(t)
    for t in outputs:
        if t not in tensors:
            add_tensor(t)
    if props:
        ignore = [p.value for p in props if p.key == "archlint.ignore"]
        if ignore:
            nodes.ignores.append((layer, ignore[0]))


def _attach_shapes(nodes: _Nodes, inferred: onnx.ModelProto, note: str | None) -> ModelGraph:
    """Shapes from the inferred model's value_info, then the attributes that depend on them,
    then the edges."""
    graph = nodes.graph
    if note:
        graph.meta.setdefault("warnings", []).append(note)
    g = inferred.graph
    # Reading a shape through protobuf's Python objects costs about 5 us a tensor; most
    # tensors of a network share a few types, so each distinct type is decoded once (its
    # serialized bytes are the key) and its shape tuple is shared.
    decoded: dict[bytes, tuple[tuple[int, ...] | None, str | None]] = {}
    add_tensor = graph.add_tensor
    for vi in (*g.input, *g.value_info, *g.output):
        key = vi.type.SerializeToString()
        found = decoded.get(key)
        if found is None:
            found = decoded[key] = _value_shape(vi)
        add_tensor(vi.name, *found)
    opset = nodes.opset
    for layer, normalise, raw_inputs in nodes.normalise:
        try:
            layer.attrs = normalise(layer.op.rpartition(".")[2], layer.attrs, raw_inputs, graph, opset)
        except (TypeError, ValueError, IndexError, KeyError, AttributeError, ZeroDivisionError):
            layer.kind = UNKNOWN  # malformed attributes: listed as not costed, never guessed
            layer.attrs["malformed"] = True
    for layer, text in nodes.ignores:
        layer.attrs["archlint.ignore"] = text
    graph.connect()
    return graph


def _missing_output_shape(graph: ModelGraph) -> bool:
    """Some layer output has no static shape (read off the translated graph, not the proto)."""
    tensors = graph.tensors
    return any(tensors[t].shape is None for layer in graph.layers_as_added() for t in layer.outputs)


def _module_name(node: onnx.NodeProto) -> str | None:
    """The PyTorch module path a node came from, when the exporter recorded it.

    TorchScript exports name nodes ``/layer1/layer1.0/conv1/Conv``; the components are
    partial qualified names, joined here into ``layer1.0.conv1``. ``dynamo=True``
    exports record ``pkg.torch.onnx.name_scopes`` in the node's metadata.
    """
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            # the last entry names the op itself, not a module
            scopes = [s.strip(" '\"") for s in prop.value.strip("[]").split(",")][:-1]
            scopes = [s for s in scopes if s]
            return _join_scopes(scopes) if scopes else None
    name = node.name
    if not name.startswith("/") or name.count("/") < 2:
        return None
    return _join_scopes(name.strip("/").split("/")[:-1]) or None


def _join_scopes(parts: list[str]) -> str:
    """Each part names a module relative to its parent, prefixed by the parent's own
    attribute when the parent is a container: ``layer1 / layer1.0 / conv1 / conv1.0``
    is ``layer1.0.conv1.0``."""
    qualified = ""
    for part in parts:
        if not qualified or part.startswith(qualified + "."):
            qualified = part
            continue
        head, _, last = qualified.rpartition(".")
        if part.startswith(last + "."):
            qualified = f"{head}.{part}" if head else part
        elif part != qualified:
            qualified = f"{qualified}.{part}"
    return qualified
