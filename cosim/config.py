"""Frozen configuration dataclasses (units in the field docs) and JSON presets.

Defaults come from the seed papers in ../shared/seeds: the VTEAM device of
Zhao et al. (seed 000: Ron 50 ohm, Roff 1 kohm, v_on -0.2 V, v_off 0.02 V,
alpha_on 3, alpha_off 1, k_on -10 m/s, k_off 5e-4 m/s, w_on 0, w_off 3 nm,
inputs scaled to +-0.3 V).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cosim.errors import InputError

WINDOWS = ("clamp", "biolek", "joglekar", "prodromakis")
RESISTANCE_MODELS = ("linear", "exponential")


@dataclass(frozen=True)
class VteamParams:
    """VTEAM memristor (Kvatinsky et al., IEEE TCAS-II 62(8), 2015).

    The state is normalised, x = (w - w_on) / (w_off - w_on) in [0, 1]:
    x = 0 is the low-resistance state (r_on), x = 1 the high one (r_off).
    A positive voltage (p to n) above v_off moves x towards 1 (OFF).

    Attributes:
        r_on: resistance at w = w_on (ohm).
        r_off: resistance at w = w_off (ohm).
        v_on: ON threshold voltage, negative (V).
        v_off: OFF threshold voltage, positive (V).
        alpha_on: ON nonlinearity exponent (1).
        alpha_off: OFF nonlinearity exponent (1).
        k_on: ON rate, negative (m/s).
        k_off: OFF rate, positive (m/s).
        w_on: lower bound of the state variable w (m).
        w_off: upper bound of the state variable w (m).
        window: 'clamp', 'biolek', 'joglekar' or 'prodromakis'.
        window_p: window exponent p (integer >= 1).
        resistance_model: 'linear' R(w) (seed eq. 5) or 'exponential'.
        g_leak: conductance of the state node to its initial value, which makes
            the DC operating point well defined (S on the 1 F state capacitor;
            time constant 1/g_leak s).
    """

    r_on: float = 50.0
    r_off: float = 1000.0
    v_on: float = -0.2
    v_off: float = 0.02
    alpha_on: float = 3.0
    alpha_off: float = 1.0
    k_on: float = -10.0
    k_off: float = 5e-4
    w_on: float = 0.0
    w_off: float = 3e-9
    window: str = "biolek"
    window_p: int = 1
    resistance_model: str = "linear"
    g_leak: float = 1e-12

    def __post_init__(self) -> None:
        if not 0 < self.r_on < self.r_off:
            raise InputError(f"VTEAM needs 0 < r_on < r_off, got r_on={self.r_on}, r_off={self.r_off}")
        if not self.v_on < 0 < self.v_off:
            raise InputError(f"VTEAM needs v_on < 0 < v_off, got v_on={self.v_on}, v_off={self.v_off}")
        if not (self.k_on < 0 < self.k_off):
            raise InputError(f"VTEAM needs k_on < 0 < k_off, got k_on={self.k_on}, k_off={self.k_off}")
        if not self.w_off > self.w_on:
            raise InputError(f"VTEAM needs w_off > w_on, got w_on={self.w_on}, w_off={self.w_off}")
        if self.window not in WINDOWS:
            raise InputError(f"unknown VTEAM window {self.window!r}; use one of {', '.join(WINDOWS)}")
        if self.resistance_model not in RESISTANCE_MODELS:
            raise InputError(f"unknown resistance model {self.resistance_model!r}; "
                             f"use one of {', '.join(RESISTANCE_MODELS)}")
        if int(self.window_p) != self.window_p or self.window_p < 1:
            raise InputError(f"window_p must be an integer >= 1, got {self.window_p}")

    @property
    def g_min(self) -> float:
        """Lowest conductance, 1 / r_off (S)."""
        return 1.0 / self.r_off

    @property
    def g_max(self) -> float:
        """Highest conductance, 1 / r_on (S)."""
        return 1.0 / self.r_on


@dataclass(frozen=True)
class NmosAccess:
    """Access transistor of a 1T1R cell: level-1 NMOS `nmos_access`
    (models/nmos_access.lib), gate on the word line, bulk at ground.

    Attributes:
        width: channel width W (m).
        length: channel length L (m).
        v_wordline: word-line (gate) voltage during a read (V).
    """

    width: float = 3.1e-6
    length: float = 0.1e-6
    v_wordline: float = 1.8

    def __post_init__(self) -> None:
        if self.width <= 0 or self.length <= 0:
            raise InputError(f"access transistor needs W, L > 0, got W={self.width}, L={self.length}")


def to_dict(obj: Any) -> dict[str, Any]:
    """A dataclass (nested ones too) as plain JSON-ready data."""
    return dataclasses.asdict(obj)


def from_dict(cls: type, data: dict[str, Any], where: str = "config") -> Any:
    """Build dataclass `cls` from `data`, refusing unknown keys in one line."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise InputError(f"{where}: unknown field(s) {', '.join(unknown)} for {cls.__name__}; "
                         f"known: {', '.join(sorted(names))}")
    return cls(**data)


def load_json(path: Path | str) -> dict[str, Any]:
    """Read a JSON file, with one clear line on a missing or broken file."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"config file {p} does not exist")
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"config file {p} is not valid JSON (line {exc.lineno}): {exc.msg}") from None


TIA_KINDS = ("ideal", "vcvs", "opamp")


@dataclass(frozen=True)
class TiaSpec:
    """Transimpedance amplifier of every column (circuits/tia.cir).

    vout = rs * current for the ideal TIA (seed: Vout = Vin * G * Rs).

    Attributes:
        kind: 'ideal' (exact virtual ground), 'vcvs' (finite-gain VCVS op-amp)
            or 'opamp' (single-pole op-amp macromodel with output swing).
        rs: feedback (sense) resistance (ohm).
        a0: op-amp DC gain for 'vcvs' and 'opamp' (V/V).
        gbw: op-amp gain-bandwidth product for 'opamp' (Hz).
        vsat: op-amp output swing limit for 'opamp' (+-V).
    """

    kind: str = "ideal"
    rs: float = 100.0
    a0: float = 1e5
    gbw: float = 100e6
    vsat: float = 1.5

    def __post_init__(self) -> None:
        if self.kind not in TIA_KINDS:
            raise InputError(f"unknown TIA kind {self.kind!r}; use one of {', '.join(TIA_KINDS)}")
        if not self.rs > 0:
            raise InputError(f"TIA feedback resistance rs must be > 0 ohm, got {self.rs}")


def _check_converter(kind: str, bits: int | None, vfs: float) -> None:
    """One line for a DAC/ADC resolution or full scale out of range."""
    if bits is not None and not (isinstance(bits, int) and 2 <= bits <= 24):
        raise InputError(f"{kind} bits must be an integer from 2 to 24 (or None), got {bits}")
    if not vfs > 0:
        raise InputError(f"{kind} full scale vfs must be > 0 V, got {vfs}")


@dataclass(frozen=True)
class DacSpec:
    """Row DACs (circuits/dac.cir): signed, symmetric, mid-tread.

    Attributes:
        bits: resolution; None drives the rows with the exact voltages.
        vfs: full-scale output, the largest |voltage| (V; seed 000: 0.3 V).
        delay: time before the DAC step in transients (s).
        rise: rise time of the DAC step in transients (s).
    """

    bits: int | None = None
    vfs: float = 0.3
    delay: float = 1e-9
    rise: float = 1e-9

    def __post_init__(self) -> None:
        _check_converter("DAC", self.bits, self.vfs)


@dataclass(frozen=True)
class AdcSpec:
    """Column ADCs (circuits/adc.cir): track-and-hold, then a signed quantiser.

    Attributes:
        bits: resolution; None reports the TIA voltage without quantising.
        vfs: full-scale input, the largest |TIA output| it codes (V).
    """

    bits: int | None = None
    vfs: float = 1.0

    def __post_init__(self) -> None:
        _check_converter("ADC", self.bits, self.vfs)


@dataclass(frozen=True)
class TranSpec:
    """Transient read: DAC step, TIA settling, ADC sample.

    Attributes:
        t_stop: end of the simulation (s).
        t_step: print/suggested step (s); ngspice chooses its own internal steps.
        t_sample: instant the ADC track-and-hold opens (s); must be < t_stop.
        t_max_step: largest internal step (s), None lets ngspice choose.
    """

    t_stop: float = 30e-9
    t_step: float = 0.05e-9
    t_sample: float = 25e-9
    t_max_step: float | None = 0.1e-9

    def __post_init__(self) -> None:
        if not 0 < self.t_step < self.t_stop:
            raise InputError(f"transient needs 0 < t_step < t_stop, got t_step={self.t_step}, "
                             f"t_stop={self.t_stop}")
        if not 0 < self.t_sample < self.t_stop:
            raise InputError(f"ADC sample time {self.t_sample} s must lie inside (0, t_stop={self.t_stop}) s")


@dataclass(frozen=True)
class Preset:
    """Everything about the hardware a layer is mapped onto (cosim/presets/*.json).

    Attributes:
        name: preset name (file stem).
        description: where the numbers come from (seed paper).
        device: VTEAM parameters; weights map into [1/r_off, 1/r_on] S.
        v_read: largest DAC input voltage, |v| <= v_read (V).
        r_wire: wire segment resistance (ohm).
        r_driver: row driver resistance (ohm).
        access: 'none' or 'nmos'.
        nmos: access transistor.
        tia: column TIAs.
        dac_bits: DAC resolution (None: exact voltages).
        adc_bits: ADC resolution (None: no quantisation).
    """

    name: str = "seed000_vteam"
    description: str = ""
    device: VteamParams = VteamParams()
    v_read: float = 0.3
    r_wire: float = 1.0
    r_driver: float = 10.0
    access: str = "nmos"
    nmos: NmosAccess = NmosAccess()
    tia: TiaSpec = TiaSpec(rs=1.0)
    dac_bits: int | None = 8
    adc_bits: int | None = 8

    def __post_init__(self) -> None:
        if not self.v_read > 0:
            raise InputError(f"preset {self.name}: v_read must be > 0 V, got {self.v_read}")
        _check_converter("DAC", self.dac_bits, self.v_read)
        _check_converter("ADC", self.adc_bits, 1.0)

    def with_(self, **changes: Any) -> "Preset":
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


PRESET_NAMES = ("seed000_vteam", "seed001_mlp")


def load_preset(name_or_path: str) -> Preset:
    """A preset by name (cosim/presets/NAME.json) or from a JSON file path."""
    from cosim.resources import resource_path

    if name_or_path in PRESET_NAMES:
        path, name = resource_path("presets", f"{name_or_path}.json"), name_or_path
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise InputError(f"preset {name_or_path!r} is neither a preset name ({', '.join(PRESET_NAMES)}) "
                             "nor an existing JSON file")
        name = path.stem
    data = dict(load_json(path))
    where = f"preset {path}"
    nested = {"device": VteamParams, "nmos": NmosAccess, "tia": TiaSpec}
    for key, cls in nested.items():
        if key in data:
            data[key] = from_dict(cls, data[key], where)
    data.setdefault("name", name)
    return from_dict(Preset, data, where)
