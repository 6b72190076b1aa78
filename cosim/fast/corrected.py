"""The corrected fast path of 1T1R tiles: the small-signal transfer matrix
plus one or two batched correction terms for the access NMOS's
nonlinearity, far cheaper than the exact operating point and within 1e-4
of it (docs/validation.md; bench/fast_solver.py).

With the level-1 law of `cosim.fast.batched_newton` each cell's exact
current is a closed form of its row and column node voltages x, y. So, per
batch (`CorrectedTile.currents`):

1. cell voltages from a precomputed input-to-cell map: x0, y0 = v @ A_x,
   v @ A_y, the small-signal network's node voltages per volt on each row
   (R x R C each, float32);
2. the cell-current error d = I(x0, y0) - g_cell (x0 - y0) (the exact cell
   against the small-signal one, elementwise) carried to the columns through
   the cell-to-column transfer H (R C x C, float32: the TIA currents per amp
   a cell pushes from its row node into its column node; by reciprocity the
   node voltages of C adjoint solves):

       current = v @ T + d @ H.

   With `terms=2` (the default) the error is taken once more where it
   moves the node voltages through its own row line and its own column
   line (each line's chain with the other lines held: the row chains'
   inverses K_i and the column chains' K_j, two batched products per line),
   which removes most of what the first term leaves for seed 000's 50 ohm
   devices (2e-4 -> 3e-5 of the largest current at 128 x 128).

The first term is the fixed-point iteration of `batched_nodes` stopped
after one step, its node voltages read from the maps. The maps take
20 R^2 C bytes in float32 (42 MiB at 128 x 128: a tool for tiles and small
networks, not for a whole ResNet's 1425 tiles) and one sweep with R
right-hand sides and one with C to build; every vector then costs about
five R x C x C products' worth of work.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from cosim.core.tile import TileSpec
from cosim.fast.batched_newton import (
    BATCH_WORKERS,
    BatchedFactor,
    batched_nodes,
    cell_deviation,
    chain_inverses,
    linear_nodes,
    run_chunks,
    solve_injections,
)
from cosim.fast.newton import NEWTON_VTOL
from cosim.fast.structured import blas_threads

#: Bytes of float32 work arrays one chunk of vectors may hold (sets the default chunk).
CORRECTED_CHUNK_BYTES = 8 * 2**20

CORRECTION_TERMS = (1, 2)


def corrected_bytes(rows: int, cols: int, terms: int = 2) -> int:
    """Memory (bytes) of one CorrectedTile's maps (float32)."""
    return 4 * (3 * rows * rows * cols + (rows * cols * cols + cols * rows * rows if terms == 2 else 0))


@dataclass(frozen=True)
class CorrectedTile:
    """A 1T1R tile read by the corrected fast path (see the module docstring).

    Attributes:
        spec, access ('level-1 corrected'), method ('corrected'),
        precompute_s: as `cosim.fast.prepared.FastTile`.
        factor: the small-signal network and the cell law (BatchedFactor).
        transfer: (R, C) small-signal transfer matrix (S).
        map_x, map_y: (R, R C) float32 row and column node voltages of every
            cell per volt on each row (V/V), cells row-major.
        to_columns: (R C, C) float32 TIA currents per amp of cell-current
            error (A/A).
        k_row, k_col: float32 row-chain (R, C, C) and column-chain (C, R, R)
            inverses (ohm) of the second term, or None with one term.
        terms: 1 or 2 correction terms.
    """

    spec: TileSpec
    access: str
    method: str
    precompute_s: float
    factor: BatchedFactor
    transfer: np.ndarray
    map_x: np.ndarray
    map_y: np.ndarray
    to_columns: np.ndarray
    k_row: np.ndarray | None = None
    k_col: np.ndarray | None = None
    terms: int = 2
    mode: ClassVar[str] = "corrected"

    def currents(self, v_dac: np.ndarray, backend: str = "numpy", chunk: int | None = None,
                 device: str | None = None, workers: int = BATCH_WORKERS) -> np.ndarray:
        """Column currents (B, C) (A) for DAC outputs (B, R) (V): v @ T plus
        the correction terms, in chunks of `chunk` vectors on `workers`
        threads (numpy; `backend` and `device` are accepted for the FastTile
        interface)."""
        v = np.asarray(v_dac, dtype=float)
        v = v[None, :] if v.ndim == 1 else v
        rows, cols = self.spec.rows, self.spec.cols
        out = v @ self.transfer
        chunk = chunk or max(1, CORRECTED_CHUNK_BYTES // (4 * 6 * rows * cols))

        def run(start: int) -> None:
            """Add the correction of the vectors from `start`."""
            part = v[start:start + chunk].astype(np.float32)
            x = (part @ self.map_x).reshape(-1, rows, cols)
            y = (part @ self.map_y).reshape(-1, rows, cols)
            if self.terms == 2:
                error = cell_deviation(self.factor, x, y)
                # each line's own feedback: x_i -= K_i d_i (row chains), y_j += K_j d_j (column chains)
                x -= np.matmul(self.k_row, error.transpose(1, 2, 0)).transpose(2, 0, 1)
                y += np.matmul(self.k_col, error.transpose(2, 1, 0)).transpose(2, 1, 0)
            error = cell_deviation(self.factor, x, y).reshape(-1, rows * cols)
            out[start:start + chunk] += error @ self.to_columns

        run_chunks(run, list(range(0, v.shape[0], chunk)), workers)
        return out

    def node_voltages(self, v_dac: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Row-line, column-line and memristor-NMOS node voltages (B, R, C)
        (V): the exact operating point (`batched_nodes`), which the
        corrected currents approximate."""
        v = np.asarray(v_dac, dtype=float)
        v = v[None, :] if v.ndim == 1 else v
        return batched_nodes(self.factor, v, NEWTON_VTOL, with_nodes=True)[1]


def corrected_tile(spec: TileSpec, factor: BatchedFactor, terms: int = 2, start: float | None = None
                   ) -> CorrectedTile:
    """Build the maps of `CorrectedTile` from the tile's batched factor
    (`batched_newton.batched_factor`), the BLAS on one thread; `start`
    (perf_counter s) dates the preparation (default now)."""
    if terms not in CORRECTION_TERMS:
        raise ValueError(f"terms must be 1 or 2, got {terms!r}")
    start = time.perf_counter() if start is None else start
    with blas_threads(1):
        return _corrected_tile(spec, factor, terms, start)


def _corrected_tile(spec: TileSpec, factor: BatchedFactor, terms: int, start: float) -> CorrectedTile:
    rows, cols = spec.rows, spec.cols
    x, y = linear_nodes(factor, np.eye(rows))  # (R, C, R): per volt on each row
    transfer = factor.w_end * y[rows - 1].T.copy()
    map_x = np.ascontiguousarray(np.moveaxis(x, -1, 0).reshape(rows, rows * cols), dtype=np.float32)
    map_y = np.ascontiguousarray(np.moveaxis(y, -1, 0).reshape(rows, rows * cols), dtype=np.float32)
    probe = np.zeros((rows, cols, cols))
    probe[rows - 1, np.arange(cols), np.arange(cols)] = factor.w_end  # adjoint of each TIA current
    adj_x, adj_y = solve_injections(factor, np.zeros_like(probe), probe)
    to_columns = np.ascontiguousarray((adj_y - adj_x).reshape(rows * cols, cols), dtype=np.float32)
    k_row = k_col = None
    if terms == 2:
        k_row = factor.k_row.astype(np.float32)
        ends = np.zeros((cols, rows))
        ends[:, -1] = factor.w_end  # the last segment into the TIA (chain_inverses adds w per link)
        k_col = chain_inverses(factor.g_cell.T + ends, factor.w).astype(np.float32)
    return CorrectedTile(spec, "level-1 corrected", "corrected", time.perf_counter() - start, factor,
                         transfer, map_x, map_y, to_columns, k_row, k_col, terms)
