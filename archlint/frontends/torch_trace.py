"""Tracing a PyTorch module into an fx-style graph with a shape on every value.

- ``torch.fx`` symbolic tracing, with the modules archlint translates as one layer kept as
  leaves (so layers keep their module names, ``layer1.0.conv1``), then the graph runs on
  fake tensors (:class:`Recorder`), each node keeping its fake result; shape-preserving
  modules and calls are not run at all (their records in :mod:`torch_ops` say so).
- ``torch.export`` (non-strict) when fx cannot trace (data-dependent control flow,
  unsupported Python, functions fx keeps opaque); it fakes its inputs itself.
"""

from __future__ import annotations

import sys
import types
import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from archlint.errors import ArchlintError, first_line
from archlint.frontends.torch_ops import FUNCTION_OPS, call_output, module_op, module_output, op_name
from archlint.frontends.torch_source import innermost_module, is_library
from archlint.input_spec import InputShapes

Inputs = tuple[list[Any], dict[str, Any]]


def make_inputs(shapes: InputShapes, example_inputs: Any, convert: Callable[[torch.Tensor], Any],
                new: Callable[[tuple[int, ...]], Any]) -> Inputs:
    """(args, kwargs) for ``forward()``: the given example inputs with each tensor passed
    through ``convert``, or one ``new(shape)`` tensor per ``--input-shape``."""
    if example_inputs is None:
        return [new(s) for s in shapes.positional], {k: new(s) for k, s in shapes.named.items()}

    def one(v: Any) -> Any:
        return convert(v) if isinstance(v, torch.Tensor) else v
    if isinstance(example_inputs, torch.Tensor):
        return [one(example_inputs)], {}
    if isinstance(example_inputs, dict):
        return [], {k: one(v) for k, v in example_inputs.items()}
    return [one(v) for v in example_inputs], {}


# ------------------------------------------------------------------ fx path
class _Tracer(fx.Tracer):
    """Leaves are the torch.nn modules archlint translates as one layer; everything else
    (user modules, Sequential, modules we have no entry for) is traced through."""

    def __init__(self) -> None:
        super().__init__()
        # fx's own record_stack_traces formats the whole stack for every node (half the
        # tracing time of a ShuffleNet); archlint needs one frame: the user's call site
        self.record_stack_traces = False
        self._entry: types.FrameType | None = None

    def trace(self, root: Any, concrete_args: Any = None) -> fx.Graph:
        self._entry = sys._getframe()  # frames outside this one are the caller's, not the model's
        try:
            return super().trace(root, concrete_args)
        finally:
            self._entry = None

    def create_node(self, *args: Any, **kwargs: Any) -> fx.Node:
        node = super().create_node(*args, **kwargs)
        frame: types.FrameType | None = sys._getframe(1)
        while frame is not None and frame is not self._entry:
            if not is_library(frame.f_code.co_filename):
                node.meta["archlint_call_site"] = (frame.f_code.co_filename, frame.f_lineno)
                break
            frame = frame.f_back
        return node

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if not type(m).__module__.startswith(("torch.nn", "torch.ao.nn")) or isinstance(m, nn.Sequential):
            return False
        return module_op(type(m)) is not None


def trace_fx(module: nn.Module, shapes: InputShapes, example_inputs: Any, dtype: torch.dtype,
             device: torch.device) -> tuple[fx.GraphModule | None, str]:
    """The fx graph with each node's fake result in ``node.meta["archlint_val"]``, or None
    and the reason fx cannot be used. A model that rejects its input is an error."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    mode = FakeTensorMode(allow_non_fake_inputs=True)

    def new(shape: tuple[int, ...]) -> torch.Tensor:
        with mode:
            return torch.empty(shape, dtype=dtype, device=device)
    args, kwargs = make_inputs(shapes, example_inputs, mode.from_tensor, new)
    try:
        tracer = _Tracer()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = tracer.trace(module, concrete_args=None)
        gm = fx.GraphModule(tracer.root, graph)
    except Exception as exc:
        return None, first_line(exc)
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    inputs = _bind_inputs(placeholders, args, kwargs)
    try:
        with mode, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Recorder(gm).run(*inputs)
    except _LayerFailure as exc:
        raise ArchlintError(str(exc)) from None  # one line, built by Recorder.run_node
    except Exception as exc:
        raise ArchlintError(f"the model rejected the input: {first_line(exc)}") from None
    opaque = sorted({op_name(n.target) for n in gm.graph.nodes if n.op == "call_function"
                     and isinstance(n.target, types.FunctionType) and op_name(n.target) not in FUNCTION_OPS
                     and _produces_tensor(n.meta.get("archlint_val"))})
    if opaque:
        # functions registered with torch.fx.wrap (torchvision's shifted_window_attention, ...)
        # are opaque to fx; torch.export traces through them.
        return None, f"fx keeps {', '.join(opaque)} opaque (torch.fx.wrap)"
    return gm, ""


def _produces_tensor(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    return isinstance(value, (tuple, list)) and any(isinstance(v, torch.Tensor) for v in value)


def _bind_inputs(placeholders: list[fx.Node], args: list[Any], kwargs: dict[str, Any]) -> list[Any]:
    values: list[Any] = []
    for i, node in enumerate(placeholders):
        name = node.target
        if i < len(args):
            values.append(args[i])
        elif name in kwargs:
            values.append(kwargs[str(name)])
        elif node.args:
            values.append(node.args[0])  # default value
        else:
            raise ArchlintError(f"forward() argument '{name}' has no input shape; pass one --input-shape per input "
                                f"(or name={'x'.join(['1', '3', '224', '224'])})")
    return values


class _LayerFailure(Exception):
    pass


def _has_hooks(module: nn.Module) -> bool:
    """Hooks may change a module's output: such a module is run, not short-cut."""
    from torch.nn.modules import module as module_mod
    return bool(module._forward_hooks or module._forward_pre_hooks or module_mod._global_forward_hooks
                or module_mod._global_forward_pre_hooks)


class Recorder(fx.Interpreter):
    """Runs the graph on fake tensors and keeps each node's fake result in ``node.meta``.
    Shape-preserving torch.nn modules and calls (see :func:`torch_ops.module_output` and
    :func:`torch_ops.call_output`) are not run: their input stands for their output."""

    def call_function(self, target: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        quick = call_output(target, args, kwargs)
        if quick is not None:
            return quick
        if isinstance(target, types.FunctionType):
            # a function kept opaque by torch.fx.wrap gets the plain lists its generated code would
            # pass; fx's node arguments are immutable (torchvision's swin3d mutates its lists)
            args, kwargs = _mutable(args), _mutable(kwargs)
        return super().call_function(target, args, kwargs)

    def call_module(self, target: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        module = self.fetch_attr(target)
        # not a user subclass with its own forward, one batched tensor, no hooks
        if type(module).__module__.startswith("torch.nn.") and not kwargs and len(args) == 1 and \
                isinstance(args[0], torch.Tensor) and args[0].dim() >= 1 and not _has_hooks(module):
            quick = module_output(module, args[0])
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
                                f"{', '.join(str(list(s)) for s in shapes) or 'none'}: {first_line(exc)}") from None
        n.meta["archlint_val"] = result
        return result

    def _tensor_args(self, n: fx.Node) -> list[torch.Tensor]:
        out = []
        for a in n.all_input_nodes:
            v = self.env.get(a)
            if isinstance(v, torch.Tensor):
                out.append(v)
        return out


def _mutable(value: Any) -> Any:
    """fx's immutable_list / immutable_dict (and tuples of them) as plain lists and dicts."""
    if isinstance(value, tuple):
        return tuple(_mutable(v) for v in value)
    if isinstance(value, list):
        return [_mutable(v) for v in value]
    if isinstance(value, dict):
        return {k: _mutable(v) for k, v in value.items()}
    return value


def _display_name(n: fx.Node) -> str:
    if n.op == "call_module":
        return str(n.target)
    prefix = innermost_module(n.meta.get("nn_module_stack") or {})
    return f"{prefix}.{op_name(n.target)}" if prefix else op_name(n.target)


# ------------------------------------------------------------------ torch.export path
def trace_export(module: nn.Module, shapes: InputShapes, example_inputs: Any, dtype: torch.dtype,
                 device: torch.device, reason: str) -> Any:
    """The ``ExportedProgram`` of ``module``; ``reason`` says why fx was not used. torch.export
    fakes its inputs itself; meta tensors keep it from allocating anything."""
    def convert(v: torch.Tensor) -> torch.Tensor:
        return torch.empty(v.shape, dtype=v.dtype, device="meta") if device.type == "meta" else v

    def new(shape: tuple[int, ...]) -> torch.Tensor:
        if device.type == "meta":
            return torch.empty(shape, dtype=dtype, device=device)
        return torch.zeros(shape, dtype=dtype, device=device)
    args, kwargs = make_inputs(shapes, example_inputs, convert, new)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.export.export(module, tuple(args), kwargs=kwargs, strict=False)
    except Exception as exc:
        raise ArchlintError(f"cannot trace {type(module).__name__}: torch.fx failed ({reason}) and torch.export "
                            f"failed ({first_line(exc)})") from None
