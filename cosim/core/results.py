"""What a tile solve returns, whichever engine ran it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class TileResult:
    """Column outputs of a tile for a batch of B input vectors.

    Attributes:
        current: current into each column's TIA, (B, C) (A).
        vout: TIA output voltages, (B, C) (V).
        adc_code: ADC codes, (B, C) integers, or None without ADCs.
        engine: the engine that produced it.
        wall_s: wall-clock time of the solve (s).
        netlist: the ngspice netlist (spice engine).
        log: ngspice's log (spice engine).
        waveforms: one dict of vectors per input vector (transients), with `time` (s).
        vectors: with `save_all`, every vector the simulator saved, one dict per
            input vector's analysis (the read power is taken from them).
    """

    current: np.ndarray
    vout: np.ndarray
    adc_code: np.ndarray | None
    engine: str
    wall_s: float
    netlist: str | None = None
    log: str | None = None
    waveforms: list[dict[str, np.ndarray]] | None = None
    vectors: list[dict[str, np.ndarray]] | None = None
