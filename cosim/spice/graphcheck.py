"""The circuit check before every SPICE run, on a networkx graph of the circuit:
every node has a DC path to ground, and no loop is made only of voltage sources.

Either would end in ngspice's "singular matrix" (or VACASK's) much later and
without a name; here a failure names the tile and the node in one line.

- `check_circuit(circuit)`: the dialect-neutral `TileCircuit` of
  `cosim.spice.circuit`; `check_tile(spec, voltages, mode, tran)` builds it
  first. `cosim.engines.solve_spice` calls it before writing any netlist
  (ngspice, ngspice-shared, VACASK): `CircuitCheckError`, a SpiceError.
- `check_netlist_path(path)`: a netlist directory written by `cosim netlist`
  and edited by hand (or one .cir file), read by `cosim.spice.netparse`;
  returns (one-line summary, problems); `cosim netlist --check DIR`.

The graph: one node per circuit node, ground is `0`. Resistors, devices and
sources are edges of the DC graph (capacitors and current sources are open;
the rules per element are in `cosim.spice.netparse`); ideal voltage sources
(V, L as a short, E and H outputs, B with V=) are also edges of the source
graph, where a cycle is a loop of voltage sources. A subcircuit instance
adds the edges between its pins that its definition joins (`summary`,
computed once per definition from circuits/ and models/, the very files the
netlists include), so a 128x128 tile's graph has one edge per cell, not
the subcircuit's internals: `bench/graphcheck.py` times it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import networkx as nx

from cosim.core.errors import SpiceError
from cosim.spice import netparse
from cosim.spice.netparse import GROUND, Deck, Element, Subckt

if TYPE_CHECKING:
    import numpy as np

    from cosim.core.config import TranSpec
    from cosim.core.tile import TileSpec
    from cosim.spice.circuit import TileCircuit

Pairs = tuple[tuple[int, int], ...]
#: Library files whose subcircuits the tile circuit instantiates (cosim.spice.circuit's blocks).
BLOCK_FILES = (("circuits", "dac.cir"), ("circuits", "tia.cir"), ("circuits", "adc.cir"),
               ("circuits", "cell_1t1r.cir"), ("models", "vteam.lib"))


class CircuitCheckError(SpiceError):
    """The circuit has a node without a DC path to ground, or a loop of voltage sources."""


@dataclass(frozen=True)
class Summary:
    """What a subcircuit joins between its pins (pin indices, -1 = ground), and its own problems."""

    conduct: Pairs
    source: Pairs
    problems: tuple[str, ...]


class Graph:
    """The DC graph and the voltage-source graph of one circuit (or one subcircuit body)."""

    def __init__(self) -> None:
        self.dc = nx.Graph()
        self.sources: list[tuple[str, str, str]] = []  # (node, node, element name)

    def add(self, name: str, nodes: tuple[str, ...], conduct: Pairs, source: Pairs) -> None:
        """One element on `nodes`, joining the pin pairs given (-1 = ground)."""
        self.dc.add_nodes_from(nodes)
        pin = lambda k: GROUND if k < 0 else nodes[k]  # noqa: E731
        self.dc.add_edges_from((pin(a), pin(b)) for a, b in conduct)
        self.sources.extend((pin(a), pin(b), name) for a, b in source)

    def floating(self) -> list[set[str]]:
        """The groups of nodes with no DC path to ground (largest first)."""
        if GROUND not in self.dc:
            return [set(self.dc.nodes)] if self.dc.number_of_nodes() else []
        grounded = nx.node_connected_component(self.dc, GROUND)
        if len(grounded) == self.dc.number_of_nodes():
            return []
        rest = self.dc.subgraph(n for n in self.dc.nodes if n not in grounded)
        return sorted(nx.connected_components(rest), key=lambda c: (-len(c), min(c)))

    def source_loops(self) -> list[list[str]]:
        """Each loop made only of voltage sources, as the element names around it."""
        parent: dict[str, str] = {}

        def find(x: str) -> str:
            parent.setdefault(x, x)
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        forest = nx.Graph()
        loops = []
        for a, b, name in self.sources:
            ra, rb = find(a), find(b)
            if ra == rb:
                path = nx.shortest_path(forest, a, b) if a != b else [a]
                loops.append([forest.edges[u, v]["name"] for u, v in zip(path, path[1:])] + [name])
                continue
            parent[ra] = rb
            forest.add_edge(a, b, name=name)
        return loops

    def source_groups(self) -> list[set[str]]:
        """Groups of nodes joined by voltage sources alone."""
        forest = nx.Graph()
        forest.add_edges_from((a, b) for a, b, _ in self.sources)
        return list(nx.connected_components(forest))


def _nodes_text(group: set[str], limit: int = 3) -> str:
    names = sorted(group, key=_natural)
    shown = ", ".join(names[:limit])
    return f"node {shown}" if len(names) == 1 else f"nodes {shown}" + (
        f" and {len(names) - limit} more" if len(names) > limit else "")


def _natural(name: str) -> tuple:
    import re

    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


def _chain(members: list[int]) -> list[tuple[int, int]]:
    return list(zip(members, members[1:]))


def summary(name: str, library: dict[str, Subckt], cache: dict[str, Summary],
            stack: tuple[str, ...] = ()) -> Summary:
    """What subcircuit `name` of `library` joins between its pins (memoised in `cache`)."""
    if name in cache:
        return cache[name]
    sub = library[name]
    graph = Graph()
    problems: list[str] = []
    graph.dc.add_nodes_from(sub.pins)
    for element in sub.elements:
        problem = _add_element(graph, element, library, cache, stack + (name,))
        if problem:
            problems.append(problem)
    index = {pin: k for k, pin in enumerate(sub.pins)}
    conduct: list[tuple[int, int]] = []
    for group in nx.connected_components(graph.dc):
        members = sorted({index[n] for n in group if n in index}) + ([-1] if GROUND in group else [])
        if not members:
            problems.append(f"{sub.where}: subcircuit {sub.name}: {_nodes_text(group)} have no DC path "
                            "to a pin or to ground")
        conduct += _chain(members)
    for loop in graph.source_loops():
        problems.append(f"{sub.where}: subcircuit {sub.name}: voltage sources {', '.join(loop)} form a loop")
    source: list[tuple[int, int]] = []
    for group in graph.source_groups():
        source += _chain(sorted({index[n] for n in group if n in index}) + ([-1] if GROUND in group else []))
    cache[name] = Summary(tuple(conduct), tuple(source), tuple(problems))
    return cache[name]


def _add_element(graph: Graph, element: Element, library: dict[str, Subckt], cache: dict[str, Summary],
                 stack: tuple[str, ...] = ()) -> str | None:
    """Add one element (X: through its subcircuit's summary); a problem text or None."""
    if element.block is None:
        graph.add(element.name, element.nodes, element.conduct, element.source)
        return None
    sub = library.get(element.block)
    if sub is None:
        graph.dc.add_nodes_from(element.nodes)
        return f"{element.where}: {element.name}: unknown subcircuit {element.block}"
    if element.block in stack:
        return f"{element.where}: {element.name}: subcircuit {element.block} instantiates itself"
    if len(element.nodes) != len(sub.pins):
        graph.dc.add_nodes_from(element.nodes)
        return (f"{element.where}: {element.name} has {len(element.nodes)} nodes, subcircuit {sub.name} "
                f"has {len(sub.pins)} pins")
    block = summary(element.block, library, cache, stack)
    graph.add(element.name, element.nodes, block.conduct, block.source)
    return None


# ----- the tile circuit of cosim.spice.circuit ------------------------------------------
@functools.lru_cache(maxsize=1)
def block_library() -> tuple[dict[str, Subckt], dict[str, Summary]]:
    """The subcircuits of circuits/ and models/ (read once), plus `memristor`
    (the VTEAM wrapper each writer defines in the netlist itself), with their summaries."""
    from cosim.core.resources import resource_path

    deck = Deck(Path("blocks"))
    for folder, name in BLOCK_FILES:
        netparse.parse(resource_path(folder, name), deck, title=False)
    if deck.problems:  # shipped files: a cosim bug
        raise SpiceError(f"cosim's circuit files do not parse: {deck.problems[0]}")
    deck.subckts["memristor"] = Subckt("memristor", ("p", "n", "x"), [Element("Xvteam", ("p", "n", "x"), block="vteam")],
                                       where="memristor wrapper")
    cache: dict[str, Summary] = {}
    for name in deck.subckts:
        summary(name, deck.subckts, cache)
    return deck.subckts, cache


def circuit_problems(circuit: TileCircuit, limit: int = 5) -> list[str]:
    """Problems of the neutral tile circuit (empty when it is sound), at most `limit`."""
    from cosim.spice.circuit import Comment, Instances, Resistors, Source

    library, cache = block_library()
    graph = Graph()
    problems: list[str] = []
    for part in circuit.parts:
        if isinstance(part, Comment):
            continue
        if isinstance(part, Source):
            graph.add(part.name, (part.p, part.n), ((0, 1),), ((0, 1),))
        elif isinstance(part, Resistors):
            graph.dc.add_edges_from(zip(part.p, part.n))
        elif isinstance(part, Instances):
            block = cache.get(part.block)
            if block is None:
                problems.append(f"{part.names[0]}: unknown block {part.block}")
                continue
            problems += list(block.problems)
            pins = len(library[part.block].pins)
            wrong = next((k for k, nodes in enumerate(part.nodes) if len(nodes) != pins), None)
            if wrong is not None:
                problems.append(f"{part.names[wrong]} has {len(part.nodes[wrong])} nodes, block {part.block} "
                                f"has {pins} pins")
                continue
            columns = list(zip(*part.nodes)) + [(GROUND,) * len(part.names)]  # index -1: ground
            joined = {k for pair in block.conduct for k in pair}
            graph.dc.add_nodes_from(n for k, column in enumerate(columns[:-1]) if k not in joined for n in column)
            for a, b in block.conduct:
                graph.dc.add_edges_from(zip(columns[a], columns[b]))
            for a, b in block.source:
                graph.sources.extend(zip(columns[a], columns[b], part.names))
    problems += [f"{_nodes_text(g)} ha{'s' if len(g) == 1 else 've'} no DC path to ground "
                 f"(first on {_first_use(circuit, g)})" for g in graph.floating()]
    problems += [f"voltage sources {', '.join(loop)} form a loop" for loop in graph.source_loops()]
    return problems[:limit]


def _first_use(circuit: TileCircuit, group: set[str]) -> str:
    """The first element of `circuit` on a node of `group`."""
    from cosim.spice.circuit import Instances, Resistors, Source

    for part in circuit.parts:
        if isinstance(part, Source) and (part.p in group or part.n in group):
            return part.name
        if isinstance(part, Resistors):
            for name, p, n, _ in part:
                if p in group or n in group:
                    return name
        if isinstance(part, Instances):
            for name, nodes in zip(part.names, part.nodes):
                if group.intersection(nodes):
                    return name
    return "no element"


def check_circuit(circuit: TileCircuit) -> None:
    """CircuitCheckError (one line naming the tile and the node) unless `circuit` is sound."""
    problems = circuit_problems(circuit, limit=2)
    if problems:
        more = " (and more)" if len(problems) > 1 else ""
        raise CircuitCheckError(f"tile {circuit.spec.netlist_name}: {problems[0]}{more}; the circuit would not "
                                "solve (singular matrix), so no SPICE run was started")


def check_tile(spec: TileSpec, voltages: np.ndarray, mode: str = "op", tran: TranSpec | None = None) -> None:
    """`check_circuit` of the circuit `cosim.spice.circuit.tile_circuit` builds for these arguments."""
    from cosim.spice.circuit import tile_circuit

    check_circuit(tile_circuit(spec, voltages, mode, tran))


# ----- netlists on disk (cosim netlist --check) --------------------------------------
def deck_problems(deck: Deck, limit: int = netparse.MAX_PROBLEMS) -> list[str]:
    """Problems of a parsed netlist: reading problems, then the graph's."""
    problems = list(deck.problems)
    graph = Graph()
    cache: dict[str, Summary] = {}
    used: set[str] = set()
    first: dict[str, tuple[str, str]] = {}
    for element in deck.elements:
        for n in element.nodes:
            first.setdefault(n, (element.where, element.name))
        problem = _add_element(graph, element, deck.subckts, cache)
        if problem:
            problems.append(problem)
        elif element.block:
            used.add(element.block)
    for name in sorted(used):
        problems += [p for p in cache[name].problems if p not in problems]
    for group in graph.floating():
        where, name = min((first[n] for n in group if n in first), default=(deck.path.name, "no element"),
                          key=lambda w: _natural(w[0]))
        problems.append(f"{where}: {_nodes_text(group)} ha{'s' if len(group) == 1 else 've'} no DC "
                        f"path to ground (first on {name})")
    for loop in graph.source_loops():
        problems.append(f"{deck.path.name}: voltage sources {', '.join(loop)} form a loop")
    return problems[:limit]


def netlist_files(path: Path) -> list[Path]:
    """The netlists to check: `path` itself (a file), or each .cir file of directory
    `path` that ends in `.end` (include files hold only subcircuits)."""
    path = Path(path)
    if path.is_file():
        return [path]
    found = []
    for candidate in sorted(path.glob("*.cir")):
        if netparse.why_not(candidate) is None:
            lines = candidate.read_bytes().decode("utf-8").splitlines()
            if any(line.strip().lower() == ".end" for line in lines):
                found.append(candidate)
        else:
            found.append(candidate)  # parse() reports why it cannot be read
    return found


def check_netlist_path(path: Path) -> tuple[str, list[str]]:
    """(one-line summary, problems) of every netlist under `path` (a directory or a .cir file)."""
    path = Path(path)
    if not path.exists():
        return f"{path} does not exist", [f"{path} does not exist; give a directory written by cosim netlist"]
    files = netlist_files(path)
    if not files:
        return "", [f"{path} holds no netlist (a .cir file ending in .end); give a directory written by cosim netlist"]
    problems: list[str] = []
    counts = []
    for file in files:
        deck = netparse.parse(file)
        problems += deck_problems(deck)
        nodes = {n for e in deck.elements for n in e.nodes}
        counts.append(f"{file.name}: {len(deck.elements)} elements, {len(nodes)} nodes")
    return "; ".join(counts), problems
