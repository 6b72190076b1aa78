"""The tile's nodal network as a sparse graph: assembly, sparse-LU transfer
matrices and node voltages (any r_wire, r_driver; the cross-check of the
structured solver).
"""

from __future__ import annotations

from dataclasses import dataclass

from typing import TYPE_CHECKING

import numpy as np

from cosim.core.tile import TileSpec
from cosim.fast.tia import tia_termination

if TYPE_CHECKING:  # scipy.sparse is imported where it is used: it costs ~0.1 s of start-up
    import scipy.sparse as sp


@dataclass(frozen=True)
class NodalGraph:
    """The tile's nodes after merging the ends of 0-ohm wires, and its edges.

    Node classes are numbered unknowns first (0..n_unknown-1), then the
    known ones: ground, the R sources (DAC outputs), the C TIA inputs (0 V).

    Attributes:
        n_unknown: number of unknown node voltages.
        laplacian: (N, N) sparse conductance (Laplacian) matrix of the linear
            edges over all node classes (S).
        source: (R,) class of each row's DAC output.
        tia: (C,) class of each column's TIA input.
        ground: class of ground.
        mid: (R, C) class of each cell's memristor-NMOS node (nmos only, else None).
        col: (R, C) class of each cell's column node.
        row: (R, C) class of each cell's row node.
    """

    n_unknown: int
    laplacian: sp.csr_matrix
    source: np.ndarray
    tia: np.ndarray
    ground: int
    mid: np.ndarray | None
    col: np.ndarray
    row: np.ndarray


def nodal_graph(spec: TileSpec, g_cell: np.ndarray, with_nmos: bool, gmin: float = 0.0) -> NodalGraph:
    """Assemble the nodes and linear edges of `spec`'s tile.

    Args:
        spec: the tile (geometry, r_wire, r_driver).
        g_cell: (R, C) conductance from each row node to the next node of its
            cell: the column node, or the NMOS drain when `with_nmos` (S).
        with_nmos: add one node per cell between memristor and NMOS (the
            NMOS itself is not an edge: see `newton_currents`).
        gmin: conductance from each NMOS drain and source to ground (S).
    """
    rows, cols = g_cell.shape
    n_cell = rows * cols
    ground, src0, tia0 = 0, 1, 1 + rows
    row0 = tia0 + cols
    col0 = row0 + n_cell
    mid0 = col0 + n_cell
    total = mid0 + (n_cell if with_nmos else 0)
    label = np.arange(total)
    rr, cc = np.divmod(np.arange(n_cell), cols)
    wires = spec.r_wire > 0
    r_in = tia_termination(spec)
    if not wires:
        label[row0 + np.arange(n_cell)] = row0 + rr * cols  # a row is one node
        # a column is one node: its TIA input itself, or in front of the TIA's input resistance
        label[col0 + np.arange(n_cell)] = (col0 + cc) if r_in > 0 else (tia0 + cc)
    if spec.r_driver == 0:  # the DAC drives each row's first node: it is the source
        remap = np.arange(total)
        remap[label[row0 + np.arange(rows) * cols]] = src0 + np.arange(rows)
        label = remap[label]
    edges_a, edges_b, edges_g = [], [], []

    def add(a: np.ndarray, b: np.ndarray, value: np.ndarray | float) -> None:
        """Add conductances `value` (S) between the node labels a[k] and b[k]."""
        a, b = np.asarray(a), np.asarray(b)
        edges_a.append(a)
        edges_b.append(b)
        edges_g.append(np.broadcast_to(np.asarray(value, dtype=float), a.shape))

    row_node = row0 + np.arange(n_cell).reshape(rows, cols)
    col_node = col0 + np.arange(n_cell).reshape(rows, cols)
    mid_node = mid0 + np.arange(n_cell).reshape(rows, cols) if with_nmos else None
    if spec.r_driver > 0:
        add(src0 + np.arange(rows), row_node[:, 0], 1.0 / spec.r_driver)
    if wires:
        gw = 1.0 / spec.r_wire
        add(row_node[:, :-1].ravel(), row_node[:, 1:].ravel(), gw)
        add(col_node[:-1, :].ravel(), col_node[1:, :].ravel(), gw)
        add(col_node[-1, :], tia0 + np.arange(cols), 1.0 / (spec.r_wire + r_in))
    elif r_in > 0:
        add(col_node[0, :], tia0 + np.arange(cols), 1.0 / r_in)
    add(row_node.ravel(), (mid_node if with_nmos else col_node).ravel(), g_cell.ravel())
    if with_nmos and gmin > 0:
        add(mid_node.ravel(), np.full(n_cell, ground), gmin)
        add(col_node.ravel(), np.full(n_cell, ground), gmin)
    a = label[np.concatenate(edges_a)]
    b = label[np.concatenate(edges_b)]
    gv = np.concatenate(edges_g)
    keep = a != b
    a, b, gv = a[keep], b[keep], gv[keep]
    # Renumber: unknown classes first, then ground, sources, TIA inputs.
    known = np.arange(row0)
    classes = np.unique(label)
    unknown = classes[classes >= row0]
    order = np.concatenate([unknown, known])
    new = np.empty(total, dtype=np.int64)
    new[order] = np.arange(order.size)
    a, b = new[a], new[b]
    n = order.size
    import scipy.sparse as sp

    lap = sp.coo_matrix((np.concatenate([gv, gv, -gv, -gv]),
                         (np.concatenate([a, b, a, b]), np.concatenate([a, b, b, a]))), shape=(n, n)).tocsr()
    offset = unknown.size
    return NodalGraph(
        n_unknown=int(unknown.size), laplacian=lap,
        source=offset + src0 + np.arange(rows), tia=offset + tia0 + np.arange(cols), ground=offset + ground,
        mid=new[label[mid_node]] if with_nmos else None, col=new[label[col_node]], row=new[label[row_node]])


def transfer_splu(spec: TileSpec, g_cell: np.ndarray) -> np.ndarray:
    """T (R, C) (S) from a sparse LU of the nodal matrix (any r_wire, r_driver).

    With L the Laplacian, u the unknown nodes, s the sources and t the TIA
    inputs: T = -(L_st - L_su L_uu^{-1} L_ut), one solve per column (adjoint).
    """
    import scipy.sparse.linalg as spla

    graph = nodal_graph(spec, g_cell, with_nmos=False)
    lap = graph.laplacian.tocsc()
    n = graph.n_unknown
    l_st = lap[graph.source][:, graph.tia].toarray()
    if n == 0:
        return -l_st
    l_uu = lap[:n, :n].tocsc()
    l_ut = lap[:n][:, graph.tia].toarray()
    l_su = lap[graph.source][:, :n]
    y = spla.splu(l_uu, permc_spec="MMD_AT_PLUS_A", options={"SymmetricMode": True}).solve(l_ut)
    return -(l_st - l_su @ y)


def graph_node_voltages(spec: TileSpec, g_cell: np.ndarray, v_dac: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray, NodalGraph]:
    """Row and column node voltages (B, R, C) (V) of the linear network with
    whole-cell conductances g_cell (R, C) (S), by sparse LU (any r_wire,
    r_driver); also returns the graph."""
    import scipy.sparse.linalg as spla

    graph = nodal_graph(spec, g_cell, with_nmos=False)
    lap = graph.laplacian.tocsc()
    nu = graph.n_unknown
    known = np.zeros((lap.shape[0] - nu, v_dac.shape[0]))
    known[graph.source - nu] = v_dac.T
    x = np.zeros((lap.shape[0], v_dac.shape[0]))
    x[nu:] = known
    if nu:
        x[:nu] = spla.splu(lap[:nu, :nu].tocsc(), permc_spec="MMD_AT_PLUS_A").solve(-(lap[:nu, nu:] @ known))
    return np.moveaxis(x[graph.row], -1, 0), np.moveaxis(x[graph.col], -1, 0), graph
