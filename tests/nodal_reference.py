"""An independent reference for the tests: the crossbar's nodal equations
assembled and solved with scipy.sparse, written from docs/architecture.md's conventions
without any cosim code (access: none; wires > 0)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla


def crossbar_currents(g: np.ndarray, v: np.ndarray, r_wire: float, r_driver: float) -> np.ndarray:
    """Currents into the column TIAs (virtual grounds), (B, C) A."""
    rows, cols = g.shape
    _, col_v = crossbar_node_voltages(g, v, r_wire, r_driver)
    return col_v[:, rows - 1, :] / r_wire


def crossbar_node_voltages(g: np.ndarray, v: np.ndarray, r_wire: float,
                           r_driver: float) -> tuple[np.ndarray, np.ndarray]:
    """Row and column node voltages at every cell, each (B, R, C) V.

    Unknowns: row node (i, j) -> i*C + j, column node (i, j) -> R*C + i*C + j.
    Row i is fed by v_i through r_driver at (i, 0); neighbours on a row or a
    column are joined by r_wire; column j reaches ground (the TIA) from
    (R-1, j) through one more r_wire.
    """
    rows, cols = g.shape
    n = 2 * rows * cols
    gw, gd = 1.0 / r_wire, 1.0 / r_driver
    entries: list[tuple[int, int, float]] = []

    def conductance(a: int, b: int | None, value: float) -> None:
        entries.append((a, a, value))
        if b is not None:
            entries.append((b, b, value))
            entries.append((a, b, -value))
            entries.append((b, a, -value))

    row = lambda i, j: i * cols + j  # noqa: E731
    col = lambda i, j: rows * cols + i * cols + j  # noqa: E731
    for i in range(rows):
        conductance(row(i, 0), None, gd)
        for j in range(cols):
            conductance(row(i, j), col(i, j), g[i, j])
            if j + 1 < cols:
                conductance(row(i, j), row(i, j + 1), gw)
            if i + 1 < rows:
                conductance(col(i, j), col(i + 1, j), gw)
    for j in range(cols):
        conductance(col(rows - 1, j), None, gw)
    a, b, vals = zip(*entries)
    matrix = sp.csc_matrix((vals, (a, b)), shape=(n, n))
    rhs = np.zeros((n, v.shape[0]))
    for i in range(rows):
        rhs[row(i, 0)] = gd * v[:, i]
    solution = spla.splu(matrix).solve(rhs)
    nodes = solution.T.reshape(v.shape[0], 2, rows, cols)
    return nodes[:, 0], nodes[:, 1]
