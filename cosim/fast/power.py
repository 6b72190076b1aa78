"""Tile read power (W) by the fast solver, split into the parts of
`cosim.core.tile_power.PARTS` (devices, wires, drivers, TIA inputs).

Two ways, equal to rounding on linear tiles:

- `power_from_nodes` (`cosim.core.tile_power`): any solved operating point (the fast solver's node
  voltages, ngspice's or VACASK's), per input vector; the exact 1T1R value
  from the Newton operating point (`tile_power`).
- `admittance_parts`: a linear tile's input admittance matrix Y (R, R) (S)
  per part, so that P_part = v Y_part v^T: each batch at matmul cost
  (`quadratic_power`), and a batch's energy from its second moment
  sum_b v_b v_b^T alone (`moment_power`; `summed_power` gets the same sum
  without forming Y, for tiles whose R x R x C unit solutions would not fit).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from cosim.core.tile import TileSpec
from cosim.core.tile_power import PARTS, TilePower, as_batch, edge_drops, power_from_nodes
from cosim.fast.nodal import nodal_graph
from cosim.fast.structured import blas_threads, factor_structured
from cosim.fast.tia import tia_termination

if TYPE_CHECKING:
    from cosim.core.results import TileResult

__all__ = ["PARTS", "LinearNodes", "TilePower", "admittance_parts", "moment_power", "power_from_nodes",
           "quadratic_power", "row_model_power", "summed_power", "tile_power"]


class LinearNodes:
    """A linear tile's network factored once, solved for any DAC voltages.

    With wires (and R, C >= 2) the structured block factor
    (`cosim.fast.structured.factor_structured`, O(R C^3) once, O(R C^2) per
    vector); without, one sparse LU of the nodal network."""

    def __init__(self, spec: TileSpec, g_cell: np.ndarray) -> None:
        self.spec, self.g_cell = spec, g_cell
        self.factor = None
        self.graph = None
        if spec.r_wire > 0 and min(spec.rows, spec.cols) > 1:  # StructuredFactor is off for 1-wide tiles
            self.factor = factor_structured(g_cell, spec.r_wire, spec.r_driver, tia_termination(spec))
        else:
            self.graph = nodal_graph(spec, g_cell, with_nmos=False)
            lap = self.graph.laplacian.tocsc()
            nu = self.graph.n_unknown
            self.lap = lap
            import scipy.sparse.linalg as spla

            self.lu = spla.splu(lap[:nu, :nu].tocsc(), permc_spec="MMD_AT_PLUS_A") if nu else None

    def nodes(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row and column node voltages (B, R, C) (V) for DAC outputs v (B, R) (V)."""
        if self.factor is not None:
            return self.factor.drive(v)
        graph, lap = self.graph, self.lap
        nu = graph.n_unknown
        x = np.zeros((lap.shape[0], v.shape[0]))
        x[graph.source] = v.T
        if nu:
            x[:nu] = self.lu.solve(np.asarray(-(lap[:nu][:, graph.source] @ v.T)))
        return np.moveaxis(x[graph.row], -1, 0), np.moveaxis(x[graph.col], -1, 0)


def _chunk(spec: TileSpec) -> int:
    """Vectors per node solve: about 64 MiB of (R, C) node arrays."""
    return max(1, (64 * 2**20) // (8 * 6 * spec.rows * spec.cols))


def _unit_nodes(spec: TileSpec, g_cell: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row and column node voltages (R_in, R, C) (V) for 1 V on each row's DAC in turn."""
    return LinearNodes(spec, g_cell).nodes(np.eye(spec.rows))


def _factor_rows(moment: np.ndarray) -> np.ndarray:
    """U (K, R) with U^T U = M for a positive semidefinite M (R, R): a pivoted
    Cholesky (LAPACK dpstrf, K = its numerical rank; eigh is 200x slower here)."""
    from scipy.linalg import lapack

    m = 0.5 * (moment + moment.T)
    if not np.any(m):
        return np.zeros((0, m.shape[0]))
    c, piv, rank, info = lapack.dpstrf(m, lower=0)
    if info < 0:
        raise ValueError(f"dpstrf: argument {-info} is invalid")
    upper = np.triu(c)[:rank]  # P^T M P = upper^T upper, P from the 1-based pivots
    u = np.zeros((rank, m.shape[0]))
    u[:, piv - 1] = upper
    return u


def summed_power(spec: TileSpec, moment: np.ndarray, g_cell: np.ndarray | None = None) -> dict[str, float]:
    """Read power summed over a batch (W) from its second moment M = sum_b v_b^T v_b
    (R, R) (V^2) alone, exactly: M = U^T U (`_factor_rows`), and the read power
    is quadratic in v, so the batch's sum is the sum of the powers of U's K
    rows, K = rank(M) <= min(B, R):
    K node solves of the factored network, in chunks of bounded memory."""
    g = spec.conductance if g_cell is None else np.asarray(g_cell, dtype=float)
    u = _factor_rows(moment)  # (K, R) V
    out = {k: 0.0 for k in PARTS}
    if u.shape[0] == 0:
        return out
    network = LinearNodes(spec, g)
    step = _chunk(spec)
    for start in range(0, u.shape[0], step):
        part = u[start:start + step]
        row, col = network.nodes(part)
        power = power_from_nodes(spec, part, row, col, g_cell=g)
        for k in PARTS:
            out[k] += float(power.parts[k].sum())
    return out


def admittance_parts(spec: TileSpec, g_cell: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Input admittance matrix of each part of a linear tile, part -> (R, R) (S):
    P_part = v Y_part v^T for DAC voltages v (V); they sum to the tile's Y.

    Y_part = D^T diag(g) D over the part's edges, D the voltage drop of each
    edge for a unit voltage on each row. `g_cell` (R, C) (S) is each whole
    cell's conductance (default the devices': access 'none'; a 1T1R tile
    linearised by `cosim.fast.prepared.cell_conductance`). Memory 8 R^2 C
    bytes for the unit solutions (16 MiB at 128x128). The Gram products run
    on one BLAS thread: OpenBLAS's threads take 10-30x longer on these wide
    (R, R C) x (R C, R) products whenever another process holds a core."""
    g = spec.conductance if g_cell is None else np.asarray(g_cell, dtype=float)
    row, col = _unit_nodes(spec, g)
    eye = np.eye(spec.rows)
    out: dict[str, np.ndarray] = {}

    def gram(d: np.ndarray, gv: float | np.ndarray) -> np.ndarray:
        flat = d.reshape(spec.rows, -1)
        weights = np.broadcast_to(np.asarray(gv, dtype=float), d.shape[1:]).reshape(-1)
        return (flat * weights) @ flat.T

    with blas_threads(1):
        for key, edges in edge_drops(spec, eye, row, col).items():
            out[key] = sum((gram(d, gv) for d, gv in edges), np.zeros((spec.rows, spec.rows)))
        out["devices"] = gram(row - col, g)
    return {k: out[k] for k in PARTS}


def quadratic_power(y_parts: dict[str, np.ndarray], v_dac: np.ndarray) -> TilePower:
    """Read power of each vector of a linear tile, P = v Y v^T per part ((B,) W)."""
    some = next(iter(y_parts.values()))
    v = as_batch(v_dac, some.shape[0])
    parts = {k: np.einsum("bi,bi->b", v @ y_parts[k], v) for k in PARTS}
    return TilePower(sum(parts.values(), np.zeros(v.shape[0])), parts)


def moment_power(y_parts: dict[str, np.ndarray], moment: np.ndarray) -> dict[str, float]:
    """Summed read power of a batch (W, summed over its vectors) from its second
    moment M = sum_b v_b^T v_b (R, R) (V^2): trace(Y_part M) per part."""
    return {k: float(np.sum(y_parts[k] * moment)) for k in PARTS}


def row_model_power(spec: TileSpec, v_sq_sum: np.ndarray, g_cell: np.ndarray | None = None) -> dict[str, float]:
    """Summed read power of a batch (W) from sum_b v_b^2 per row (R,) (V^2), without wires.

    Each row is one node behind its driver and every column sits at the TIA's
    virtual ground: row i takes v_i^2 g_d G_i / (g_d + G_i), G_i = sum_j g_ij,
    the device share G_i/(g_d + G_i) of it and the driver the rest. Exact for
    r_wire = 0 with an ideal TIA; with wires it leaves out their IR drop
    (`admittance_parts` has it), at O(R C) cost per tile."""
    g = spec.conductance if g_cell is None else np.asarray(g_cell, dtype=float)
    g_row = g.sum(axis=1)
    s = np.asarray(v_sq_sum, dtype=float)
    if spec.r_driver > 0:
        g_d = 1.0 / spec.r_driver
        share = g_d / (g_d + g_row)
        devices = float(np.sum(s * g_row * share * share))
        drivers = float(np.sum(s * g_d * (1.0 - share) ** 2))
    else:
        devices, drivers = float(np.sum(s * g_row)), 0.0
    return {"devices": devices, "wires": 0.0, "drivers": drivers, "tia_input": 0.0}


def tile_power(spec: TileSpec, v_dac: np.ndarray, *, exact_access: bool = True) -> TilePower:
    """Read power of `spec` per DAC output vector (B, R) (V), by the fast solver.

    access 'none': the admittance matrices (`admittance_parts`). access
    'nmos': the exact level-1 operating point (`cosim.fast.prepared.prepare`,
    nonlinear 'newton'), or with `exact_access=False` the small-signal
    linearised tile (cell = device + triode resistance) through its admittance."""
    from cosim.fast.prepared import cell_conductance, choose_method, prepare

    v = as_batch(v_dac, spec.rows)
    if spec.access == "none":
        return quadratic_power(admittance_parts(spec), v)
    if not exact_access:
        return quadratic_power(admittance_parts(spec, cell_conductance(spec)), v)
    tile = prepare(spec, nonlinear="newton", method=choose_method(spec, v.shape[0]))
    row, col, mid = tile.node_voltages(v)
    return power_from_nodes(spec, v, row, col, mid)


#: Vectors whose power `solve_with_power` computes at once: the temporaries of
#: `power_from_nodes` (about ten (b, R, C) arrays) stay a few MiB a thread.
POWER_PIECE = 32


def solve_with_power(spec: TileSpec, voltages: np.ndarray) -> tuple["TileResult", TilePower]:
    """`cosim.fast.prepared.solve_fast` of `spec` at its exact operating point
    (1T1R: nonlinear 'newton') and the read power of every vector from the same
    solve: one prepared tile, one batched solve whose node voltages give both
    the TIA currents (A) and, on the solver's threads as vectors converge,
    the power parts (W).
    Tiles the batched solver does not take (no wires, inputs beyond the triode
    range) are solved and their power computed separately (`tile_power`)."""
    import time

    from cosim.core.drive import dac_output
    from cosim.fast.batched_newton import batched_nodes
    from cosim.fast.newton import NEWTON_VTOL
    from cosim.fast.prepared import NewtonTile, fast_result, prepare

    start = time.perf_counter()
    v = dac_output(spec, voltages)
    tile = prepare(spec, nonlinear="newton")
    if isinstance(tile, NewtonTile) and tile.takes_batched(v):
        power = TilePower(np.empty(v.shape[0]), {k: np.empty(v.shape[0]) for k in PARTS})

        def visit(index: np.ndarray, row: np.ndarray, col: np.ndarray, mid: np.ndarray) -> None:
            """The read power of the vectors that converged, POWER_PIECE at a time."""
            for first in range(0, index.size, POWER_PIECE):
                piece = slice(first, first + POWER_PIECE)
                part = power_from_nodes(spec, v[index[piece]], row[piece], col[piece], mid[piece])
                power.total[index[piece]] = part.total
                for key in PARTS:
                    power.parts[key][index[piece]] = part.parts[key]

        current = batched_nodes(tile.factor, v, NEWTON_VTOL, visit=visit)[0]
    else:
        current = tile.currents(v)
        power = tile_power(spec, v)
    return fast_result(spec, current, start), power
