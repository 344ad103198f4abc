"""PyTorch nn.Module -> graph IR, without running real arithmetic.

1. Trace: ``torch.fx`` symbolic tracing, with the modules archlint knows as leaves so
   layers keep their module names (``layer1.0.conv1``); when fx cannot trace
   (data-dependent control flow, unsupported Python) fall back to ``torch.export``
   (non-strict) and attribute aten ops to modules through ``nn_module_stack``.
2. Shapes: the traced graph runs under ``FakeTensorMode`` (fx) or comes with fake
   values (export), so no weight memory is touched; meta-device models work.
3. Translate each node with :mod:`archlint.frontends.torch_ops`. Costs are left to
   the analyses.
"""

from __future__ import annotations

import ast
import inspect
import operator
import os
import re
import sys
import textwrap
import types
import warnings
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from archlint.errors import ArchlintError
from archlint.frontends.torch_ops import OP_HANDLERS, module_entry, op_name
from archlint.input_spec import InputShapes
from archlint.ir import Layer, ModelGraph
from archlint.ops import registry
from archlint.ops.registry import UNKNOWN


def load_module(module: nn.Module, shapes: InputShapes, example_inputs: Any = None,
                tracer: str = "auto") -> ModelGraph:
    """Trace ``module`` and translate it; raise :class:`ArchlintError` on bad input.

    Generated inputs take the model's own floating dtype.

    ``tracer``: ``auto`` (fx, then export), or ``export`` to skip fx (tests use it).
    """
    torch_dtype = _param_dtype(module)
    device = _device(module)
    if example_inputs is None and not shapes:
        raise ArchlintError(f"{type(module).__name__}: an input shape is needed for a PyTorch model; pass "
                            f"--input-shape 1x3x224x224 (API: input_shape=(1, 3, 224, 224) or example_inputs=...)")
    if shapes.named:
        names = list(inspect.signature(module.forward).parameters)
        unknown = set(shapes.named) - set(names)
        if unknown:
            raise ArchlintError(f"--input-shape names {', '.join(sorted(unknown))}, but forward() takes "
                                f"{', '.join(names)}")
    from torch._subclasses.fake_tensor import FakeTensorMode

    fake_mode = FakeTensorMode(allow_non_fake_inputs=True)
    was_training = module.training
    module.eval()
    try:
        args, kwargs = _make_inputs(shapes, example_inputs, torch_dtype, device, fake_mode)
        graph, reason = _trace_fx(module, args, kwargs, fake_mode) if tracer != "export" else (None, "skipped")
        if graph is None:
            graph = _trace_export(module, shapes, example_inputs, torch_dtype, device, reason)
    finally:
        module.train(was_training)
    _add_unused_parameters(graph, module)
    graph.meta.setdefault("format", "torch")
    graph.meta["class"] = f"{type(module).__module__}.{type(module).__qualname__}"
    return graph


def _add_unused_parameters(graph: ModelGraph, module: nn.Module) -> None:
    """Parameters that forward() never reads (e.g. inception_v3's AuxLogits in eval mode)
    still belong to the model's parameter count; a warning names them."""
    unused = []
    for name, p in module.named_parameters():
        if name not in graph.params and name not in graph.tensors:
            graph.add_tensor(name, tuple(int(d) for d in p.shape), str(p.dtype).replace("torch.", ""))
            graph.params.add(name)
            unused.append(name)
    if unused:
        count = sum(graph.tensors[n].numel or 0 for n in unused)
        graph.meta.setdefault("warnings", []).append(
            f"{len(unused)} parameter tensor(s) ({count:,} parameters) are never used by forward() at this input, "
            f"e.g. {unused[0]}; counted in params, not in any layer")


def _param_dtype(module: nn.Module) -> torch.dtype:
    """Inputs are generated in the model's own floating dtype."""
    for p in module.parameters():
        if p.dtype.is_floating_point:
            return p.dtype
    return torch.float32


def _device(module: nn.Module) -> torch.device:
    for t in list(module.parameters()) + list(module.buffers()):
        return t.device
    return torch.device("cpu")


def _make_inputs(shapes: InputShapes, example_inputs: Any, dtype: torch.dtype, device: torch.device,
                 mode: Any) -> tuple[list[Any], dict[str, Any]]:
    """Fake input tensors: from shapes, or by converting the given example inputs."""
    if example_inputs is not None:
        def fake(v: Any) -> Any:
            return mode.from_tensor(v) if isinstance(v, torch.Tensor) else v
        if isinstance(example_inputs, torch.Tensor):
            return [fake(example_inputs)], {}
        if isinstance(example_inputs, dict):
            return [], {k: fake(v) for k, v in example_inputs.items()}
        return [fake(v) for v in example_inputs], {}
    with mode:
        args = [torch.empty(s, dtype=dtype, device=device) for s in shapes.positional]
        kwargs = {k: torch.empty(s, dtype=dtype, device=device) for k, s in shapes.named.items()}
    return args, kwargs


# ------------------------------------------------------------------ fx path
class _Tracer(fx.Tracer):
    """Leaves are the torch.nn modules archlint translates as one layer; everything else
    (user modules, Sequential, modules we have no entry for) is traced through."""

    def __init__(self) -> None:
        super().__init__()
        # fx's own record_stack_traces formats the whole stack for every node (half the
        # tracing time of a ShuffleNet); archlint needs one frame: the user's call site
        self.record_stack_traces = False

    def trace(self, root: Any, concrete_args: Any = None) -> fx.Graph:
        self._entry = sys._getframe()  # frames outside this one are the caller's, not the model's
        try:
            return super().trace(root, concrete_args)
        finally:
            self._entry = None

    def create_node(self, *args: Any, **kwargs: Any) -> fx.Node:
        node = super().create_node(*args, **kwargs)
        frame = sys._getframe(1)
        entry = getattr(self, "_entry", None)
        while frame is not None and frame is not entry:
            if not _is_library(frame.f_code.co_filename):
                node.meta["archlint_call_site"] = (frame.f_code.co_filename, frame.f_lineno)
                break
            frame = frame.f_back
        return node

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if not type(m).__module__.startswith(("torch.nn", "torch.ao.nn")) or isinstance(m, nn.Sequential):
            return False
        return module_entry(m, None) is not None


def _trace_fx(module: nn.Module, args: list[Any], kwargs: dict[str, Any],
              mode: Any) -> tuple[ModelGraph | None, str]:
    """The fx-traced graph, or None and the reason fx cannot be used."""
    try:
        tracer = _Tracer()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = tracer.trace(module, concrete_args=None)
        gm = fx.GraphModule(tracer.root, graph)
    except Exception as exc:
        return None, _one_line(exc)
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    inputs = _bind_inputs(module, placeholders, args, kwargs)
    try:
        with mode, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _Recorder(gm).run(*inputs)
    except _LayerFailure as exc:
        raise ArchlintError(str(exc).splitlines()[0]) from None
    except Exception as exc:
        raise ArchlintError(f"the model rejected the input: {_one_line(exc)}") from None
    graph_ir = _FxTranslator(module, gm).translate()
    opaque = sorted({op_name(n.target) for n in gm.graph.nodes if n.op == "call_function"
                     and isinstance(n.target, types.FunctionType) and op_name(n.target) not in OP_HANDLERS
                     and _produces_tensor(n.meta.get("archlint_val"))})
    if opaque:
        # functions registered with torch.fx.wrap (torchvision's shifted_window_attention, ...)
        # are opaque to fx; torch.export traces through them.
        return None, f"fx keeps {', '.join(opaque)} opaque (torch.fx.wrap)"
    graph_ir.meta["tracer"] = "torch.fx"
    return graph_ir, ""


def _produces_tensor(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    return isinstance(value, (tuple, list)) and any(isinstance(v, torch.Tensor) for v in value)


def _bind_inputs(module: nn.Module, placeholders: list[fx.Node], args: list[Any], kwargs: dict[str, Any]) -> list[Any]:
    values: list[Any] = []
    for i, node in enumerate(placeholders):
        name = node.target
        if i < len(args):
            values.append(args[i])
        elif name in kwargs:
            values.append(kwargs[name])
        elif node.args:
            values.append(node.args[0])  # default value
        else:
            raise ArchlintError(f"forward() argument '{name}' has no input shape; pass one --input-shape per input "
                                f"(or name={'x'.join(['1', '3', '224', '224'])})")
    return values


class _LayerFailure(Exception):
    pass


_ELEMENTWISE_MODULES: tuple[type, ...] = (
    nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Hardsigmoid, nn.LeakyReLU, nn.ELU,
    nn.Mish, nn.PReLU, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.Identity, nn.Hardtanh, nn.SELU,
    nn.CELU, nn.Softplus)
_CHANNEL_NORMS: tuple[type, ...] = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm,
                                    nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)


def _same_shape_result(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """For modules whose output has their input's shape and dtype, the input itself stands for
    the output, without running the module: fake BatchNorm runs its full decomposition (half
    the tracing time of a ResNet) and every fake op costs a dispatch; only shapes and dtypes
    are read downstream. Returns None (run the module) when the input does not fit the
    module, so a wrong ``num_features`` still fails as it would in real use."""
    if kwargs or len(args) != 1 or not isinstance(args[0], torch.Tensor) or args[0].dim() < 1 or _has_hooks(module):
        return None
    x = args[0]
    if isinstance(module, _ELEMENTWISE_MODULES):
        if isinstance(module, nn.PReLU) and module.num_parameters not in (1, x.shape[1] if x.dim() > 1 else 1):
            return None
        return x
    if isinstance(module, _CHANNEL_NORMS):
        if x.dim() < 2 or x.shape[1] != module.num_features or not x.is_floating_point():
            return None
        return x
    if isinstance(module, nn.GroupNorm):
        if x.dim() < 2 or x.shape[1] != module.num_channels or not x.is_floating_point():
            return None
        return x
    if type(module) in (nn.Conv1d, nn.Conv2d, nn.Conv3d):
        return _conv_result(module, x)
    if type(module) is nn.Linear:
        if x.dim() < 1 or x.shape[-1] != module.in_features or x.dtype != module.weight.dtype:
            return None
        return torch.empty((*x.shape[:-1], module.out_features), dtype=x.dtype, device=x.device)
    if isinstance(module, nn.LayerNorm):
        n = len(module.normalized_shape)
        if tuple(x.shape[-n:]) != tuple(module.normalized_shape) or not x.is_floating_point():
            return None
        return x
    return None


def _has_hooks(module: nn.Module) -> bool:
    """Hooks may change a module's output: such a module is run, not short-cut."""
    from torch.nn.modules import module as module_mod
    return bool(module._forward_hooks or module._forward_pre_hooks or module_mod._global_forward_hooks
                or module_mod._global_forward_pre_hooks)


def _conv_result(module: nn.Module, x: torch.Tensor) -> torch.Tensor | None:
    """A batched conv's output from the registry's window geometry (one fake allocation
    instead of a fake convolution and a fake copy of the weight); None when anything is
    unusual (unbatched input, string padding, dtype or channel mismatch, empty output)."""
    from archlint.ops.conv import window_output_size
    nd = len(module.kernel_size)
    if (x.dim() != nd + 2 or isinstance(module.padding, str) or x.shape[1] != module.in_channels
            or x.dtype != module.weight.dtype or x.device != module.weight.device and module.weight.device.type != "meta"):
        return None
    spatial = []
    for i in range(nd):
        p = module.padding[i]
        size = window_output_size(int(x.shape[2 + i]), module.kernel_size[i], module.stride[i], module.dilation[i], p, p)
        if size <= 0:
            return None
        spatial.append(size)
    return torch.empty((x.shape[0], module.out_channels, *spatial), dtype=x.dtype, device=x.device)


_F = torch.nn.functional
# functions whose result has their first argument's shape and dtype (floating inputs)
_UNARY_SAME = frozenset({_F.relu, _F.relu6, _F.silu, _F.gelu, _F.hardswish, _F.hardsigmoid, _F.sigmoid, _F.tanh,
                         _F.mish, _F.elu, _F.leaky_relu, _F.dropout, torch.relu, torch.sigmoid, torch.tanh,
                         torch.nn.functional.hardtanh})
# elementwise binary operators: with two tensors of one shape and dtype, or a tensor and a
# Python number, the result has the tensor's shape and dtype
_BINARY_SAME = frozenset({operator.add, operator.mul, operator.sub, operator.iadd, operator.imul, operator.isub,
                          operator.truediv, torch.add, torch.mul, torch.sub})


def _same_shape_call(target: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The first argument stands for the result of an elementwise call whose output has its
    shape and dtype (see :func:`_same_shape_result`); None when that is not certain."""
    if not args or not isinstance(args[0], torch.Tensor) or not args[0].is_floating_point():
        return None
    x = args[0]
    if target in _UNARY_SAME:
        if any(isinstance(a, torch.Tensor) for a in args[1:]) or \
                any(isinstance(v, torch.Tensor) for v in kwargs.values()):
            return None
        return x
    if target in _BINARY_SAME and len(args) == 2 and not kwargs:
        y = args[1]
        if isinstance(y, torch.Tensor):
            return x if y.shape == x.shape and y.dtype == x.dtype and y.device == x.device else None
        if isinstance(y, (int, float)) and not isinstance(y, bool):
            return x
    return None


class _Recorder(fx.Interpreter):
    """Runs the graph on fake tensors and keeps each node's fake result in ``node.meta``."""

    def call_function(self, target: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        quick = _same_shape_call(target, args, kwargs)
        return quick if quick is not None else super().call_function(target, args, kwargs)

    def call_module(self, target: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        module = self.fetch_attr(target)
        if type(module).__module__.startswith("torch.nn."):  # not a user subclass with its own forward
            quick = _same_shape_result(module, args, kwargs)
            if quick is not None:
                return quick
        return super().call_module(target, args, kwargs)

    def run_node(self, n: fx.Node) -> Any:
        try:
            result = super().run_node(n)
        except Exception as exc:
            if n.op in ("placeholder", "output"):
                raise
            shapes = [tuple(a.shape) for a in self._tensor_args(n)]
            where = n.target if n.op == "call_module" else op_name(n.target)
            raise _LayerFailure(f"layer '{_display_name(n)}' ({where}) failed on input shape(s) "
                                f"{', '.join(str(list(s)) for s in shapes) or 'none'}: {_one_line(exc)}") from None
        n.meta["archlint_val"] = result
        return result

    def _tensor_args(self, n: fx.Node) -> list[torch.Tensor]:
        out = []
        for a in n.all_input_nodes:
            v = self.env.get(a)
            if isinstance(v, torch.Tensor):
                out.append(v)
        return out


def _display_name(n: fx.Node) -> str:
    if n.op == "call_module":
        return str(n.target)
    stack = n.meta.get("nn_module_stack") or {}
    prefix = _innermost_module(stack)
    return f"{prefix}.{op_name(n.target)}" if prefix else op_name(n.target)


def _innermost_module(stack: Any) -> str:
    if not stack:
        return ""
    last = list(stack.values())[-1]
    return last[0] if isinstance(last, tuple) else str(last)


class _Translator:
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
        """Tensors produced by a node: one, or one per element of a tuple result."""
        if isinstance(value, torch.Tensor):
            names = [node.name]
            self.add_tensor_from_value(node.name, value)
        elif isinstance(value, (tuple, list)) and value and all(isinstance(v, torch.Tensor) or v is None
                                                                 for v in value):
            names = []
            for i, v in enumerate(value):
                name = f"{node.name}.{i}"
                names.append(name)
                self.add_tensor_from_value(name, v)
        else:
            names = []
        self.alias[node.name] = names
        return names

    def tensor_inputs(self, args: Iterable[Any]) -> list[str]:
        out: list[str] = []
        for a in args:
            if isinstance(a, fx.Node):
                out.extend(self.alias.get(a.name, [])[:1] if len(self.alias.get(a.name, [])) > 1
                           else self.alias.get(a.name, []))
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
        handler = OP_HANDLERS.get(name)
        attrs: dict[str, Any] = {}
        kind = UNKNOWN
        if name == "getitem":
            kind, attrs = _getitem(args)
        elif handler is not None:
            try:
                result = handler(args, kwargs)
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


class _FxTranslator(_Translator):
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
                self.module_layer(node, mod, value, _module_source(self.root, str(node.target)) or
                                  _call_site(node))
            elif node.op in ("call_function", "call_method"):
                module_path = _innermost_module(node.meta.get("nn_module_stack"))
                self.function_layer(node, value, module_path, _call_site(node))
            elif node.op == "output":
                g.outputs.extend(self.tensor_inputs([node.args[0]]))
        g.connect()
        return g


# ------------------------------------------------------------------ torch.export path
def _trace_export(module: nn.Module, shapes: InputShapes, example_inputs: Any, dtype: torch.dtype,
                  device: torch.device, reason: str) -> ModelGraph:
    args, kwargs = _export_inputs(module, shapes, example_inputs, dtype, device)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ep = torch.export.export(module, tuple(args), kwargs=kwargs, strict=False)
    except Exception as exc:
        raise ArchlintError(f"cannot trace {type(module).__name__}: torch.fx failed ({reason}) and torch.export "
                            f"failed ({_one_line(exc)})") from None
    graph = _ExportTranslator(module, ep).translate()
    graph.meta["tracer"] = "torch.export"
    graph.meta["tracer_fallback_reason"] = f"torch.fx could not trace: {reason}"
    return graph


def _export_inputs(module: nn.Module, shapes: InputShapes, example_inputs: Any, dtype: torch.dtype,
                   device: torch.device) -> tuple[list[Any], dict[str, Any]]:
    """torch.export fakes its inputs itself; meta tensors keep it from allocating anything."""
    def meta(v: Any) -> Any:
        return torch.empty(v.shape, dtype=v.dtype, device="meta") if isinstance(v, torch.Tensor) and \
            device.type == "meta" else v
    if example_inputs is not None:
        if isinstance(example_inputs, torch.Tensor):
            return [meta(example_inputs)], {}
        if isinstance(example_inputs, dict):
            return [], {k: meta(v) for k, v in example_inputs.items()}
        return [meta(v) for v in example_inputs], {}
    dev = device if device.type == "meta" else torch.device("meta")
    args = [torch.empty(s, dtype=dtype, device=dev) for s in shapes.positional]
    kwargs = {k: torch.empty(s, dtype=dtype, device=dev) for k, s in shapes.named.items()}
    if device.type != "meta":
        args = [torch.zeros(s, dtype=dtype, device=device) for s in shapes.positional]
        kwargs = {k: torch.zeros(s, dtype=dtype, device=device) for k, s in shapes.named.items()}
    return args, kwargs


class _ExportTranslator(_Translator):
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
                module_path = _innermost_module(stack)
                self.function_layer(node, value, module_path, _call_site(node))
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


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return first[:300]


_FRAME = re.compile(r'File "([^"]+)", line (\d+)')


@lru_cache(maxsize=4096)
def _is_library(path: str) -> bool:
    norm = path.replace("\\", "/")
    return "/torch/" in norm or "/site-packages/" in norm or "/dist-packages/" in norm or \
        "/archlint/" in norm or norm.startswith("<")


def _relative(path: str) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def _call_site(node: fx.Node) -> tuple[str, int] | None:
    """The innermost frame of the user's code in the node's recorded stack trace."""
    site = node.meta.get("archlint_call_site")
    if site is not None:
        return _relative(site[0]), site[1]
    trace = node.stack_trace or node.meta.get("stack_trace")
    if not trace:
        return None
    frames = [(f, int(line)) for f, line in _FRAME.findall(trace) if not _is_library(f)]
    if not frames:
        return None
    path, line = frames[-1]
    return _relative(path), line


def _module_source(root: nn.Module, qualname: str) -> tuple[str, int] | None:
    """Where a module was constructed: the ``self.<attr> = ...`` line in the ``__init__``
    of the nearest enclosing user-defined (non-torch) module class."""
    parts = qualname.split(".")
    for cut in range(len(parts) - 1, -1, -1):
        parent = root.get_submodule(".".join(parts[:cut])) if cut else root
        if type(parent).__module__.startswith("torch."):
            continue
        return _assignment_line(type(parent), parts[cut])
    return None


@lru_cache(maxsize=512)
def _assignment_line(cls: type, attr: str) -> tuple[str, int] | None:
    for klass in cls.__mro__:
        if klass.__module__ == "torch" or klass.__module__.startswith("torch.") or klass is object:
            break
        try:
            lines, start = inspect.getsourcelines(klass)
            path = inspect.getsourcefile(klass)
        except (OSError, TypeError):
            continue
        try:
            tree = ast.parse(textwrap.dedent("".join(lines)))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
                node, (ast.AnnAssign, ast.AugAssign)) else []
            for t in targets:
                if isinstance(t, ast.Attribute) and t.attr == attr and isinstance(t.value, ast.Name) and \
                        t.value.id == "self" and path:
                    return _relative(path), start + node.lineno - 1
    return None
