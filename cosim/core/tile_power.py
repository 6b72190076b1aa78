"""Tile read power (W) at a solved operating point, split into its parts: the
pure formulas every engine shares (`cosim.fast.power` feeds it the fast
solver's node voltages, `cosim.spice.power` ngspice's and VACASK's).

The row drivers deliver P = sum_i v_i * I_i (v_i the DAC output, I_i the
current it sources); by Tellegen's theorem this equals the power dissipated
in the tile's elements, reported by part (`PARTS`):

- 'devices': memristors plus access transistors (1T1R: memristor, NMOS
  channel and the NMOS's gmin from drain and source to ground, as ngspice has it);
- 'wires': every row and column wire segment, the last column segment included;
- 'drivers': the row driver resistances;
- 'tia_input': the DC input resistance of finite-gain TIAs (0 for the ideal TIA).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cosim.core.errors import InputError
from cosim.core.peripherals import NGSPICE_GMIN, tia_termination
from cosim.core.tile import TileSpec

#: ngspice's default gmin (S) across the access NMOS's drain and source junctions.
GMIN = NGSPICE_GMIN

#: The parts of a tile's read power, in the order every table shows them.
PARTS = ("devices", "wires", "drivers", "tia_input")


@dataclass(frozen=True)
class TilePower:
    """Read power of a tile per input vector (each (B,) W).

    Attributes:
        total: power delivered by the row drivers, sum_i v_i * I_i (W).
        parts: part name (`PARTS`) -> power dissipated there (W); they sum to `total`.
    """

    total: np.ndarray
    parts: dict[str, np.ndarray]

    def stacked(self) -> np.ndarray:
        """(len(PARTS), B) W, in `PARTS` order."""
        return np.stack([self.parts[k] for k in PARTS])


def as_batch(v_dac: np.ndarray, rows: int) -> np.ndarray:
    v = np.asarray(v_dac, dtype=float)
    v = v[None, :] if v.ndim == 1 else v
    if v.ndim != 2 or v.shape[1] != rows:
        raise InputError(f"DAC voltages must be (B, {rows}) V, got shape {np.shape(v_dac)}")
    return v


def edge_drops(spec: TileSpec, v: np.ndarray, row: np.ndarray, col: np.ndarray
                ) -> dict[str, list[tuple[np.ndarray, float | np.ndarray]]]:
    """The linear edges of each part outside the cells: (voltage drops (B, ...) V,
    their conductances S) for wires, drivers and TIA inputs."""
    r_in = tia_termination(spec)
    out: dict[str, list[tuple[np.ndarray, float | np.ndarray]]] = {"wires": [], "drivers": [], "tia_input": []}
    if spec.r_driver > 0:
        out["drivers"].append((v - row[:, :, 0], 1.0 / spec.r_driver))
    if spec.r_wire > 0:
        w = 1.0 / spec.r_wire
        out["wires"].append((row[:, :, :-1] - row[:, :, 1:], w))
        out["wires"].append((col[:, :-1, :] - col[:, 1:, :], w))
        # The last column segment and the TIA input resistance carry the same current.
        i_end = col[:, -1, :] / (spec.r_wire + r_in)
        out["wires"].append((i_end * spec.r_wire, w))
        if r_in > 0:
            out["tia_input"].append((i_end * r_in, 1.0 / r_in))
    elif r_in > 0:
        out["tia_input"].append((col[:, 0, :], 1.0 / r_in))
    return out


def power_from_nodes(spec: TileSpec, v_dac: np.ndarray, row: np.ndarray, col: np.ndarray,
                     mid: np.ndarray | None = None, g_cell: np.ndarray | None = None,
                     gmin: float = GMIN) -> TilePower:
    """Read power of every input vector from a solved operating point.

    Args:
        spec: the tile (r_wire, r_driver, access, TIA).
        v_dac: (B, R) DAC output voltages (V).
        row, col: (B, R, C) row-line and column-line node voltages at every cell (V).
        mid: (B, R, C) memristor-NMOS node voltages (V) of a 1T1R tile solved
            with its NMOS; None when each cell is one conductance.
        g_cell: (R, C) conductance of each whole cell when `mid` is None (S;
            default the device conductances: access 'none', or a linearised 1T1R tile).
        gmin: the NMOS's conductance from drain and source to ground (S), with `mid`.
    """
    v = as_batch(v_dac, spec.rows)
    g_m = spec.conductance
    parts: dict[str, np.ndarray] = {}
    for key, edges in edge_drops(spec, v, row, col).items():
        parts[key] = sum((np.sum(g * d * d, axis=tuple(range(1, d.ndim))) for d, g in edges),
                         np.zeros(v.shape[0]))
    if mid is None:
        g = g_m if g_cell is None else g_cell
        cell_current = g * (row - col)
        parts["devices"] = np.sum(cell_current * (row - col), axis=(1, 2))
    else:
        cell_current = g_m * (row - mid)  # through the memristor
        i_drain = cell_current - gmin * mid  # KCL at the memristor-NMOS node
        parts["devices"] = np.sum(cell_current * (row - mid) + i_drain * (mid - col)
                                  + gmin * (mid * mid + col * col), axis=(1, 2))
    if spec.r_driver > 0:
        source = (v - row[:, :, 0]) / spec.r_driver
    else:  # the DAC drives each row's first node: its row wire and its cell
        source = cell_current[:, :, 0].copy() if spec.r_wire > 0 else cell_current.sum(axis=2)
        if spec.r_wire > 0 and spec.cols > 1:
            source += (row[:, :, 0] - row[:, :, 1]) / spec.r_wire
    total = np.sum(v * source, axis=1)
    return TilePower(total, {k: parts[k] for k in PARTS})


