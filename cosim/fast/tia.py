"""The TIA as the fast solver sees it: its DC input resistance (ohm) at the end
of each column, and its DC closed-loop factor.
"""

from __future__ import annotations

from cosim.core import peripherals
from cosim.core.tile import TileSpec


def tia_termination(spec: TileSpec) -> float:
    """What each column of `spec` ends in at its TIA (ohm): the TIA's DC input
    resistance (`peripherals.tia_input_resistance` of the tile's TIA kind,
    rs and a0); 0 for the ideal TIA."""
    tia = spec.tia
    return peripherals.tia_input_resistance(tia.kind, tia.rs, tia.a0)


def tia_gain(spec: TileSpec) -> float:
    """DC closed-loop factor of the TIA: vout = rs * current * factor (1 when ideal).

    The columns see the TIA's input resistance (`tia_termination`).
    """
    tia = spec.tia
    if tia.kind == "vcvs":
        return peripherals.tia_vcvs_gain(tia.a0)
    if tia.kind == "opamp":
        return peripherals.tia_opamp_dc_gain(tia.a0, tia.rs)
    return 1.0
