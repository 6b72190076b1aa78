"""Tridiagonal wire chains in closed form: pivots, inverses and the column-node
blocks a row leaves once its chain is eliminated (S).
"""

from __future__ import annotations

import numpy as np

#: Largest attenuation exponent along a row chain for which the chain inverse
#: is built from two exponentials per node (beyond it, one per entry).
_LOG_SAFE = 600.0


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


def _chain_inverse(h: np.ndarray, w: float, dense: bool = True
                   ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray, np.ndarray | None]:
    """Inverses K of the tridiagonal chains of `_chain_excess` (h: (n, m)).

    K is semiseparable: ``K_jk = K_jj * prod_{l=j+1..k} w / (psi_l + w)``
    for k >= j, symmetric. With lam_k = -sum_{l<=k} log1p(psi_l / w) this is
    ``K_jk = left_j * right_k`` (j <= k), left = K_jj e^{-lam}, right = e^{lam}.

    Returns:
        left, right (n, m), or (None, None) when e^{-lam} would overflow
        (very long, strongly damped chains); side (n, m) = 1/K_jj - h_j,
        what the chain adds to node j's own conductance (S); and the dense
        K (n, m, m) only in the overflow case (from e^{-|lam_j - lam_k|},
        which underflows to 0 instead), and only when `dense` (else None:
        a caller that only wants the two-exponential form is told it
        overflows without paying n m^2 for K).
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
    if not dense:
        return None, None, side, None
    gap = np.abs(lam[:, :, None] - lam[:, None, :])
    first = np.minimum.outer(np.arange(m), np.arange(m))
    return None, None, side, k_diag[:, first] * np.exp(-gap)


def _chain_parts(g: np.ndarray, g_wire: float, g_driver: float | None, dense: bool = True) -> tuple:
    """(first, free, extra, left, right, side, k) of the row chains of `g`:
    `first` the first free row node (1 when r_driver = 0 pins node 0), `free`
    the conductances of the free nodes' cells, `extra` what ties the first
    free node to its source (driver, or the wire to the pinned node), the
    rest from `_chain_inverse` of free + extra (S, ohm; `dense` passed on)."""
    first = 0 if g_driver is not None else 1
    free = g[:, first:]
    extra = np.zeros_like(free)
    if free.shape[1] > 0:
        extra[:, 0] = g_driver if g_driver is not None else g_wire
    left, right, side, k = _chain_inverse(free + extra, g_wire, dense) if free.shape[1] > 0 else (None,) * 4
    return first, free, extra, left, right, side, k


def row_vectors(g: np.ndarray, g_wire: float, g_driver: float | None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """The blocks of `_row_blocks` as vectors, without building them: each
    row's D (C, C) is a_j b_k above the diagonal (j < k; its mirror below)
    and diag_j on it, so that a sweep can write one row's block where it
    needs it. Returns (a, b, diag, u) (n, C) (S), or None where a chain's
    inverse is only available dense (`_chain_inverse`'s overflow case)."""
    parts = _chain_parts(g, g_wire, g_driver, dense=False)
    return None if parts[3] is None else _vectors(g, parts)


def _vectors(g: np.ndarray, parts: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`row_vectors` from `_chain_parts` whose chains have their two-exponential form."""
    first, free, extra, left, right, side, _ = parts
    a, b, diag, u = (np.zeros(g.shape) for _ in range(4))
    a[:, first:] = -(free * left)  # -(G K G)_jk = a_j b_k for j <= k
    b[:, first:] = free * right
    # Diagonal without cancellation: g - g^2 K_jj = g K_jj (1/K_jj - g).
    diag[:, first:] = free * (left * right) * (extra + side)
    u[:, first:] = extra[:, :1] * free * (left[:, :1] * right)
    if first == 1:
        diag[:, 0] = g[:, 0]
        u[:, 0] = g[:, 0]
    return a, b, diag, u


def _row_blocks(g: np.ndarray, g_wire: float, g_driver: float | None,
                upper_only: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Column-node blocks of rows after their row chains are eliminated.

    Args:
        g: (n, C) cell conductances of n rows (S).
        g_wire: wire segment conductance (S), finite.
        g_driver: driver conductance (S), or None when the DAC drives node
            (i, 0) directly (r_driver = 0: that node is pinned to v_i).
        upper_only: only the upper triangle of D is needed (LAPACK's
            upper Cholesky reads nothing else); the lower holds other values.

    Returns:
        D (n, C, C): each row's cell conductances seen from its column nodes,
        diag(g) - G K G (S; column wires not included); u (n, C): the current
        injected into each column node per volt of the row's input (S).
    """
    n, cols = g.shape
    parts = _chain_parts(g, g_wire, g_driver)
    first, free, extra, left, right, side, k = parts
    if left is not None:  # the two-exponential form: D is a b^T above the diagonal
        a, b, diag, u = _vectors(g, parts)
        d = np.empty((n, cols, cols))
        np.multiply(a[:, :, None], b[:, None, :], out=d)  # valid for j <= k
        if not upper_only:
            upper = np.triu(np.ones((cols, cols), dtype=bool))
            d = np.where(upper, d, d.transpose(0, 2, 1))
        d[:, np.arange(cols), np.arange(cols)] = diag
        return d, u
    d = np.zeros((n, cols, cols))
    u = np.zeros((n, cols))
    m = free.shape[1]
    if m > 0:  # the dense chain inverses
        block = d[:, first:, first:]
        np.negative(free[:, :, None] * k * free[:, None, :], out=block)
        k_diag, k_col0 = k[:, np.arange(m), np.arange(m)], k[:, :, 0]
        block[:, np.arange(m), np.arange(m)] = free * k_diag * (extra + side)
        u[:, first:] = extra[:, :1] * free * k_col0
    if first == 1:
        d[:, 0, 0] = g[:, 0]
        u[:, 0] = g[:, 0]
    return d, u
