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
`_cell_injection`), and the tile reduces to its row and column nodes with
one exactly known nonlinear cell current each.

The iteration (`batched_nodes`) is a fixed point on that reduced system:
the linear network with each cell at its small-signal conductance (memristor
in series with the channel at Vds = 0), factored once per tile
(`BatchedFactor`: the row-chain inverses K_i and the Schur inverses of the
column-node sweep, both R dense C x C blocks), solved for the exact cells'
deviation from it. One step is two matrix products per row with every
vector of the chunk as a column (BLAS-3), and elementwise work on one row
of cells at a time (it stays in cache). The deviation is 1-10 % of a cell's
current, and what a step leaves is that times the share of it that
returns through the cells, so each step gains 2-3 digits with the seed
001 devices (1-12 kohm) and ~2 with seed 000's (50 ohm-1 kohm). Each
vector stops on its own (a per-vector convergence mask; converged vectors
leave the chunk), when its step, extrapolated by the step's contraction,
is below BATCH_RTOL of its scale (its largest input for the row nodes, its
largest voltage at a TIA end for the column nodes). gmin (1e-12 S from
each NMOS terminal to ground, as ngspice has it) is in the cell law.

The first step (the small-signal solution) runs its products in float32
(SINGLE_STEPS); the float64 steps after it undo that rounding.
Chunks of vectors run on BATCH_WORKERS threads, the BLAS on one thread each.
Everything is numpy (the BLAS numpy links), no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from cosim.core import peripherals
from cosim.core.errors import CosimError
from cosim.core.tile import TileSpec
from cosim.fast.chains import _chain_inverse
from cosim.fast.structured import blas_threads, schur_inverses
from cosim.fast.tia import tia_termination

#: Bytes of work arrays a chunk of vectors may hold (four (R, C, chunk) float64 arrays).
BATCH_CHUNK_BYTES = 192 * 2**20

#: Steps after which a vector that has not converged is an error.
BATCH_MAX_ITER = 60

#: Leading steps whose products run in float32 (`_Products`): the small-signal
#: one; with more, the first float64 step's removal of float32's rounding
#: costs a step of its own (no vector may end before it).
SINGLE_STEPS = 1

#: Relative tolerance of the node voltages (`batched_nodes`): a vector stops
#: when its next step, extrapolated from the last two, would move no node by
#: more than this of its scale (the currents then agree with a full Newton to
#: ~1e-12, the spec asks 1e-9).
BATCH_RTOL = 1e-10

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
        k_drive: (R, C) row-chain response to 1 V at the row's DAC (V/V).
        k_row32, s_inv32: k_row and s_inv in float32, for the first steps
            (`_iterate` with `single`).
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
    k_drive: np.ndarray
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
                         np.ascontiguousarray(k_row[:, :, 0] * g_driver), k_row.astype(np.float32),
                         s_inv.astype(np.float32))


class _RowWork:
    """Per-row constants as (C, 1) columns, so every op broadcasts over the chunk."""

    def __init__(self, f: BatchedFactor) -> None:
        self.g_m = f.g_m[:, :, None]
        self.g_cell = f.g_cell[:, :, None]
        t_half = (f.g_m + f.beta * f.a + f.gmin) / 2.0
        self.t_half = t_half[:, :, None]
        self.t_half_sq = (t_half * t_half)[:, :, None]


def _cell_injection(f: BatchedFactor, c: _RowWork, i: int, x: np.ndarray, y: np.ndarray,
                    rx: np.ndarray, ry: np.ndarray, work: np.ndarray) -> None:
    """Currents (C, B) (A) the exact cells of row i inject into their row
    nodes (rx) and column nodes (ry) beyond the small-signal cells, for row
    and column node voltages x, y (C, B) (V).

    KCL at the memristor-NMOS node m: g_m (x - m) = phi(m) - phi(y) + gmin m,
    a quadratic in m whose smaller root is m = cc / (T/2 + sqrt(T^2/4 - beta cc / 2)),
    cc = g_m x + phi(y), T = g_m + beta a + gmin. The cell draws I = g_m (x - m)
    from x and delivers I - gmin m to y; y also loses gmin y.
    """
    beta, a = f.beta, f.a
    cc, t = work[0], work[1]
    np.multiply(y, -0.5 * beta, out=t)  # phi(y) = y (beta a - beta y / 2)
    t += beta * a
    t *= y
    np.multiply(c.g_m[i], x, out=cc)
    cc += t
    np.multiply(cc, -0.5 * beta, out=t)
    t += c.t_half_sq[i]
    np.sqrt(t, out=t)
    t += c.t_half[i]
    np.divide(cc, t, out=t)  # m
    np.subtract(x, y, out=rx)  # the small-signal cell draws g_cell (x - y) ...
    rx *= c.g_cell[i]
    np.subtract(x, t, out=cc)  # ... the exact one I = g_m (x - m)
    cc *= c.g_m[i]
    rx -= cc
    np.add(y, t, out=ry)
    ry *= -f.gmin
    ry -= rx


class _Products:
    """The C x C by C x B products of one step: float64, or (`single`) the
    factor's float32 copies with the right-hand sides cast, for the first
    steps: what float32 leaves (~1e-6 of the correction) every later float64
    step takes away again (each step is the whole fixed-point map, not an
    update)."""

    def __init__(self, f: BatchedFactor, cols: int, batch: int, single: bool) -> None:
        self.k, self.s = (f.k_row32, f.s_inv32) if single else (f.k_row, f.s_inv)
        self.single = single
        if single:
            self.rhs = np.empty((cols, batch), dtype=np.float32)
            self.out = np.empty((cols, batch), dtype=np.float32)

    def __call__(self, blocks: np.ndarray, i: int, rhs: np.ndarray, out: np.ndarray) -> np.ndarray:
        """out = blocks[i] @ rhs (V or A), blocks the factor's k_row or s_inv."""
        if not self.single:
            return np.matmul(blocks[i], rhs, out=out)
        np.copyto(self.rhs, rhs, casting="same_kind")
        np.matmul(blocks[i], self.rhs, out=self.out)
        np.copyto(out, self.out)
        return out


def _iterate(f: BatchedFactor, c: _RowWork, v: np.ndarray, x: np.ndarray, y: np.ndarray,
             q: np.ndarray, z: np.ndarray, nonlinear: bool, single: bool = False
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One fixed-point step for a chunk, layout (R, C, B): the linear network
    solved for the DAC drive plus (when `nonlinear`) the exact cells'
    injections at the iterate (x, y) (V), its products in float32 when
    `single` (`_Products`). Returns the new (x, y) (written into q and z,
    whose old contents are scratch) and each vector's largest change of a
    row node and of a column node, (B,) each (V)."""
    rows, cols, batch = x.shape
    w = f.w
    mm = _Products(f, cols, batch, single)
    k_row, s_inv = mm.k, mm.s
    rx = np.zeros((cols, batch))
    ry = np.zeros((cols, batch))
    rho = np.empty((cols, batch))
    work = np.empty((2, cols, batch))
    g = c.g_cell
    for i in range(rows):
        if nonlinear:
            _cell_injection(f, c, i, x[i], y[i], rx, ry, work)
            rx[0] += f.g_driver * v[i]
            mm(k_row, i, rx, q[i])  # row nodes for the row injections alone
            np.multiply(g[i], q[i], out=rho)
            rho += ry
        else:  # the drive alone: K_i e_0 g_driver v_i
            np.multiply(f.k_drive[i][:, None], v[i], out=q[i])
            np.multiply(g[i], q[i], out=rho)
        if i:
            np.multiply(z[i - 1], w, out=work[1])  # no temporary: 8 C B bytes a row would be page faults
            rho += work[1]
        mm(s_inv, i, rho, z[i])
    step_x, step_y = np.zeros(batch), np.zeros(batch)
    delta = work[0]
    for i in range(rows - 1, -1, -1):
        if i < rows - 1:
            mm(s_inv, i, z[i + 1], rho)
            rho *= w
            z[i] += rho  # column nodes y_i = z_i + w S_i^-1 y_{i+1}
        np.multiply(g[i], z[i], out=rho)
        mm(k_row, i, rho, delta)
        q[i] += delta  # row nodes x_i = K_i (rx_i + g y_i)
        if not nonlinear:  # the first step: from zero, nothing to compare
            continue
        np.subtract(q[i], x[i], out=delta)
        np.abs(delta, out=delta)
        np.maximum(step_x, delta.max(axis=0), out=step_x)
        np.subtract(z[i], y[i], out=delta)
        np.abs(delta, out=delta)
        np.maximum(step_y, delta.max(axis=0), out=step_y)
    return q, z, step_x, step_y


def batched_nodes(f: BatchedFactor, v_dac: np.ndarray, tol: float, max_iter: int = BATCH_MAX_ITER,
                  chunk: int | None = None, with_nodes: bool = False, workers: int = BATCH_WORKERS
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
    """
    batch = v_dac.shape[0]
    rows, cols = f.g_m.shape
    most = chunk or max(1, BATCH_CHUNK_BYTES // (4 * 8 * rows * cols))
    count = -(-batch // most)
    if chunk is None and workers > 1:
        count = -(-max(count, workers) // workers) * workers
    size = max(1, -(-batch // count))
    c = _RowWork(f)
    currents = np.empty((batch, cols))
    nodes = tuple(np.empty((batch, rows, cols)) for _ in range(3)) if with_nodes else None
    steps = np.zeros(batch, dtype=np.int64)
    starts = list(range(0, batch, size))

    def run(start: int) -> None:
        """Solve the chunk of vectors from `start`."""
        _solve_chunk(f, c, v_dac, np.arange(start, min(batch, start + size)), tol, max_iter,
                     currents, nodes, steps)

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
                 max_iter: int, currents: np.ndarray, nodes: tuple[np.ndarray, ...] | None,
                 steps: np.ndarray) -> None:
    """Iterate the vectors `index` of v_dac (B, R) (V) to their operating
    points; converged vectors leave the chunk (their mask) and are written
    into `currents` (A), `nodes` (V) and `steps`. The four (R, C, b) work
    arrays live in four buffers allocated once (a fresh array per step would
    cost a page fault per 4 KiB)."""
    rows, cols = f.g_m.shape
    cells = rows * cols
    buffers = [np.empty(cells * index.size) for _ in range(4)]

    def view(k: int, count: int) -> np.ndarray:
        """Buffer k as an (R, C, count) array."""
        return buffers[k][:cells * count].reshape(rows, cols, count)

    v = np.ascontiguousarray(v_dac[index].T)  # (R, b)
    limit_x = tol + BATCH_RTOL * np.abs(v).max(axis=0)
    limit_y = np.full(index.size, np.inf)
    order = [0, 1, 2, 3]  # buffers of x, y, q, z
    x, y = view(0, index.size), view(1, index.size)
    x.fill(0.0)
    y.fill(0.0)
    previous = np.full(index.size, np.inf)
    for k in range(max_iter):
        count = index.size
        _, _, step_x, step_y = _iterate(f, c, v, x, y, view(order[2], count), view(order[3], count),
                                        nonlinear=k > 0, single=k < SINGLE_STEPS)
        order = [order[2], order[3], order[0], order[1]]  # the new x, y are in q's and z's buffers
        x, y = view(order[0], count), view(order[1], count)
        steps[index] += 1
        if k == 0:  # the linear solution: it sets the column nodes' scale
            limit_y = BATCH_RTOL * np.abs(y[-1]).max(axis=0) + 1e-300
            continue
        step = np.maximum(step_x / limit_x, step_y / limit_y)  # 1 = at tolerance
        finite = np.isfinite(previous) & (previous > 0)
        ratio = np.where(finite, step / np.where(finite, previous, 1.0), 1.0)
        estimate = np.where(ratio < 0.5, step * ratio / np.maximum(1.0 - ratio, 0.5), step)
        # no vector ends on a float32 step, and the first float64 step, which
        # removes float32's rounding, is not part of the contraction estimate
        done = ((step <= 1.0) | (estimate <= 1.0)) & (k >= SINGLE_STEPS)
        previous = step if k >= SINGLE_STEPS else np.full(index.size, np.inf)
        if done.any():
            currents[index[done]] = f.w_end * y[-1][:, done].T
            if nodes is not None:
                _store_nodes(f, c, x[:, :, done], y[:, :, done], nodes, index[done])
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


def _store_nodes(f: BatchedFactor, c: _RowWork, x: np.ndarray, y: np.ndarray,
                 nodes: tuple[np.ndarray, np.ndarray, np.ndarray], index: np.ndarray) -> None:
    """Write row, column and memristor-NMOS node voltages (V) of converged
    vectors (x, y in layout (R, C, b)) into `nodes` (B, R, C) at `index`."""
    cc = c.g_m * x + y * (f.beta * f.a - 0.5 * f.beta * y)
    m = cc / (c.t_half + np.sqrt(c.t_half_sq - 0.5 * f.beta * cc))
    for target, source in zip(nodes, (x, y, m)):
        target[index] = np.moveaxis(source, -1, 0)


def solve_injections(f: BatchedFactor, rx: np.ndarray, ry: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row and column node voltages (R, C, B) (V) of the small-signal network
    of `f` (DACs at 0 V) for currents injected into its row nodes `rx` and
    column nodes `ry`, (R, C, B) (A): the sweep of `_iterate` for any injection."""
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
    for DAC outputs (B, R) (V) (the first step of `batched_nodes`)."""
    v = np.ascontiguousarray(v_dac.T)
    x = np.zeros((f.g_m.shape[0], f.g_m.shape[1], v.shape[1]))
    y = np.zeros_like(x)
    new_x, new_y, _, _ = _iterate(f, _RowWork(f), v, x, y, np.empty_like(x), np.empty_like(x), nonlinear=False)
    return new_x, new_y


def cell_deviation(f: BatchedFactor, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Current (A) each exact cell carries from its row node to its column
    node beyond its small-signal conductance, g_m (x - m) - g_cell (x - y)
    (gmin left out), for row and column node voltages x, y (..., R, C) (V),
    in their dtype."""
    dtype = x.dtype
    beta, a = f.beta, f.a
    g_m, g_cell = f.g_m.astype(dtype), f.g_cell.astype(dtype)
    t_half = ((f.g_m + beta * a + f.gmin) / 2.0).astype(dtype)
    cc = g_m * x + y * dtype.type(beta * a) - (y * y) * dtype.type(0.5 * beta)
    m = cc / (t_half + np.sqrt(t_half * t_half - dtype.type(0.5 * beta) * cc))
    return g_m * (x - m) - g_cell * (x - y)
