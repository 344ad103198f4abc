"""PyTorch nn.Module -> graph IR, without running real arithmetic.

1. Trace (:mod:`torch_trace`): ``torch.fx`` symbolic tracing, with the modules archlint
   knows as leaves so layers keep their module names (``layer1.0.conv1``); when fx cannot
   trace (data-dependent control flow, unsupported Python) fall back to ``torch.export``
   (non-strict) and attribute aten ops to modules through ``nn_module_stack``.
2. Shapes: the traced graph runs under ``FakeTensorMode`` (fx) or comes with fake
   values (export), so no weight memory is touched; meta-device models work.
3. Translate (:mod:`torch_translate`) each node with :mod:`torch_ops`, with source lines
   from :mod:`torch_source`. Costs are left to the analyses.
"""

from __future__ import annotations

import inspect
import sys
from typing import Any

import torch
from torch import nn

from archlint.errors import ArchlintError
from archlint.frontends.torch_target import LABEL_ATTR
from archlint.frontends.torch_trace import trace_export, trace_fx
from archlint.frontends.torch_translate import ExportTranslator, FxTranslator
from archlint.input_spec import InputShapes
from archlint.ir import ModelGraph


def load_module(module: nn.Module, shapes: InputShapes, example_inputs: Any = None,
                tracer: str = "auto") -> ModelGraph:
    """Trace ``module`` and translate it; raise :class:`ArchlintError` on bad input.

    Generated inputs take the model's own floating dtype.

    ``tracer``: ``auto`` (fx, then export), or ``export`` to skip fx (tests use it).
    """
    dtype = _param_dtype(module)
    device = _device(module)
    if example_inputs is None and not shapes:
        raise ArchlintError(f"{type(module).__name__}: an input shape is needed for a PyTorch model; pass "
                            f"--input-shape 1x3x224x224 (API: input_shape=(1, 3, 224, 224) or example_inputs=...)")
    if shapes.named:
        shapes.check_names(list(inspect.signature(module.forward).parameters), "forward() takes")
    was_training = module.training
    module.eval()
    try:
        graph = None
        reason = "skipped"
        if tracer != "export":
            gm, reason = trace_fx(module, shapes, example_inputs, dtype, device)
            if gm is not None:
                graph = FxTranslator(module, gm).translate()
                graph.meta["tracer"] = "torch.fx"
        if graph is None:
            program = trace_export(module, shapes, example_inputs, dtype, device, reason)
            graph = ExportTranslator(module, program).translate()
            graph.meta["tracer"] = "torch.export"
            graph.meta["tracer_fallback_reason"] = f"torch.fx could not trace: {reason}"
    finally:
        module.train(was_training)
    _add_unused_parameters(graph, module)
    graph.meta.setdefault("format", "torch")
    graph.meta["class"] = class_label(type(module))
    return graph


def class_label(cls: type) -> str:
    """``package.module.Class``; for a class from a ``file.py:attr`` target, the file's
    stem instead of the unique import name archlint gave the file (``model.Net``), so the
    label is the same in every run and on every machine."""
    module = sys.modules.get(cls.__module__)
    return f"{getattr(module, LABEL_ATTR, cls.__module__)}.{cls.__qualname__}"


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
