"""A tile's read power (W per input vector, with its parts) on the engine that
solved it: the fast solver's exact operating point, a SPICE `.op` with every
vector saved, or the ideal array (`cosim tile` stores it as `power`)."""

from __future__ import annotations

import numpy as np

from cosim.core.drive import dac_output
from cosim.core.config import TranSpec
from cosim.core.tile import TileSpec
from cosim.core.tile_power import PARTS, TilePower


#: SPICE tiles up to this many devices save every vector of their `.op` and take their
#: power from it (its raw file grows with every node: under a second at 32x32); larger
#: ones from the fast solver's exact operating point, equal to ngspice's to ~1e-13
#: (tests/test_power.py).
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
        return spice_power(spec, voltages, spice=spice, timeout_s=timeout_s)
    if engine == "ideal":  # every cell sees its row's DAC voltage, columns at 0 V
        devices = (v * v) @ spec.conductance.sum(axis=1)
        zero = np.zeros_like(devices)
        return TilePower(devices, {"devices": devices, "wires": zero, "drivers": zero, "tia_input": zero})
    from cosim.fast.power import tile_power

    return tile_power(spec, v)


def spice_power(spec: TileSpec, voltages: np.ndarray, spice: str = "ngspice", timeout_s: float = 600.0
                ) -> TilePower:
    """Read power of `spec` per input vector ((B,) W) from one SPICE `.op` with
    every vector saved (`voltages` (R,) or (B, R) V before the DACs)."""
    from cosim.engines import solve_spice
    from cosim.spice.power import op_power

    result = solve_spice(spec, voltages, mode="op", save_all=True, spice=spice, timeout_s=timeout_s)
    return op_power(spec, result.vectors, spice)


def spice_read_energy(spec: TileSpec, voltages: np.ndarray, t0: float, t1: float, spice: str = "ngspice",
                      tran: TranSpec | None = None, timeout_s: float = 600.0) -> list[dict[str, float]]:
    """Read energy of `spec` over [t0, t1] (J) per input vector, from one SPICE
    `.tran` with every vector saved (live VTEAM states, DAC step; `cosim.spice.power.tran_energy`)."""
    from cosim.engines import solve_spice
    from cosim.spice.power import tran_energy

    result = solve_spice(spec, voltages, mode="tran", tran=tran, save_all=True, spice=spice, timeout_s=timeout_s)
    return [tran_energy(spec, vectors, spice, t0, t1) for vectors in result.vectors]


def power_line(power: TilePower, engine: str) -> str:
    """One summary line of input vector 0's read power (mW), its parts, and the engine that computed it."""
    parts = ", ".join(f"{k.replace('_', ' ')} {power.parts[k][0] * 1e3:.4g}" for k in PARTS)
    mean = f"; mean over {power.total.size} vectors {power.total.mean() * 1e3:.4g} mW" if power.total.size > 1 else ""
    return f"read power (input vector 0, {engine}): {power.total[0] * 1e3:.5g} mW ({parts} mW){mean}"
