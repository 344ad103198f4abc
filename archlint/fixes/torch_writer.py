"""Apply :class:`~archlint.analyses.rewrite.Fix`es to a torch ``nn.Module``.

The result is a deep copy (the original is untouched) whose submodules are replaced by
standard torch modules: an ``nn.Sequential`` of a depthwise and a pointwise ``nn.ConvNd``
(AL101), a grouped ``nn.ConvNd`` (AL102), an ``nn.Sequential`` of 3x3 convs (AL103), an
``nn.Sequential`` of ``nn.AvgPoolNd`` and a 1x1 conv (AL105); AL106 drops the conv's bias and
moves it into the BatchNorm's running mean. New modules have the original's device and dtype.
A layer that is a functional call (``F.conv2d``) has no submodule to replace: its fix is
reported as not applicable, never silently skipped. A module on the meta device gets the
new structure without values (shapes only).
"""

from __future__ import annotations

import copy
import functools
import linecache
from collections.abc import Sequence
from typing import Any

import numpy as np

from archlint.analyses.rewrite import Fix
from archlint.fixes.carry import SHAPES_ONLY, Outcome, carry
from archlint.ir import Layer
from archlint.rules.suppression import _COMMENT


def _torch() -> Any:
    import torch
    return torch


def source_suppressed(layer: Layer, code: str) -> bool:
    """``# archlint: ignore[...]`` naming ``code`` (or bare) on the line that built the layer."""
    if not layer.source:
        return False
    match = _COMMENT.search(linecache.getline(layer.source[0], layer.source[1]))
    if not match:
        return False
    codes = {c.strip().upper() for c in (match.group(1) or "").split(",") if c.strip()}
    return not codes or code in codes


def _submodule(root: Any, layer: Layer) -> Any:
    """The module the layer is: an ``nn.*`` layer's module, or (torch.export's aten ops, which
    carry the module that called them) that module when it is itself a conv, linear or
    BatchNorm; anything else is a functional call."""
    torch = _torch()
    functional = LookupError(f"'{layer.name}' is a functional call ({layer.op}): not applicable, there is no "
                             f"submodule to replace; rewrite the call by hand")
    if not layer.module:
        raise functional
    try:
        sub = root.get_submodule(layer.module)
    except AttributeError:
        raise LookupError(f"no submodule '{layer.module}' (gone or renamed)") from None
    if not layer.op.startswith("nn.") and not isinstance(
            sub, (torch.nn.modules.conv._ConvNd, torch.nn.Linear, torch.nn.modules.batchnorm._BatchNorm)):
        raise functional
    return sub


def _set(root: Any, path: str, module: Any) -> None:
    parent, _, child = path.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, child, module)


def rewrite(module: Any, fixes: Sequence[Fix], measure: bool = True) -> tuple[Any, list[Outcome]]:
    """The rewritten deep copy of ``module`` and one :class:`Outcome` per fix."""
    torch = _torch()
    new = copy.deepcopy(module)
    outcomes = []
    done: set[str] = set()
    for fix in fixes:
        try:
            subs = [_submodule(new, la) for la in fix.original]
        except LookupError as exc:
            outcomes.append(Outcome(fix, False, str(exc)))
            continue
        paths = [la.module or "" for la in fix.original]
        if done & set(paths):
            outcomes.append(Outcome(fix, False, "the layer is already rewritten by another fix"))
            continue
        if any(source_suppressed(la, fix.code) for la in fix.original):
            la = fix.original[0]
            where = f"{la.source[0]}:{la.source[1]}" if la.source else la.name
            outcomes.append(Outcome(fix, False, f"suppressed by '# archlint: ignore' at {where}"))
            continue
        conv = subs[0]
        if not _is_forward_conv(conv, torch) and not (fix.code == "AL106" and isinstance(conv, torch.nn.Linear)):
            outcomes.append(Outcome(fix, False, f"'{paths[0]}' is a {type(conv).__name__}, not a convolution"))
            continue
        expected = fix.boundary.get(fix.original[0].inputs[1])
        if expected is not None and expected.shape is not None and tuple(conv.weight.shape) != expected.shape:
            outcomes.append(Outcome(fix, False, f"shapes changed: '{paths[0]}' has a weight of "
                                                f"{list(conv.weight.shape)}, the fix expects {list(expected.shape)}"))
            continue
        meta = conv.weight.device.type == "meta"
        get = functools.partial(_weight_of, conv, fix.original[0].inputs[1])
        try:
            values, error = carry(fix, get) if fix.code != "AL106" else ({}, 0.0)
            replacement = _build(fix, subs, values, torch, meta)
        except (ValueError, NotImplementedError) as exc:
            outcomes.append(Outcome(fix, False, str(exc)))
            continue
        outcome = Outcome(fix, True, weight_error=None if meta else error)
        if meta:
            outcome.notes.append(SHAPES_ONLY.replace("; new weights randomly initialised", ""))
        if measure and not meta:
            outcome.output_error = _output_error(fix, subs, replacement, torch)
        for path, rep in zip(paths, replacement):
            _set(new, path, rep)
        done.update(paths)
        outcomes.append(outcome)
    return new, outcomes


def _weight_of(conv: Any, weight_name: str, name: str) -> np.ndarray | None:
    """The conv's weight as float64 when ``name`` is the IR's name for it (None on meta)."""
    if conv.weight.device.type == "meta" or name != weight_name:
        return None
    return np.asarray(conv.weight.detach().cpu().double().numpy())


def _is_forward_conv(m: Any, torch: Any) -> bool:
    return isinstance(m, torch.nn.modules.conv._ConvNd) and not m.transposed


def _build(fix: Fix, subs: list[Any], values: dict[str, np.ndarray], torch: Any, meta: bool) -> list[Any]:
    """The replacement module for each replaced submodule, weights set (none on meta)."""
    builder = BUILDERS.get(fix.code)
    if builder is None:
        raise NotImplementedError(f"no torch rewrite for {fix.code}")
    return builder(_Parts(fix, subs, values, torch, meta))


class _Parts:
    """What a builder reads: the fix, the replaced submodules, the carried values, torch."""

    def __init__(self, fix: Fix, subs: list[Any], values: dict[str, np.ndarray], torch: Any, meta: bool) -> None:
        self.fix, self.subs, self.values, self.torch, self.meta = fix, subs, values, torch, meta
        conv = self.conv = subs[0]
        self.nn = torch.nn
        self.kw = {"device": conv.weight.device, "dtype": conv.weight.dtype}
        self.has_bias = getattr(conv, "bias", None) is not None
        self.cls = type(conv)

    def set(self, param: Any, value: Any) -> None:
        """Copy a numpy array or a tensor into a parameter (skipped on meta)."""
        if self.meta:
            return
        torch = self.torch
        with torch.no_grad():
            src = value if isinstance(value, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(value))
            param.copy_(src.to(param.dtype))

    def conv_like(self, cin: int, kernel: Any, stride: Any, padding: Any, groups: int, dilation: Any = 1,
                  bias: bool | None = None) -> Any:
        c = self.conv
        return self.cls(cin, c.out_channels, kernel, stride, padding, dilation, groups=groups,
                        bias=self.has_bias if bias is None else bias, padding_mode=c.padding_mode, **self.kw)


def _bias_fold(p: _Parts) -> list[Any]:
    conv, bn = p.subs
    if not isinstance(bn, p.nn.modules.batchnorm._BatchNorm):
        raise ValueError(f"'{p.fix.replaces[1]}' is a {type(bn).__name__}, not a BatchNorm module")
    c2, b2 = copy.deepcopy(conv), copy.deepcopy(bn)
    with p.torch.no_grad():
        if b2.running_mean is not None:
            b2.running_mean.sub_(conv.bias.detach().to(b2.running_mean.dtype))
    c2.register_parameter("bias", None)
    return [c2, b2]


def _depthwise(p: _Parts) -> list[Any]:
    c = p.conv
    dw = p.cls(c.in_channels, c.in_channels, c.kernel_size, c.stride, c.padding, c.dilation, groups=c.in_channels,
               bias=False, padding_mode=c.padding_mode, **p.kw)
    pw = p.conv_like(c.in_channels, 1, 1, 0, 1)
    p.set(dw.weight, p.values.get(p.fix.weights[0]))
    p.set(pw.weight, p.values.get(p.fix.weights[1]))
    if p.has_bias:
        p.set(pw.bias, c.bias.detach())
    return [p.nn.Sequential(dw, pw)]


def _grouped(p: _Parts) -> list[Any]:
    c = p.conv
    m = p.conv_like(c.in_channels, c.kernel_size, c.stride, c.padding, p.fix.details["groups"], c.dilation)
    p.set(m.weight, p.values.get(p.fix.weights[0]))
    if p.has_bias:
        p.set(m.bias, c.bias.detach())
    return [m]


def _stacked(p: _Parts) -> list[Any]:
    c, layers = p.conv, []
    nd = len(c.kernel_size)
    for i, la in enumerate(p.fix.layers):
        pads = la.attrs["pads"]
        if list(pads[:nd]) != list(pads[nd:]):
            raise ValueError("asymmetric padding: no nn.ConvNd padding expresses it")
        m = p.conv_like(c.in_channels if i == 0 else c.out_channels, 3, 1, tuple(pads[:nd]), c.groups)
        p.set(m.weight, p.values.get(la.inputs[1]))
        if p.has_bias:
            p.set(m.bias, c.bias.detach() if i == len(p.fix.layers) - 1 else p.values.get(la.inputs[2]))
        layers.append(m)
    return [p.nn.Sequential(*layers)]


def _pool_pointwise(p: _Parts) -> list[Any]:
    c, nn = p.conv, p.nn
    pool_cls = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}[len(c.kernel_size)]
    stride = tuple(c.stride)
    pool = pool_cls(stride, stride, ceil_mode=p.fix.details["ceil_mode"], count_include_pad=False)
    m = p.conv_like(c.in_channels, 1, 1, 0, c.groups)
    p.set(m.weight, c.weight.detach())
    if p.has_bias:
        p.set(m.bias, c.bias.detach())
    return [nn.Sequential(pool, m)]


BUILDERS = {"AL101": _depthwise, "AL102": _grouped, "AL103": _stacked, "AL105": _pool_pointwise,
            "AL106": _bias_fold}


def _output_error(fix: Fix, old: list[Any], new: list[Any], torch: Any) -> float | None:
    """``||y - y_hat|| / ||y||`` of the replaced submodules (in eval mode) against their
    replacement on one random input of the layer's input shape."""
    info = fix.boundary.get(fix.original[0].inputs[0])
    if info is None or info.shape is None:
        return None
    p = old[0].weight
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(info.shape, generator=gen, dtype=torch.float64).to(device=p.device, dtype=p.dtype)
    before = torch.nn.Sequential(*[copy.deepcopy(m) for m in old]).eval()
    after = torch.nn.Sequential(*[copy.deepcopy(m) for m in new]).eval()
    with torch.no_grad():
        y, y_hat = before(x).double(), after(x).double()
    norm = float(torch.linalg.vector_norm(y))
    diff = float(torch.linalg.vector_norm(y - y_hat))
    return diff / norm if norm else diff
