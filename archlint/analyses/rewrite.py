"""One description of a model change: a :class:`Fix`.

A fix names the IR layer(s) it replaces and gives the replacement layers in the IR's own
vocabulary (:class:`archlint.ir.Layer`: kind, normalised attributes, input and output tensor
names) with the :class:`TensorInfo` of every new tensor (weights and intermediate maps).
Its cost before and after is not a formula of its own: both sides are put in a small
:class:`ModelGraph` and run through the registry's formulas (:mod:`archlint.analyses.cost`)
and the traffic model (:class:`archlint.analyses.roofline.TrafficModel`), exactly as the
report costs the whole model. Rules (findings), the writers of :mod:`archlint.fixes` and
the what-if tables read the same object.

Constructors (each raises :class:`NotApplicable` with the reason when the layer does not
fit): :func:`depthwise_separable` (AL101), :func:`grouped` (AL102), :func:`stacked_3x3`
(AL103), :func:`pool_then_pointwise` (AL105), :func:`drop_bias_into_batchnorm` (AL106).
Safe and unsafe as ruff names them: a safe fix keeps the function up to float rounding.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from archlint.analyses import cost as cost_analysis
from archlint.analyses.roofline import TrafficModel
from archlint.ir import Layer, ModelGraph, Shape, TensorInfo
from archlint.ops import registry
from archlint.ops.conv import resolve_pads, window_output_size
from archlint.ops.registry import OpCall


class NotApplicable(ValueError):
    """The layer does not fit the change (the message says why)."""


@dataclass(frozen=True, slots=True)
class Cost:
    """Params, MACs, FLOPs, memory traffic (bytes) and roofline time of a set of layers."""

    params: int
    macs: int
    flops: int
    bytes: int
    est_time: float

    def to_dict(self) -> dict[str, Any]:
        return {"params": self.params, "macs": self.macs, "flops": self.flops, "bytes": self.bytes,
                "est_time_s": self.est_time}


@dataclass
class Fix:
    """A proposed rewrite of one or two layers.

    ``replaces`` names the IR layers removed (``original`` holds them); ``layers`` are the
    replacement layers, in order; ``tensors`` describes every tensor the replacement creates
    (``weights`` names the trainable ones among them); ``origin`` maps each replacement layer
    to the original layer it stands in for (writers put it at that layer's place and keep its
    settings); ``boundary`` holds the replaced layers' input, weight and output tensors as they
    were (a writer refuses a model whose weight shape differs). ``before``/``after`` are
    filled by :meth:`compute_cost`."""

    code: str
    replaces: list[str]
    original: list[Layer]
    layers: list[Layer]
    tensors: dict[str, TensorInfo]
    weights: list[str]
    safe: bool
    description: str
    origin: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    boundary: dict[str, TensorInfo] = field(default_factory=dict)
    before: Cost | None = None
    after: Cost | None = None

    @property
    def layer(self) -> str:
        """The first replaced layer (the one a finding names)."""
        return self.replaces[0]

    def compute_cost(self, graph: ModelGraph, profile: Any = None, dtype: str = "fp32") -> Fix:
        """Fill ``before`` and ``after`` by running the registry's formulas and the traffic model
        over the replaced and the replacement layers (``profile``: a Profile, a name or None for
        the default)."""
        from archlint import profiles
        device = profile if isinstance(profile, profiles.Profile) else profiles.load(profile)
        self.before = _cost(graph, self.original, {}, set(), device, dtype)
        self.after = _cost(graph, self.layers, self.tensors, set(self.weights), device, dtype)
        return self

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "replaces": list(self.replaces), "safe": self.safe,
                               "description": self.description,
                               "layers": [{"name": la.name, "kind": la.kind, "attrs": dict(la.attrs),
                                           "inputs": list(la.inputs), "outputs": list(la.outputs)}
                                          for la in self.layers],
                               "tensors": {n: list(t.shape) if t.shape is not None else None
                                           for n, t in self.tensors.items()}}
        if self.before is not None and self.after is not None:
            out["before"], out["after"] = self.before.to_dict(), self.after.to_dict()
        return out


def _cost(graph: ModelGraph, layers: list[Layer], new: dict[str, TensorInfo], new_params: set[str],
          profile: Any, dtype: str) -> Cost:
    """Cost of ``layers`` alone: a ModelGraph holding them, their tensors' shapes (new ones from
    ``new``, the rest from ``graph``), then :func:`cost_analysis.compute` and the traffic model."""
    sub = ModelGraph()
    produced = {t for la in layers for t in la.outputs}
    for la in layers:
        for t in la.inputs + la.weights + la.outputs:
            if not t or t in sub.tensors:
                continue
            info = new.get(t) or graph.tensors.get(t)
            sub.add_tensor(t, info.shape if info else None, info.dtype if info else None)
            if t in graph.constants:
                sub.constants[t] = graph.constants[t]
            if t in graph.params or t in new_params:
                sub.params.add(t)
            if t in la.inputs and t not in produced and t not in sub.params and t not in sub.constants \
                    and t not in sub.inputs:
                sub.inputs.append(t)
        sub.add_layer(dataclasses.replace(la, inputs=list(la.inputs), outputs=list(la.outputs),
                                          weights=list(la.weights)))
    sub.connect()
    costs = cost_analysis.compute(sub)
    if any(c.macs is None for c in costs.layers):
        raise NotApplicable("a replaced layer cannot be costed (unknown shape)")
    traffic = TrafficModel(sub, profile, dtype)
    nbytes, time = 0, 0.0
    for la, c in zip(sub.layers(), costs.layers):
        moved, _, seconds = traffic.layer(la, c.flops)
        nbytes += moved
        time += seconds
    return Cost(costs.params, costs.macs, costs.flops, nbytes, time)


@dataclass(frozen=True, slots=True)
class _Conv:
    """A forward conv's geometry: x ``[N, Ci, *in]``, weight ``[Co, Ci/G, *k]``, y ``[N, Co, *out]``."""

    layer: Layer
    x: Shape
    w: Shape
    y: Shape
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    begins: tuple[int, ...]
    ends: tuple[int, ...]
    groups: int
    bias: str | None
    dtype: str | None

    @property
    def ci(self) -> int:
        return self.x[1]

    @property
    def co(self) -> int:
        return self.w[0]

    @property
    def nd(self) -> int:
        return len(self.kernel)


def _conv(graph: ModelGraph, layer: Layer) -> _Conv:
    entry = registry.get(layer.kind)
    if not entry.is_conv:
        raise NotApplicable(f"'{layer.name}' is not a convolution")
    if len(layer.inputs) < 2:
        raise NotApplicable(f"'{layer.name}' has no weight input")
    x, w = graph.shape(layer.inputs[0]), graph.shape(layer.inputs[1])
    y = graph.shape(layer.outputs[0]) if layer.outputs else None
    if x is None or w is None or y is None or len(x) < 3 or len(w) != len(x) or len(y) != len(x):
        raise NotApplicable(f"'{layer.name}': shapes unknown")
    if layer.inputs[1] not in graph.params:
        raise NotApplicable(f"'{layer.name}': the weight is computed, not a parameter")
    _not_shared(graph, layer)
    attrs = layer.attrs
    nd = len(x) - 2
    begins, ends = resolve_pads(OpCall(attrs, [x, w], [y]))
    slot = entry.slot("bias")
    bias = layer.inputs[slot] if slot is not None and len(layer.inputs) > slot and layer.inputs[slot] else None
    info = graph.tensors.get(layer.inputs[1])
    return _Conv(layer, x, w, y, tuple(attrs.get("kernel") or w[2:]), tuple(attrs.get("stride") or [1] * nd),
                 tuple(attrs.get("dilation") or [1] * nd), tuple(begins), tuple(ends),
                 int(attrs.get("groups", 1) or 1), bias, info.dtype if info else None)


def _readers(graph: ModelGraph) -> dict[str, list[str]]:
    """Tensor name -> the layers reading it, built once per graph (rules ask for every conv)."""
    key = len(graph.layers_as_added())
    cached = getattr(graph, "_archlint_readers", None)
    if cached is None or cached[0] != key:
        index: dict[str, list[str]] = {}
        for la in graph.layers_as_added():
            for t in dict.fromkeys(la.inputs):
                index.setdefault(t, []).append(la.name)
        cached = (key, index)
        try:
            graph._archlint_readers = cached  # type: ignore[attr-defined]
        except AttributeError:  # a graph with __slots__: rebuilt on each call
            pass
    return cached[1]


def _not_shared(graph: ModelGraph, layer: Layer) -> None:
    """A weight read by another layer cannot be rewritten for this one alone."""
    readers = _readers(graph)
    for w in layer.weights:
        for other in readers.get(w, ()):
            if other != layer.name:
                raise NotApplicable(f"'{layer.name}': its weights are shared with '{other}'")


def _conv_layer(name: str, op: str, x: str, w: str, bias: str | None, y: str, kernel: tuple[int, ...],
                stride: tuple[int, ...], dilation: tuple[int, ...], begins: tuple[int, ...],
                ends: tuple[int, ...], groups: int, original: Layer) -> Layer:
    attrs = {"kernel": list(kernel), "stride": list(stride), "dilation": list(dilation),
             "pads": list(begins) + list(ends), "auto_pad": "NOTSET", "groups": groups}
    inputs = [x, w] + ([bias] if bias else [])
    return Layer(name, op, original.kind, inputs, [y], attrs, [w] + ([bias] if bias else []),
                 original.module, original.source)


def _boundary(graph: ModelGraph, names: list[str]) -> dict[str, TensorInfo]:
    return {t: dataclasses.replace(graph.tensors[t]) for t in names if t in graph.tensors}


def depthwise_separable(graph: ModelGraph, layer: Layer) -> Fix:
    """AL101: a dense KxK conv Ci->Co becomes a depthwise KxK conv (Ci groups, the original
    stride, dilation and padding, no bias) and a pointwise 1x1 conv Ci->Co (the original bias).
    Params ``Ci*K^2 + Ci*Co (+Co)``; MACs ``P*Ci*K^2 + P*Ci*Co`` for ``P`` output positions
    (MobileNets, Howard et al. 2017)."""
    c = _conv(graph, layer)
    if c.groups != 1 or max(c.kernel) <= 1:
        raise NotApplicable(f"'{layer.name}': only a dense conv with a kernel over 1x1 has a depthwise-separable form")
    name, ones = layer.name, (1,) * c.nd
    dw_w, pw_w, mid = f"{name}/depthwise.weight", f"{name}/pointwise.weight", f"{name}/depthwise_output"
    dw = _conv_layer(f"{name}/depthwise", layer.op, layer.inputs[0], dw_w, None, mid, c.kernel, c.stride,
                     c.dilation, c.begins, c.ends, c.ci, layer)
    pw = _conv_layer(f"{name}/pointwise", layer.op, mid, pw_w, c.bias, layer.outputs[0], ones, ones, ones,
                     (0,) * c.nd, (0,) * c.nd, 1, layer)
    tensors = {dw_w: TensorInfo(dw_w, (c.ci, 1, *c.kernel), c.dtype),
               pw_w: TensorInfo(pw_w, (c.co, c.ci, *ones), c.dtype),
               mid: TensorInfo(mid, (c.x[0], c.ci, *c.y[2:]), graph.tensors[layer.inputs[0]].dtype)}
    k = "x".join(map(str, c.kernel))
    return Fix("AL101", [name], [layer], [dw, pw], tensors, [dw_w, pw_w], False,
               f"dense {k} conv {c.ci}->{c.co} -> depthwise {k} conv ({c.ci} groups) + pointwise 1x1 conv "
               f"{c.ci}->{c.co}", origin={dw.name: name, pw.name: name},
               boundary=_boundary(graph, [layer.inputs[0], layer.inputs[1], layer.outputs[0]]))


def grouped(graph: ModelGraph, layer: Layer, groups: int) -> Fix:
    """AL102: the same conv with ``groups`` groups: weight ``[Co, Ci/G, *k]``, MACs and weights
    divided by G (ResNeXt); bias, stride, padding and dilation unchanged."""
    c = _conv(graph, layer)
    if c.groups != 1:
        raise NotApplicable(f"'{layer.name}' is already grouped (groups={c.groups})")
    if groups < 2 or c.ci % groups or c.co % groups:
        raise NotApplicable(f"'{layer.name}': {groups} groups do not divide {c.ci} and {c.co} channels")
    name = layer.name
    w = f"{name}/grouped.weight"
    new = _conv_layer(f"{name}/grouped", layer.op, layer.inputs[0], w, c.bias, layer.outputs[0], c.kernel,
                      c.stride, c.dilation, c.begins, c.ends, groups, layer)
    return Fix("AL102", [name], [layer], [new], {w: TensorInfo(w, (c.co, c.ci // groups, *c.kernel), c.dtype)},
               [w], False, f"dense conv {c.ci}->{c.co} -> grouped conv with G={groups}",
               origin={new.name: name}, details={"groups": groups},
               boundary=_boundary(graph, [layer.inputs[0], layer.inputs[1], layer.outputs[0]]))


def stacked_3x3(graph: ModelGraph, layer: Layer) -> Fix:
    """AL103: a stride-1, undilated KxK conv (odd K >= 5) becomes ``n = (K-1)/2`` stacked 3x3
    convs: the first Ci->Co, the rest Co->Co, all with the original groups and each with a bias
    when the original has one; field ``1 + 2n = K`` (VGG). The original padding is spread over
    the layers (layer ``i`` gets ``p//n``, plus one for the first ``p mod n``), so the output
    size and the receptive field's offset are unchanged. No nonlinearity is inserted: the
    stack stays linear so that the carried-over weights can reproduce the centre of W."""
    c = _conv(graph, layer)
    k = c.kernel
    if len(set(k)) != 1 or k[0] < 5 or k[0] % 2 == 0 or any(s != 1 for s in c.stride) \
            or any(d != 1 for d in c.dilation):
        raise NotApplicable(f"'{layer.name}': stacking 3x3 convs needs an odd square kernel >= 5, stride 1, "
                            f"no dilation")
    n = (k[0] - 1) // 2
    name, nd = layer.name, c.nd
    three = (3,) * nd
    layers, tensors, weights = [], {}, []
    current = layer.inputs[0]
    dtype_x = graph.tensors[layer.inputs[0]].dtype
    size = list(c.x[2:])
    for i in range(n):
        begins = tuple(b // n + (1 if i < b % n else 0) for b in c.begins)
        ends = tuple(e // n + (1 if i < e % n else 0) for e in c.ends)
        size = [window_output_size(s, 3, 1, 1, b, e) for s, b, e in zip(size, begins, ends)]
        w = f"{name}/stack{i}.weight"
        cin = c.ci if i == 0 else c.co
        tensors[w] = TensorInfo(w, (c.co, cin // c.groups, *three), c.dtype)
        weights.append(w)
        bias = None
        if c.bias:
            bias = c.bias if i == n - 1 else f"{name}/stack{i}.bias"
            if i < n - 1:
                tensors[bias] = TensorInfo(bias, (c.co,), graph.tensors[c.bias].dtype)
                weights.append(bias)
        out = layer.outputs[0] if i == n - 1 else f"{name}/stack{i}_output"
        if i < n - 1:
            tensors[out] = TensorInfo(out, (c.x[0], c.co, *size), dtype_x)
        la = _conv_layer(f"{name}/stack{i}", layer.op, current, w, bias, out, three, (1,) * nd, (1,) * nd,
                         begins, ends, c.groups, layer)
        layers.append(la)
        current = out
    if tuple(size) != tuple(c.y[2:]):
        raise NotApplicable(f"'{layer.name}': the stacked convs would not keep the output size")
    return Fix("AL103", [name], [layer], layers, tensors, weights, False,
               f"{k[0]}x{k[0]} conv {c.ci}->{c.co} -> {n} stacked 3x3 convs (same receptive field)",
               origin={la.name: name for la in layers}, details={"stacked_3x3": n},
               boundary=_boundary(graph, [layer.inputs[0], layer.inputs[1], layer.outputs[0]]))


def pool_then_pointwise(graph: ModelGraph, layer: Layer) -> Fix:
    """AL105: a 1x1 conv with stride s becomes an s x s average pool with stride s (ceil mode
    and padding excluded from the average when the input size is not a multiple of s, so the
    output size is unchanged) and the same 1x1 conv, with the same weights, at stride 1
    (ResNet-D, He et al. 2019): the same MACs, every input position used."""
    c = _conv(graph, layer)
    if max(c.kernel) != 1 or max(c.stride) <= 1:
        raise NotApplicable(f"'{layer.name}' is not a strided 1x1 conv")
    if any(c.begins) or any(c.ends):
        raise NotApplicable(f"'{layer.name}': a padded 1x1 conv reads padding, which an average pool would not")
    name, nd = layer.name, c.nd
    ceil = False
    for mode in (False, True):
        out = tuple(window_output_size(s, k, k, 1, 0, 0, mode) for s, k in zip(c.x[2:], c.stride))
        if out == tuple(c.y[2:]):
            ceil = mode
            break
    else:
        raise NotApplicable(f"'{layer.name}': no average pool gives the output size {list(c.y[2:])}")
    mid = f"{name}/avgpool_output"
    pool = Layer(f"{name}/avgpool", "AveragePool", "pool", [layer.inputs[0]], [mid],
                 {"kernel": list(c.stride), "stride": list(c.stride), "dilation": [1] * nd, "pads": [0] * (2 * nd),
                  "auto_pad": "NOTSET", "ceil_mode": ceil, "mode": "avg", "count_include_pad": False},
                 [], layer.module, layer.source)
    ones = (1,) * nd
    conv = _conv_layer(f"{name}/pointwise", layer.op, mid, layer.inputs[1], c.bias, layer.outputs[0], ones, ones,
                       ones, (0,) * nd, (0,) * nd, c.groups, layer)
    stride = "x".join(map(str, c.stride))
    return Fix("AL105", [name], [layer], [pool, conv],
               {mid: TensorInfo(mid, (c.x[0], c.ci, *c.y[2:]), graph.tensors[layer.inputs[0]].dtype)}, [], False,
               f"1x1 conv with stride {stride} -> average pool {stride} (stride {stride}) + 1x1 conv with stride 1 "
               f"(receptive field grows from 1 to {stride})", origin={pool.name: name, conv.name: name},
               details={"ceil_mode": ceil},
               boundary=_boundary(graph, [layer.inputs[0], layer.inputs[1], layer.outputs[0]]))


def drop_bias_into_batchnorm(graph: ModelGraph, conv: Layer, bn: Layer) -> Fix:
    """AL106 (safe): a conv or linear layer's bias ``b`` feeding BatchNorm is dropped and folded
    into BatchNorm's running mean, ``mean' = mean - b``: ``BN(Wx + b) = gamma*(Wx + b - mean)/sigma
    + beta = gamma*(Wx - mean')/sigma + beta``, exact in eval mode (in training mode the batch
    mean subtracts the bias anyway). Params drop by the bias size."""
    slot = registry.get(conv.kind).slot("bias")
    if slot is None or len(conv.inputs) <= slot or not conv.inputs[slot]:
        raise NotApplicable(f"'{conv.name}' has no bias")
    if not registry.get(bn.kind).absorbs_bias(bn.attrs):
        raise NotApplicable(f"'{bn.name}' does not subtract a mean")
    if graph.successors(conv.name) != [bn.name] or any(
            t in la.inputs for t in conv.outputs for la in graph.layers_as_added() if la.name != bn.name):
        raise NotApplicable(f"'{conv.name}' feeds more than '{bn.name}'")
    bias = conv.inputs[slot]
    _not_shared(graph, conv)
    inputs = list(conv.inputs)
    inputs[slot] = ""
    while inputs and not inputs[-1]:
        inputs.pop()
    new_conv = Layer(f"{conv.name}/no_bias", conv.op, conv.kind, inputs, list(conv.outputs), dict(conv.attrs),
                     [w for w in conv.weights if w != bias], conv.module, conv.source)
    # BatchNorm's running mean: input 3 of an ONNX BatchNormalization; a torch module holds it as a buffer
    mean = bn.inputs[3] if len(bn.inputs) > 3 else None
    tensors: dict[str, TensorInfo] = {}
    bn_inputs = list(bn.inputs)
    if mean:
        new_mean = f"{bn.name}/running_mean"
        bn_inputs[3] = new_mean
        info = graph.tensors.get(mean)
        tensors[new_mean] = TensorInfo(new_mean, info.shape if info else None, info.dtype if info else None)
    new_bn = Layer(f"{bn.name}/folded", bn.op, bn.kind, bn_inputs, list(bn.outputs), dict(bn.attrs),
                   list(bn.weights), bn.module, bn.source)
    size = graph.tensors[bias].numel if bias in graph.tensors else None
    return Fix("AL106", [conv.name, bn.name], [conv, bn], [new_conv, new_bn], tensors, [], True,
               f"bias of '{conv.name}' ({size} parameters) folded into the running mean of '{bn.name}'",
               origin={new_conv.name: conv.name, new_bn.name: bn.name},
               details={"bias": bias, "mean": mean, "bn": bn.name},
               boundary=_boundary(graph, [conv.inputs[0], conv.inputs[1], bn.outputs[0]]))
