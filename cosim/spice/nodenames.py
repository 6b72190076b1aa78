"""ngspice vector names of a tile's nodes and branches (node names from
`cosim.spice.circuit.Nodes`, documented in its LEGEND / netlist.py's NODE_LEGEND:
with r_wire = 0 a row is one node `r{i}` and a column one node `c{j}`; with
r_driver = 0 the DAC drives `r{i}_0`)."""

from __future__ import annotations

from cosim.core.tile import TileSpec
from cosim.spice.circuit import Nodes


def row_node(spec: TileSpec, i: int, j: int) -> str:
    """Voltage of row line i at cell (i, j) (V)."""
    return f"v({Nodes(spec).row(i, j)})"


def col_node(spec: TileSpec, i: int, j: int) -> str:
    """Voltage of column line j at cell (i, j) (V)."""
    return f"v({Nodes(spec).col(i, j)})"


def cell_mid(i: int, j: int) -> str:
    """1T1R only: the node between memristor and access NMOS of cell (i, j) (V)."""
    return f"v(xcell_{i}_{j}.m)"


def dac_out(spec: TileSpec, i: int) -> str:
    """Row i's DAC output, before its driver resistance (V)."""
    return f"v({Nodes(spec).dac_out(i)})"


def column_current(j: int) -> str:
    """Current into column j's TIA (A)."""
    return f"i(vsense_c{j})"


def tia_out(j: int) -> str:
    """TIA output of column j (V)."""
    return f"v(tia_c{j})"


def adc_code(j: int) -> str:
    """ADC code of column j (1 V per code)."""
    return f"v(adc_c{j})"


def state(i: int, j: int) -> str:
    """Normalised VTEAM state of cell (i, j) (1; transients only)."""
    return f"v(x{i}_{j})"
