"""IR-drop-compensated programming of whole matrices (`--compensate irdrop`).

`compensate_matrix` programs every tile of a mapped matrix with
`cosim.fast.compensate.compensate_tile`, so that each tile's exact
fast-solver transfer (wires, drivers, TIA termination, access NMOS
linearised) equals F + scale * (G_t - g_min) of its ideal conductances G_t.

One scale for the whole matrix: the smallest scale its tiles reach (each
tile first finds its own, the largest at which every cell reaches its own
target; those that reached more are programmed again at the matrix's),
because the ADC codes of a matrix's row tiles are added as integers before
one digital scale and every column of the matrix shares one ADC full scale
(`Simulation.adc_currents`, `TileCache.analog_matmul`): a tile programmed
at a larger scale than the rest raises that full scale and with it every
other tile's LSB (docs/compensation.md measured per-tile scales: worse at
tile 64). The digital side undoes the scale through
`MappedMatrix.weight_per_siemens / scale`. The floor F is per row and
differential pair of each tile: the least common mode the device range
allows, the same in both columns of a pair, so it cancels in I_pos - I_neg.
Conductances are compensated before the device non-idealities
(`cosim.mapping.nonideal`) act on them: on the device levels when states are
quantised, and variability and stuck devices then hit what was programmed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from cosim.core.config import Preset
from cosim.core.errors import InputError
from cosim.core.tile import tile_spec
from cosim.fast.compensate import Compensation, compensate_tile
from cosim.mapping.pairs import MappedMatrix, deinterleave, tile_conductance
from cosim.run.plan import matrix_tiles

#: `--compensate` choices: 'none' programs the mapped conductances, 'irdrop' compensates them.
COMPENSATE_MODES = ("none", "irdrop")


@dataclass(frozen=True)
class TileCompensation:
    """What RUN.h5 and the report keep of one compensated tile.

    Attributes:
        residual: ||T(G) - T*||_F / ||T* - floor||_F of the programmed tile (1).
        uncompensated: the same tile's ||T(G_t) - G_t||_F / ||G_t - g_min||_F (1).
        scale: the matrix's target scale (1).
        floor: (R, C) the tile's target floor F (S), equal in both columns of a pair.
        steps: Gauss-Newton steps.
        wall_s: compensation wall time (s).
        target: (R, C) the target transfer T* (S), what the tile's currents are
            compared with (`TileRecord.ideal_rel_error`).
    """

    residual: float
    uncompensated: float
    scale: float
    floor: np.ndarray
    steps: int
    wall_s: float
    target: np.ndarray

    def attrs(self) -> dict[str, float]:
        """The scalars, as HDF5 attributes (floor_s: the largest floor, S)."""
        return {"residual": self.residual, "uncompensated": self.uncompensated, "scale": self.scale,
                "floor_s": float(np.max(self.floor)), "steps": self.steps, "wall_s": self.wall_s}


def check_mode(mode: str) -> str:
    """`mode` if it is one of COMPENSATE_MODES, else one InputError line."""
    if mode not in COMPENSATE_MODES:
        raise InputError(f"compensate must be one of {', '.join(COMPENSATE_MODES)}, got {mode!r}")
    return mode


def compensate_matrix(label: str, mapped: MappedMatrix, preset: Preset, tile: int, split: str,
                      levels: int | None = None, calibration: object | None = None
                      ) -> tuple[MappedMatrix, dict[str, TileCompensation]]:
    """The compensated conductance pairs of matrix `label` and each tile's compensation.

    Args:
        label: matrix label (tile names derive from it, `matrix_tiles`).
        mapped: the ideal conductance pairs (S) and weight_per_siemens.
        preset: the hardware.
        tile, split: the partition (`SimOptions.tile`, `.split`).
        levels: device levels to program on (`NonIdeal.states`), None: continuous.
        calibration: access calibration of the fast solver's linear path (object), or None.

    Returns:
        (MappedMatrix with the programmed pairs and weight_per_siemens / scale,
        tile name -> TileCompensation).
    """
    n_in, n_out = mapped.g_pos.shape
    tiles = matrix_tiles(label, n_in, n_out, tile, split)
    specs = [tile_spec(preset, tile_conductance(mapped, t), t.name) for t in tiles]
    # each tile finds the largest scale it reaches; the matrix takes the smallest, and
    # the tiles that reached more are programmed again at it (their floors found anew)
    results: list[Compensation] = [compensate_tile(s, levels=levels, calibration=calibration) for s in specs]
    scale = min(r.scale for r in results)
    results = [r if r.scale == scale else compensate_tile(s, scale=scale, levels=levels,
                                                          calibration=calibration)
               for s, r in zip(specs, results)]
    g_pos, g_neg = mapped.g_pos.copy(), mapped.g_neg.copy()
    done: dict[str, TileCompensation] = {}
    for t, result in zip(tiles, results):
        pos, neg = deinterleave(result.conductance)
        g_pos[t.row_start:t.row_stop, t.out_start:t.out_stop] = pos
        g_neg[t.row_start:t.row_stop, t.out_start:t.out_stop] = neg
        done[t.name] = TileCompensation(result.residual, result.uncompensated, result.scale, result.floor,
                                        result.steps, result.wall_s, result.target)
    return replace(mapped, g_pos=g_pos, g_neg=g_neg, weight_per_siemens=mapped.weight_per_siemens / scale), done
