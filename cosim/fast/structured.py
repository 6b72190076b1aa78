"""The structured transfer matrix: a block Cholesky sweep down the rows of the
column-node system (O(R C^3)), and the same factor kept for chord Newton.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

import numpy as np

from cosim.core.errors import CosimError
from cosim.fast.chains import _chain_excess, _row_blocks

if TYPE_CHECKING:
    import torch


#: torch intra-op threads of the block sweep unless the caller says otherwise.
SWEEP_THREADS = 1


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run torch on `threads` intra-op threads inside the block and restore the
    caller's count after it (torch's count is process-wide); None changes
    nothing. The block sweep is a chain of small (C x C) products: a second
    thread gains nothing there, and when other processes hold the cores
    OpenMP's waiting threads slow it 25-75x (0.13 s against 3-10 s for a
    128x128 tile at load 6 here), which is why the solver's functions take
    `threads=SWEEP_THREADS` explicitly."""
    import torch

    old = torch.get_num_threads()
    if threads is None or old == threads:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(old)


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


def transfer_structured(g: np.ndarray, r_wire: float, r_driver: float, device: str | None = None,
                        r_tia_in: float = 0.0, threads: int | None = SWEEP_THREADS) -> np.ndarray:
    """Transfer matrix T (R, C) (S) of a tile with r_wire > 0: current = v @ T.

    Block-tridiagonal elimination down the rows (`_schur_inverses`), the
    right-hand sides of all R inputs riding along: Y_i = w S_{i-1}^{-1} Y_{i-1}
    plus row i's injection u_i in column i; the TIA currents are
    w_end S_{R-1}^{-1} Y_{R-1}, w_end = 1 / (r_wire + r_tia_in) (S). No back
    substitution: only the last row's column nodes feed the TIAs.
    O(R C^3 + R^2 C^2) flops, O(C^2 + R C) memory. torch runs on `threads`
    intra-op threads meanwhile (`torch_threads`; None: the caller's setting).
    """
    import torch

    rows, cols = g.shape
    w = 1.0 / r_wire
    w_end = 1.0 / (r_wire + r_tia_in)
    g_driver = None if r_driver == 0 else 1.0 / r_driver
    with torch_threads(threads):
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
    s_inv: torch.Tensor
    threads: int | None = SWEEP_THREADS

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

    def solve(self, rx: np.ndarray, ry: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Node voltages (B, R, C) (V) for currents injected at the row nodes
        `rx` and column nodes `ry` (B, R, C) (A); pinned row nodes get 0 V
        and ignore their injection. torch runs on `threads` intra-op threads meanwhile."""
        with torch_threads(self.threads):
            return self._solve(rx, ry)

    def _solve(self, rx: np.ndarray, ry: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def factor_structured(g: np.ndarray, r_wire: float, r_driver: float, r_tia_in: float = 0.0,
                      threads: int | None = SWEEP_THREADS) -> StructuredFactor:
    """Factor the linear network of cell conductances g (R, C) (S) for
    `StructuredFactor.solve` (r_wire > 0; TIA input resistance r_tia_in, ohm).
    Keeps R C x C blocks (8 R C^2 bytes); torch runs on `threads` intra-op
    threads while it factors and solves (`torch_threads`)."""
    with torch_threads(threads):
        return _factor_structured(g, r_wire, r_driver, r_tia_in, threads)


def _factor_structured(g: np.ndarray, r_wire: float, r_driver: float, r_tia_in: float,
                       threads: int | None) -> StructuredFactor:
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
    return StructuredFactor(g=g, w=w, g_driver=g_driver, w_end=w_end, pivots=pivots, s_inv=s_inv, threads=threads)
