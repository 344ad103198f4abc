"""The graph IR shared by every frontend and analysis.

A model is a :class:`ModelGraph`: layers (ops) joined by the tensors passed between
them, available as a networkx ``DiGraph`` (``graph.g``) for graph algorithms. networkx
costs 0.15 s to import, so the common walks (topological order when the frontend's
order already is one, successors, predecessors) use the graph's own adjacency and
networkx is imported only when ``g`` is asked for or a real sort is needed. Frontends (ONNX, torch)
only translate into this form; analyses only read it. The op vocabulary
(``Layer.kind``) is defined by :mod:`archlint.ops.registry`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

Shape = tuple[int, ...]


@dataclass(slots=True)
class TensorInfo:
    """A tensor's static description: its shape (``None`` when unknown) and dtype name."""

    name: str
    shape: Shape | None = None
    dtype: str | None = None

    @property
    def numel(self) -> int | None:
        return None if self.shape is None else math.prod(self.shape)


@dataclass(slots=True)
class Layer:
    """One op of the model.

    ``op`` is the source's own name for it (``Conv``, ``nn.Conv2d``, ``F.interpolate``);
    ``kind`` is the shared vocabulary entry. ``inputs`` lists every tensor the op reads,
    weights included, in the order the registry's formulas expect (data first, then
    weight, then bias). ``weights`` names the inputs that are trainable parameters.
    """

    name: str
    op: str
    kind: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    weights: list[str] = field(default_factory=list)
    module: str | None = None
    source: tuple[str, int] | None = None


class GraphCycleError(ValueError):
    """The layers' edges form a cycle: no topological order exists."""


class ModelGraph:
    """A model as a DAG of :class:`Layer` nodes with tensor metadata.

    ``tensors`` holds every tensor (activations, weights, constants);
    ``params`` names the tensors that are trainable parameters, so that a tensor
    shared by several layers is one entry and counts once.
    """

    def __init__(self) -> None:
        self._g: Any = None
        self._succ: dict[str, list[str]] = {}
        self._pred: dict[str, list[str]] = {}
        self._forward = True
        self.tensors: dict[str, TensorInfo] = {}
        self.params: set[str] = set()
        self.constants: dict[str, Any] = {}
        self.inputs: list[str] = []
        self.outputs: list[str] = []
        self.producer: dict[str, str] = {}
        self.meta: dict[str, Any] = {}
        self._by_name: dict[str, Layer] = {}

    def add_tensor(self, name: str, shape: Shape | None = None, dtype: str | None = None) -> TensorInfo:
        info = self.tensors.get(name)
        if info is None:
            info = self.tensors[name] = TensorInfo(name, shape, dtype)
        else:
            if shape is not None and info.shape is None:
                info.shape = shape
            if dtype is not None and info.dtype is None:
                info.dtype = dtype
        return info

    def unique_name(self, base: str) -> str:
        if base not in self._by_name:
            return base
        i = 1
        while f"{base}_{i}" in self._by_name:
            i += 1
        return f"{base}_{i}"

    def add_layer(self, layer: Layer) -> Layer:
        """Register a layer; it joins the networkx graph at :meth:`connect` (nodes and edges
        are added in bulk there, several times faster than one by one)."""
        by_name = self._by_name
        name = layer.name
        if name in by_name:
            name = layer.name = self.unique_name(name)
        by_name[name] = layer
        producer = self.producer
        for t in layer.outputs:
            producer[t] = name
        return layer

    def connect(self) -> None:
        """Join every layer added so far to the layers whose outputs it reads (call again after
        adding more). Only the adjacency is kept: the tensors an edge carries are read off the
        consumer's inputs when asked for (:meth:`edge_tensors`, :attr:`g`), which keeps a
        million-layer graph from holding a million extra tuples and lists."""
        producer = self.producer
        succ: dict[str, list[str]] = {name: [] for name in self._by_name}
        pred: dict[str, list[str]] = {}  # filled in insertion order: holds the layers seen so far
        forward = True  # every edge points forward in the insertion order
        for name, layer in self._by_name.items():
            srcs: list[str] = []
            for t in layer.inputs:
                src = producer.get(t)
                if src is not None and src != name and src not in srcs:
                    srcs.append(src)
                    succ[src].append(name)
                    if forward and src not in pred:
                        forward = False
            pred[name] = srcs
        self._succ, self._pred = succ, pred
        self._forward = forward
        self._g = None
        self.meta.pop("_topo", None)

    @property
    def g(self) -> Any:
        """The model as a ``networkx.DiGraph``: nodes are layer names (attribute ``layer``),
        edges carry ``tensors``. Built on first use."""
        if self._g is None or len(self._g) != len(self._by_name):
            import networkx as nx
            g = nx.DiGraph()
            g.add_nodes_from((name, {"layer": layer}) for name, layer in self._by_name.items())
            g.add_edges_from((src, dst, {"tensors": self.edge_tensors(src, dst)})
                             for dst, srcs in self._pred.items() for src in srcs)
            self._g = g
        return self._g

    def layers_as_added(self) -> list[Layer]:
        """Layers in the order the frontend added them (no sort; works on a cyclic graph)."""
        return list(self._by_name.values())

    def successors(self, name: str) -> list[str]:
        """Layers that read an output of ``name``."""
        return list(self._succ.get(name, ()))

    def predecessors(self, name: str) -> list[str]:
        """Layers whose outputs ``name`` reads."""
        return list(self._pred.get(name, ()))

    def edge_tensors(self, src: str, dst: str) -> list[str]:
        """The tensors ``dst`` reads from ``src``, in ``dst``'s input order (a tensor read
        twice is listed twice)."""
        if src not in self._pred.get(dst, ()):
            return []
        producer = self.producer
        return [t for t in self._by_name[dst].inputs if producer.get(t) == src]

    def layer(self, name: str) -> Layer:
        return self._by_name[name]

    def layers(self) -> list[Layer]:
        """Layers in a topological order; ties keep the order the frontend added them.

        Raises :class:`GraphCycleError` when the graph has a cycle.
        """
        order = self.meta.get("_topo")
        if order is None or len(order) != len(self._by_name):
            order = self._insertion_order_if_topological()
            if order is None:
                import networkx as nx
                index = {n: i for i, n in enumerate(self._by_name)}
                try:
                    order = list(nx.lexicographical_topological_sort(self.g, key=index.__getitem__))
                except nx.NetworkXUnfeasible:
                    raise GraphCycleError("the graph has a cycle") from None
            self.meta["_topo"] = order
            self.meta["_topo_layers"] = None
        cached = self.meta.get("_topo_layers")
        if cached is None:
            by_name = self._by_name
            cached = self.meta["_topo_layers"] = [by_name[n] for n in order]
        return list(cached)

    def _insertion_order_if_topological(self) -> list[str] | None:
        """The frontend's order when every edge points forward in it (ONNX requires its nodes
        sorted, and fx graphs are): the same result as the lexicographic sort, in O(E)."""
        if len(self._pred) != len(self._by_name):
            self.connect()  # layers were added since the last connect
        return list(self._by_name) if self._forward else None

    def shape(self, tensor: str) -> Shape | None:
        info = self.tensors.get(tensor)
        return None if info is None else info.shape
