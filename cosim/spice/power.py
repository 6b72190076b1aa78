"""Tile read power (W) and read energy (J) from SPICE output vectors, for
ngspice and VACASK alike.

The power delivered by the row drivers is sum_i v_i * I_i with I_i the
current each DAC source delivers (ngspice: the branch current of the DAC's
B-source, `i(b.xdac_r{i}.bdac)`; VACASK: the output flow of its DAC module,
`v(xdac_r{i}.q.flow(out))`), v_i its output voltage. The parts (wires,
drivers, TIA inputs) come from the node voltages of the same run
(`cosim.core.tile_power`), the devices from the memristor-NMOS nodes in `.op`
and as the rest in `.tran`. Everything here takes a run's vectors
(name -> values, ngspice names: `Plot.vectors`), so any runner that yields
them (a subprocess, an in-process ngspice, VACASK) can use it; the runs
themselves are `cosim.engines.solve_spice(..., save_all=True)`
(`cosim.analysis.read_power.spice_power`, `spice_read_energy`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from cosim.core.errors import CosimError, InputError
from cosim.core.tile import TileSpec
from cosim.core.tile_power import PARTS, TilePower, edge_drops, power_from_nodes
from cosim.spice.circuit import Nodes

Vectors = Mapping[str, np.ndarray]


def dac_current_name(row: int, spice: str) -> tuple[str, float]:
    """(vector name, sign) of the current row `row`'s DAC delivers into the tile (A):
    current = sign * vector. ngspice's source branch current flows into its + pin."""
    if spice.startswith("ngspice"):
        return f"i(b.xdac_r{row}.bdac)", -1.0
    if spice == "vacask":
        return f"v(xdac_r{row}.q.flow(out))", -1.0
    raise InputError(f"unknown SPICE engine {spice!r}; use ngspice or vacask")


def _get(vectors: Vectors, name: str) -> np.ndarray:
    try:
        return np.asarray(vectors[name], dtype=float)
    except KeyError:
        raise CosimError(f"the SPICE run did not save {name}; run the tile with every vector saved "
                         "(save_all=True)") from None


def node_arrays(spec: TileSpec, vectors: Vectors, mid: bool = False
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """DAC outputs (T, R) and row, column (and 1T1R memristor-NMOS) node
    voltages (T, R, C) (V) of one analysis (T = 1 for `.op`, the time points of `.tran`)."""
    nodes = Nodes(spec)
    rows, cols = spec.rows, spec.cols
    ij = [(i, j) for i in range(rows) for j in range(cols)]
    v_dac = np.stack([_get(vectors, f"v({nodes.dac_out(i)})") for i in range(rows)], axis=-1)
    steps = v_dac.shape[0]

    def grid(names: list[str]) -> np.ndarray:
        return np.stack([_get(vectors, name) for name in names], axis=-1).reshape(steps, rows, cols)

    row = grid([f"v({nodes.row(i, j)})" for i, j in ij])
    col = grid([f"v({nodes.col(i, j)})" for i, j in ij])
    m = grid([f"v(xcell_{i}_{j}.m)" for i, j in ij]) if mid else None
    return v_dac, row, col, m


def delivered_power(spec: TileSpec, vectors: Vectors, spice: str) -> np.ndarray:
    """Power the row DACs deliver, sum_i v_i * I_i, at each point of one analysis ((T,) W)."""
    nodes = Nodes(spec)
    total = 0.0
    for i in range(spec.rows):
        name, sign = dac_current_name(i, spice)
        total = total + _get(vectors, f"v({nodes.dac_out(i)})") * sign * _get(vectors, name)
    return np.atleast_1d(np.asarray(total, dtype=float))


def op_power(spec: TileSpec, plots: list[Vectors], spice: str) -> TilePower:
    """Read power of each `.op` analysis (one per input vector) ((B,) W), from
    the DAC source currents, split into parts from the node voltages."""
    totals, parts = [], []
    for vectors in plots:
        v_dac, row, col, mid = node_arrays(spec, vectors, mid=spec.access == "nmos")
        split = power_from_nodes(spec, v_dac, row, col, mid)
        totals.append(float(delivered_power(spec, vectors, spice)[0]))
        parts.append(split.parts)
    return TilePower(np.array(totals), {k: np.array([p[k][0] for p in parts]) for k in PARTS})


def _window_integral(t: np.ndarray, p: np.ndarray, t0: float, t1: float) -> float:
    """Trapezoidal integral of p(t) over [t0, t1] (p linear between points)."""
    inside = (t > t0) & (t < t1)
    tt = np.concatenate([[t0], t[inside], [t1]])
    pp = np.concatenate([[np.interp(t0, t, p)], p[inside], [np.interp(t1, t, p)]])
    return float(np.sum(0.5 * (pp[1:] + pp[:-1]) * np.diff(tt)))


def tran_energy(spec: TileSpec, vectors: Vectors, spice: str, t0: float, t1: float) -> dict[str, float]:
    """Read energy of one `.tran` analysis over [t0, t1] (J): 'total' = the
    integral of sum_i v_i(t) I_i(t) dt, the wires, drivers and TIA inputs
    from their node voltages, the devices (live memristors, access NMOS) the rest."""
    t = _get(vectors, "time")
    if not (t[0] <= t0 < t1 <= t[-1]):
        raise InputError(f"energy window [{t0:g}, {t1:g}] s lies outside the transient [{t[0]:g}, {t[-1]:g}] s")
    v_dac, row, col, _ = node_arrays(spec, vectors)
    p_total = delivered_power(spec, vectors, spice)
    out = {"total": _window_integral(t, p_total, t0, t1)}
    rest = out["total"]
    for key, edges in edge_drops(spec, v_dac, row, col).items():
        p = sum((np.sum(g * d * d, axis=tuple(range(1, d.ndim))) for d, g in edges), np.zeros(t.size))
        out[key] = _window_integral(t, p, t0, t1)
        rest -= out[key]
    out["devices"] = rest
    return out
