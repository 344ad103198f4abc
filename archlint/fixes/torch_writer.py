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
        weight = conv.weight
        meta = weight.device.type == "meta"

        def get(name: str, _w: Any = weight, _meta: bool = meta) -> np.ndarray | None:
            if _meta:
                return None
            if name == fix.original[0].inputs[1]:
                return _w.detach().cpu().double().numpy()
            return None

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


def _is_forward_conv(m: Any, torch: Any) -> bool:
    return isinstance(m, torch.nn.modules.conv._ConvNd) and not m.transposed


def _assign(param: Any, value: np.ndarray, torch: Any) -> None:
    with torch.no_grad():
        param.copy_(torch.from_numpy(np.ascontiguousarray(value)).to(param.dtype))


def _build(fix: Fix, subs: list[Any], values: dict[str, np.ndarray], torch: Any, meta: bool) -> list[Any]:
    """The replacement module for each replaced submodule, weights set."""
    nn = torch.nn
    conv = subs[0]
    kw = {"device": conv.weight.device, "dtype": conv.weight.dtype}
    has_bias = getattr(conv, "bias", None) is not None
    code = fix.code
    if code == "AL106":
        bn = subs[1]
        if not isinstance(bn, nn.modules.batchnorm._BatchNorm):
            raise ValueError(f"'{fix.replaces[1]}' is a {type(bn).__name__}, not a BatchNorm module")
        c2, b2 = copy.deepcopy(conv), copy.deepcopy(bn)
        with torch.no_grad():
            if b2.running_mean is not None:
                b2.running_mean.sub_(conv.bias.detach().to(b2.running_mean.dtype))
        c2.register_parameter("bias", None)
        return [c2, b2]
    nd = len(conv.kernel_size)
    cls = type(conv)
    ci, co = conv.in_channels, conv.out_channels
    common = {"padding_mode": conv.padding_mode, **kw}
    if code == "AL101":
        dw = cls(ci, ci, conv.kernel_size, conv.stride, conv.padding, conv.dilation, groups=ci, bias=False, **common)
        pw = cls(ci, co, 1, bias=has_bias, **kw)
        if not meta:
            _assign(dw.weight, values[fix.weights[0]], torch)
            _assign(pw.weight, values[fix.weights[1]], torch)
            if has_bias:
                _assign(pw.bias, conv.bias.detach().cpu().numpy(), torch)
        return [nn.Sequential(dw, pw)]
    if code == "AL102":
        g = fix.details["groups"]
        m = cls(ci, co, conv.kernel_size, conv.stride, conv.padding, conv.dilation, groups=g, bias=has_bias, **common)
        if not meta:
            _assign(m.weight, values[fix.weights[0]], torch)
            if has_bias:
                _assign(m.bias, conv.bias.detach().cpu().numpy(), torch)
        return [m]
    if code == "AL103":
        layers = []
        for i, la in enumerate(fix.layers):
            pads = la.attrs["pads"]
            if list(pads[:nd]) != list(pads[nd:]):
                raise ValueError("asymmetric padding: no nn.ConvNd padding expresses it")
            m = cls(ci if i == 0 else co, co, 3, 1, tuple(pads[:nd]), groups=conv.groups, bias=has_bias, **common)
            if not meta:
                _assign(m.weight, values[la.inputs[1]], torch)
                if has_bias:
                    bias = conv.bias.detach().cpu().numpy() if i == len(fix.layers) - 1 else values[la.inputs[2]]
                    _assign(m.bias, bias, torch)
            layers.append(m)
        return [nn.Sequential(*layers)]
    if code == "AL105":
        pool_cls = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}[nd]
        stride = tuple(conv.stride)
        pool = pool_cls(stride, stride, ceil_mode=fix.details["ceil_mode"], count_include_pad=False)
        m = cls(ci, co, 1, 1, 0, groups=conv.groups, bias=has_bias, **kw)
        if not meta:
            with torch.no_grad():
                m.weight.copy_(conv.weight)
                if has_bias:
                    m.bias.copy_(conv.bias)
        return [nn.Sequential(pool, m)]
    raise NotImplementedError(f"no torch rewrite for {code}")


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
