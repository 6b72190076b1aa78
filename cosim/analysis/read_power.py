"""A tile's read power (W per input vector, with its parts) on the engine that
solved it: the fast solver's exact operating point, a SPICE `.op` with every
vector saved, or the ideal array (`cosim tile` stores it as `power`)."""

from __future__ import annotations

import numpy as np

from cosim.core.drive import dac_output
from cosim.core.tile import TileSpec
from cosim.core.tile_power import PARTS, TilePower


#: SPICE tiles up to this many devices get their power from a second SPICE `.op` with every
#: vector saved (under a second at 32x32); larger ones from the fast solver's exact operating
#: point, equal to ngspice's to ~1e-13 (tests/test_power.py), so the tile is not simulated twice.
SPICE_POWER_MAX_DEVICES = 32 * 32


def power_engine(spec: TileSpec, engine: str) -> str:
    """The engine `read_power` computes `spec`'s power on when the tile was solved on `engine`."""
    if engine == "spice" and spec.rows * spec.cols > SPICE_POWER_MAX_DEVICES:
        return "fast"
    return engine


def read_power(spec: TileSpec, voltages: np.ndarray, engine: str, spice: str = "ngspice",
               timeout_s: float = 600.0) -> TilePower:
    """Read power of `spec` for input voltages (B, R) (V, before the DACs) on
    `power_engine(spec, engine)`."""
    v = dac_output(spec, voltages)
    engine = power_engine(spec, engine)
    if engine == "spice":
        from cosim.spice.power import spice_power

        return spice_power(spec, voltages, spice=spice, timeout_s=timeout_s)
    if engine == "ideal":  # every cell sees its row's DAC voltage, columns at 0 V
        devices = (v * v) @ spec.conductance.sum(axis=1)
        zero = np.zeros_like(devices)
        return TilePower(devices, {"devices": devices, "wires": zero, "drivers": zero, "tia_input": zero})
    from cosim.fast.power import tile_power

    return tile_power(spec, v)


def power_line(power: TilePower, engine: str) -> str:
    """One summary line of input vector 0's read power (mW), its parts, and the engine that computed it."""
    parts = ", ".join(f"{k.replace('_', ' ')} {power.parts[k][0] * 1e3:.4g}" for k in PARTS)
    mean = f"; mean over {power.total.size} vectors {power.total.mean() * 1e3:.4g} mW" if power.total.size > 1 else ""
    return f"read power (input vector 0, {engine}): {power.total[0] * 1e3:.5g} mW ({parts} mW){mean}"
