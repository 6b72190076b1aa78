"""TileSpec: the one description of a crossbar tile that every engine consumes.

Geometry and conventions (docs/architecture.md): R rows x C columns; cell (i, j) is a
VTEAM memristor, in series with an access NMOS when `access == 'nmos'`. Row i
is driven by its DAC through `r_driver` into the row's column-0 end; one
`r_wire` segment sits between neighbouring cells of a row and of a column,
and one more from row R-1 into the column's TIA (a virtual ground).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from cosim.core import netsafe
from cosim.core.config import RESISTANCE_MODELS, TIA_KINDS, WINDOWS, AdcSpec, DacSpec, NmosAccess, Preset, TiaSpec, VteamParams
from cosim.core.errors import InputError

ACCESS_KINDS = ("none", "nmos")

#: Every string field of a tile and the values it may take (checked before any netlist exists).
STRING_FIELDS = {"access": ACCESS_KINDS, "tia.kind": TIA_KINDS, "device.window": WINDOWS,
                 "device.resistance_model": RESISTANCE_MODELS}
#: The settings of each part, with the fields that must be finite real numbers.
_PARTS = {"nmos": (NmosAccess, ("width", "length", "v_wordline")),
          "device": (VteamParams, ("r_on", "r_off", "v_on", "v_off", "alpha_on", "alpha_off", "k_on", "k_off",
                                   "w_on", "w_off", "window_p", "g_leak")),
          "tia": (TiaSpec, ("rs", "a0", "gbw", "vsat")),
          "dac": (DacSpec, ("vfs", "delay", "rise")),
          "adc": (AdcSpec, ("vfs",))}


def _is_real(value: object) -> bool:
    """A finite real number (not a bool, a string or an int too large for a float)."""
    if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, (bool, np.bool_)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _finite_array(values: np.ndarray, what: str) -> np.ndarray:
    dtype = np.asarray(values).dtype
    if dtype.kind not in "iuf":  # complex, bool, strings, objects: never cast silently
        raise InputError(f"{what} must hold real numbers (integers or floats), got dtype {dtype}; "
                         "convert it with .astype(float)")
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
        name: tile name (HDF5 groups and messages use it; kept as given).
            Netlists carry its safe form, `netlist_name` (`cosim.core.netsafe`).
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
        if not isinstance(self.name, str):
            raise InputError(f"tile name must be a string, got {type(self.name).__name__}; give it as text")
        self._check_settings()
        g = _finite_array(self.conductance, "conductance")
        if g.ndim != 2 or g.shape[0] < 1 or g.shape[1] < 1:
            raise InputError(f"conductance must be a 2-D (rows, cols) array, got shape {g.shape}")
        if np.any(g <= 0):
            bad = np.argwhere(g <= 0)[0]
            raise InputError(f"conductance must be > 0 S everywhere; found {g[tuple(bad)]:g} at "
                             f"(row {bad[0]}, col {bad[1]}): a device cannot have zero or negative "
                             "conductance (use a differential pair for signed weights)")
        with np.errstate(over="ignore", divide="ignore"):
            overflow = ~np.isfinite(1.0 / g)
        if np.any(overflow):
            bad = np.argwhere(overflow)[0]
            raise InputError(f"conductance {g[tuple(bad)]:g} S at (row {bad[0]}, col {bad[1]}) of tile "
                             f"{self.netlist_name} is so small that its resistance overflows; give at least 1e-300 S")
        g = g.copy()
        g.flags.writeable = False
        object.__setattr__(self, "conductance", g)

    def _check_settings(self) -> None:
        """Every setting of the tile against its type, range or allowlist, so that
        a preset field or RUN.h5 config with a hostile value is refused here,
        in one line, before any netlist exists."""
        where = f"tile {self.netlist_name}"
        for label in ("r_wire", "r_driver"):
            value = getattr(self, label)
            if not (_is_real(value) and value >= 0):
                raise InputError(f"{where}: {label} must be a finite resistance >= 0 ohm, got "
                                 f"{ascii(value)[:60]}; fix the option, preset or config that sets it")
        for key, (cls, numbers) in _PARTS.items():
            part = getattr(self, key)
            if not isinstance(part, cls):
                raise InputError(f"{where}: {key} must be a {cls.__name__}, got {type(part).__name__}")
            for label in numbers:
                value = getattr(part, label)
                if not _is_real(value):
                    raise InputError(f"{where}: {key}.{label} must be a finite number, got {ascii(value)[:60]}; "
                                     "fix the preset or config that sets it")
        for key, part in (("dac", self.dac), ("adc", self.adc)):
            bits = part.bits
            if bits is not None and (not isinstance(bits, (int, np.integer)) or isinstance(bits, (bool, np.bool_))):
                raise InputError(f"{where}: {key}.bits must be an integer or None, got {ascii(bits)[:60]}")
        for label, allowed in STRING_FIELDS.items():
            value = self
            for attr in label.split("."):
                value = getattr(value, attr)
            if not (isinstance(value, str) and value in allowed):
                raise InputError(f"{where}: {label} must be one of {', '.join(allowed)}, got "
                                 f"{ascii(value)[:60]}; fix the option, preset or config that sets it")

    @property
    def netlist_name(self) -> str:
        """The tile's name as netlists carry it (`cosim.core.netsafe.netlist_name`):
        safe characters only; `name` keeps the original."""
        return netsafe.netlist_name(self.name)

    @classmethod
    def from_states(cls, states: np.ndarray, device: VteamParams | None = None, **settings: Any) -> "TileSpec":
        """A tile whose devices sit at normalised VTEAM states x in [0, 1]."""
        from cosim.core import vteam

        params = device or VteamParams()
        x = _finite_array(states, "states")
        if np.any((x < 0) | (x > 1)):
            raise InputError("VTEAM states must lie in [0, 1] (0 = r_on, 1 = r_off)")
        return cls(conductance=vteam.conductance(x, params), device=params, **settings)

    @property
    def rows(self) -> int:
        """R: the number of row lines (inputs) of the tile."""
        return int(self.conductance.shape[0])

    @property
    def cols(self) -> int:
        """C: the number of column lines (TIA outputs) of the tile."""
        return int(self.conductance.shape[1])

    @property
    def states(self) -> np.ndarray:
        """Normalised VTEAM states x that give these conductances (needed by transients)."""
        from cosim.core import vteam

        return vteam.state_from_conductance(self.conductance, self.device)

    def with_(self, **changes: Any) -> "TileSpec":
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


def tile_spec(preset: Preset, conductance: np.ndarray, name: str) -> TileSpec:
    """The TileSpec of `conductance` (R, C) (S) on the preset's hardware (DAC full scale v_read)."""
    p = preset
    return TileSpec(conductance, r_wire=p.r_wire, r_driver=p.r_driver, access=p.access, nmos=p.nmos,
                    device=p.device, tia=p.tia, dac=DacSpec(bits=p.dac_bits, vfs=p.v_read), name=name)
