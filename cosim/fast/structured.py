"""The structured transfer matrix: a block Cholesky sweep down the rows of the
column-node system (O(R C^3)), and the same factor kept for chord Newton.
numpy and LAPACK (`transfer_structured_numpy`, `schur_inverses`,
`StructuredFactor`: what the solver uses); `transfer_structured` is the
same sweep in torch, for torch devices.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from cosim.core.errors import CosimError
from cosim.fast.chains import _chain_excess, _row_blocks, row_vectors
from cosim.fast.openblas import cblas, inverse_scratch, spd_inverse

#: BLAS threads (numpy sweeps) and torch intra-op threads (torch sweep) of the
#: block sweep unless the caller says otherwise.
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


@contextmanager
def blas_threads(threads: int | None) -> Iterator[None]:
    """Run numpy's and scipy's BLAS on `threads` threads inside the block
    (`threadpoolctl`) and restore the caller's count after it; None changes
    nothing. The numpy sweeps below are chains of small C x C products, which
    OpenBLAS's threads slow 5-20x when other processes hold the cores."""
    if threads is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads, user_api="blas"):
        yield


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


def _schur_sweep_numpy(g: np.ndarray, w: float, g_driver: float | None, w_end: float
                       ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """`_schur_inverses` in numpy and LAPACK, in units of the wire: yield
    (i, Z_i = w S_i^{-1} (C, C) (1), u_i (C,) (S)).

    With D' = D / w the sweep reads S'_0 = D'_0 + I, S'_i = D'_i + 2 I - Z_{i-1}
    (no scaling pass), each S'_i written over Z_{i-1} in one buffer: from
    `chains.row_vectors`, D' is a b^T above the diagonal, so S'_i is
    a b^T - Z_{i-1} plus a diagonal (CBLAS scal and ger, `openblas.Cblas`); where a
    chain inverse overflows, the dense blocks of `_row_blocks`, a chunk of
    rows at a time. potrf + potri fill only the upper triangle of Z_i, and
    only it is meaningful: multiply with BLAS symm (`openblas.Cblas.upper_times`) or
    mirror it. Z_i is overwritten when the generator advances: use it first."""
    rows, cols = g.shape
    g_scaled = g / w
    d_scaled = None if g_driver is None else g_driver / w
    vectors = row_vectors(g_scaled, 1.0, d_scaled)
    blas = cblas()
    step = _rows_per_chunk(cols)
    shift = np.full(rows, 2.0)  # what the column wires add to each row's diagonal
    shift[0] = 1.0
    shift[-1] += w_end / w - 1.0
    z = np.zeros((cols, cols))
    diagonal = z.reshape(-1)[::cols + 1]  # a view
    scratch = inverse_scratch(cols)
    if vectors is None:  # a chain inverse overflowed: dense blocks
        for i in range(rows):
            if i % step == 0:
                d_chunk, u_chunk = _row_blocks(g_scaled[i:i + step], 1.0, d_scaled, upper_only=True)
            np.subtract(d_chunk[i % step], z, out=z)
            diagonal += shift[i]
            spd_inverse(z, i, scratch)
            yield i, z, u_chunk[i % step] * w
        return
    a_all, b_all, d_diag, u_all = vectors
    fix = d_diag + shift[:, None] - a_all * b_all  # turns a_j b_j - Z_jj into D'_jj + shift - Z_jj
    u_all = u_all * w
    z_at, a_at, b_at, fix_at, row_bytes = z.ctypes.data, a_all.ctypes.data, b_all.ctypes.data, fix.ctypes.data, 8 * cols
    for i in range(rows):
        if blas is not None:  # the GIL released
            blas.negate_plus_outer(z_at, cols, a_at + i * row_bytes, b_at + i * row_bytes)
            blas.add_to_diagonal(z_at, cols, fix_at + i * row_bytes)
        else:
            np.subtract(np.multiply.outer(a_all[i], b_all[i]), z, out=z)
            diagonal += fix[i]  # the diagonal of S'_0 too: Z_{-1} = 0
        spd_inverse(z, i, scratch)
        yield i, z, u_all[i]


def schur_inverses(g: np.ndarray, w: float, g_driver: float | None, w_end: float) -> np.ndarray:
    """(R, C, C) inverses of the Schur blocks of the column-node sweep (ohm):
    S_0 = D_0 + w I, S_i = D_i + 2w I - w^2 S_{i-1}^{-1} (D_i from
    `chains._row_blocks`), one w of the last row being w_end; numpy and LAPACK."""
    rows, cols = g.shape
    out = np.empty((rows, cols, cols))
    lower = np.tri(cols, k=-1, dtype=bool)
    for i, z, _ in _schur_sweep_numpy(g, w, g_driver, w_end):
        np.multiply(z, 1.0 / w, out=out[i])  # before the sweep overwrites z
        np.copyto(out[i], out[i].T, where=lower)  # potri filled the upper triangle
    return out


def transfer_structured_numpy(g: np.ndarray, r_wire: float, r_driver: float, r_tia_in: float = 0.0,
                              threads: int | None = SWEEP_THREADS) -> np.ndarray:
    """`transfer_structured` in numpy and LAPACK (no torch: what `transfer_matrix`
    uses on the CPU), the BLAS on `threads` threads meanwhile
    (`blas_threads`). T (R, C) (S), current = v @ T.

    In the sweep's units (`_schur_sweep_numpy`) the right-hand sides ride
    along: row i's injection u_i enters as column i of Y, then
    Y[:, :i+1] = Z_i Y[:, :i+1], with w_end / w in the last row, which
    leaves T^T; the products are BLAS symm on Z's upper triangle (numpy
    matmul on a mirrored copy where ctypes finds no CBLAS)."""
    rows, cols = g.shape
    w = 1.0 / r_wire
    w_end = 1.0 / (r_wire + r_tia_in)
    g_driver = None if r_driver == 0 else 1.0 / r_driver
    blas = cblas()
    lower = np.tri(cols, k=-1, dtype=bool)
    y = np.zeros((cols, rows))  # a column per input
    work = np.zeros((cols, rows))
    y_at, work_at = y.ctypes.data, work.ctypes.data
    with blas_threads(threads):
        for i, z, u in _schur_sweep_numpy(g, w, g_driver, w_end):
            alpha = w_end / w if i == rows - 1 else 1.0
            if blas is not None:  # the GIL released
                blas.put_column(y_at, rows, i, u.ctypes.data, cols)
                blas.upper_times(z.ctypes.data, cols, y_at, rows, i + 1, work_at, alpha)
            else:
                y[:, i] = u
                full = z.copy()
                np.copyto(full, full.T, where=lower)
                np.matmul(full, y[:, :i + 1], out=work[:, :i + 1])
                work[:, :i + 1] *= alpha
            y, work, y_at, work_at = work, y, work_at, y_at
    if not np.isfinite(y).all():
        raise CosimError("the tile's transfer matrix is not finite: check its conductances and resistances "
                         "for NaN, infinite or extreme values")
    return np.ascontiguousarray(y.T)


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
        s_inv: (R, C, C) inverses of the Schur blocks S_i of the column
            nodes (ohm), numpy float64 (`schur_inverses`).
        threads: BLAS threads of `solve` (`blas_threads`; None: the caller's).
    """

    g: np.ndarray
    w: float
    g_driver: float | None
    w_end: float
    pivots: np.ndarray
    s_inv: np.ndarray
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

    def drive(self, v_dac: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row and column node voltages (B, R, C) (V) with the rows driven by
        DAC outputs v_dac (B, R) (V): through the driver conductance into each
        row's first node, or (r_driver = 0) that node pinned to v, driving its
        neighbour and its own cell. v_dac = identity gives each row's unit drive."""
        g, w = self.g, self.w
        batch, (rows, cols) = v_dac.shape[0], g.shape
        rx = np.zeros((batch, rows, cols))
        ry = np.zeros_like(rx)
        if self.g_driver is not None:
            rx[:, :, 0] = self.g_driver * v_dac
        else:
            if cols > 1:
                rx[:, :, 1] = w * v_dac
            ry[:, :, 0] = g[:, 0] * v_dac
        x, y = self.solve(rx, ry)
        if self.g_driver is None:
            x[:, :, 0] = v_dac
        return x, y

    def solve(self, rx: np.ndarray, ry: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Node voltages (B, R, C) (V) for currents injected at the row nodes
        `rx` and column nodes `ry` (B, R, C) (A); pinned row nodes get 0 V
        and ignore their injection. The BLAS runs on `threads` threads meanwhile."""
        with blas_threads(self.threads):
            return self._solve(rx, ry)

    def _solve(self, rx: np.ndarray, ry: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        first, g, w = self.first, self.g, self.w
        rows, cols = g.shape
        gf = g[:, first:]
        rho = ry.copy()
        if gf.shape[1]:
            rho[:, :, first:] += gf * self.chain_solve(rx[:, :, first:])
        r = np.ascontiguousarray(np.moveaxis(rho, 0, -1))  # (R, C, B)
        s_inv = self.s_inv
        work = np.empty(r.shape[1:])
        for i in range(1, rows):
            np.matmul(s_inv[i - 1], r[i - 1], out=work)
            work *= w
            r[i] += work
        y = np.empty_like(r)
        np.matmul(s_inv[rows - 1], r[rows - 1], out=y[rows - 1])
        for i in range(rows - 2, -1, -1):
            np.multiply(y[i + 1], w, out=work)
            work += r[i]
            np.matmul(s_inv[i], work, out=y[i])
        dy = np.moveaxis(y, -1, 0)
        dx = np.zeros_like(rx)
        if gf.shape[1]:
            dx[:, :, first:] = self.chain_solve(rx[:, :, first:] + gf * dy[:, :, first:])
        return dx, np.ascontiguousarray(dy)


def factor_structured(g: np.ndarray, r_wire: float, r_driver: float, r_tia_in: float = 0.0,
                      threads: int | None = SWEEP_THREADS) -> StructuredFactor:
    """Factor the linear network of cell conductances g (R, C) (S) for
    `StructuredFactor.solve` (r_wire > 0; TIA input resistance r_tia_in, ohm).
    Keeps R C x C blocks (8 R C^2 bytes); numpy and LAPACK, the BLAS on
    `threads` threads while it factors and solves (`blas_threads`)."""
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
    with blas_threads(threads):
        s_inv = schur_inverses(g, w, g_driver, w_end)
    return StructuredFactor(g=g, w=w, g_driver=g_driver, w_end=w_end, pivots=pivots, s_inv=s_inv, threads=threads)
