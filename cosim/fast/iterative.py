"""Iterative solve of a tile's linear read network, for few input vectors.

The transfer matrix of `cosim.fast` costs O(R C^3) once and pays off over
many input vectors; a single vector, a node-voltage map, or a 1024-row tile
needs none of it. Here the network of docs/architecture.md (row chains, column chains,
one conductance per cell) is solved directly:

- every row chain is tridiagonal, so the row nodes are eliminated exactly by
  one banded solve (LAPACK ``pttrs`` over all rows at once);
- what remains is the column-node system ``S y = b`` with
  ``S = L_c - G L_r^{-1} G`` (L_r, L_c the row and column chain matrices,
  G the cell conductances), symmetric positive definite;
- conjugate gradients on S, preconditioned by the column chains L_c (also a
  banded solve), batched over input vectors. The eigenvalues of L_c^{-1} S
  lie in (1 - rho, 1], rho < 1 the fraction of a column node's current that
  returns through its cells, so the count of steps grows only as
  sqrt(1 / (1 - rho)): a handful for kohm devices, a few tens for seed 000's
  50 ohm devices.

Each step costs O(R C) per vector. Unknowns, as in `cosim.fast.StructuredFactor`:
row nodes x (R, C) and column nodes y (R, C); with r_driver = 0 the first
node of each row is pinned to its input and is not an unknown.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cosim.core.errors import CosimError

CG_RTOL = 1e-12  # relative residual at which CG stops (currents to ~1e-13)
CG_MAX_STEPS = 5000


def _chain_factor(diag: np.ndarray, off: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """L D L^T factors (LAPACK pttrf) of a symmetric positive definite
    tridiagonal matrix given by its diagonal (n,) and off-diagonal (n-1,) (S)."""
    from scipy.linalg import lapack  # here, not at import: scipy.linalg costs ~0.1-0.2 s of start-up

    if diag.size == 1:  # pttrf refuses an empty off-diagonal
        if not diag[0] > 0:
            raise CosimError("tile chain matrix is not positive definite; check for zero conductances")
        return diag.copy(), off.copy()
    d, e, info = lapack.dpttrf(diag, off)
    if info != 0:
        raise CosimError(f"tile chain matrix is not positive definite (pttrf info {info}); "
                         "check for zero or negative conductances")
    return d, e


def _chain_solve(factor: tuple[np.ndarray, np.ndarray], rhs: np.ndarray) -> np.ndarray:
    """Solve the factored tridiagonal system for rhs (n, k) (A -> V)."""
    if factor[0].size == 1:
        return rhs / factor[0][0]
    from scipy.linalg import lapack

    out, info = lapack.dpttrs(factor[0], factor[1], rhs)
    if info != 0:
        raise CosimError(f"tile chain solve failed (pttrs info {info})")
    return out


def _batch_dot(batch: int):
    """Per-vector dot products of two (B, ...) arrays, as a (B,) array."""
    if batch == 1:
        return lambda a, b: np.array([np.dot(a.ravel(), b.ravel())])
    return lambda a, b: np.einsum("bi,bi->b", a.reshape(batch, -1), b.reshape(batch, -1))


@dataclass(frozen=True)
class ChainNetwork:
    """A tile's linear network, factored chain by chain for iterative solves.

    Attributes:
        g: (R, C) cell conductances, row node to column node (S).
        w: wire segment conductance (S).
        g_driver: driver conductance (S), or None when the DAC pins each
            row's first node (r_driver = 0).
        w_end: conductance from each column's last node to its TIA input (S):
            one wire segment in series with the TIA's input resistance.
        row_factor, col_factor: pttrf factors of the row chains (row-major,
            free row nodes only) and of the column chains (column-major).
        col_diagonal: (C, R) diagonal of the column chain matrix L_c (S).
    """

    g: np.ndarray
    w: float
    g_driver: float | None
    w_end: float
    row_factor: tuple[np.ndarray, np.ndarray]
    col_factor: tuple[np.ndarray, np.ndarray]
    col_diagonal: np.ndarray

    @property
    def first(self) -> int:
        """Index of each row's first unknown row node (1 when pinned)."""
        return 0 if self.g_driver is not None else 1

    def _row_solve(self, q: np.ndarray) -> np.ndarray:
        """L_r^{-1} q over the free row nodes, q (B, R, m) (A) -> (V)."""
        return _chain_solve(self.row_factor, q.reshape(q.shape[0], -1).T).T.reshape(q.shape)

    def _col_solve(self, q: np.ndarray) -> np.ndarray:
        """L_c^{-1} q over the column nodes in column-major order, q (B, C, R) (A) -> (V)."""
        return _chain_solve(self.col_factor, q.reshape(q.shape[0], -1).T).T.reshape(q.shape)

    def _schur_apply(self, y: np.ndarray, g_cm: np.ndarray, diag_cm: np.ndarray) -> np.ndarray:
        """S y = L_c y - G L_r^{-1} G y over the column nodes, y (B, C, R) column-major (V -> A).

        g_cm, diag_cm: (C, R) cell conductances and diagonal of L_c (S).
        """
        first = self.first
        out = diag_cm * y
        wy = self.w * y
        out[:, :, :-1] -= wy[:, :, 1:]
        out[:, :, 1:] -= wy[:, :, :-1]
        if first < self.g.shape[1]:
            back = self._row_solve(self.g[:, first:] * np.swapaxes(y[:, first:, :], 1, 2))  # (B, R, m)
            back *= self.g[:, first:]
            out[:, first:, :] -= np.swapaxes(back, 1, 2)
        return out

    def solve(self, rx: np.ndarray, ry: np.ndarray, rtol: float = CG_RTOL,
              max_steps: int = CG_MAX_STEPS) -> tuple[np.ndarray, np.ndarray]:
        """Node voltages (B, R, C) (V) for currents injected at the row nodes
        `rx` and column nodes `ry` (B, R, C) (A); pinned row nodes get 0 V
        and ignore their injection (the interface of StructuredFactor.solve).

        Preconditioned CG on the column nodes (`column_nodes`), then one
        banded solve for the row nodes.
        """
        first = self.first
        gf = self.g[:, first:]
        y = self.column_nodes(rx, ry, rtol, max_steps)
        x = np.zeros_like(rx)
        if gf.shape[1]:
            x[:, :, first:] = self._row_solve(rx[:, :, first:] + gf * y[:, :, first:])
        return x, y

    def column_nodes(self, rx: np.ndarray, ry: np.ndarray, rtol: float = CG_RTOL,
                     max_steps: int = CG_MAX_STEPS) -> np.ndarray:
        """Column node voltages (B, R, C) (V) for injected currents as in `solve`:
        preconditioned CG, every vector of the batch with its own step sizes,
        until each residual is below `rtol` times its right-hand side."""
        first = self.first
        gf = self.g[:, first:]
        g_cm = np.ascontiguousarray(self.g.T)
        diag_cm = self.col_diagonal
        rx_free = np.ascontiguousarray(rx[:, :, first:])
        b = np.ascontiguousarray(np.swapaxes(ry, 1, 2))  # (B, C, R)
        if gf.shape[1]:
            b[:, first:, :] += np.swapaxes(gf * self._row_solve(rx_free), 1, 2)
        dot = _batch_dot(b.shape[0])
        y = np.zeros_like(b)
        r = b.copy()
        limit = rtol * rtol * dot(b, b)
        z = self._col_solve(r)
        p = z.copy()
        rz = dot(r, z)
        for _ in range(max_steps):
            active = dot(r, r) > limit
            if not active.any():
                break
            sp = self._schur_apply(p, g_cm, diag_cm)
            if active.all():
                alpha = (rz / dot(p, sp))[:, None, None]
            else:  # finished vectors stay where they are
                alpha = np.where(active, rz / np.where(active, dot(p, sp), 1.0), 0.0)[:, None, None]
            y += alpha * p
            r -= alpha * sp
            z = self._col_solve(r)
            rz_new = dot(r, z)
            beta = np.where(active, rz_new / np.where(rz > 0, rz, 1.0), 0.0)[:, None, None]
            p *= beta
            p += z
            rz = rz_new
        else:
            raise CosimError(f"conjugate gradients did not reach {rtol:g} in {max_steps} steps; "
                             "use method='structured' for this tile")
        return np.ascontiguousarray(np.swapaxes(y, 1, 2))  # (B, R, C)

    def _injections(self, v_dac: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Currents the DACs (B, R) (V) inject at the row and column nodes (B, R, C) (A)."""
        batch = v_dac.shape[0]
        rows, cols = self.g.shape
        rx = np.zeros((batch, rows, cols))
        ry = np.zeros_like(rx)
        if self.g_driver is not None:
            rx[:, :, 0] = self.g_driver * v_dac
        else:  # the pinned first node drives its neighbour and its own cell
            if cols > 1:
                rx[:, :, 1] = self.w * v_dac
            ry[:, :, 0] = self.g[:, 0] * v_dac
        return rx, ry

    def node_voltages(self, v_dac: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row and column node voltages (B, R, C) (V) for DAC outputs (B, R) (V)."""
        x, y = self.solve(*self._injections(v_dac))
        if self.g_driver is None:
            x[:, :, 0] = v_dac
        return x, y

    def currents(self, v_dac: np.ndarray) -> np.ndarray:
        """TIA input currents (B, C) (A) for DAC outputs (B, R) (V): the column
        nodes alone, no row solve."""
        return self.w_end * self.column_nodes(*self._injections(v_dac))[:, -1, :]


def chain_network(g: np.ndarray, r_wire: float, r_driver: float, r_tia_in: float = 0.0) -> ChainNetwork:
    """Factor the row and column chains of a tile with cell conductances
    g (R, C) (S), wire segments r_wire > 0 (ohm), drivers r_driver (ohm,
    0: pinned) and TIA input resistance r_tia_in (ohm)."""
    if not r_wire > 0:
        raise CosimError("the iterative solver needs r_wire > 0 (without wires the tile has a closed form)")
    g = np.asarray(g, dtype=float)
    rows, cols = g.shape
    w = 1.0 / r_wire
    g_driver = None if r_driver == 0 else 1.0 / r_driver
    first = 0 if g_driver is not None else 1
    free = g[:, first:]
    m = free.shape[1]
    row_factor = (np.ones(1), np.zeros(0))
    if m:
        diag = free.copy()
        diag[:, :-1] += w
        diag[:, 1:] += w
        diag[:, 0] += g_driver if g_driver is not None else w  # driver, or the link to the pinned node
        off = np.full((rows, m), -w)
        off[:, -1] = 0.0  # no link between consecutive rows
        row_factor = _chain_factor(diag.ravel(), off.ravel()[:-1])
    w_end = 1.0 / (r_wire + r_tia_in)
    diag_c = g.T.copy()  # (C, R): column-major chains
    diag_c[:, :-1] += w
    diag_c[:, 1:] += w
    diag_c[:, -1] += w_end
    off_c = np.full((cols, rows), -w)
    off_c[:, -1] = 0.0
    col_factor = _chain_factor(diag_c.ravel(), off_c.ravel()[:-1])
    return ChainNetwork(g, w, g_driver, w_end, row_factor, col_factor, diag_c)
