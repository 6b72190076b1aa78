"""Frozen configuration dataclasses (units in the field docs) and JSON presets.

Defaults come from the seed papers in ../shared/seeds: the VTEAM device of
Zhao et al. (seed 000: Ron 50 ohm, Roff 1 kohm, v_on -0.2 V, v_off 0.02 V,
alpha_on 3, alpha_off 1, k_on -10 m/s, k_off 5e-4 m/s, w_on 0, w_off 3 nm,
inputs scaled to +-0.3 V).
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cosim.core.errors import InputError

WINDOWS = ("clamp", "biolek", "joglekar", "prodromakis")
RESISTANCE_MODELS = ("linear", "exponential")
TIA_KINDS = ("ideal", "vcvs", "opamp")
ACCESS_KINDS = ("none", "nmos")
#: Converter resolutions (bits) cosim models; None (JSON null) means exact.
BITS_RANGE = (2, 24)


# ------------------------------------------------------------------ field rules
#
# Every field of every dataclass below has one Rule: its JSON type, unit, range
# or allowlist. `__post_init__` checks them all (so a value from a preset
# file, a RUN.h5 config attribute or Python is refused the same way) before
# the relations between fields; `from_dict` adds the file and the JSON path
# to the message: `preset x.json: device.r_on must be a number (ohm), got "1e3"`.


class FieldError(InputError):
    """One field of a config dataclass has the wrong type or an out-of-range value.

    Attributes:
        label: the dataclass as messages name it ('device', 'tia', ...).
        field: the field name.
        reason: what is wrong, e.g. 'must be > 0 (ohm), got -5'.
    """

    def __init__(self, label: str, field: str, reason: str) -> None:
        super().__init__(f"{label}.{field} {reason}" if label else f"{field} {reason}")
        self.label, self.field, self.reason = label, field, reason


def shown(value: object, limit: int = 60) -> str:
    """A value as a message shows it: JSON where it is JSON (`"1e3"`, `null`), else repr."""
    try:
        text = json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)  # numpy's bool is no Real


def _finite(value: numbers.Real) -> bool:
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an integer beyond float range
        return False


@dataclass(frozen=True)
class Rule:
    """What one config field may hold.

    Attributes:
        kind: 'number', 'integer', 'string' or 'section' (a nested dataclass).
        unit: unit shown in messages ('ohm', 'V', ...; '' for none).
        low, high: bounds (None: unbounded); `low_open`/`high_open` make them strict.
        optional: None (JSON null) is allowed.
        choices: allowed strings (kind 'string'; empty: any string up to `max_len`).
        section: the dataclass of a 'section' field.
        max_len: longest string accepted (characters).
        one_line: a string must hold no newline or other control character.
    """

    kind: str
    unit: str = ""
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    optional: bool = False
    choices: tuple[str, ...] = ()
    section: str = ""
    max_len: int = 4096
    one_line: bool = False

    def expected(self) -> str:
        """'a number (ohm)', 'an integer from 2 to 24 or null', ..."""
        unit = f" ({self.unit})" if self.unit else ""
        null = " or null" if self.optional else ""
        if self.kind == "string":
            if self.choices:
                return "one of " + ", ".join(json.dumps(c) for c in self.choices) + null
            return f"a string{null}"
        if self.kind == "section":
            return f"a JSON object {{...}} of {self.section} fields"
        noun = "an integer" if self.kind == "integer" else "a number"
        return f"{noun}{self.range_text()}{unit}{null}"

    def range_text(self) -> str:
        """The rule's bounds as message text (' from 0 to 1', ' >= 0', ...; '' when unbounded)."""
        if self.low is not None and self.high is not None and not (self.low_open or self.high_open):
            return f" from {self.low:g} to {self.high:g}"
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {self.low:g}")
        if self.high is not None:
            parts.append(f"{'<' if self.high_open else '<='} {self.high:g}")
        return (" " + " and ".join(parts)) if parts else ""

    def problem(self, value: object) -> str | None:
        """Why `value` does not fit (the reason part of a FieldError), or None."""
        if value is None:
            return None if self.optional else f"must be {self.expected()}, got null"
        if self.kind == "section":
            ok = isinstance(value, globals()[self.section])
            return None if ok else f"must be {self.expected()}, got {shown(value)}"
        if self.kind == "string":
            if not isinstance(value, str):
                return f"must be {self.expected()}, got {shown(value)}"
            if self.choices and value not in self.choices:
                return f"must be {self.expected()}, got {shown(value)}"
            if len(value) > self.max_len:
                return f"must be a string of at most {self.max_len} characters, got {len(value)}"
            if self.one_line and any(ord(c) < 32 or 127 <= ord(c) < 160 for c in value):
                return f"must be one line of text without control characters, got {shown(value)}"
            return None
        unit = f" ({self.unit})" if self.unit else ""
        if not _is_number(value):
            noun = "an integer" if self.kind == "integer" else "a number"
            return f"must be {noun}{unit}, got {shown(value)}"
        if self.kind == "integer" and not isinstance(value, numbers.Integral):
            return f"must be an integer{unit}, got {shown(value)}"
        if not _finite(value):
            return f"must be a finite number{unit}, got {shown(value)}"
        low_bad = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        high_bad = self.high is not None and (value >= self.high if self.high_open else value > self.high)
        if low_bad or high_bad:
            return f"must be {self.expected()}, got {shown(value)}"
        return None


def _num(unit: str = "", low: float | None = None, high: float | None = None, *, low_open: bool = False,
         optional: bool = False) -> Rule:
    return Rule("number", unit, low, high, low_open=low_open, optional=optional)


_POSITIVE = dict(low=0.0, low_open=True)
_BITS = Rule("integer", "bits", *BITS_RANGE, optional=True)


#: How messages name each dataclass (the JSON key it sits under).
LABELS = {"VteamParams": "device", "NmosAccess": "nmos", "TiaSpec": "tia", "DacSpec": "dac", "AdcSpec": "adc",
          "TranSpec": "tran", "EnergySpec": "energy", "Preset": "preset"}
#: The Rule of every field of every config dataclass, by class name.
RULES: dict[str, dict[str, Rule]] = {
    "VteamParams": {
        "r_on": _num("ohm", **_POSITIVE), "r_off": _num("ohm", **_POSITIVE),
        "v_on": _num("V", high=0.0), "v_off": _num("V", low=0.0),
        "alpha_on": _num("1", **_POSITIVE), "alpha_off": _num("1", **_POSITIVE),
        "k_on": _num("m/s"), "k_off": _num("m/s"), "w_on": _num("m"), "w_off": _num("m"),
        "window": Rule("string", choices=WINDOWS), "window_p": Rule("integer", "", 1, 64),
        "resistance_model": Rule("string", choices=RESISTANCE_MODELS), "g_leak": _num("S", low=0.0)},
    "NmosAccess": {"width": _num("m", **_POSITIVE), "length": _num("m", **_POSITIVE),
                   "v_wordline": _num("V", **_POSITIVE)},
    "TiaSpec": {"kind": Rule("string", choices=TIA_KINDS), "rs": _num("ohm", **_POSITIVE),
                "a0": _num("V/V", **_POSITIVE), "gbw": _num("Hz", **_POSITIVE), "vsat": _num("V", **_POSITIVE)},
    "DacSpec": {"bits": _BITS, "vfs": _num("V", **_POSITIVE), "delay": _num("s", low=0.0),
                "rise": _num("s", **_POSITIVE)},
    "AdcSpec": {"bits": _BITS, "vfs": _num("V", **_POSITIVE)},
    "TranSpec": {"t_stop": _num("s", **_POSITIVE), "t_step": _num("s", **_POSITIVE),
                 "t_sample": _num("s", **_POSITIVE), "t_max_step": _num("s", **_POSITIVE, optional=True)},
    "Preset": {"name": Rule("string", max_len=200, one_line=True), "description": Rule("string"),
               "device": Rule("section", section="VteamParams"), "v_read": _num("V", **_POSITIVE),
               "r_wire": _num("ohm", low=0.0), "r_driver": _num("ohm", low=0.0),
               "access": Rule("string", choices=ACCESS_KINDS), "nmos": Rule("section", section="NmosAccess"),
               "tia": Rule("section", section="TiaSpec"), "dac_bits": _BITS, "adc_bits": _BITS,
               "energy": Rule("section", section="EnergySpec")},
    "EnergySpec": {"t_read": _num("s", **_POSITIVE), "t_dac": _num("s", low=0.0),
                   "columns_per_adc": Rule("integer", "columns", 1, 1 << 20), "adc_fom_j": _num("J", **_POSITIVE),
                   "adc_rate": _num("S/s", **_POSITIVE), "dac_bit_j": _num("J", low=0.0),
                   "tia_bias_a": _num("A", low=0.0), "tia_supply_v": _num("V", low=0.0),
                   "add_j": _num("J", low=0.0), "node_nm": _num("nm", **_POSITIVE)},
}
#: Fields that are themselves config dataclasses (JSON objects), by class name.
SECTIONS = {"Preset": {"device": "VteamParams", "nmos": "NmosAccess", "tia": "TiaSpec", "energy": "EnergySpec"}}


def check_fields(obj: Any) -> None:
    """Check every field of config dataclass `obj` against its Rule (FieldError on the first misfit)."""
    name = type(obj).__name__
    for field, rule in RULES[name].items():
        reason = rule.problem(getattr(obj, field))
        if reason:
            raise FieldError(LABELS[name], field, reason)


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
        check_fields(self)
        if not 0 < self.r_on < self.r_off:
            raise InputError(f"VTEAM needs 0 < r_on < r_off, got r_on={self.r_on}, r_off={self.r_off}")
        if not self.v_on < 0 < self.v_off:
            raise InputError(f"VTEAM needs v_on < 0 < v_off, got v_on={self.v_on}, v_off={self.v_off}")
        if not (self.k_on < 0 < self.k_off):
            raise InputError(f"VTEAM needs k_on < 0 < k_off, got k_on={self.k_on}, k_off={self.k_off}")
        if not self.w_off > self.w_on:
            raise InputError(f"VTEAM needs w_off > w_on, got w_on={self.w_on}, w_off={self.w_off}")

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
        check_fields(self)


def to_dict(obj: Any) -> dict[str, Any]:
    """A dataclass (nested ones too) as plain JSON-ready data."""
    return dataclasses.asdict(obj)


def json_kind(value: object) -> str:
    """What a JSON value is, for messages: 'a list', 'a string', 'null', ..."""
    if value is None:
        return "null"
    for kind, name in ((bool, "a boolean"), (str, "a string"), (list, "a list"), (dict, "an object")):
        if isinstance(value, kind):
            return name
    return "a number" if _is_number(value) else f"a {type(value).__name__}"


def from_dict(cls: type, data: Any, where: str = "config", path: str = "") -> Any:
    """Build config dataclass `cls` from JSON `data`, checking every field
    (`RULES`) and refusing unknown keys, in one line that names `where` (the
    file) and the field's JSON path, e.g. `preset x.json: device.r_on must be
    a number (ohm), got "1e3"`. `path` is the JSON path of `data` ('device.')."""
    here = path.rstrip(".") or "the top level"
    if not isinstance(data, dict):
        value = "" if data is None else f" {shown(data, 40)}"
        raise InputError(f"{where}: {here} must be a JSON object {{...}} of {cls.__name__} fields, "
                         f"got {json_kind(data)}{value}")
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(str(key) for key in data if key not in names)
    if unknown:
        raise InputError(f"{where}: unknown field(s) {', '.join(path + k for k in unknown)[:200]}"
                         f"{' in ' + here if path else ''}; known: {', '.join(names)}")
    values = dict(data)
    for key, section in SECTIONS.get(cls.__name__, {}).items():
        if key in values:
            values[key] = from_dict(globals()[section], values[key], where, f"{path}{key}.")
    try:
        return cls(**values)
    except FieldError as exc:
        raise InputError(f"{where}: {path}{exc.field} {exc.reason}") from None
    except InputError as exc:  # a relation between fields, e.g. r_on < r_off
        raise InputError(f"{where}: {here}: {exc}") from None


def load_json(path: Path | str) -> Any:
    """Read a JSON file, with one clear line on a missing, unreadable or broken file."""
    p = Path(path)
    if not p.is_file():
        what = "is a directory, not a file" if p.is_dir() else "does not exist"
        raise InputError(f"config file {p} {what}; give a JSON file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"config file {p} is not UTF-8 text; give a JSON file") from None
    except OSError as exc:
        raise InputError(f"cannot read config file {p}: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"config file {p} is not valid JSON (line {exc.lineno}): {exc.msg}") from None
    except RecursionError:
        raise InputError(f"config file {p} nests its JSON too deeply; give a flat preset") from None


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
        check_fields(self)


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
        check_fields(self)


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
        check_fields(self)


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
        check_fields(self)
        if not 0 < self.t_step < self.t_stop:
            raise InputError(f"transient needs 0 < t_step < t_stop, got t_step={self.t_step}, "
                             f"t_stop={self.t_stop}")
        if not 0 < self.t_sample < self.t_stop:
            raise InputError(f"ADC sample time {self.t_sample} s must lie inside (0, t_stop={self.t_stop}) s")


@dataclass(frozen=True)
class EnergySpec:
    """Read timing and peripheral energy models (formulas in `cosim.core.energy_models`,
    sources in docs/energy.md).

    Attributes:
        t_read: read pulse width (s); 23 ns by default: cosim's transient DAC step
            ends at delay + rise = 2 ns and the ADC samples at 25 ns (`TranSpec`).
        t_dac: DAC settling before the pulse (s); the DAC rise time, 1 ns.
        columns_per_adc: columns sharing one ADC (1: one per column, as circuits/adc.cir).
        adc_fom_j: ADC Walden figure of merit P / (2^ENOB f_s) (J per conversion step);
            33.8 fJ: Kull et al., ISSCC 2013 paper 26.4 (8b 1.2 GS/s SAR, 3.06 mW) in
            Murmann's ADC Performance Survey (ISSCC sheet, FOMW_hf).
        adc_rate: ADC conversions per second (S/s); that ADC's 1.2 GS/s.
        dac_bit_j: DAC energy per input bit (J; bit-serial, bits conversions per input):
            0.33 pJ, ISAAC's 1-bit DAC (Shafiee et al., ISCA 2016: 4 mW for 8 x 128 DACs).
        tia_bias_a: bias current of one column TIA (A); 0.449 uA, the weak-inversion
            bound to settle 64 fF to half an 8-bit LSB in t_read (docs/energy.md).
        tia_supply_v: TIA supply voltage (V); 1.0 V, the supply of Kull et al.'s ADC.
        add_j: energy of one digital add of partial sums (J); 0.1 pJ, a 32-bit integer
            add at 45 nm, 0.9 V (Horowitz, ISSCC 2014, paper 1.1, pp. 10-14).
        node_nm: CMOS node the digital energies are quoted at (nm).
    """

    t_read: float = 23e-9
    t_dac: float = 1e-9
    columns_per_adc: int = 1
    adc_fom_j: float = 33.8e-15
    adc_rate: float = 1.2e9
    dac_bit_j: float = 0.3255e-12
    tia_bias_a: float = 4.49e-7
    tia_supply_v: float = 1.0
    add_j: float = 0.1e-12
    node_nm: float = 45.0

    def __post_init__(self) -> None:
        check_fields(self)


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
        energy: read timing and peripheral energy models (`EnergySpec`; docs/energy.md).
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
    energy: EnergySpec = EnergySpec()

    def __post_init__(self) -> None:
        check_fields(self)

    def with_(self, **changes: Any) -> "Preset":
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


PRESET_NAMES = ("neurram_wan2022", "taox_hfox_wu2018", "seed000_vteam", "seed001_mlp", "liu2020_isscc")
#: The preset of `simulate`, `evaluate`, `sweep` and `convert()` unless one is named:
#: a published chip (cosim/presets/README.md), not the seeds' low-resistance devices.
DEFAULT_PRESET = "neurram_wan2022"


def load_preset(name_or_path: str) -> Preset:
    """A preset by name (cosim/presets/NAME.json) or from a JSON file path.

    Every field is checked (type, unit range, allowlist; unknown keys are
    refused) with its JSON path in the one-line message. A file may leave out
    top-level fields or whole sections: cosim then uses its defaults (those of
    `Preset`, seed 000) and says which, once per file, in one warning line on
    stderr. Inside a section that is given, absent fields take that section's
    dataclass defaults silently (the bundled presets give no op-amp a0/gbw/vsat)."""
    from cosim.core.resources import resource_path

    if name_or_path in PRESET_NAMES:
        path, name = resource_path("presets", f"{name_or_path}.json"), name_or_path
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise InputError(f"preset {name_or_path!r} is neither a preset name ({', '.join(PRESET_NAMES)}) "
                             "nor an existing JSON file")
        name = path.stem
    data = load_json(path)
    where = f"preset {path}"
    if not isinstance(data, dict):
        raise InputError(f"{where}: the top level must be a JSON object {{\"device\": {{...}}, \"r_wire\": ...}}, "
                         f"got {json_kind(data)}")
    data = dict(data)
    data.setdefault("name", name)
    preset = from_dict(Preset, data, where)
    missing = [key for key in RULES["Preset"] if key not in data and key != "description"]
    if missing:
        _warn_once(str(path), f"{where} does not set {', '.join(missing)}; using cosim's defaults: "
                   + "; ".join(_default_text(preset, key) for key in missing))
    return preset


_WARNED: set[str] = set()


def _warn_once(key: str, message: str) -> None:
    """One `cosim: warning:` line on stderr, once per process for `key`."""
    if key not in _WARNED:
        _WARNED.add(key)
        print(f"cosim: warning: {message}", file=sys.stderr)


def _default_text(preset: Preset, key: str) -> str:
    """A defaulted preset field as the missing-fields warning shows it."""
    value = getattr(preset, key)
    if dataclasses.is_dataclass(value):
        return f"{key} {json.dumps(to_dict(value), separators=(',', ':'))}"
    unit = RULES["Preset"][key].unit
    return f"{key} {shown(value)}{' ' + unit if unit else ''}"
