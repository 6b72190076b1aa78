"""IR-drop maps: the voltage across each cell divided by the voltage its row's
DAC applies. 1 everywhere without wire or driver resistance; below 1 where
the row and column wires eat part of the read voltage.

Node voltages come from an ngspice `.op` with every node saved (node names
as in cosim/spice/ngspice_netlist.py's NODE_LEGEND, via `cosim.spice.nodenames`), or from the
fast solver (`cosim.fast.FastTile.node_voltages`: the chains solved by
`cosim.fast.iterative`, or the exact Newton operating point of a 1T1R tile), so
a map of a 512x512 tile takes a fraction of a second.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import h5py
import numpy as np

from cosim.core.drive import dac_output
from cosim.core.errors import InputError
from cosim.core.names import TILE_ENGINES
from cosim.core.tile import TileSpec
from cosim.spice import nodenames
from cosim.spice.ngspice import run_netlist
from cosim.spice.ngspice_netlist import tile_netlist

IRDROP_ENGINES = TILE_ENGINES


@dataclass(frozen=True)
class NodeVoltages:
    """DC node voltages of a tile for B input vectors (V), each (B, R, C).

    Attributes:
        row: row line at each cell.
        col: column line at each cell.
        mid: 1T1R only: between memristor and access NMOS (else None).
    """

    row: np.ndarray
    col: np.ndarray
    mid: np.ndarray | None = None

    @property
    def cell(self) -> np.ndarray:
        """Voltage across each whole cell, row line minus column line (V)."""
        return self.row - self.col

    @property
    def memristor(self) -> np.ndarray:
        """Voltage across each memristor alone (V): drives its VTEAM state."""
        return self.row - (self.col if self.mid is None else self.mid)


def node_voltages(spec: TileSpec, voltages: np.ndarray, engine: str = "spice",
                  timeout_s: float = 600.0, calibration: str | None = None) -> NodeVoltages:
    """Row and column node voltages at every cell for row inputs (R,) or (B, R) (V).

    engine 'spice': ngspice `.op` with all nodes saved (frozen states);
    'fast': the fast solver's network (exact Newton for 1T1R tiles unless a
    `calibration` JSON is given, then its linear model);
    'ideal': rows at the DAC voltages, columns at 0 V (no wires, no access drop).
    """
    v = spec.check_voltages(voltages)
    shape = (v.shape[0], spec.rows, spec.cols)
    if engine == "ideal":
        return NodeVoltages(np.broadcast_to(dac_output(spec, v)[:, :, None], shape).copy(), np.zeros(shape))
    if engine == "fast":
        from cosim.fast.prepared import prepare

        row, col, mid = prepare(spec, calibration=calibration, method="iterative").node_voltages(dac_output(spec, v))
        return NodeVoltages(row, col, mid)
    if engine != "spice":
        raise InputError(f"IR-drop maps need node voltages from engine {', '.join(IRDROP_ENGINES)}, "
                         f"not {engine!r}")
    from cosim.spice.graphcheck import check_tile

    check_tile(spec, v, "op")  # as before every SPICE run (cosim.engines.solve_spice)
    run = run_netlist(tile_netlist(spec, v, mode="op", save_all=True), timeout_s=timeout_s,
                      expect_plots=v.shape[0])
    cells = [(i, j) for i in range(spec.rows) for j in range(spec.cols)]

    def gather(name_of: Callable[[int, int], str]) -> np.ndarray:
        """The named node's voltage at every cell of every plot, (B, R, C) (V)."""
        return np.array([[float(p[name_of(i, j)][0]) for i, j in cells] for p in run.plots]).reshape(shape)

    mid = gather(nodenames.cell_mid) if spec.access == "nmos" else None
    return NodeVoltages(gather(lambda i, j: nodenames.row_node(spec, i, j)),
                        gather(lambda i, j: nodenames.col_node(spec, i, j)), mid)


def irdrop_map(spec: TileSpec, voltages: np.ndarray, engine: str = "spice",
               timeout_s: float = 600.0, calibration: str | None = None) -> np.ndarray:
    """Voltage across each cell over its row's applied DAC voltage, (B, R, C) (V/V).

    NaN where a row's applied voltage is 0 (nothing to divide by).
    """
    v = spec.check_voltages(voltages)
    applied = dac_output(spec, v)[:, :, None]
    cell = node_voltages(spec, v, engine, timeout_s, calibration).cell
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(applied != 0, cell / np.where(applied != 0, applied, 1.0), np.nan)


def write_irdrop(group: h5py.Group, ratio: np.ndarray, engine: str) -> h5py.Dataset:
    """Store an IR-drop map (B, R, C) as `group/irdrop` with its units and worst cell."""
    ds = group.create_dataset("irdrop", data=ratio)
    ds.attrs["units"] = "V/V"
    ds.attrs["description"] = "voltage across each cell / applied row DAC voltage, per input vector"
    ds.attrs["engine"] = engine
    if np.any(np.isfinite(ratio)):
        ds.attrs["min"] = float(np.nanmin(ratio))
    return ds
