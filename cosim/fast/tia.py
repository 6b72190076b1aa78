"""The TIA as the fast solver sees it: its DC input resistance (ohm) at the end
of each column, and its DC closed-loop factor.
"""

from __future__ import annotations

from cosim.core import peripherals
from cosim.core.peripherals import tia_termination  # re-exported: the fast solver's callers import it here
from cosim.core.tile import TileSpec

__all__ = ["tia_gain", "tia_termination"]


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
