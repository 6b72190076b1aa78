"""Pair kernels of a 1T1R tile's Volterra form from single-row solves (the
construction that bench/corrected_volterra.py's table 2 measures; a
research tool, not yet a solver path).

Each row r alone at Chebyshev amplitudes a gives its exact state S_r(a)
(row and column node voltages of every cell) and its own response; both are
fitted as polynomials in a. Two rows i, k interact through the cells'
nonlinear excess d (`batched_newton.cell_deviation`): to first order in the
network's response, their interaction current at the TIAs is
H . [d(S_i + S_k) - d(S_i) - d(S_k)], H the small-signal cell-to-TIA
transfer (`to_columns` of `cosim.fast.corrected`). Off row k, S_k is small,
so d is expanded around S_i in powers of S_k (gradient and Hessian of d at
S_i(a), fitted in a); on row k the roles swap. The coefficients of v_i v_k
(with all of H) and of v_i^2 v_k (with H's diagonal, which measured better
than all of H there) are N x N kernels per column whose diagonals are free
(the own-row terms hold them). `low_rank` compresses each column's kernel,
which is what an evaluation in a few matmuls needs (`evaluation_cost`).
"""

from __future__ import annotations

import time

import numpy as np

from cosim.fast.batched_newton import BatchedFactor, batched_nodes, cell_deviation, solve_injections
from cosim.fast.newton import NEWTON_VTOL
from fast_solver import best_time

#: Finite-difference step of the cell law's derivatives (V).
STEP = 1e-4


def _fit(pinv: np.ndarray, values: np.ndarray, powers: int) -> np.ndarray:
    """Coefficients of a^1..a^powers, (powers, rows, ...), of values (rows, amplitudes, ...)."""
    return np.einsum("pa,ka...->pk...", pinv[:powers], values)


def _derivatives(factor: BatchedFactor, x: np.ndarray, y: np.ndarray) -> tuple[list, list]:
    """Gradient [d_x, d_y] and Hessian [d_xx, d_yy, d_xy] of the cell excess
    at node voltages x, y (V), central differences (S, S/V)."""
    def d(dx: float, dy: float) -> np.ndarray:
        return cell_deviation(factor, x + dx, y + dy)

    e, centre = STEP, d(0.0, 0.0)
    gradient = [(d(e, 0.0) - d(-e, 0.0)) / (2 * e), (d(0.0, e) - d(0.0, -e)) / (2 * e)]
    hessian = [(d(e, 0.0) - 2 * centre + d(-e, 0.0)) / e ** 2, (d(0.0, e) - 2 * centre + d(0.0, -e)) / e ** 2,
               (d(e, e) - d(e, -e) - d(-e, e) + d(-e, -e)) / (4 * e * e)]
    return gradient, hessian


def probe_kernels(factor: BatchedFactor, transfer: np.ndarray, degree: int = 7
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, float]]:
    """Own-row coefficients (degree, N, C) of v_r^1..v_r^degree beyond v @ T,
    the pair kernels S (C, N, N) of v_i v_k / 2 and K (C, N, N) of v_i^2 v_k
    (zero diagonals), from N (degree + 2) single-row exact solves; and the
    seconds of each phase."""
    n, cols = transfer.shape
    times: dict[str, float] = {}
    start = time.perf_counter()
    count = degree + 2
    amps = 0.3 * np.cos(np.pi * (np.arange(count) + 0.5) / count)
    probes = np.zeros((n * count, n))
    probes[np.arange(n * count), np.repeat(np.arange(n), count)] = np.tile(amps, n)
    current, (x, y, _), _ = batched_nodes(factor, probes, NEWTON_VTOL, with_nodes=True)
    times["single-row solves"] = time.perf_counter() - start
    start = time.perf_counter()
    current, x, y = current.reshape(n, count, cols), x.reshape(n, count, n, cols), y.reshape(n, count, n, cols)
    pinv = np.linalg.pinv(np.vander(amps, degree + 1, increasing=True)[:, 1:])
    own = _fit(pinv, current - amps[None, :, None] * transfer[:, None, :], degree)
    gradient, hessian = _derivatives(factor, x, y)
    _, hessian_at_zero = _derivatives(factor, np.zeros((n, cols)), np.zeros((n, cols)))
    grad = [_fit(pinv, part, 2) for part in gradient]  # the excess vanishes to first order at 0
    hess = [_fit(pinv, part - zero, 2) for part, zero in zip(hessian, hessian_at_zero)]
    state = [_fit(pinv, x, 2), _fit(pinv, y, 2)]
    del x, y, gradient, hessian
    times["fits and cell derivatives"] = time.perf_counter() - start
    start = time.perf_counter()
    probe = np.zeros((n, cols, cols))
    probe[n - 1, np.arange(cols), np.arange(cols)] = factor.w_end
    adj_x, adj_y = solve_injections(factor, np.zeros_like(probe), probe)
    h_full = (adj_y - adj_x).reshape(n * cols, cols)
    h_diag = h_full.reshape(n, cols, cols)[:, np.arange(cols), np.arange(cols)]
    kernels = {pq: _pair_kernel(pq, grad, hess, state, h_full if pq == (0, 0) else h_diag) for pq in
               ((0, 0), (1, 0), (0, 1))}
    rows = np.arange(n)
    pair = np.moveaxis(kernels[0, 0] + kernels[0, 0].transpose(1, 0, 2), -1, 0) / 2
    cubic = np.moveaxis(kernels[1, 0] + kernels[0, 1].transpose(1, 0, 2), -1, 0) / 2
    for kernel in (pair, cubic):
        kernel[:, rows, rows] = 0.0
    times["kernels"] = time.perf_counter() - start
    return own, pair, cubic, times


def _pair_kernel(pq: tuple[int, int], grad: list, hess: list, state: list, h: np.ndarray,
                 block: int = 16) -> np.ndarray:
    """Coefficient (N_i, N_k, C) of a^(p+1) b^(q+1) in the interaction of row
    i at amplitude a with row k at b; `h` is all of H (N C, C) or its
    diagonal (N, C). Rows i in blocks (memory: block N^2 C float64)."""
    p, q = pq
    n, cols = state[0].shape[1], state[0].shape[3]
    rows = np.arange(n)
    out = np.zeros((n, n, cols))
    for i0 in range(0, n, block):
        part = slice(i0, i0 + block)
        # every cell: d's slope at S_i (power p) times S_k (power q), plus the Hessian's S_k^2 term
        t = sum(grad[c][p][part][:, None] * state[c][q][None] for c in (0, 1))
        if q == 1:
            kx, ky = state[0][0][None], state[1][0][None]
            t = t + 0.5 * (hess[0][p][part][:, None] * kx * kx + hess[1][p][part][:, None] * ky * ky
                           + 2 * hess[2][p][part][:, None] * kx * ky)
        # cells on row k: d's slope at S_k (power q) times S_i (power p) there
        on_k = sum(grad[c][q][rows, rows][None] * state[c][p][part][:, rows, :] for c in (0, 1))
        if p == 1:
            ix, iy = state[0][0][part][:, rows, :], state[1][0][part][:, rows, :]
            on_k = on_k + 0.5 * (hess[0][q][rows, rows][None] * ix * ix + hess[1][q][rows, rows][None] * iy * iy
                                 + 2 * hess[2][q][rows, rows][None] * ix * iy)
        t[:, rows, rows, :] = on_k
        if h.ndim == 2 and h.shape[0] == n * cols:
            out[part] = (t.reshape(-1, n * cols) @ h).reshape(-1, n, cols)
        else:
            out[part] = np.einsum("ikaj,aj->ikj", t, h)
    return out


def low_rank(kernel: np.ndarray, rank: int, sweeps: int = 25) -> np.ndarray:
    """Rank-`rank` form of each column's kernel (C, N, N) whose diagonal is
    free: a truncated SVD, the diagonal refilled from it, `sweeps` times."""
    work = kernel.copy()
    index = np.arange(kernel.shape[1])
    for _ in range(sweeps):
        u, s, vt = np.linalg.svd(work)
        approx = np.einsum("jim,jm,jmk->jik", u[:, :, :rank], s[:, :rank], vt[:, :rank])
        work[:, index, index] = approx[:, index, index]
    return approx


def volterra_currents(v: np.ndarray, transfer: np.ndarray, own: np.ndarray, pair: np.ndarray,
                      cubic: np.ndarray) -> np.ndarray:
    """Column currents (B, C) (A) of the Volterra form for inputs v (B, N) (V):
    v @ T, the own rows' powers, the pair kernels, each kernel's diagonal
    taken back out (the own-row terms hold it). Dense: a reference, not fast."""
    base = v @ transfer + sum((v ** (p + 1)) @ own[p] for p in range(own.shape[0]))
    d_pair, d_cubic = np.einsum("jii->ij", pair), np.einsum("jii->ij", cubic)
    return (base + 0.5 * (np.einsum("bi,jik,bk->bj", v, pair, v) - (v ** 2) @ d_pair)
            + np.einsum("bi,jik,bk->bj", v ** 2, cubic, v) - (v ** 3) @ d_cubic)


def evaluation_cost(n: int, rank: int, batch: int = 1000, degree: int = 7, seed: int = 0) -> dict:
    """Seconds of the rank-`rank` form for `batch` vectors (float32, random
    coefficients of the right shapes; one thread of elementwise work) against
    the ideal matmul v @ G (float64): v @ [T, U, R], v^2 @ [F_2, L],
    [v^3 .. v^degree] @ F, then sum_m +-(v.U_m)^2 + (v^2.L_m)(v.R_m)."""
    rng = np.random.default_rng(seed)
    v = rng.uniform(-0.3, 0.3, (batch, n))
    g = rng.uniform(1e-4, 1e-3, (n, n))
    first = rng.standard_normal((n, (1 + 2 * rank) * n)).astype(np.float32)
    square = rng.standard_normal((n, (1 + rank) * n)).astype(np.float32)
    powers = rng.standard_normal(((degree - 2) * n, n)).astype(np.float32)
    half = rank // 2  # pair factors of either sign

    def evaluate() -> np.ndarray:
        x = v.astype(np.float32)
        x2 = x * x
        p1, p2 = x @ first, x2 @ square
        higher = [x2 * x]
        for _ in range(degree - 3):
            higher.append(higher[-1] * x)
        out = p1[:, :n] + p2[:, :n] + np.concatenate(higher, axis=1) @ powers
        factors = p1[:, n:(1 + rank) * n]
        np.multiply(factors, factors, out=factors)
        left = p2[:, n:]
        np.multiply(left, p1[:, (1 + rank) * n:], out=left)
        factors, left = factors.reshape(batch, rank, n), left.reshape(batch, rank, n)
        out += factors[:, :half].sum(axis=1) - factors[:, half:].sum(axis=1) + left.sum(axis=1)
        return out

    form_s, ideal_s = best_time(evaluate, 20), best_time(lambda: v @ g, 20)
    return {"n": n, "rank": rank, "batch": batch, "form_s": form_s, "ideal_s": ideal_s, "ratio": form_s / ideal_s}
