"""Translation of an fx-style graph (an fx symbolic trace run on fake tensors, or a
``torch.export`` program) into archlint's IR: one layer per module call or function
call, tensors with shapes and dtypes, parameters under their first qualified name (a
tied parameter is one tensor). Op knowledge comes from :mod:`torch_ops`; costs are left
to the analyses.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from archlint.frontends.torch_ops import FUNCTION_OPS, module_entry, op_name
from archlint.frontends.torch_source import call_site, innermost_module, module_source
from archlint.ir import Layer, ModelGraph
from archlint.ops import registry
from archlint.ops.registry import UNKNOWN


class Translator:
    """Shared translation of fx-style graphs (fx symbolic trace or torch.export)."""

    def __init__(self, root: nn.Module) -> None:
        self.root = root
        self.graph = ModelGraph()
        self.alias: dict[str, list[str]] = {}  # fx node name -> tensor names it stands for
        self.canonical = _canonical_params(root)

    def tensor_names(self, node: Any) -> list[str]:
        if isinstance(node, fx.Node):
            return self.alias.get(node.name, [])
        return []

    def add_tensor_from_value(self, name: str, value: Any) -> None:
        if isinstance(value, torch.Tensor):
            self.graph.add_tensor(name, tuple(int(d) for d in value.shape), str(value.dtype).replace("torch.", ""))

    def define_outputs(self, node: fx.Node, value: Any) -> list[str]:
        """Tensors produced by a node: one, or one per tensor element of a tuple result.

        A tuple result keeps one name per position in ``alias`` (so ``result[i]`` finds its
        element), but a ``None`` element (``nn.MultiheadAttention``'s weights when
        ``need_weights=False``) is no tensor and no output."""
        if isinstance(value, torch.Tensor):
            self.add_tensor_from_value(node.name, value)
            self.alias[node.name] = [node.name]
            return [node.name]
        if isinstance(value, (tuple, list)) and value and all(isinstance(v, torch.Tensor) or v is None
                                                               for v in value):
            names = [f"{node.name}.{i}" for i in range(len(value))]
            for name, v in zip(names, value):
                self.add_tensor_from_value(name, v)
            self.alias[node.name] = names
            return [name for name, v in zip(names, value) if v is not None]
        self.alias[node.name] = []
        return []

    def tensor_inputs(self, args: Iterable[Any]) -> list[str]:
        out: list[str] = []
        for a in args:
            if isinstance(a, fx.Node):
                names = self.alias.get(a.name, [])
                if len(names) > 1:  # a multi-output node stands for its first tensor
                    names = [n for n in names if n in self.graph.tensors][:1]
                out.extend(names)
            elif isinstance(a, (list, tuple)):
                out.extend(self.tensor_inputs(a))
        return out

    def shapes_of(self, value: Any) -> Any:
        """Arguments with fx nodes replaced by their tensor shapes (or values for scalars)."""
        if isinstance(value, fx.Node):
            v = value.meta.get("archlint_val", value.meta.get("val"))
            if isinstance(v, torch.Tensor):
                return tuple(int(d) for d in v.shape)
            return v
        if isinstance(value, (list, tuple)):
            return type(value)(self.shapes_of(v) for v in value)
        if isinstance(value, dict):
            return {k: self.shapes_of(v) for k, v in value.items()}
        return value

    def function_layer(self, node: fx.Node, value: Any, module_path: str, source: tuple[str, int] | None) -> None:
        outputs = self.define_outputs(node, value)
        if not outputs:
            return
        name = op_name(node.target)
        if name == "getitem" and node.args and isinstance(node.args[0], fx.Node) and \
                len(self.alias.get(node.args[0].name, [])) > 1 and isinstance(node.args[1], int):
            # selecting one result of a multi-output op: an alias, not a layer
            self.alias[node.name] = [self.alias[node.args[0].name][node.args[1]]]
            return
        args = [self.shapes_of(a) for a in node.args]
        kwargs = {k: self.shapes_of(v) for k, v in node.kwargs.items()}
        tensor_args = list(node.args) + list(node.kwargs.values())
        inputs = self.tensor_inputs(tensor_args)
        op = FUNCTION_OPS.get(name)
        attrs: dict[str, Any] = {}
        kind = UNKNOWN
        if name == "getitem":
            kind, attrs = _getitem(args)
        elif op is not None:
            try:
                result = op.handler(args, kwargs)
            except Exception:
                result = (UNKNOWN, {})
            kind, attrs = result[0], result[1]
            if len(result) > 2:
                inputs = [inputs[i] for i in result[2] if i < len(inputs)]
        if name in ("max", "min") and len(inputs) > 1:
            kind, attrs = "elementwise", {}
        display = _pretty_op(node)
        layer = Layer(name=f"{module_path}.{name}" if module_path else name, op=display, kind=kind, inputs=inputs,
                      outputs=outputs, attrs=attrs, weights=[t for t in inputs if t in self.graph.params],
                      module=module_path or None, source=source)
        self.graph.add_layer(layer)

    def module_layer(self, node: fx.Node, mod: nn.Module, value: Any, source: tuple[str, int] | None) -> None:
        outputs = self.define_outputs(node, value)
        data_inputs = self.tensor_inputs(list(node.args) + list(node.kwargs.values()))
        in_shape = self.graph.shape(data_inputs[0]) if data_inputs else None
        entry = module_entry(mod, len(in_shape) if in_shape else None)
        kind, attrs, param_attrs = entry if entry else (UNKNOWN, {}, [])
        spec = registry.get(kind)
        weights: list[str] = []
        # the registry's data slots (a self-attention call passes one tensor for query, key and value)
        n_data = len(data_inputs) if spec.variadic else spec.data_slots
        inputs = list(data_inputs[:n_data])
        if inputs and len(inputs) < n_data:
            inputs += [inputs[0]] * (n_data - len(inputs))
        weight_slot = spec.slot("weight") is not None
        for attr in param_attrs:
            p = getattr(mod, attr, None) if "." not in attr else mod.get_parameter(attr)
            if isinstance(p, torch.Tensor):
                tname = self.param_name(p, f"{node.target}.{attr}")
                weights.append(tname)
                if weight_slot:
                    inputs.append(tname)
        for pname, p in mod.named_parameters():
            tname = self.param_name(p, f"{node.target}.{pname}")
            if tname not in weights:
                weights.append(tname)
        layer = Layer(name=str(node.target), op=f"nn.{type(mod).__name__}" if type(mod).__module__.startswith(
            "torch.nn") else type(mod).__qualname__, kind=kind, inputs=inputs, outputs=outputs, attrs=attrs,
            weights=weights, module=str(node.target), source=source)
        self.graph.add_layer(layer)

    def param_name(self, p: torch.Tensor, fallback: str) -> str:
        """The canonical name of a parameter (the first name it has in the model), so a
        parameter shared by two modules is one tensor."""
        name = self.canonical.get(id(p), fallback)
        if name not in self.graph.tensors:
            self.graph.add_tensor(name, tuple(int(d) for d in p.shape), str(p.dtype).replace("torch.", ""))
        if isinstance(p, nn.Parameter) or id(p) in self.canonical:
            self.graph.params.add(name)
        return name


class FxTranslator(Translator):
    def __init__(self, root: nn.Module, gm: fx.GraphModule) -> None:
        super().__init__(root)
        self.gm = gm

    def translate(self) -> ModelGraph:
        g = self.graph
        for node in self.gm.graph.nodes:
            value = node.meta.get("archlint_val")
            if node.op == "placeholder":
                names = self.define_outputs(node, value)
                g.inputs.extend(names)
            elif node.op == "get_attr":
                obj = _fetch_attr(self.root, node.target)
                if isinstance(obj, torch.Tensor):
                    if id(obj) in self.canonical:
                        self.alias[node.name] = [self.param_name(obj, str(node.target))]
                    else:
                        self.alias[node.name] = [str(node.target)]
                        g.add_tensor(str(node.target), tuple(obj.shape), str(obj.dtype).replace("torch.", ""))
                        g.constants[str(node.target)] = None
            elif node.op == "call_module":
                mod = self.root.get_submodule(str(node.target))
                self.module_layer(node, mod, value, module_source(self.root, str(node.target)) or
                                  call_site(node))
            elif node.op in ("call_function", "call_method"):
                module_path = innermost_module(node.meta.get("nn_module_stack"))
                self.function_layer(node, value, module_path, call_site(node))
            elif node.op == "output":
                g.outputs.extend(self.tensor_inputs([node.args[0]]))
        g.connect()
        return g


class ExportTranslator(Translator):
    def __init__(self, root: nn.Module, ep: Any) -> None:
        super().__init__(root)
        self.ep = ep

    def translate(self) -> ModelGraph:
        g = self.graph
        sig = self.ep.graph_signature
        to_param = dict(getattr(sig, "inputs_to_parameters", {}))
        to_buffer = dict(getattr(sig, "inputs_to_buffers", {}))
        to_const = dict(getattr(sig, "inputs_to_lifted_tensor_constants", {}))
        user_inputs = set(getattr(sig, "user_inputs", []))
        for node in self.ep.graph.nodes:
            value = node.meta.get("val")
            if node.op == "placeholder":
                if node.name in to_param:
                    fqn = to_param[node.name]
                    p = self.ep.state_dict.get(fqn)
                    if p is None:
                        p = self.root.get_parameter(fqn)
                    self.alias[node.name] = [self.param_name(p, fqn)]
                    g.params.add(self.alias[node.name][0])
                elif node.name in to_buffer or node.name in to_const:
                    fqn = to_buffer.get(node.name) or to_const[node.name]
                    self.alias[node.name] = [fqn]
                    self.add_tensor_from_value(fqn, value)
                    g.constants[fqn] = None
                else:
                    names = self.define_outputs(node, value)
                    if node.name in user_inputs or not user_inputs:
                        g.inputs.extend(names)
            elif node.op == "call_function":
                stack = node.meta.get("nn_module_stack") or {}
                module_path = innermost_module(stack)
                self.function_layer(node, value, module_path, call_site(node))
            elif node.op == "output":
                outs = node.args[0]
                n_user = len(getattr(sig, "user_outputs", outs))
                g.outputs.extend(self.tensor_inputs(list(outs)[:n_user] if isinstance(outs, (list, tuple))
                                                    else [outs]))
        g.connect()
        return g


# ------------------------------------------------------------------ helpers
def _getitem(args: list[Any]) -> tuple[str, dict[str, Any]]:
    """``x[...]`` on a tensor: slices become a slice layer with starts/steps per axis;
    integer or tensor indices pick positions (gather)."""
    index = args[1] if len(args) > 1 else None
    index = index if isinstance(index, tuple) else (index,)
    if any(isinstance(i, (tuple, list)) or (i is not None and not isinstance(i, (slice, int, type(Ellipsis))))
           for i in index):
        return "gather", {"axis": 0}
    rank = len(args[0]) if isinstance(args[0], tuple) else 0
    starts, steps = {}, {}
    axis = 0
    picked = None
    for pos, i in enumerate(index):
        if i is Ellipsis:
            axis = rank - (len(index) - pos - 1)
            continue
        if i is None:
            continue
        if isinstance(i, int):
            picked = axis if picked is None else picked
        elif isinstance(i, slice):
            starts[axis] = i.start or 0
            steps[axis] = i.step or 1
        axis += 1
    if picked is not None:
        return "gather", {"axis": picked}
    return "slice", {"starts": starts, "steps": steps}


def _pretty_op(node: fx.Node) -> str:
    t = node.target
    if node.op == "call_method":
        return f"Tensor.{t}"
    if isinstance(t, str):
        return t
    mod = getattr(t, "__module__", "") or ""
    name = getattr(t, "__name__", str(t))
    if hasattr(t, "_opname") or "OpOverload" in type(t).__name__:
        return f"aten.{op_name(t)}"
    if mod.startswith("torch.nn.functional"):
        return f"F.{name}"
    if mod == "_operator" or t in vars(operator).values():
        return f"operator.{name}"
    return f"torch.{name}" if mod.startswith("torch") or mod == "" else f"{mod}.{name}"


def _fetch_attr(root: nn.Module, target: str) -> Any:
    obj: Any = root
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _canonical_params(root: nn.Module) -> dict[int, str]:
    """id(parameter) -> its first qualified name (a tied parameter is one entry)."""
    out: dict[int, str] = {}
    for name, p in root.named_parameters(remove_duplicate=False):
        out.setdefault(id(p), name)
    return out
