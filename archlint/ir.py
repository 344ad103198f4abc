"""The graph IR shared by every frontend and analysis.

A model is a :class:`ModelGraph`: a networkx ``DiGraph`` whose nodes are layers
(ops) and whose edges are the tensors passed between them. Frontends (ONNX, torch)
only translate into this form; analyses only read it. The op vocabulary
(``Layer.kind``) is defined by :mod:`archlint.ops.registry`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

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


class ModelGraph:
    """A model as a DAG of :class:`Layer` nodes with tensor metadata.

    ``tensors`` holds every tensor (activations, weights, constants);
    ``params`` names the tensors that are trainable parameters, so that a tensor
    shared by several layers is one entry and counts once.
    """

    def __init__(self) -> None:
        self.g = nx.DiGraph()
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
        layer.name = self.unique_name(layer.name)
        self._by_name[layer.name] = layer
        producer = self.producer
        for t in layer.outputs:
            producer[t] = layer.name
        return layer

    def connect(self) -> None:
        """Add the layers to the graph, in the order they were added, with one edge per
        (producer, consumer) pair carrying the tensor names."""
        g = self.g
        g.add_nodes_from((name, {"layer": layer}) for name, layer in self._by_name.items() if name not in g)
        producer = self.producer
        edges: dict[tuple[str, str], list[str]] = {}
        for name, layer in self._by_name.items():
            for t in layer.inputs:
                src = producer.get(t)
                if src is not None and src != name:
                    tensors = edges.get((src, name))
                    if tensors is None:
                        edges[(src, name)] = [t]
                    else:
                        tensors.append(t)
        g.clear_edges()
        g.add_edges_from((src, dst, {"tensors": tensors}) for (src, dst), tensors in edges.items())

    def layer(self, name: str) -> Layer:
        return self._by_name[name]

    def layers(self) -> list[Layer]:
        """Layers in a topological order; ties keep the order the frontend added them.

        Raises ``networkx.NetworkXUnfeasible`` when the graph has a cycle.
        """
        order = self.meta.get("_topo")
        if order is None or len(order) != len(self.g):
            order = self._insertion_order_if_topological()
            if order is None:
                index = {n: i for i, n in enumerate(self.g.nodes)}
                order = list(nx.lexicographical_topological_sort(self.g, key=index.__getitem__))
            self.meta["_topo"] = order
            self.meta["_topo_layers"] = None
        cached = self.meta.get("_topo_layers")
        if cached is None:
            nodes = self.g.nodes
            cached = self.meta["_topo_layers"] = [nodes[n]["layer"] for n in order]
        return list(cached)

    def _insertion_order_if_topological(self) -> list[str] | None:
        """The frontend's order when every edge points forward in it (ONNX requires its nodes
        sorted, and fx graphs are): the same result as the lexicographic sort, in O(E)."""
        order = list(self.g.nodes)
        index = {n: i for i, n in enumerate(order)}
        for src, dst in self.g.edges():
            if index[src] >= index[dst]:
                return None
        return order

    def shape(self, tensor: str) -> Shape | None:
        info = self.tensors.get(tensor)
        return None if info is None else info.shape
