"""Exact DC operating points of 1T1R tiles for whole batches at BLAS-3 speed.

The access NMOS of models/nmos_access.lib is SPICE level 1 with lambda = 0
and no body effect. In triode, for either sign of Vds (drain and source
swap roles), its drain current is a difference of one function of each
terminal:

    i_d = phi(m) - phi(y),   phi(v) = beta * (a * v - v^2 / 2),   a = V_wl - vto,

with m the memristor-NMOS node and y the column node (`triode_law`). Both
stay in triode as long as every node voltage stays below a (1.3 V for the
presets), which passivity guarantees when every DAC output does
(|v| < a). So the memristor-NMOS node of each cell has a closed form given
its row and column node voltages x, y (the smaller root of a quadratic,
`_cell_residuals`), and the tile reduces to its row and column nodes with
one exactly known nonlinear cell current each.

The iteration (`batched_nodes`) is a fixed point on that reduced system:
the linear network with each cell at its small-signal conductance (memristor
in series with the channel at Vds = 0), factored once per tile
(`BatchedFactor`: the row-chain inverses K_i and the Schur inverses of the
column-node sweep, both R dense C x C blocks), solved for the exact cells'
deviation from it. Each step is written as a correction (`_refine`): the
exact network's KCL residuals at the iterate in float64, the factored
network solved for them in float32 (four C x C by C x B products per row,
every vector of the chunk a column: BLAS-3 at single-precision speed), the
correction added in float64. float32 rounds only the correction (~1e-6 of
it), so the iterates reach float64 accuracy; elementwise work runs on one
row of cells at a time (it stays in cache). The deviation is 1-10 % of a cell's
current, and what a step leaves is that times the share of it that
returns through the cells, so each step gains 2-3 digits with the seed
001 devices (1-12 kohm) and ~2 with seed 000's (50 ohm-1 kohm). Each
vector stops on its own (a per-vector convergence mask; converged vectors
leave the chunk), when its step, extrapolated by the step's contraction,
is below BATCH_RTOL of its scale (its largest input for the row nodes, its
largest voltage at a TIA end for the column nodes). gmin (1e-12 S from
each NMOS terminal to ground, as ngspice has it) is in the cell law.

The first step, from zero, is the small-signal solution.
Chunks of vectors run on BATCH_WORKERS threads, the BLAS on one thread each.
Everything is numpy (the BLAS numpy links), no torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from cosim.core import peripherals
from cosim.core.errors import CosimError
from cosim.core.tile import TileSpec
from cosim.fast.chains import _chain_inverse
from cosim.fast.structured import blas_threads, schur_inverses
from cosim.fast.tia import tia_termination

#: Bytes of work arrays a chunk of vectors may hold (four (R, C, chunk) float64
#: arrays and two float32 ones).
BATCH_CHUNK_BYTES = 192 * 2**20

#: Steps after which a vector that has not converged is an error.
BATCH_MAX_ITER = 60

#: Relative tolerance of the node voltages (`batched_nodes`): a vector stops
#: when its next step, extrapolated from the last two, would move no node by
#: more than this of its scale (the currents then agree with a full Newton to
#: 1e-12 with seed 001's devices and 7e-11 with seed 000's at 128 x 128,
#: bench/fast_solver.py; the spec asks 1e-9).
BATCH_RTOL = 1e-9

#: Threads solving chunks of a batch side by side (`batched_nodes`).
BATCH_WORKERS = 2


def triode_law(spec: TileSpec, card: dict[str, float]) -> tuple[float, float] | None:
    """(beta (A/V^2), a = V_wl - vto (V)) when the access NMOS follows the
    difference-of-potentials triode law exactly (lambda = 0; the body effect
    is not modelled by `peripherals.nmos_level1_current`), else None."""
    if card.get("lambda", 0.0) != 0.0:
        return None
    n = spec.nmos
    beta = float(peripherals._beta(n.width, n.length, card))
    a = n.v_wordline - card.get("vto", 0.0)
    return (beta, a) if beta > 0 and a > 0 else None


def chain_inverses(h: np.ndarray, w: float) -> np.ndarray:
    """Dense inverses (R, C, C) (ohm) of the row chains of `chains._chain_inverse`."""
    left, right, _, dense = _chain_inverse(h, w)
    if dense is not None:
        return dense
    outer = left[:, :, None] * right[:, None, :]  # K_jk for j <= k
    upper = np.triu(np.ones((h.shape[1], h.shape[1]), dtype=bool))
    return np.where(upper, outer, outer.transpose(0, 2, 1))


@dataclass(frozen=True)
class BatchedFactor:
    """A 1T1R tile (r_wire > 0, r_driver > 0) factored for `batched_nodes`.

    Attributes:
        g_m: (R, C) memristor conductances (S).
        g_cell: (R, C) small-signal cells: memristor in series with the
            channel at Vds = 0 (S).
        w, g_driver, w_end: wire segment, driver, and last-segment-to-TIA
            conductances (S).
        beta, a, gmin: the triode law (A/V^2, V) and ngspice's gmin (S).
        k_row: (R, C, C) row-chain inverses (ohm).
        s_inv: (R, C, C) Schur inverses of the column-node sweep (ohm).
        k_row32, s_inv32: k_row and s_inv in float32, for the corrections
            of `_refine`.
    """

    g_m: np.ndarray
    g_cell: np.ndarray
    w: float
    g_driver: float
    w_end: float
    beta: float
    a: float
    gmin: float
    k_row: np.ndarray
    s_inv: np.ndarray
    k_row32: np.ndarray
    s_inv32: np.ndarray

    @property
    def nbytes(self) -> int:
        """Memory the factor holds (bytes)."""
        return self.k_row.nbytes + self.s_inv.nbytes + self.k_row32.nbytes + self.s_inv32.nbytes


def batched_factor(spec: TileSpec, card: dict[str, float], gmin: float) -> BatchedFactor | None:
    """Factor `spec` for `batched_nodes`, or None when it does not apply
    (no wires, no driver resistance, or an NMOS card outside `triode_law`)."""
    law = triode_law(spec, card)
    if law is None or not spec.r_wire > 0 or not spec.r_driver > 0:
        return None
    beta, a = law
    g_m = spec.conductance
    g_ch = beta * a
    g_cell = g_m * g_ch / (g_m + g_ch)
    w = 1.0 / spec.r_wire
    g_driver = 1.0 / spec.r_driver
    w_end = 1.0 / (spec.r_wire + tia_termination(spec))
    extra = np.zeros_like(g_cell)
    extra[:, 0] = g_driver
    k_row = chain_inverses(g_cell + extra, w)
    with blas_threads(1):
        s_inv = schur_inverses(g_cell, w, g_driver, w_end)
    return BatchedFactor(g_m, g_cell, w, g_driver, w_end, beta, a, gmin, k_row, s_inv,
                         k_row.astype(np.float32), s_inv.astype(np.float32))


class _RowWork:
    """Per-row constants as (C, 1) columns, so every op broadcasts over the chunk."""

    def __init__(self, f: BatchedFactor) -> None:
        self.g_m = f.g_m[:, :, None]
        self.g_cell32 = f.g_cell[:, :, None].astype(np.float32)
        t_half = (f.g_m + f.beta * f.a + f.gmin) / 2.0
        self.t_half = t_half[:, :, None]
        self.t_half_sq = (t_half * t_half)[:, :, None]


def _cell_residuals(f: BatchedFactor, c: _RowWork, i: int, v_i: np.ndarray, x: np.ndarray, y: np.ndarray,
                    res_x: np.ndarray, res_y: np.ndarray, work: np.ndarray) -> None:
    """KCL residuals (C, B) (A) of row i's row nodes (res_x) and column
    nodes (res_y) at the iterate x, y (R, C, B) (V) with the exact cells:
    the current flowing into each node from its driver, wires and cell.

    KCL at the memristor-NMOS node m: g_m (x - m) = phi(m) - phi(y) + gmin m,
    a quadratic in m whose smaller root is m = cc / (T/2 + sqrt(T^2/4 - beta cc / 2)),
    cc = g_m x + phi(y), T = g_m + beta a + gmin. The cell draws I = g_m (x - m)
    from x and delivers I - gmin m to y; y also loses gmin y.
    """
    beta, a, w = f.beta, f.a, f.w
    xi, yi = x[i], y[i]
    cc, t, cell = work[0], work[1], work[2]
    np.multiply(yi, -0.5 * beta, out=t)  # phi(y) = y (beta a - beta y / 2)
    t += beta * a
    t *= yi
    np.multiply(c.g_m[i], xi, out=cc)
    cc += t
    np.multiply(cc, -0.5 * beta, out=t)
    t += c.t_half_sq[i]
    np.sqrt(t, out=t)
    t += c.t_half[i]
    np.divide(cc, t, out=t)  # m
    np.subtract(xi, t, out=cell)
    cell *= c.g_m[i]  # I
    np.add(t, yi, out=res_y)
    res_y *= -f.gmin
    res_y += cell
    np.negative(cell, out=res_x)
    res_x[0] += f.g_driver * (v_i - xi[0])
    link = cc[:-1]
    np.subtract(xi[1:], xi[:-1], out=link)  # row wires: w (x_{j+1} - x_j) into node j, out of node j+1
    link *= w
    res_x[:-1] += link
    res_x[1:] -= link
    rows = x.shape[0]
    if i:
        np.subtract(y[i - 1], yi, out=cc)  # column wires
        cc *= w
        res_y += cc
    if i < rows - 1:
        np.subtract(y[i + 1], yi, out=cc)
        cc *= w
        res_y += cc
    else:
        np.multiply(yi, f.w_end, out=cc)  # the last segment into the TIA
        res_y -= cc


def _refine(f: BatchedFactor, c: _RowWork, v: np.ndarray, x: np.ndarray, y: np.ndarray,
            q: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One fixed-point step for a chunk, layout (R, C, B), written as a
    correction: the KCL residuals of the exact network at the iterate x, y
    (V) in float64, the small-signal network solved for them in float32
    (q, z: (R, C, B) float32 scratch), the correction added to x and y in
    place. In exact arithmetic this is x <- L^-1 (drive + exact cells'
    deviation at x); float32 only rounds the correction, ~1e-6 of it, which
    the next step's residual sees again. Returns each vector's largest
    change of a row node and of a column node, (B,) each (V)."""
    rows, cols, batch = x.shape
    w = np.float32(f.w)
    k_row, s_inv, g = f.k_row32, f.s_inv32, c.g_cell32
    res_x = np.empty((cols, batch))
    res_y = np.empty((cols, batch))
    work = np.empty((3, cols, batch))
    rhs = np.empty((cols, batch), dtype=np.float32)
    rho = np.empty((cols, batch), dtype=np.float32)
    for i in range(rows):
        _cell_residuals(f, c, i, v[i], x, y, res_x, res_y, work)
        np.copyto(rhs, res_x, casting="same_kind")
        np.matmul(k_row[i], rhs, out=q[i])  # row nodes for the row residuals alone
        np.multiply(g[i], q[i], out=rho)
        rho += res_y
        if i:
            np.multiply(z[i - 1], w, out=rhs)
            rho += rhs
        np.matmul(s_inv[i], rho, out=z[i])
    step_x, step_y = np.zeros(batch), np.zeros(batch)
    for i in range(rows - 1, -1, -1):
        if i < rows - 1:
            np.matmul(s_inv[i], z[i + 1], out=rho)
            rho *= w
            z[i] += rho  # column nodes y_i = z_i + w S_i^-1 y_{i+1}
        np.multiply(g[i], z[i], out=rho)
        np.matmul(k_row[i], rho, out=rhs)
        q[i] += rhs  # row nodes x_i = K_i (rx_i + g y_i)
        x[i] += q[i]
        y[i] += z[i]
        np.abs(q[i], out=rhs)
        np.maximum(step_x, rhs.max(axis=0), out=step_x)
        np.abs(z[i], out=rhs)
        np.maximum(step_y, rhs.max(axis=0), out=step_y)
    return step_x, step_y


#: What `batched_nodes` hands its `visit` callable as vectors converge: their
#: indices into the batch (b,), and their row, column and memristor-NMOS node
#: voltages (b, R, C) (V).
NodeVisitor = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], None]


def batched_nodes(f: BatchedFactor, v_dac: np.ndarray, tol: float, max_iter: int = BATCH_MAX_ITER,
                  chunk: int | None = None, with_nodes: bool = False, workers: int = BATCH_WORKERS,
                  visit: NodeVisitor | None = None
                  ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray] | None, np.ndarray]:
    """Exact operating points of a batch: TIA input currents (B, C) (A), the
    row, column and memristor-NMOS node voltages (B, R, C) (V) when
    `with_nodes`, and each vector's count of steps (B,).

    Args:
        f: the factored tile (`batched_factor`).
        v_dac: (B, R) DAC outputs (V), each below f.a in magnitude.
        tol: row-node tolerance (V), plus BATCH_RTOL of each vector's largest
            |v|; column nodes converge to BATCH_RTOL of the vector's largest
            voltage at a TIA end (the currents' own scale).
        max_iter: steps before a vector that has not converged is an error.
        chunk: vectors solved together (default: BATCH_CHUNK_BYTES of work
            arrays, and at least one chunk per worker).
        workers: threads solving chunks side by side, the BLAS on one thread
            each meanwhile (`threadpoolctl`; restored after): numpy's
            elementwise work is single-threaded, and OpenBLAS's own threads
            stall on small products when other processes hold the cores.
        visit: called on the worker threads with the node voltages of the
            vectors that converge (`NodeVisitor`), so that what is computed
            from them (read power) needs no (B, R, C) arrays of the batch.
    """
    batch = v_dac.shape[0]
    rows, cols = f.g_m.shape
    most = chunk or max(1, BATCH_CHUNK_BYTES // ((4 * 8 + 2 * 4) * rows * cols))
    count = -(-batch // most)
    if chunk is None and workers > 1:
        count = -(-max(count, workers) // workers) * workers
    size = max(1, -(-batch // count))
    c = _RowWork(f)
    currents = np.empty((batch, cols))
    nodes = tuple(np.empty((batch, rows, cols)) for _ in range(3)) if with_nodes else None
    if nodes is not None:
        inner = visit

        def visit(index: np.ndarray, row: np.ndarray, col: np.ndarray, mid: np.ndarray) -> None:
            """Keep the converged vectors' nodes (and pass them on)."""
            for target, source in zip(nodes, (row, col, mid)):
                target[index] = source
            if inner is not None:
                inner(index, row, col, mid)
    steps = np.zeros(batch, dtype=np.int64)
    starts = list(range(0, batch, size))

    def run(start: int) -> None:
        """Solve the chunk of vectors from `start`."""
        _solve_chunk(f, c, v_dac, np.arange(start, min(batch, start + size)), tol, max_iter,
                     currents, visit, steps)

    run_chunks(run, starts, workers)
    return currents, nodes, steps


def run_chunks(run, starts: list[int], workers: int) -> None:
    """Call run(start) for every chunk start, on `workers` threads with the
    BLAS on one thread each meanwhile (`structured.blas_threads`, restored
    after): numpy's elementwise work is single-threaded, and OpenBLAS's own
    threads stall on small products when other processes hold the cores."""
    if workers > 1 and len(starts) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with blas_threads(1), ThreadPoolExecutor(min(workers, len(starts))) as pool:
            list(pool.map(run, starts))
    else:
        with blas_threads(1):
            for start in starts:
                run(start)


def _solve_chunk(f: BatchedFactor, c: _RowWork, v_dac: np.ndarray, index: np.ndarray, tol: float,
                 max_iter: int, currents: np.ndarray, visit: NodeVisitor | None, steps: np.ndarray) -> None:
    """Iterate the vectors `index` of v_dac (B, R) (V) to their operating
    points from zero (the first step is the small-signal solution);
    converged vectors leave the chunk (their mask) and are written into
    `currents` (A) and `steps`, their nodes handed to `visit`. The work arrays live in
    buffers allocated once (a fresh array per step would cost a page fault
    per 4 KiB): x, y and their compacted copies in float64, the corrections
    in float32."""
    rows, cols = f.g_m.shape
    cells = rows * cols
    buffers = [np.empty(cells * index.size) for _ in range(4)]
    corrections = [np.empty(cells * index.size, dtype=np.float32) for _ in range(2)]

    def view(k: int, count: int, pool: list[np.ndarray] = buffers) -> np.ndarray:
        """Buffer k of `pool` as an (R, C, count) array."""
        return pool[k][:cells * count].reshape(rows, cols, count)

    v = np.ascontiguousarray(v_dac[index].T)  # (R, b)
    limit_x = tol + BATCH_RTOL * np.abs(v).max(axis=0)
    limit_y = np.full(index.size, np.inf)
    order = [0, 1, 2, 3]  # buffers of x, y, and of their compacted copies
    x, y = view(0, index.size), view(1, index.size)
    x.fill(0.0)
    y.fill(0.0)
    previous = np.full(index.size, np.inf)
    for k in range(max_iter):
        count = index.size
        step_x, step_y = _refine(f, c, v, x, y, view(0, count, corrections), view(1, count, corrections))
        steps[index] += 1
        if k == 0:  # the small-signal solution: it sets the column nodes' scale
            limit_y = BATCH_RTOL * np.abs(y[-1]).max(axis=0) + 1e-300
            continue
        step = np.maximum(step_x / limit_x, step_y / limit_y)  # 1 = at tolerance
        finite = np.isfinite(previous) & (previous > 0)
        ratio = np.where(finite, step / np.where(finite, previous, 1.0), 1.0)
        estimate = np.where(ratio < 0.5, step * ratio / np.maximum(1.0 - ratio, 0.5), step)
        done = (step <= 1.0) | (estimate <= 1.0)
        previous = step  # the second step (the first one estimated from) also removes the first's rounding
        if done.any():
            currents[index[done]] = f.w_end * y[-1][:, done].T
            if visit is not None:
                _visit_nodes(f, c, x[:, :, done], y[:, :, done], visit, index[done])
            keep = ~done
            index, v, previous = index[keep], v[:, keep], previous[keep]
            limit_x, limit_y = limit_x[keep], limit_y[keep]
            if index.size == 0:
                return
            new_x, new_y = view(order[2], index.size), view(order[3], index.size)
            np.compress(keep, x, axis=2, out=new_x)
            np.compress(keep, y, axis=2, out=new_y)
            order = [order[2], order[3], order[0], order[1]]
            x, y = new_x, new_y
    raise CosimError(f"the batched Newton iteration did not converge in {max_iter} steps for "
                     f"{index.size} input vector(s); use nonlinear='newton' with method='splu' "
                     "(full Newton) or the spice engine")


def _visit_nodes(f: BatchedFactor, c: _RowWork, x: np.ndarray, y: np.ndarray, visit: NodeVisitor,
                 index: np.ndarray) -> None:
    """Hand the row, column and memristor-NMOS node voltages (V) of
    converged vectors (x, y in layout (R, C, b)) to `visit` as (b, R, C)."""
    m = _mid_node(f, c.g_m, c.t_half, x, y)
    visit(index, *(np.moveaxis(source, -1, 0) for source in (x, y, m)))


def _mid_node(f: BatchedFactor, g_m: np.ndarray, t_half: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Memristor-NMOS node voltages m (V) for row and column node voltages x, y
    (V), in their dtype: the smaller root of the KCL at m (`_cell_residuals`,
    which computes it in place on its hot path); g_m (S) and t_half = T/2 (S)
    broadcast against x."""
    half_beta = x.dtype.type(0.5 * f.beta)
    cc = g_m * x + y * x.dtype.type(f.beta * f.a) - (y * y) * half_beta
    return cc / (t_half + np.sqrt(t_half * t_half - half_beta * cc))


def solve_injections(f: BatchedFactor, rx: np.ndarray, ry: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row and column node voltages (R, C, B) (V) of the small-signal network
    of `f` (DACs at 0 V) for currents injected into its row nodes `rx` and
    column nodes `ry`, (R, C, B) (A): the sweep of `_refine` in float64 for any injection."""
    rows, cols, batch = rx.shape
    w = f.w
    q = np.empty_like(rx)
    z = np.empty_like(rx)
    rho = np.empty((cols, batch))
    for i in range(rows):
        np.matmul(f.k_row[i], rx[i], out=q[i])
        np.multiply(f.g_cell[i][:, None], q[i], out=rho)
        rho += ry[i]
        if i:
            rho += w * z[i - 1]
        np.matmul(f.s_inv[i], rho, out=z[i])
    for i in range(rows - 1, -1, -1):
        if i < rows - 1:
            np.matmul(f.s_inv[i], z[i + 1], out=rho)
            rho *= w
            z[i] += rho
        np.multiply(f.g_cell[i][:, None], z[i], out=rho)
        q[i] += f.k_row[i] @ rho
    return q, z


def linear_nodes(f: BatchedFactor, v_dac: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row and column node voltages (R, C, B) (V) of the small-signal network
    for DAC outputs (B, R) (V): each row's driver current g_driver v into
    its first row node (`solve_injections`)."""
    rows, cols = f.g_m.shape
    rx = np.zeros((rows, cols, v_dac.shape[0]))
    rx[:, 0, :] = f.g_driver * v_dac.T
    return solve_injections(f, rx, np.zeros_like(rx))


def cell_deviation(f: BatchedFactor, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Current (A) each exact cell carries from its row node to its column
    node beyond its small-signal conductance, g_m (x - m) - g_cell (x - y)
    (gmin left out), for row and column node voltages x, y (..., R, C) (V),
    in their dtype."""
    dtype = x.dtype
    g_m, g_cell = f.g_m.astype(dtype), f.g_cell.astype(dtype)
    t_half = ((f.g_m + f.beta * f.a + f.gmin) / 2.0).astype(dtype)
    m = _mid_node(f, g_m, t_half, x, y)
    return g_m * (x - m) - g_cell * (x - y)
