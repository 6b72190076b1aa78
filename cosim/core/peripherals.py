"""Python side of the hand-written SPICE peripheral blocks (circuits/*.cir) and
the access NMOS model card (models/nmos_access.lib): the same formulas,
vectorised with numpy, so that both engines quantise, amplify and conduct
alike.

DAC and ADC share one symmetric mid-tread convention (zero is a level):
``kmax = 2**(bits-1) - 1``, ``lsb = vfs / kmax`` and
``code = clip(floor(v / lsb + 0.5), -kmax, kmax)`` (halves round up).
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from numpy.typing import ArrayLike

from cosim.core.errors import InputError

if TYPE_CHECKING:
    from cosim.core.tile import TileSpec

# SPICE scale suffixes (case-insensitive); `meg` must be tried before `m`.
_SI_SUFFIXES = (("meg", "1e6"), ("mil", "25.4e-6"), ("t", "1e12"), ("g", "1e9"), ("k", "1e3"),
                ("m", "1e-3"), ("u", "1e-6"), ("n", "1e-9"), ("p", "1e-12"), ("f", "1e-15"))
#: A float numpy array or torch tensor (`quantize_in_place` takes either).
T = TypeVar("T")
_NUMBER = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)([a-zA-Z]*)$")


# ----------------------------------------------------------------- DAC / ADC


def _check_converter(bits: int, vfs: float) -> int:
    """Validate a converter's resolution and full scale; return kmax."""
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or bits < 2:
        raise InputError(f"converter bits={bits!r} is invalid; use an integer >= 2")
    if not np.isfinite(vfs) or vfs <= 0:
        raise InputError(f"converter full scale vfs={vfs!r} V is invalid; use a positive voltage")
    return 2 ** (int(bits) - 1) - 1


def dac_lsb(bits: int, vfs: float) -> float:
    """Step of a symmetric mid-tread converter (V): vfs / (2**(bits-1) - 1).

    Args:
        bits: resolution (bits), >= 2.
        vfs: full scale (V), > 0: code +-kmax corresponds to +-vfs.
    """
    return float(vfs) / _check_converter(bits, vfs)


def converter_kmax(bits: int) -> int:
    """Largest code of a symmetric mid-tread converter of `bits` bits: 2**(bits-1) - 1."""
    return _check_converter(bits, 1.0)


def quantize_in_place(x: T, lsb: float, kmax: int) -> T:
    """x <- clip(floor(x / lsb + 0.5), -kmax, kmax), in place, for a float
    numpy array or torch tensor `x` (V, or codes with lsb = 1): the one
    quantiser of every DAC and ADC code (halves round up). Returns x."""
    if isinstance(x, np.ndarray):
        x /= lsb
        x += 0.5
        np.floor(x, out=x)
        np.clip(x, -kmax, kmax, out=x)
        return x
    return x.div_(lsb).add_(0.5).floor_().clamp_(-kmax, kmax)


def _quantise(x: np.ndarray, kmax: int) -> np.ndarray:
    """Nearest integer (halves up) of x, clipped to [-kmax, kmax], as int64."""
    return quantize_in_place(np.array(x, dtype=float), 1.0, kmax).astype(np.int64)


def dac_codes(v: ArrayLike, bits: int, vfs: float) -> np.ndarray:
    """Integer DAC codes for target voltages v (V): clip(round(v/lsb), +-kmax).

    Returns an int64 array of v's shape; halves round up (floor(x + 0.5)),
    like the `dac` subckt.
    """
    kmax = _check_converter(bits, vfs)
    return _quantise(np.asarray(v, dtype=float) / (float(vfs) / kmax), kmax)


def dac_voltage(codes: ArrayLike, bits: int, vfs: float) -> np.ndarray:
    """Output voltage (V) of the `dac` subckt for codes (V(en) = 1).

    Non-integer codes round to nearest (halves up) and codes beyond +-kmax
    clip, exactly as dac.cir: lsb * clip(floor(code + 0.5), -kmax, kmax).
    """
    kmax = _check_converter(bits, vfs)
    return (float(vfs) / kmax) * _quantise(np.asarray(codes, dtype=float), kmax)


def adc_codes(v: ArrayLike, bits: int, vfs: float) -> np.ndarray:
    """Integer output codes of the `adc` subckt for held input voltages v (V).

    code = clip(floor(v/lsb + 0.5), -kmax, kmax), lsb = vfs/kmax; int64.
    """
    kmax = _check_converter(bits, vfs)
    return _quantise(np.asarray(v, dtype=float) / (float(vfs) / kmax), kmax)


def adc_thresholds(bits: int, vfs: float) -> np.ndarray:
    """The 2*kmax decision levels of the ADC (V), ascending.

    The code steps from k-1 to k at (k - 0.5)*lsb for k = -kmax+1 .. kmax.
    """
    kmax = _check_converter(bits, vfs)
    lsb = float(vfs) / kmax
    return (np.arange(-kmax + 1, kmax + 1) - 0.5) * lsb


# ---------------------------------------------------------------------- TIA


def _check_gain(a0: float) -> float:
    if not np.isfinite(a0) or a0 <= 0:
        raise InputError(f"op-amp gain a0={a0!r} is invalid; use a positive finite gain (V/V)")
    return float(a0)


def tia_vcvs_gain(a0: float) -> float:
    """Closed-loop factor of `tia_vcvs`: V(out) = rs * I(in) * a0/(1 + a0).

    The inverting stage (VCVS gain a0, feedback rs) gives -rs*I*a0/(1+a0);
    the ideal unity inverter flips the sign. Dimensionless.
    """
    a0 = _check_gain(a0)
    return a0 / (1.0 + a0)


def tia_opamp_dc_gain(a0: float, rs: float = 1e3, rinv: float = 1e4, rout: float = 1.0) -> float:
    """Exact DC closed-loop factor of `tia_opamp`: V(out) = rs * I(in) * factor.

    Derived from the two stages of tia.cir with op-amps of DC gain a0 and
    output resistance rout, the out pin unloaded:
        gin    = (1 + a0) / (a0*rinv + 2*rinv + rout)         (S, inverter input)
        stage1 = (a0 - rout/rs) / (1 + a0 + rout*gin)          (TIA, sign removed)
        stage2 = (a0*rinv - rout) / (a0*rinv + 2*rinv + rout)  (inverter, sign removed)
    factor = stage1 * stage2; with rout = 0 it is a0**2 / ((1 + a0)(2 + a0)).

    Args:
        a0: op-amp open-loop DC gain (V/V).
        rs: feedback resistance (ohm); enters only through rout/rs.
        rinv: inverter resistors (ohm).
        rout: op-amp output resistance (ohm); opamp.cir's default is 1.
    """
    a0 = _check_gain(a0)
    denom2 = a0 * rinv + 2.0 * rinv + rout
    gin = (1.0 + a0) / denom2
    stage1 = (a0 - rout / rs) / (1.0 + a0 + rout * gin)
    stage2 = (a0 * rinv - rout) / denom2
    return stage1 * stage2


#: ngspice's default gmin (S): its MOSFET model puts it across each bulk
#: junction (drain-bulk, source-bulk; bulk at ground) besides the junction
#: diode itself, which the access card switches off with is = 0. The fast
#: solver (`cosim.fast.newton`) and the read power (`cosim.core.tile_power`) use it.
NGSPICE_GMIN = 1e-12


def tia_input_resistance(kind: str, rs: float, a0: float = 1e5, rinv: float = 1e4,
                         rout: float = 1.0) -> float:
    """DC input resistance V(in)/I(in) (ohm) of a TIA of circuits/tia.cir.

    'ideal': 0 (exact virtual ground). 'vcvs': rs / (1 + a0). 'opamp': the
    first op-amp stage with output resistance rout, loaded by the inverter's
    input conductance gin (see `tia_opamp_dc_gain`):
        r_in = (rout + rs + gin*rs*rout) / (1 + a0 + gin*rout),
    which is rs / (1 + a0) at rout = 0.

    Args:
        kind: 'ideal', 'vcvs' or 'opamp'.
        rs: feedback resistance (ohm).
        a0: op-amp open-loop DC gain (V/V).
        rinv, rout: inverter resistors and op-amp output resistance (ohm), 'opamp' only.
    """
    if kind == "ideal":
        return 0.0
    a0 = _check_gain(a0)
    if kind == "vcvs":
        return rs / (1.0 + a0)
    if kind == "opamp":
        gin = (1.0 + a0) / (a0 * rinv + 2.0 * rinv + rout)
        return (rout + rs + gin * rs * rout) / (1.0 + a0 + gin * rout)
    raise InputError(f"unknown TIA kind {kind!r}; use ideal, vcvs or opamp")


def tia_termination(spec: "TileSpec") -> float:
    """What each column of `spec` ends in at its TIA (ohm): the TIA's DC input
    resistance (`tia_input_resistance` of the tile's TIA kind, rs and a0); 0
    for the ideal TIA."""
    tia = spec.tia
    return tia_input_resistance(tia.kind, tia.rs, tia.a0)


def follower_bandwidth_hz(a0: float, gbw: float) -> float:
    """-3 dB frequency (Hz) of the `opamp` macromodel as a unity follower:
    gbw * (1 + a0) / a0 (single pole at gbw/a0, loop gain a0)."""
    a0 = _check_gain(a0)
    return float(gbw) * (1.0 + a0) / a0


# ---------------------------------------------------------- NMOS model card


def _parse_spice_number(text: str) -> float:
    """A SPICE number with an optional scale suffix ('100u', '2.5meg', '1e-9'),
    correctly rounded (decimal arithmetic: '50u' gives exactly 50e-6)."""
    match = _NUMBER.match(text.strip())
    if not match:
        raise ValueError(text)
    value, tail = Decimal(match.group(1)), match.group(2).lower()
    for suffix, scale in _SI_SUFFIXES:
        if tail.startswith(suffix):
            return float(value * Decimal(scale))
    return float(value)  # no suffix, or trailing units that SPICE ignores ('V', 'A')


def read_model_card(path: str | Path, name: str | None = None) -> dict[str, float]:
    """Parameters of a `.model` card in a SPICE library file.

    Joins '+' continuation lines, drops '*' comment lines and ';'/'$' tails,
    and parses `key=value` pairs with SI suffixes (f p n u m k meg g t).

    Args:
        path: the .lib file.
        name: model name to pick (case-insensitive); default: the first .model.

    Returns:
        {parameter (lower case): value (SI)}, plus no entry for the name and
        type (see the file for those).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"model file {path} does not exist; give the path of a SPICE .lib file")
    statements: list[str] = []
    for raw in path.read_text().splitlines():
        line = re.split(r"[;$]", raw, maxsplit=1)[0].rstrip()
        stripped = line.strip()
        if not stripped or stripped.startswith("*"):
            continue
        if stripped.startswith("+") and statements:
            statements[-1] += " " + stripped[1:]
        else:
            statements.append(stripped)
    for statement in statements:
        fields = statement.replace("(", " ").replace(")", " ").split(None, 3)
        if len(fields) < 3 or fields[0].lower() != ".model":
            continue
        if name is not None and fields[1].lower() != name.lower():
            continue
        body = fields[3] if len(fields) > 3 else ""
        card: dict[str, float] = {}
        for key, value in re.findall(r"([A-Za-z_]\w*)\s*=\s*(\S+)", body):
            try:
                card[key.lower()] = _parse_spice_number(value)
            except ValueError:
                raise InputError(f"model {fields[1]} in {path}: cannot read {key}={value}; "
                                 f"write it as a number with an optional SI suffix") from None
        return card
    which = f"model {name!r}" if name else "a .model line"
    raise InputError(f"{path} has no {which}; check the file or the model name")


def _beta(width: float, length: float, card: dict[str, float]) -> float:
    """kp * W / L_eff (A/V^2), L_eff = L - 2*ld as in SPICE level 1."""
    try:
        kp = card["kp"]
    except KeyError:
        raise InputError("NMOS model card has no kp; add kp (A/V^2) to the .model line") from None
    l_eff = length - 2.0 * card.get("ld", 0.0)
    if width <= 0 or l_eff <= 0:
        raise InputError(f"NMOS size W={width!r} m, L={length!r} m is invalid; use positive "
                         f"width and length (longer than 2*ld)")
    return kp * width / l_eff


def access_resistance(width: float, length: float, v_gate: ArrayLike,
                      card: dict[str, float]) -> np.ndarray | float:
    """Triode small-signal on-resistance (ohm) of the level-1 access NMOS at
    Vds -> 0, source at ground: 1 / (kp * W/L * (Vgs - vto)).

    Args:
        width, length: channel width and length (m).
        v_gate: gate-source voltage (V), must exceed vto.
        card: model card from read_model_card.
    """
    vov = np.asarray(v_gate, dtype=float) - card.get("vto", 0.0)
    if np.any(vov <= 0):
        raise InputError(f"gate voltage {v_gate!r} V does not turn the access NMOS on "
                         f"(vto = {card.get('vto', 0.0)} V); raise the word-line voltage")
    r = 1.0 / (_beta(width, length, card) * vov)
    return float(r) if r.ndim == 0 else r


def _forward_current(vds: np.ndarray, vgs: np.ndarray, beta: float, vto: float,
                     lam: float) -> np.ndarray:
    """Level-1 drain current (A) for vds >= 0."""
    vov = vgs - vto
    betap = beta * (1.0 + lam * vds)
    triode = betap * vds * (vov - 0.5 * vds)
    saturation = 0.5 * betap * vov * vov
    current = np.where(vds < vov, triode, saturation)
    return np.where(vov > 0, current, 0.0)


def nmos_level1_current(vds: ArrayLike, vgs: ArrayLike, width: float, length: float,
                        card: dict[str, float]) -> np.ndarray | float:
    """Drain current (A, into the drain) of the SPICE level-1 NMOS.

    Triode for Vds < Vgs - vto: beta*(1 + lambda*Vds)*Vds*(Vgs - vto - Vds/2);
    saturation above: beta*(1 + lambda*Vds)*(Vgs - vto)^2/2; zero below
    threshold; beta = kp*W/(L - 2*ld). Symmetric like SPICE: for Vds < 0 the
    terminals swap, Id(Vds, Vgs) = -Id(-Vds, Vgs - Vds). The body effect is
    not modelled (the card has gamma = 0).

    Args:
        vds, vgs: drain-source and gate-source voltages (V), broadcastable.
        width, length: channel width and length (m).
        card: model card from read_model_card (kp, vto, lambda, ld).
    """
    vds = np.asarray(vds, dtype=float)
    vgs = np.asarray(vgs, dtype=float)
    beta = _beta(width, length, card)
    vto, lam = card.get("vto", 0.0), card.get("lambda", 0.0)
    forward = _forward_current(np.abs(vds), np.where(vds >= 0, vgs, vgs - vds), beta, vto, lam)
    current = np.where(vds >= 0, forward, -forward)
    return float(current) if current.ndim == 0 else current
