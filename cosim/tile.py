"""TileSpec: the one description of a crossbar tile that every engine consumes.

Geometry and conventions (DESIGN.md): R rows x C columns; cell (i, j) is a
VTEAM memristor, in series with an access NMOS when `access == 'nmos'`. Row i
is driven by its DAC through `r_driver` into the row's column-0 end; one
`r_wire` segment sits between neighbouring cells of a row and of a column,
and one more from row R-1 into the column's TIA (a virtual ground).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from cosim.config import AdcSpec, DacSpec, NmosAccess, TiaSpec, VteamParams
from cosim.errors import InputError

ACCESS_KINDS = ("none", "nmos")


def _finite_array(values: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise InputError(f"{what} has a NaN or infinite value at index {tuple(int(i) for i in bad)}; "
                         "replace it with a finite number")
    return arr


@dataclass(frozen=True, eq=False)
class TileSpec:
    """A crossbar tile: device conductances plus wire, access and peripheral settings.

    Attributes:
        conductance: (R, C) device conductances (S), every one > 0.
        r_wire: resistance of one wire segment, rows and columns alike (ohm).
        r_driver: output resistance of each row driver (ohm).
        access: 'none' (memristor alone) or 'nmos' (1T1R).
        nmos: access transistor geometry and word-line voltage.
        device: VTEAM parameters (used for states and transients).
        tia: column transimpedance amplifiers.
        dac: row DACs.
        adc: column ADCs.
        name: tile name (node names and HDF5 groups use it).
    """

    conductance: np.ndarray
    r_wire: float = 0.0
    r_driver: float = 0.0
    access: str = "none"
    nmos: NmosAccess = field(default_factory=NmosAccess)
    device: VteamParams = field(default_factory=VteamParams)
    tia: TiaSpec = field(default_factory=TiaSpec)
    dac: DacSpec = field(default_factory=DacSpec)
    adc: AdcSpec = field(default_factory=AdcSpec)
    name: str = "tile"

    def __post_init__(self) -> None:
        g = _finite_array(self.conductance, "conductance")
        if g.ndim != 2 or g.shape[0] < 1 or g.shape[1] < 1:
            raise InputError(f"conductance must be a 2-D (rows, cols) array, got shape {g.shape}")
        if np.any(g <= 0):
            bad = np.argwhere(g <= 0)[0]
            raise InputError(f"conductance must be > 0 S everywhere; found {g[tuple(bad)]:g} at "
                             f"(row {bad[0]}, col {bad[1]}): a device cannot have zero or negative "
                             "conductance (use a differential pair for signed weights)")
        g = g.copy()
        g.flags.writeable = False
        object.__setattr__(self, "conductance", g)
        for label, value in (("r_wire", self.r_wire), ("r_driver", self.r_driver)):
            if not (np.isfinite(value) and value >= 0):
                raise InputError(f"{label} must be a finite resistance >= 0 ohm, got {value}")
        if self.access not in ACCESS_KINDS:
            raise InputError(f"access must be one of {', '.join(ACCESS_KINDS)}, got {self.access!r}")

    @classmethod
    def from_states(cls, states: np.ndarray, device: VteamParams | None = None, **settings) -> "TileSpec":
        """A tile whose devices sit at normalised VTEAM states x in [0, 1]."""
        from cosim import device as vteam

        params = device or VteamParams()
        x = _finite_array(states, "states")
        if np.any((x < 0) | (x > 1)):
            raise InputError("VTEAM states must lie in [0, 1] (0 = r_on, 1 = r_off)")
        return cls(conductance=vteam.conductance(x, params), device=params, **settings)

    @property
    def rows(self) -> int:
        return int(self.conductance.shape[0])

    @property
    def cols(self) -> int:
        return int(self.conductance.shape[1])

    @property
    def states(self) -> np.ndarray:
        """Normalised VTEAM states x that give these conductances (needed by transients)."""
        from cosim import device as vteam

        return vteam.state_from_conductance(self.conductance, self.device)

    def with_(self, **changes) -> "TileSpec":
        """A copy with some fields changed."""
        return replace(self, **changes)

    def check_voltages(self, voltages: np.ndarray) -> np.ndarray:
        """Input row voltages as a (B, R) array (V); one line on a shape mismatch."""
        v = _finite_array(voltages, "voltage")
        if v.ndim == 1:
            v = v[None, :]
        if v.ndim != 2 or v.shape[1] != self.rows:
            raise InputError(f"voltage must have shape ({self.rows},) or (B, {self.rows}) to drive "
                             f"{self.rows} rows, got {np.shape(voltages)}")
        if v.shape[0] == 0:
            raise InputError("voltage holds no input vector (batch size 0)")
        return v
