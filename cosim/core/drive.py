"""What the row DACs put on a tile: the code each row's source carries and the
voltage (V) each DAC applies, from `cosim.core.peripherals`' one quantiser.
"""

from __future__ import annotations

import numpy as np

from cosim.core import peripherals
from cosim.core.tile import TileSpec


def input_codes(spec: TileSpec, voltages: np.ndarray) -> np.ndarray:
    """What each row's code source carries: DAC codes (integers), or the
    voltages themselves when the DAC is ideal (bits None)."""
    v = spec.check_voltages(voltages)
    if spec.dac.bits is None:
        return v
    return peripherals.dac_codes(v, spec.dac.bits, spec.dac.vfs).astype(float)


def dac_output(spec: TileSpec, voltages: np.ndarray) -> np.ndarray:
    """Row voltages the DACs actually apply (V), shape (B, R)."""
    v = spec.check_voltages(voltages)
    if spec.dac.bits is None:
        return v
    codes = peripherals.dac_codes(v, spec.dac.bits, spec.dac.vfs)
    return peripherals.dac_voltage(codes, spec.dac.bits, spec.dac.vfs)
