"""The layer graph of a model (networkx DiGraph) and its critical path: what
bounds the latency of one inference when every layer waits for its inputs
and independent branches (a ResNet block's shortcut beside its convolutions)
run in parallel.

The graph comes from torch.fx (`symbolic_trace`): one node per traced
operation, edges along the data; a module that does not trace (data-dependent
control flow) falls back to its module structure, the analog layers in
forward order as one chain. Nodes carry `layer`, the qualified module name
of an analog layer (what cosim labels its matrices with), or None.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import networkx as nx
    from torch import nn

#: Suffixes that label a layer's matrices: Conv2d groups, GRU input and hidden matrices.
_MATRIX_SUFFIX = re.compile(r"\.(g\d+|ih_l\d+|hh_l\d+)$")


def layer_of(label: str) -> str:
    """The layer a matrix label belongs to ('conv.g1' -> 'conv', 'gru.hh_l0' -> 'gru')."""
    return _MATRIX_SUFFIX.sub("", label)


def _analog(module: "nn.Module") -> bool:
    from torch import nn

    return isinstance(module, (nn.Linear, nn.Conv2d, nn.GRU))


def _chain(model: "nn.Module") -> "nx.DiGraph":
    """The module-structure graph: input -> each analog layer in forward order -> output."""
    import networkx as nx

    graph = nx.DiGraph()
    names = [name or type(m).__name__.lower() for name, m in model.named_modules() if _analog(m)]
    previous = "input"
    graph.add_node(previous, layer=None)
    for name in names:
        graph.add_node(name, layer=name)
        graph.add_edge(previous, name)
        previous = name
    graph.add_node("output", layer=None)
    graph.add_edge(previous, "output")
    return graph


def layer_graph(model: "nn.Module") -> "nx.DiGraph":
    """The model's data-flow graph (torch.fx), or its module chain when it does not trace."""
    import networkx as nx

    if _analog(model) or not list(model.children()):
        return _chain(model)
    try:
        from torch import fx

        traced = fx.symbolic_trace(model)
    except Exception:  # any tracing failure: the module chain is still a valid (serial) bound
        return _chain(model)
    modules = dict(traced.named_modules())
    graph = nx.DiGraph()
    for node in traced.graph.nodes:
        layer = None
        if node.op == "call_module" and _analog(modules.get(str(node.target), None) or _Missing):
            layer = str(node.target)
        graph.add_node(node.name, layer=layer)
        for parent in node.all_input_nodes:
            graph.add_edge(parent.name, node.name)
    return graph


class _Missing:
    """Stands for a module fx did not keep (never analog)."""


def critical_path(graph: "nx.DiGraph", latency: Mapping[str, float]) -> tuple[float, list[str]]:
    """Longest path through the layer graph, each node weighted by its layer's
    latency (s; `latency[layer]`, 0 for nodes without a layer or not listed).
    Returns (total latency s, the analog layers on that path in order)."""
    import networkx as nx

    def weight(node: str) -> float:
        layer = graph.nodes[node].get("layer")
        return float(latency.get(layer, 0.0)) if layer is not None else 0.0

    best: dict[str, tuple[float, str | None]] = {}
    for node in nx.topological_sort(graph):
        preds = [(best[p][0], p) for p in graph.predecessors(node)]
        top = max(preds) if preds else (0.0, None)
        best[node] = (top[0] + weight(node), top[1])
    if not best:
        return 0.0, []
    end = max(best, key=lambda n: best[n][0])
    total, path, node = best[end][0], [], end
    while node is not None:
        layer = graph.nodes[node].get("layer")
        if layer is not None:
            path.append(layer)
        node = best[node][1]
    return total, path[::-1]
