"""Access-NMOS calibration data for the fast solver's linear path: the fitted
effective access resistances (ohm) per device resistance and read polarity,
saved and loaded as JSON (`cosim calibrate` makes them).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cosim.core.errors import InputError
from cosim.core.resources import resource_path

FORMAT = "cosim-access-calibration"

FORMAT_VERSION = 1

#: Relative slack on the calibrated device range before a tile is refused.
RANGE_TOLERANCE = 1e-6


def file_sha256(path: Path) -> str:
    """sha256 hex digest of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


POLARITIES = ("both", "pos", "neg")


@dataclass(frozen=True)
class Calibration:
    """Effective series access resistance of the 1T1R cell versus device resistance.

    Attributes:
        width: access NMOS channel width (m).
        length: access NMOS channel length (m).
        v_wordline: word-line (gate) voltage (V).
        r_device: (n,) device resistances of the fit grid, ascending (ohm).
        r_access: {'both', 'pos', 'neg'}: (n,) fitted effective access
            resistance at each device resistance over the whole read range,
            over its positive part and over its negative part (ohm).
        v_read: (lowest, highest) cell voltage of the sweeps (V).
        card_sha256: sha256 of the model card file the sweeps used.
        provenance: everything else worth keeping (ngspice version, date,
            preset, residuals, ...), as written to the JSON file.
    """

    width: float
    length: float
    v_wordline: float
    r_device: np.ndarray
    r_access: dict[str, np.ndarray]
    v_read: tuple[float, float]
    card_sha256: str
    provenance: dict[str, Any] = field(default_factory=dict)

    def access_resistance(self, r_device: np.ndarray, polarity: str = "both") -> np.ndarray:
        """Effective access resistance (ohm) for device resistances (ohm) and
        read polarity ('both', 'pos', 'neg'), interpolated linearly in log(R)."""
        if polarity not in POLARITIES:
            raise InputError(f"polarity must be one of {', '.join(POLARITIES)}, got {polarity!r}")
        r = np.asarray(r_device, dtype=float)
        lo, hi = self.r_device[0], self.r_device[-1]
        if np.any(r < lo * (1 - RANGE_TOLERANCE)) or np.any(r > hi * (1 + RANGE_TOLERANCE)):
            raise InputError(f"tile devices span {r.min():.6g}..{r.max():.6g} ohm but the access calibration "
                             f"covers {lo:.6g}..{hi:.6g} ohm; run `cosim calibrate` with a preset that covers them")
        return np.interp(np.log(r), np.log(self.r_device), self.r_access[polarity])

    def to_json(self) -> dict[str, Any]:
        """The calibration as JSON-ready data."""
        fit = {"r_device_ohm": self.r_device.tolist()}
        fit.update({f"r_access_{p}_ohm": self.r_access[p].tolist() for p in POLARITIES})
        return {"format": FORMAT, "format_version": FORMAT_VERSION,
                "nmos": {"width": self.width, "length": self.length, "v_wordline": self.v_wordline},
                "v_read": list(self.v_read), "card_sha256": self.card_sha256, "fit": fit,
                "provenance": self.provenance}


def save_calibration(calibration: Calibration, path: str | Path) -> Path:
    """Write `calibration` as JSON (the directory is created), atomically
    (`cosim.core.atomic`: a failed write leaves no file and ends in one line)."""
    from cosim.core.atomic import atomic_write_text, check_output_dir

    out = Path(path)
    check_output_dir(out.parent, create=True)
    return atomic_write_text(out, json.dumps(calibration.to_json(), indent=2) + "\n")


def load_calibration(path: str | Path, card_path: str | Path | None = None) -> Calibration:
    """Read a calibration JSON; refuse one made with another model card.

    Args:
        path: the file `cosim calibrate` wrote.
        card_path: the model card the solver will use (default
            models/nmos_access.lib); its sha256 must match the file's.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"calibration file {p} does not exist; write one with `cosim calibrate`")
    try:
        data = json.loads(p.read_text())
        if data.get("format") != FORMAT:
            raise KeyError("format")
        nmos, fit = data["nmos"], data["fit"]
        cal = Calibration(width=float(nmos["width"]), length=float(nmos["length"]),
                          v_wordline=float(nmos["v_wordline"]),
                          r_device=np.asarray(fit["r_device_ohm"], dtype=float),
                          r_access={p: np.asarray(fit[f"r_access_{p}_ohm"], dtype=float) for p in POLARITIES},
                          v_read=tuple(data["v_read"]), card_sha256=str(data["card_sha256"]),
                          provenance=dict(data.get("provenance", {})))
        fits = [cal.r_device, *cal.r_access.values()]  # untrusted: finite, > 0, one shape, a grid to interpolate
        if (not np.all(np.isfinite([cal.width, cal.length, cal.v_wordline])) or cal.r_device.ndim != 1
                or cal.r_device.size < 2 or any(a.shape != cal.r_device.shape or not np.all(np.isfinite(a))
                                                or np.any(a <= 0) for a in fits)):
            raise ValueError("fit")
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        raise InputError(f"{p} is not a cosim access calibration; write one with `cosim calibrate`") from None
    card = Path(card_path) if card_path else resource_path("models", "nmos_access.lib")
    if file_sha256(card) != cal.card_sha256:
        raise InputError(f"calibration {p} was fitted for another NMOS model card than {card}; "
                         "run `cosim calibrate` again")
    return cal
