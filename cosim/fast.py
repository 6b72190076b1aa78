"""Fast tile solver: exact wire IR drop as a per-tile transfer matrix.

The read path of a tile with frozen device states is linear in the row
voltages, so one factorisation gives its transfer matrix T (R x C, S) and
every batch after that is a matrix multiply: ``current = v_dac @ T`` (A).
The circuit is the one of `cosim.netlist.tile_netlist` (DESIGN.md, "Circuit
conventions"); with ``r_wire = 0`` the wire nodes of a row (a column) merge
into one node, with ``r_driver = 0`` the DAC drives the row's first node.

Three ways to solve a tile (``nonlinear=``):

- 'linear': the transfer matrix. Exact for ``access='none'``. With the
  access NMOS each cell becomes its memristor in series with an effective
  access resistance: with a calibration file (`cosim.calibrate`), one fitted
  for positive and one for negative reads, applied as
  ``max(v, 0) @ T_pos + min(v, 0) @ T_neg`` (two matrix multiplies);
  without one, the triode small-signal resistance of the model card.
- 'newton': the exact DC operating point with the level-1 access NMOS of
  models/nmos_access.lib (`cosim.peripherals.nmos_level1_current`), gmin
  included as ngspice has it. With wires and method 'structured', a whole
  chunk of input vectors at once by the chord method: Newton with the
  Jacobian frozen at the small-signal network, factored once per tile, and
  the exact residual of every cell evaluated at once (~10 steps to 1e-13 V).
  With method 'splu' (or r_wire = 0), a full Newton per input vector, the
  Jacobian of all cells re-factored by sparse LU at every step. Both match
  ngspice `.op` to ~1e-11.
- 'auto': 'linear' when the tile is linear (no access NMOS) or a calibration
  is given, 'newton' otherwise.

Two transfer-matrix solvers (``method=``), equal to ~1e-14:

- 'structured' (default): unknowns ordered row by row, each row's
  tridiagonal wire chain eliminated in closed form (its inverse is
  semiseparable), leaving C x C dense blocks coupled only through the column
  wires; a block Cholesky sweep down the rows carries all R inputs along, and
  the last block gives the TIA currents. O(R C^3) flops, O(C^2 + R C) memory.
- 'splu': the nodal matrix assembled and factored with scipy's sparse LU,
  solved for the C outputs (adjoint); the cross-check and fallback.

and one without a transfer matrix, for few input vectors, node-voltage
maps and very large tiles: 'iterative' (`cosim.iterative`: row chains
eliminated by banded solves, conjugate gradients on the column nodes
preconditioned by the column chains; O(R C) per step and vector). It also
serves as the chord-Newton Jacobian of 1T1R tiles. `solve_fast` picks it
for at most ITERATIVE_MAX_BATCH vectors (`choose_method`).

TIAs: each column ends in its TIA's DC input resistance
(`cosim.peripherals.tia_input_resistance`: 0 for the ideal TIA, about
rs/a0 for 'vcvs' and 'opamp'), in series with the column's last wire
segment, and vout = rs * current times the DC closed-loop factor of the
TIA (`tia_gain`).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from cosim import peripherals
from cosim.errors import CosimError, InputError
from cosim.iterative import ChainNetwork, chain_network
from cosim.netlist import dac_output
from cosim.resources import resource_path
from cosim.tile import TileSpec

if TYPE_CHECKING:
    from cosim.calibrate import Calibration
    from cosim.engines import TileResult

NONLINEAR_MODES = ("auto", "newton", "linear")
METHODS = ("auto", "structured", "splu", "iterative")
TRANSFER_METHODS = ("structured", "splu")
# solve_fast's method 'auto' solves batches of at most this many vectors
# iteratively (no transfer matrix): bench/fast_solver.py's crossover.
ITERATIVE_MAX_BATCH = 4
BACKENDS = ("numpy", "torch")

#: ngspice's default gmin (S): its MOSFET model puts it across each bulk
#: junction (drain-bulk, source-bulk; bulk at ground) besides the junction
#: diode itself, which the access card switches off with is = 0.
NGSPICE_GMIN = 1e-12

#: Bytes of input and output a batch chunk may hold (sets the default chunk).
CHUNK_BYTES = 64 * 2**20
#: Bytes of work arrays a Newton chunk may hold.
NEWTON_CHUNK_BYTES = 256 * 2**20

#: Newton stops when no node moves more than this (V) plus a relative part.
NEWTON_VTOL = 1e-13
NEWTON_MAX_ITER = 60

#: Largest attenuation exponent along a row chain for which the chain inverse
#: is built from two exponentials per node (beyond it, one per entry).
_LOG_SAFE = 600.0


# ------------------------------------------------------------ model card


def access_card(path: str | Path | None = None) -> dict[str, float]:
    """Parameters of the access NMOS card (models/nmos_access.lib by default)."""
    return peripherals.read_model_card(path or resource_path("models", "nmos_access.lib"))


# ------------------------------------------------- structured linear solver


@contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one thread inside the block. The block sweep is a chain
    of small (C x C) products: a second thread gains nothing there, and when
    other processes hold the cores OpenMP's waiting threads slow it 25-75x
    (0.13 s against 3-10 s for a 128x128 tile at load 6 here)."""
    import torch

    old = torch.get_num_threads()
    if old == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _chain_excess(h: np.ndarray, w: float) -> tuple[np.ndarray, np.ndarray]:
    """Forward and backward 'excess' pivots of tridiagonal chains.

    The chains are ``a_j = h_j + w * (#neighbours of j)`` on the diagonal and
    ``-w`` off it (one chain per row of h, shape (n, m)). phi_j is the forward
    pivot minus the link to the right, psi_j the backward pivot minus the
    link to the left; both are sums of positive terms (no cancellation).
    """
    n, m = h.shape
    phi = np.empty_like(h)
    psi = np.empty_like(h)
    phi[:, 0] = h[:, 0]
    for j in range(1, m):
        phi[:, j] = h[:, j] + w * phi[:, j - 1] / (phi[:, j - 1] + w)
    psi[:, m - 1] = h[:, m - 1]
    for j in range(m - 2, -1, -1):
        psi[:, j] = h[:, j] + w * psi[:, j + 1] / (psi[:, j + 1] + w)
    return phi, psi


def _chain_inverse(h: np.ndarray, w: float) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray,
                                                    np.ndarray | None]:
    """Inverses K of the tridiagonal chains of `_chain_excess` (h: (n, m)).

    K is semiseparable: ``K_jk = K_jj * prod_{l=j+1..k} w / (psi_l + w)``
    for k >= j, symmetric. With lam_k = -sum_{l<=k} log1p(psi_l / w) this is
    ``K_jk = left_j * right_k`` (j <= k), left = K_jj e^{-lam}, right = e^{lam}.

    Returns:
        left, right (n, m), or (None, None) when e^{-lam} would overflow
        (very long, strongly damped chains); side (n, m) = 1/K_jj - h_j,
        what the chain adds to node j's own conductance (S); and the dense
        K (n, m, m) only in the overflow case (from e^{-|lam_j - lam_k|},
        which underflows to 0 instead).
    """
    n, m = h.shape
    phi, psi = _chain_excess(h, w)
    side = np.zeros_like(h)
    if m > 1:
        side[:, 1:] += w * phi[:, :-1] / (phi[:, :-1] + w)
        side[:, :-1] += w * psi[:, 1:] / (psi[:, 1:] + w)
    k_diag = 1.0 / (h + side)
    log_step = np.zeros_like(h)
    if m > 1:
        log_step[:, 1:] = -np.log1p(psi[:, 1:] / w)
    lam = np.cumsum(log_step, axis=1)  # <= 0, decreasing along the chain
    if -lam[:, -1].min() < _LOG_SAFE:
        return k_diag * np.exp(-lam), np.exp(lam), side, None
    gap = np.abs(lam[:, :, None] - lam[:, None, :])
    first = np.minimum.outer(np.arange(m), np.arange(m))
    return None, None, side, k_diag[:, first] * np.exp(-gap)


def _row_blocks(g: np.ndarray, g_wire: float, g_driver: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Column-node blocks of rows after their row chains are eliminated.

    Args:
        g: (n, C) cell conductances of n rows (S).
        g_wire: wire segment conductance (S), finite.
        g_driver: driver conductance (S), or None when the DAC drives node
            (i, 0) directly (r_driver = 0: that node is pinned to v_i).

    Returns:
        D (n, C, C): each row's cell conductances seen from its column nodes,
        diag(g) - G K G (S; column wires not included); u (n, C): the current
        injected into each column node per volt of the row's input (S).
    """
    n, cols = g.shape
    first = 0 if g_driver is not None else 1  # first free row node
    free = g[:, first:]
    m = free.shape[1]
    d = np.zeros((n, cols, cols))
    u = np.zeros((n, cols))
    if m > 0:
        extra = np.zeros_like(free)
        extra[:, 0] = g_driver if g_driver is not None else g_wire
        left, right, side, k = _chain_inverse(free + extra, g_wire)
        block = d[:, first:, first:]
        if k is None:
            a, b = free * left, free * right  # (G K G)_jk = a_j b_k for j <= k
            upper = np.triu(np.ones((m, m), dtype=bool))
            outer = a[:, :, None] * b[:, None, :]  # valid for j <= k; its transpose below
            np.negative(np.where(upper, outer, outer.transpose(0, 2, 1)), out=block)
            k_diag, k_col0 = left * right, left[:, :1] * right
        else:
            np.negative(free[:, :, None] * k * free[:, None, :], out=block)
            k_diag, k_col0 = k[:, np.arange(m), np.arange(m)], k[:, :, 0]
        # Diagonal without cancellation: g - g^2 K_jj = g K_jj (1/K_jj - g).
        block[:, np.arange(m), np.arange(m)] = free * k_diag * (extra + side)
        u[:, first:] = extra[:, :1] * free * k_col0
    if first == 1:
        d[:, 0, 0] = g[:, 0]
        u[:, 0] = g[:, 0]
    return d, u


def _rows_per_chunk(cols: int) -> int:
    """Rows whose (C, C) blocks fit in about 32 MiB."""
    return max(1, (32 * 2**20) // (8 * 4 * cols * cols))


def _schur_inverses(g: np.ndarray, w: float, g_driver: float | None, device: str | None = None,
                    w_end: float | None = None) -> Iterator:
    """Walk down the rows of the column-node system: yield (i, S_i^{-1}, u_i).

    S_0 = D_0 + w I, S_i = D_i + 2w I - w^2 S_{i-1}^{-1} (D_i, u_i from
    `_row_blocks`, built a chunk of rows at a time); in the last row one
    of the two w is the link to the TIA, w_end (default w). The dense C x C work
    runs in torch (float64; MKL on CPU, which stays fast on two busy cores
    where OpenBLAS's threads stall), on `device` (default CPU).
    """
    import torch

    dev = torch.device(device or "cpu")
    rows, cols = g.shape
    end_excess = 0.0 if w_end is None else w_end - w
    step = _rows_per_chunk(cols)
    s_inv = None
    for start in range(0, rows, step):
        d_chunk, u_chunk = _row_blocks(g[start:start + step], w, g_driver)
        d_all = torch.from_numpy(d_chunk).to(dev)
        u_all = torch.from_numpy(u_chunk).to(dev)
        for k in range(d_all.shape[0]):
            s = d_all[k]
            if s_inv is None:
                s.diagonal().add_(w)
            else:
                s.sub_(s_inv, alpha=w * w)
                s.diagonal().add_(2.0 * w)
            if start + k == rows - 1 and end_excess:
                s.diagonal().add_(end_excess)
            factor, info = torch.linalg.cholesky_ex(s)
            if int(info) != 0:
                raise CosimError(f"tile matrix is not positive definite at row {start + k}; check for "
                                 "extreme conductances or use method='splu'")
            s_inv = torch.cholesky_inverse(factor)
            yield start + k, s_inv, u_all[k]


@single_thread()
def transfer_structured(g: np.ndarray, r_wire: float, r_driver: float, device: str | None = None,
                        r_tia_in: float = 0.0) -> np.ndarray:
    """Transfer matrix T (R, C) (S) of a tile with r_wire > 0: current = v @ T.

    Block-tridiagonal elimination down the rows (`_schur_inverses`), the
    right-hand sides of all R inputs riding along: Y_i = w S_{i-1}^{-1} Y_{i-1}
    plus row i's injection u_i in column i; the TIA currents are
    w_end S_{R-1}^{-1} Y_{R-1}, w_end = 1 / (r_wire + r_tia_in) (S). No back
    substitution: only the last row's column nodes feed the TIAs.
    O(R C^3 + R^2 C^2) flops, O(C^2 + R C) memory.
    """
    import torch

    rows, cols = g.shape
    w = 1.0 / r_wire
    w_end = 1.0 / (r_wire + r_tia_in)
    g_driver = None if r_driver == 0 else 1.0 / r_driver
    y = torch.zeros((cols, rows), dtype=torch.float64, device=torch.device(device or "cpu"))
    previous = None
    for i, s_inv, u in _schur_inverses(g, w, g_driver, device, w_end):
        if previous is not None:
            y[:, :i] = torch.mm(previous, y[:, :i]).mul_(w)
        y[:, i] = u
        previous = s_inv
    return (torch.mm(previous, y).mul_(w_end)).T.cpu().numpy()


def transfer_no_wires(g: np.ndarray, r_driver: float) -> np.ndarray:
    """T (R, C) (S) with r_wire = 0: every column is its TIA's virtual ground,
    so row i sits at v_i * g_d / (g_d + sum_j g_ij) behind its driver."""
    if r_driver == 0:
        return g.copy()
    g_d = 1.0 / r_driver
    return (g_d / (g_d + g.sum(axis=1)))[:, None] * g


# ------------------------------------- structured factor, any right-hand side


@dataclass(frozen=True)
class StructuredFactor:
    """The block factorisation of a tile's linear network (r_wire > 0), kept
    to solve it for any currents injected at its row and column nodes.

    Attributes:
        g: (R, C) cell conductances, row node to column node (S).
        w: wire segment conductance (S).
        g_driver: driver conductance (S), None when r_driver = 0 (each
            row's first node is then pinned to its input: no unknown).
        w_end: conductance from each column's last node to its TIA input (S).
        pivots: (R, m) forward pivots of each row chain's tridiagonal
            matrix, m = C free row nodes (C - 1 when pinned) (S).
        s_inv: (R, C, C) torch float64: inverses of the Schur blocks S_i of
            the column nodes (ohm).
    """

    g: np.ndarray
    w: float
    g_driver: float | None
    w_end: float
    pivots: np.ndarray
    s_inv: Any

    @property
    def first(self) -> int:
        """Index of each row's first unknown row node (1 when pinned)."""
        return 0 if self.g_driver is not None else 1

    def chain_solve(self, q: np.ndarray) -> np.ndarray:
        """z = L_i^{-1} q for every row chain at once; q (B, R, m) (A) -> (V)."""
        w, f = self.w, self.pivots
        m = f.shape[1]
        z = np.ascontiguousarray(np.moveaxis(q, -1, 0))  # (m, B, R)
        for j in range(1, m):
            z[j] += (w / f[:, j - 1]) * z[j - 1]
        z[m - 1] /= f[:, m - 1]
        for j in range(m - 2, -1, -1):
            z[j] = (z[j] + w * z[j + 1]) / f[:, j]
        return np.moveaxis(z, 0, -1)

    @single_thread()
    def solve(self, rx: np.ndarray, ry: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Node voltages (B, R, C) (V) for currents injected at the row nodes
        `rx` and column nodes `ry` (B, R, C) (A); pinned row nodes get 0 V
        and ignore their injection."""
        import torch

        first, g, w = self.first, self.g, self.w
        rows, cols = g.shape
        gf = g[:, first:]
        rho = ry.copy()
        if gf.shape[1]:
            rho[:, :, first:] += gf * self.chain_solve(rx[:, :, first:])
        r = torch.from_numpy(np.ascontiguousarray(np.moveaxis(rho, 0, -1)))  # (R, C, B)
        s_inv = self.s_inv
        for i in range(1, rows):
            r[i].add_(torch.mm(s_inv[i - 1], r[i - 1]), alpha=w)
        y = torch.empty_like(r)
        y[rows - 1] = torch.mm(s_inv[rows - 1], r[rows - 1])
        for i in range(rows - 2, -1, -1):
            y[i] = torch.mm(s_inv[i], r[i].add_(y[i + 1], alpha=w))
        dy = np.moveaxis(y.numpy(), -1, 0)
        dx = np.zeros_like(rx)
        if gf.shape[1]:
            dx[:, :, first:] = self.chain_solve(rx[:, :, first:] + gf * dy[:, :, first:])
        return dx, np.ascontiguousarray(dy)


@single_thread()
def factor_structured(g: np.ndarray, r_wire: float, r_driver: float, r_tia_in: float = 0.0) -> StructuredFactor:
    """Factor the linear network of cell conductances g (R, C) (S) for
    `StructuredFactor.solve` (r_wire > 0; TIA input resistance r_tia_in, ohm).
    Keeps R C x C blocks (8 R C^2 bytes)."""
    import torch

    rows, cols = g.shape
    w = 1.0 / r_wire
    w_end = 1.0 / (r_wire + r_tia_in)
    g_driver = None if r_driver == 0 else 1.0 / r_driver
    first = 0 if g_driver is not None else 1
    free = g[:, first:]
    pivots = np.zeros_like(free)
    if free.shape[1]:
        extra = np.zeros_like(free)
        extra[:, 0] = g_driver if g_driver is not None else w
        phi, _ = _chain_excess(free + extra, w)
        pivots = phi.copy()
        pivots[:, :-1] += w
    s_inv = torch.empty((rows, cols, cols), dtype=torch.float64)
    for i, block, _ in _schur_inverses(g, w, g_driver, w_end=w_end):
        s_inv[i] = block
    return StructuredFactor(g=g, w=w, g_driver=g_driver, w_end=w_end, pivots=pivots, s_inv=s_inv)


# ------------------------------------------------- nodal graph (sparse path)


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
    r_in = tia_input_resistance(spec)
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


def transfer_matrix(spec: TileSpec, g_cell: np.ndarray | None = None, method: str = "structured") -> np.ndarray:
    """Transfer matrix T (R, C) (S) of the tile's linear read network:
    current = v_dac @ T (A for V).

    Args:
        spec: the tile (r_wire, r_driver and, by default, its conductances).
        g_cell: (R, C) conductance of each whole cell, row node to column
            node (S); default spec.conductance (access 'none').
        method: 'structured' (block sweep) or 'splu' (sparse LU).
    """
    g = spec.conductance if g_cell is None else np.asarray(g_cell, dtype=float)
    if method not in TRANSFER_METHODS:
        raise InputError(f"method must be one of {', '.join(TRANSFER_METHODS)}, got {method!r}")
    r_in = tia_input_resistance(spec)
    if method == "splu" or (spec.r_wire == 0 and r_in > 0):
        return transfer_splu(spec, g)
    if spec.r_wire == 0:
        return transfer_no_wires(g, spec.r_driver)
    return transfer_structured(g, spec.r_wire, spec.r_driver, r_tia_in=r_in)


# ------------------------------------------------------------- access NMOS


def _check_calibration(spec: TileSpec, calibration: "Calibration") -> None:
    n = spec.nmos
    got = (calibration.width, calibration.length, calibration.v_wordline)
    if not np.allclose(got, (n.width, n.length, n.v_wordline), rtol=1e-12, atol=0):
        raise InputError(f"calibration is for W={got[0]:g} m, L={got[1]:g} m, V_wl={got[2]:g} V but the "
                         f"tile has W={n.width:g} m, L={n.length:g} m, V_wl={n.v_wordline:g} V; "
                         "run `cosim calibrate` for this transistor")


def cell_conductance(spec: TileSpec, calibration: "Calibration | None" = None,
                     card: dict[str, float] | None = None, polarity: str = "both") -> np.ndarray:
    """Conductance of each whole cell for the linear solver (R, C) (S).

    access 'none': the device itself. access 'nmos': the device in series
    with the calibrated effective access resistance for reads of the given
    polarity ('both', 'pos', 'neg'), or, without a calibration, the triode
    small-signal resistance of the model card.
    """
    g = spec.conductance
    if spec.access == "none":
        return g.copy()
    r_device = 1.0 / g
    if calibration is not None:
        _check_calibration(spec, calibration)
        r_access = calibration.access_resistance(r_device, polarity)
    else:
        n = spec.nmos
        r_access = peripherals.access_resistance(n.width, n.length, n.v_wordline, card or access_card())
    return 1.0 / (r_device + r_access)


def _nmos_current_and_slopes(vds: np.ndarray, vgs: np.ndarray, width: float, length: float,
                             card: dict[str, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Drain current (A) and its slopes dI/dVds, dI/dVgs (S) by central
    differences of `peripherals.nmos_level1_current` (exact for its
    piecewise-quadratic law up to rounding; Newton needs only slopes)."""
    h = 1e-6
    f = peripherals.nmos_level1_current
    i0 = f(vds, vgs, width, length, card)
    gds = (f(vds + h, vgs, width, length, card) - f(vds - h, vgs, width, length, card)) / (2 * h)
    gm = (f(vds, vgs + h, width, length, card) - f(vds, vgs - h, width, length, card)) / (2 * h)
    return np.asarray(i0), np.asarray(gds), np.asarray(gm)


def _newton_points(spec: TileSpec, graph: NodalGraph, v_dac: np.ndarray, card: dict[str, float],
                   tol: float = NEWTON_VTOL, max_iter: int = NEWTON_MAX_ITER
                   ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Full Newton per input vector on `graph` (`nodal_graph` with_nmos, its
    gmin): yield (node voltages of every node class (V), NMOS drain currents
    (R*C,) (A)).

    Unknowns: every row, column and memristor-NMOS node. Newton on KCL with
    all NMOS currents and slopes evaluated at once and the Jacobian (the
    linear Laplacian plus each NMOS's 2x2 stamp) factored by sparse LU.
    Starting from 0 V, the first step is the small-signal linear solution.
    The NMOS: drain at the memristor, source on the column, gate at
    v_wordline, bulk at ground, with gmin from drain and source to ground.
    """
    n = spec.nmos
    lap = graph.laplacian.tocsr()
    nu = graph.n_unknown
    l_uu = lap[:nu, :nu]
    l_uk = lap[:nu, nu:]
    drain, source = graph.mid.ravel(), graph.col.ravel()
    # Stamp positions of each NMOS (only rows/cols that are unknowns).
    stamp_rows = np.concatenate([drain, drain, source, source])
    stamp_cols = np.concatenate([drain, source, drain, source])
    keep = (stamp_rows < nu) & (stamp_cols < nu)
    for b, v in enumerate(v_dac):
        known = np.zeros(lap.shape[0] - nu)
        known[graph.source - nu] = v
        x = np.zeros(lap.shape[0])
        x[nu:] = known
        lin_rhs = l_uk @ known
        for iteration in range(max_iter):
            vd, vs = x[drain], x[source]
            i_d, gds, gm = _nmos_current_and_slopes(vd - vs, n.v_wordline - vs, n.width, n.length, card)
            resid = l_uu @ x[:nu] + lin_rhs
            np.add.at(resid, drain[drain < nu], i_d[drain < nu])
            np.add.at(resid, source[source < nu], -i_d[source < nu])
            # d(i_d)/d(v_drain) = gds, d(i_d)/d(v_source) = -(gds + gm).
            vals = np.concatenate([gds, -(gds + gm), -gds, gds + gm])
            jac = (l_uu + sp.coo_matrix((vals[keep], (stamp_rows[keep], stamp_cols[keep])),
                                        shape=(nu, nu))).tocsc()
            dx = spla.splu(jac, permc_spec="MMD_AT_PLUS_A").solve(-resid)
            x[:nu] += dx
            if np.max(np.abs(dx)) <= tol + 1e-12 * np.max(np.abs(x[:nu])) and iteration > 0:
                break
        else:
            raise CosimError(f"Newton did not converge in {max_iter} iterations for input vector {b}; "
                             "use --engine spice for this tile")
        vd, vs = x[drain], x[source]
        yield x, np.asarray(peripherals.nmos_level1_current(vd - vs, n.v_wordline - vs, n.width, n.length, card))


def newton_currents(spec: TileSpec, v_dac: np.ndarray, card: dict[str, float] | None = None,
                    gmin: float = NGSPICE_GMIN, tol: float = NEWTON_VTOL,
                    max_iter: int = NEWTON_MAX_ITER) -> np.ndarray:
    """Exact DC column currents (B, C) (A) of a 1T1R tile, by full Newton
    (`_newton_points`; the reference for the chord iteration; any r_wire, r_driver)."""
    graph = nodal_graph(spec, spec.conductance, with_nmos=True, gmin=gmin)
    tia_rows = graph.laplacian.tocsr()[graph.tia]
    src_tia = np.full(graph.laplacian.shape[0], -1)
    src_tia[graph.tia] = np.arange(graph.tia.size)
    into = src_tia[graph.col.ravel()]  # the TIA each NMOS source sits on, or -1
    out = np.empty((v_dac.shape[0], spec.cols))
    for b, (x, i_d) in enumerate(_newton_points(spec, graph, v_dac, card or access_card(), tol, max_iter)):
        out[b] = -(tia_rows @ x) + np.bincount(into[into >= 0], weights=i_d[into >= 0], minlength=spec.cols)
    return out


def newton_node_voltages(spec: TileSpec, v_dac: np.ndarray, card: dict[str, float] | None = None
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact DC row, column and memristor-NMOS node voltages (B, R, C) (V)
    of a 1T1R tile by full Newton (`_newton_points`)."""
    graph = nodal_graph(spec, spec.conductance, with_nmos=True, gmin=NGSPICE_GMIN)
    nodes = [(x[graph.row], x[graph.col], x[graph.mid])
             for x, _ in _newton_points(spec, graph, v_dac, card or access_card())]
    return tuple(np.stack(k) for k in zip(*nodes))  # type: ignore[return-value]


def graph_node_voltages(spec: TileSpec, g_cell: np.ndarray, v_dac: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray, NodalGraph]:
    """Row and column node voltages (B, R, C) (V) of the linear network with
    whole-cell conductances g_cell (R, C) (S), by sparse LU (any r_wire,
    r_driver); also returns the graph."""
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


def _chord_residual(spec: TileSpec, x: np.ndarray, y: np.ndarray, m: np.ndarray, v: np.ndarray,
                    card: dict[str, float], gmin: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """KCL residuals (A) at the row, column and memristor-NMOS nodes (B, R, C):
    current leaving each node for node voltages x, y, m (V) and inputs v (B, R) (V)."""
    g_m, w, n = spec.conductance, 1.0 / spec.r_wire, spec.nmos
    fx = g_m * (x - m)
    fx[..., :-1] += w * (x[..., :-1] - x[..., 1:])
    fx[..., 1:] += w * (x[..., 1:] - x[..., :-1])
    if spec.r_driver > 0:
        fx[..., 0] += (x[..., 0] - v) / spec.r_driver
    i_d = peripherals.nmos_level1_current(m - y, n.v_wordline - y, n.width, n.length, card)
    fm = g_m * (m - x) + i_d + gmin * m
    fy = gmin * y - i_d
    fy[:, :-1] += w * (y[:, :-1] - y[:, 1:])
    fy[:, 1:] += w * (y[:, 1:] - y[:, :-1])
    fy[:, -1] += y[:, -1] / (spec.r_wire + tia_input_resistance(spec))
    return fx, fy, fm


def chord_newton_nodes(spec: TileSpec, factor: "StructuredFactor | ChainNetwork", g_channel: float,
                       v_dac: np.ndarray, card: dict[str, float], gmin: float = NGSPICE_GMIN,
                       tol: float = NEWTON_VTOL, max_iter: int = NEWTON_MAX_ITER
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact DC row, column and memristor-NMOS node voltages (B, R, C) (V)
    of a 1T1R tile with wires, for a whole batch at once: Newton's method
    with the Jacobian frozen at the small-signal network (the chord method;
    each NMOS as its triode conductance `g_channel` (S) at Vds = 0), which
    `factor` holds factored (StructuredFactor, or ChainNetwork solved by CG).
    The residual is exact (level-1 NMOS, gmin), so it converges to the same
    operating point as a full Newton, gaining about one digit per step for a
    10 % channel nonlinearity.
    """
    rows, cols = spec.rows, spec.cols
    g_m = spec.conductance
    total = g_m + g_channel
    share_x, share_y = g_m / total, g_channel / total
    batch = v_dac.shape[0]
    x = np.zeros((batch, rows, cols))
    y = np.zeros_like(x)
    m = np.zeros_like(x)
    if spec.r_driver == 0:
        x[..., 0] = v_dac
    scale = max(float(np.max(np.abs(v_dac))), 1e-300)
    for _ in range(max_iter):
        fx, fy, fm = _chord_residual(spec, x, y, m, v_dac, card, gmin)
        dx, dy = factor.solve(-fx - share_x * fm, -fy - share_y * fm)
        dm = share_x * dx + share_y * dy - fm / total
        x += dx
        y += dy
        m += dm
        step = max(np.max(np.abs(dx)), np.max(np.abs(dy)), np.max(np.abs(dm)))
        if step <= tol + 1e-12 * scale:
            return x, y, m
    raise CosimError(f"the chord Newton iteration did not converge in {max_iter} steps; "
                     "use nonlinear='newton' with method='splu' (full Newton) or the spice engine")


# --------------------------------------------------------------- apply


def default_chunk(rows: int, cols: int) -> int:
    """Input vectors per chunk so that inputs and outputs stay under CHUNK_BYTES."""
    return max(1, CHUNK_BYTES // (8 * (rows + cols)))


def _torch_device(device: str | None) -> Any:
    import torch

    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def apply_transfer(v: np.ndarray, transfer: np.ndarray, backend: str = "numpy", chunk: int | None = None,
                   device: str | None = None, transfer_neg: np.ndarray | None = None) -> np.ndarray:
    """current = v @ T, (B, C) (A), in chunks of `chunk` input vectors; with
    `transfer_neg`, current = max(v, 0) @ T + min(v, 0) @ T_neg.

    Args:
        v: (B, R) row voltages (V).
        transfer: (R, C) transfer matrix (S) (of positive reads when split).
        backend: 'numpy' or 'torch' (float64; CUDA when available unless
            `device` says otherwise).
        chunk: input vectors per chunk (default: `default_chunk`).
        device: torch device name ('cpu', 'cuda:0'), torch backend only.
        transfer_neg: (R, C) transfer matrix of negative reads (S), or None.
    """
    if backend not in BACKENDS:
        raise InputError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    rows, cols = transfer.shape
    chunk = chunk or default_chunk(rows, cols)
    if chunk < 1:
        raise InputError(f"chunk must be >= 1 input vector, got {chunk}")
    if backend == "numpy" and transfer_neg is None and v.shape[0] <= chunk:
        return v @ transfer
    out = np.empty((v.shape[0], cols))
    if backend == "numpy":
        for start in range(0, v.shape[0], chunk):
            part, target = v[start:start + chunk], out[start:start + chunk]
            if transfer_neg is None:
                np.matmul(part, transfer, out=target)
            else:
                np.matmul(np.maximum(part, 0.0), transfer, out=target)
                target += np.minimum(part, 0.0) @ transfer_neg
        return out
    import torch

    dev = _torch_device(device)
    t = torch.from_numpy(np.ascontiguousarray(transfer)).to(dev)
    t_neg = None if transfer_neg is None else torch.from_numpy(np.ascontiguousarray(transfer_neg)).to(dev)
    with torch.no_grad():
        for start in range(0, v.shape[0], chunk):
            part = torch.from_numpy(np.ascontiguousarray(v[start:start + chunk])).to(dev)
            if t_neg is None:
                result = part @ t
            else:
                result = part.clamp(min=0.0) @ t + part.clamp(max=0.0) @ t_neg
            out[start:start + chunk] = result.cpu().numpy()
    return out


def default_newton_chunk(rows: int, cols: int) -> int:
    """Input vectors per Newton chunk: its ~20 (B, R, C) work arrays stay
    under NEWTON_CHUNK_BYTES."""
    return max(1, NEWTON_CHUNK_BYTES // (8 * 20 * rows * cols))


@dataclass(frozen=True)
class FastTile:
    """A tile prepared for the fast solver.

    Attributes:
        spec: the tile.
        mode: 'linear' (one conductance per cell) or 'newton'.
        access: how the access device entered: 'none', 'calibrated',
            'small-signal' (linear) or 'level-1' (newton).
        method: 'structured', 'splu' or 'iterative'.
        precompute_s: wall time of the preparation (s).
        g_cell: (R, C) whole-cell conductances of the linear mode (S), of
            positive reads when `g_cell_neg` is set.
        g_cell_neg: (R, C) the same for negative reads (calibrated access), or None.
        transfer: (R, C) transfer matrix (S), linear mode with 'structured'
            or 'splu' (of positive reads when `transfer_neg` is set).
        transfer_neg: (R, C) transfer matrix of negative reads (S): a
            calibrated nmos tile applies max(v, 0) @ T + min(v, 0) @ T_neg.
        networks: linear mode with 'iterative': the factored chains of
            `g_cell` (and of `g_cell_neg`), solved per batch.
        factor: the factored small-signal network, newton mode with wires
            (StructuredFactor, or ChainNetwork with 'iterative').
        g_channel: triode conductance of the access NMOS at Vds = 0 (S), newton mode.
        card: access NMOS model card, newton mode.
    """

    spec: TileSpec
    mode: str
    access: str
    method: str
    precompute_s: float
    g_cell: np.ndarray | None = None
    g_cell_neg: np.ndarray | None = None
    transfer: np.ndarray | None = None
    transfer_neg: np.ndarray | None = None
    networks: tuple[ChainNetwork, ...] = ()
    factor: StructuredFactor | ChainNetwork | None = None
    g_channel: float | None = None
    card: dict[str, float] | None = None

    def currents(self, v_dac: np.ndarray, backend: str = "numpy", chunk: int | None = None,
                 device: str | None = None) -> np.ndarray:
        """Column currents (B, C) (A) for row voltages at the DAC outputs (B, R) (V).

        Linear mode: v @ T (sign-split when calibrated) in chunks of `chunk`
        vectors with `backend`, or the iterative solve of each chunk.
        Newton mode: the chord iteration over chunks of vectors (structured
        or iterative), or one full Newton per vector (splu, or r_wire = 0).
        """
        v = np.asarray(v_dac, dtype=float)
        if v.ndim == 1:
            v = v[None, :]
        if backend not in BACKENDS:
            raise InputError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if self.mode == "linear" and not self.networks:
            return apply_transfer(v, self.transfer, backend, chunk, device, self.transfer_neg)
        if self.mode == "newton" and self.factor is None:
            return newton_currents(self.spec, v, self.card)
        chunk = chunk or default_newton_chunk(self.spec.rows, self.spec.cols)
        out = np.empty((v.shape[0], self.spec.cols))
        w_end = 1.0 / (self.spec.r_wire + tia_input_resistance(self.spec))
        for start in range(0, v.shape[0], chunk):
            part = v[start:start + chunk]
            if self.mode == "linear":  # the column nodes of each read polarity
                out[start:start + chunk] = sum(network.currents(polarity) for network, (_, polarity)
                                               in zip(self.networks, self._polarities(part)))
            else:
                _, col, _ = self._nodes(part)
                out[start:start + chunk] = w_end * col[:, -1, :]
        return out

    def node_voltages(self, v_dac: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Row-line, column-line and (1T1R) memristor-NMOS node voltages at
        every cell, each (B, R, C) (V), for DAC outputs (B, R) (V); the third
        is None without an access device. The same network the currents
        come from (linear: the cell conductances of this tile; newton: the
        exact operating point)."""
        v = np.asarray(v_dac, dtype=float)
        return self._nodes(v[None, :] if v.ndim == 1 else v)

    def _nodes(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        spec = self.spec
        if self.mode == "newton":
            if self.factor is None:
                return newton_node_voltages(spec, v, self.card)
            return chord_newton_nodes(spec, self.factor, self.g_channel, v, self.card)
        row = np.zeros((v.shape[0], spec.rows, spec.cols))
        col = np.zeros_like(row)
        mid = np.zeros_like(row) if spec.access == "nmos" else None
        for k, (g_cell, part) in enumerate(self._polarities(v)):
            if spec.r_wire > 0:
                network = self.networks[k] if self.networks else chain_network(
                    g_cell, spec.r_wire, spec.r_driver, tia_input_resistance(spec))
                x, y = network.node_voltages(part)
            else:
                x, y, _ = graph_node_voltages(spec, g_cell, part)
            row += x
            col += y
            if mid is not None:  # the memristor carries the cell current
                mid += x - g_cell * (x - y) / spec.conductance
        return row, col, mid


    def _polarities(self, v: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Linear mode: (cell conductances (R, C) S, DAC outputs (B, R) V) of
        each read polarity: all of v, or max(v, 0) and min(v, 0) when calibrated."""
        if self.g_cell_neg is None:
            return [(self.g_cell, v)]
        return [(self.g_cell, np.maximum(v, 0.0)), (self.g_cell_neg, np.minimum(v, 0.0))]


def _resolve_mode(spec: TileSpec, nonlinear: str, calibration: "Calibration | None") -> str:
    if nonlinear not in NONLINEAR_MODES:
        raise InputError(f"nonlinear must be one of {', '.join(NONLINEAR_MODES)}, got {nonlinear!r}")
    if spec.access == "none" or nonlinear == "linear":
        return "linear"
    if nonlinear == "newton":
        return "newton"
    return "linear" if calibration is not None else "newton"


def _load_calibration(calibration: "Calibration | str | Path | None") -> "Calibration | None":
    if calibration is None or not isinstance(calibration, (str, Path)):
        return calibration
    from cosim.calibrate import load_calibration

    return load_calibration(calibration)


def prepare(spec: TileSpec, *, calibration: "Calibration | str | Path | None" = None, nonlinear: str = "auto",
            method: str = "auto") -> FastTile:
    """Prepare `spec` for the fast solver (factor once, apply to any batch).

    Args:
        spec: the tile.
        calibration: access calibration (object or JSON path from
            `cosim calibrate`) for the linear path of an nmos tile.
        nonlinear: 'auto', 'newton' or 'linear' (see the module docstring).
        method: 'structured' (transfer matrix by block sweep; the chord
            Newton's Jacobian as R dense blocks), 'splu' (sparse LU; full
            Newton per vector), 'iterative' (chains factored, each batch
            solved by `cosim.iterative`: no transfer matrix, for few vectors;
            the chord Newton's Jacobian in O(R C) memory) or 'auto':
            'structured' for the linear mode, 'iterative' for Newton (faster
            at every size measured, and its LAPACK work does not stall on
            busy cores as torch's small matrix products do).
    """
    if method not in METHODS:
        raise InputError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    start = time.perf_counter()
    cal = _load_calibration(calibration)
    mode = _resolve_mode(spec, nonlinear, cal)
    if method == "auto":
        method = "iterative" if mode == "newton" else "structured"
    r_in = tia_input_resistance(spec)
    iterative = method == "iterative" and spec.r_wire > 0
    if mode == "newton":
        card = access_card()
        n = spec.nmos
        g_channel = 1.0 / peripherals.access_resistance(n.width, n.length, n.v_wordline, card)
        factor = None
        if method != "splu" and spec.r_wire > 0:
            g_cell = 1.0 / (1.0 / spec.conductance + 1.0 / g_channel)
            factor = (chain_network(g_cell, spec.r_wire, spec.r_driver, r_in) if iterative
                      else factor_structured(g_cell, spec.r_wire, spec.r_driver, r_in))
        return FastTile(spec, "newton", "level-1", method, time.perf_counter() - start,
                        factor=factor, g_channel=g_channel, card=card)
    if spec.access == "nmos" and cal is not None:
        # Positive and negative reads see different channel conductances.
        cells = (cell_conductance(spec, cal, polarity="pos"), cell_conductance(spec, cal, polarity="neg"))
        access = "calibrated"
    else:
        card = access_card() if spec.access == "nmos" else None
        cells = (cell_conductance(spec, None, card), None)
        access = "none" if spec.access == "none" else "small-signal"
    present = [g for g in cells if g is not None]
    if iterative:
        networks = tuple(chain_network(g, spec.r_wire, spec.r_driver, r_in) for g in present)
        return FastTile(spec, "linear", access, method, time.perf_counter() - start, g_cell=cells[0],
                        g_cell_neg=cells[1], networks=networks)
    transfer_method = "splu" if method == "splu" else "structured"
    transfers = [transfer_matrix(spec, g, transfer_method) for g in present] + [None]
    return FastTile(spec, "linear", access, method, time.perf_counter() - start, g_cell=cells[0],
                    g_cell_neg=cells[1], transfer=transfers[0], transfer_neg=transfers[1])


def tia_input_resistance(spec: TileSpec) -> float:
    """DC input resistance of the tile's TIAs (ohm): 0 for the ideal TIA."""
    tia = spec.tia
    return peripherals.tia_input_resistance(tia.kind, tia.rs, tia.a0)


def tia_gain(spec: TileSpec) -> float:
    """DC closed-loop factor of the TIA: vout = rs * current * factor (1 when ideal).

    The columns see the TIA's input resistance (`tia_input_resistance`).
    """
    tia = spec.tia
    if tia.kind == "vcvs":
        return peripherals.tia_vcvs_gain(tia.a0)
    if tia.kind == "opamp":
        return peripherals.tia_opamp_dc_gain(tia.a0, tia.rs)
    return 1.0


def choose_method(spec: TileSpec, batch: int) -> str:
    """'iterative' for a few vectors on a tile with wires, else 'auto' (the
    transfer matrix of a linear tile pays off from about ITERATIVE_MAX_BATCH
    vectors on; Newton tiles go iterative anyway)."""
    return "iterative" if spec.r_wire > 0 and batch <= ITERATIVE_MAX_BATCH else "auto"


def solve_fast(spec: TileSpec, voltages: np.ndarray, *, calibration: "Calibration | str | Path | None" = None,
               nonlinear: str = "auto", backend: str = "numpy", chunk: int | None = None,
               method: str = "auto") -> "TileResult":
    """Column currents and outputs of `spec` for row voltages (R,) or (B, R) (V).

    The DACs quantise the inputs (`cosim.netlist.dac_output`), the tile is
    prepared (`prepare`; method 'auto': `choose_method`) and applied
    (`FastTile.currents`); vout = rs * current (times the TIA's DC gain
    factor), ADC codes when the tile has ADCs. engine 'fast'.
    """
    from cosim.engines import TileResult

    start = time.perf_counter()
    v = dac_output(spec, voltages)
    if method == "auto":
        method = choose_method(spec, v.shape[0])
    tile = prepare(spec, calibration=calibration, nonlinear=nonlinear, method=method)
    current = tile.currents(v, backend=backend, chunk=chunk)
    vout = spec.tia.rs * tia_gain(spec) * current
    codes = None if spec.adc.bits is None else peripherals.adc_codes(vout, spec.adc.bits, spec.adc.vfs)
    return TileResult(current, vout, codes, "fast", time.perf_counter() - start)
