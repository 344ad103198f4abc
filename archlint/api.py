"""``archlint.analyze``: the one entry point of the Python API."""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from archlint.errors import ArchlintError
from archlint.input_spec import InputShapes, from_python, with_values
from archlint.ir import GraphCycleError, ModelGraph
from archlint.pipeline import build_report, model_info
from archlint.report import Report

PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".ckpt", ".bin", ".tar")


def analyze(target: Any, input_shape: Any = None, *, input_values: Any = None, example_inputs: Any = None,
            dtype: Any = None, profile: Any = None, lint: Any = True) -> Report:
    """Analyse a model and return its :class:`~archlint.report.Report`.

    ``target`` is a path to an ``.onnx`` file, an ``onnx.ModelProto``, a torch
    ``nn.Module``, or a ``package.module:attr`` / ``path/to/file.py:attr`` reference
    to an ``nn.Module`` instance, class or zero-argument factory. ``input_shape`` is a
    shape tuple, a list of them, a dict ``{input_name: shape}`` or a spec string
    (``"1x3x224x224"``); for torch models ``example_inputs`` (a tensor, tuple or dict of
    tensors) may be given instead. ``input_values`` (ONNX) fixes the value of inputs that
    select what the model computes, e.g. ``{"sr": 16000}`` for a sample-rate input that an
    ``If`` branches on: the input becomes a constant and the branch it selects is costed.
    ``dtype`` (fp32, fp16, bf16, int8) and ``profile`` (a shipped device profile name, a
    TOML path or a table; default ``generic-x86-cpu``) set the memory-traffic and
    roofline-time estimate. ``lint`` runs the default rules into ``report.findings``
    (``False`` skips them; an ``archlint.config.Config`` selects and configures them,
    e.g. ``archlint.config.load("pyproject.toml")``).
    """
    shapes = with_values(from_python(input_shape), input_values)
    from archlint import profiles
    from archlint.dtypes import normalise
    normalise(dtype)
    profiles.load(profile)  # bad profile or dtype: fail before any work
    with _gc_paused():
        graph = _frontend(target, shapes, example_inputs, dtype)
        try:
            report = build_report(graph, profile, dtype)
        except GraphCycleError:
            raise ArchlintError(f"{model_info(graph, 'fp32', '').label}: the graph has a cycle") from None
        if lint is not False and lint is not None:
            from archlint.lint import lint as run_rules
            run_rules(report, None if lint is True else lint)
        return report


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """The analysis allocates many small objects and no garbage cycles worth collecting:
    pausing the cyclic collector saves about a third of the time on 100k-node graphs."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _is_torch_module(obj: Any) -> bool:
    """Without importing torch: is this an ``nn.Module``?"""
    return any(c.__module__.startswith("torch.nn") and c.__name__ == "Module" for c in type(obj).__mro__)


def _frontend(target: Any, shapes: InputShapes, example_inputs: Any, dtype: Any) -> ModelGraph:
    if shapes.values and (_is_torch_module(target) or (isinstance(target, (str, os.PathLike))
                                                        and _is_python_target(os.fspath(target)))):
        name = os.fspath(target) if isinstance(target, (str, os.PathLike)) else type(target).__name__
        raise ArchlintError(f"{name}: input values ({', '.join(shapes.values)}) apply to ONNX models; a PyTorch "
                            f"model takes example_inputs")
    if _is_torch_module(target):
        from archlint.frontends import torch_frontend
        return torch_frontend.load_module(target, shapes, example_inputs)
    if type(target).__name__ == "ModelProto" and type(target).__module__.startswith("onnx"):
        from archlint.frontends import onnx_frontend
        return onnx_frontend.load_proto(target, shapes)
    if isinstance(target, (str, os.PathLike)):
        text = os.fspath(target)
        if text.lower().endswith(PICKLE_SUFFIXES) and ":" not in Path(text).name:
            raise ArchlintError(
                f"{text}: pickled PyTorch files are never loaded (unpickling runs arbitrary code); pass the model "
                f"as a factory instead, e.g. 'archlint mymodels.py:build_model' where build_model() constructs it "
                f"(and loads the weights itself with torch.load(..., weights_only=True) if it needs them)")
        if _is_python_target(text):
            from archlint.frontends import torch_target
            module = torch_target.resolve(text)
            from archlint.frontends import torch_frontend
            graph = torch_frontend.load_module(module, shapes, example_inputs)
            graph.meta["path"] = text
            return graph
        from archlint.frontends import onnx_frontend
        return onnx_frontend.load(text, shapes)
    raise ArchlintError(f"cannot analyse an object of type {type(target).__name__}: pass an ONNX path, an "
                        f"onnx.ModelProto or a torch nn.Module")


def _is_python_target(text: str) -> bool:
    """``pkg.module:attr`` or ``file.py:attr`` (a Windows drive letter is not a target)."""
    if ":" not in text:
        return False
    head, _, attr = text.rpartition(":")
    return bool(head) and bool(attr) and attr.replace(".", "").replace("_", "").isalnum() and len(head) > 1
