"""Calibrate the access transistor for the fast solver's linear path, in ngspice.

The fast solver's transfer matrix needs each 1T1R cell as one conductance.
The access NMOS is not a resistor: its level-1 channel current is
beta*(Vov*Vds - Vds^2/2) with the source grounded, for both signs of Vds,
so its conductance moves by Vds/(2 Vov), about +-10 % over a +-0.3 V read
of a 50 ohm device. `calibrate` runs ngspice DC sweeps of the 1T1R cell
(circuits/cell_1t1r.cir, `cell_1t1r_frozen`, with models/nmos_access.lib)
for a grid of device resistances over the preset's range, source at ground
as at a TIA's virtual ground, and fits for each device resistance R the
effective series access resistance whose cell conductance 1/(R + R_acc)
best reproduces the swept current (least squares): one for positive reads,
one for negative reads (the solver applies v+ @ T+ + v- @ T-, which removes
the even-order part of the nonlinearity), and one over the whole range.

The result is a JSON file with its provenance (ngspice version, model card
and cell sha256, date, preset and device parameters, W, L, V_wl, the sweep,
the fit residuals) that `cosim.fast` loads; it refuses a calibration made for
another transistor or another model card.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

import numpy as np

from cosim.core import netsafe
from cosim.core.config import NmosAccess, VteamParams, to_dict
from cosim.core.errors import InputError
from cosim.core.resources import resource_path
from cosim.core.version import __version__
from cosim.fast.calibration import Calibration, file_sha256
from cosim.spice.ngspice import ngspice_version, run_netlist

RAW_NAME = "tile.raw"


def _g(value: float) -> str:
    """The netlist writers' one number formatter (`cosim.core.netsafe.number`): round trip, finite only."""
    return netsafe.number(float(value))


def device_grid(device: VteamParams, n_devices: int) -> np.ndarray:
    """n_devices resistances from r_on to r_off, evenly spaced in log(R) (ohm)."""
    if n_devices < 2:
        raise InputError(f"a calibration needs at least 2 device resistances, got {n_devices}")
    return np.geomspace(device.r_on, device.r_off, n_devices)


def sweep_netlist(r_device: np.ndarray, nmos: NmosAccess, v_read: tuple[float, float], n_points: int,
                  card_path: Path | None = None) -> str:
    """ngspice netlist: one `cell_1t1r_frozen` per device resistance, all
    driven by one swept source `Vin` from the bit line, each sourcing into
    its own 0 V sense source `Vs{k}` (the column's virtual ground)."""
    cell = resource_path("circuits", "cell_1t1r.cir")
    card = card_path or resource_path("models", "nmos_access.lib")
    lo, hi = v_read
    step = (hi - lo) / (n_points - 1)
    geometry = f"w={_g(nmos.width)} l={_g(nmos.length)}"
    lines = [f"* cosim access calibration: {len(r_device)} 1T1R cells, Vin swept {_g(lo)}..{_g(hi)} V",
             f".include {cell}", f".include {card}",
             "Vin bl 0 DC 0", f"Vwl wl 0 DC {_g(nmos.v_wordline)}"]
    for k, r in enumerate(r_device):
        lines.append(f"Xcell{k} bl s{k} wl cell_1t1r_frozen params: r={_g(r)} {geometry}")
        lines.append(f"Vs{k} s{k} 0 DC 0")
    lines += [".control", "set filetype=binary",
              "save " + " ".join(f"i(vs{k})" for k in range(len(r_device))) + " v(bl)",
              f"dc Vin {_g(lo)} {_g(hi)} {_g(step)}", f"write {RAW_NAME}", ".endc", ".end"]
    return netsafe.check_ngspice(lines)  # the writers' final check of every line


def sweep_cells(r_device: np.ndarray, nmos: NmosAccess, v_read: tuple[float, float] = (-0.3, 0.3),
                n_points: int = 61, timeout_s: float = 300.0,
                card_path: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Run the sweep in ngspice: (voltages (P,) V, currents (n, P) A into the
    virtual ground, one row per device resistance)."""
    if n_points < 3:
        raise InputError(f"a calibration sweep needs at least 3 points, got {n_points}")
    lo, hi = map(float, v_read)
    if not lo < hi:
        raise InputError(f"read-voltage range must be (low, high) with low < high, got {v_read}")
    run = run_netlist(sweep_netlist(r_device, nmos, (lo, hi), n_points, card_path),
                      timeout_s=timeout_s, expect_plots=1)
    plot = run.plots[0]
    v = np.asarray(plot["v(bl)"], dtype=float)
    currents = np.stack([np.asarray(plot[f"i(vs{k})"], dtype=float) for k in range(len(r_device))])
    return v, currents


def _least_squares_conductance(v: np.ndarray, currents: np.ndarray) -> np.ndarray:
    """Per device, the g (S) minimising sum (i - g v)^2 over the sweep points given."""
    return (currents * v).sum(axis=1) / (v * v).sum()


def fit_access(r_device: np.ndarray, v: np.ndarray,
               currents: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Least-squares effective access resistances (ohm) and their residuals.

    For each device and polarity ('both': all points, 'pos': v >= 0,
    'neg': v <= 0), g_eff = sum(i v) / sum(v^2) over those points and
    R_acc = 1/g_eff - R. Residuals: max |i - model| / max |i| per device,
    for the single conductance ('both') and for the sign-split model
    (g_pos for v >= 0, g_neg below).
    """
    masks = {"both": np.ones_like(v, dtype=bool), "pos": v >= 0, "neg": v <= 0}
    g_eff = {}
    for p, mask in masks.items():
        if not np.any(v[mask] != 0):
            raise InputError(f"the read-voltage range {v.min():g}..{v.max():g} V has no "
                             f"{'positive' if p == 'pos' else 'negative'} part; give a range around 0 V")
        g_eff[p] = _least_squares_conductance(v[mask], currents[:, mask])
    r_access = {p: 1.0 / g - r_device for p, g in g_eff.items()}
    scale = np.max(np.abs(currents), axis=1)
    single = np.max(np.abs(currents - g_eff["both"][:, None] * v), axis=1) / scale
    split_model = np.where(v >= 0, g_eff["pos"][:, None] * v, g_eff["neg"][:, None] * v)
    split = np.max(np.abs(currents - split_model), axis=1) / scale
    residuals = {"single_max_rel": float(single.max()), "split_max_rel": float(split.max()),
                 "single_per_device": single.tolist(), "split_per_device": split.tolist(),
                 "note": "max |i_ngspice - model| / max |i_ngspice| over the sweep, per device; "
                         "single: v/(R + R_acc_both); split: R_acc_pos for v >= 0, R_acc_neg below"}
    return r_access, residuals


def fit_access_calibration(device: VteamParams | None = None, nmos: NmosAccess | None = None, *,
              preset: str = "custom", v_read: tuple[float, float] = (-0.3, 0.3), n_devices: int = 25,
              n_points: int = 61, timeout_s: float = 300.0) -> Calibration:
    """Fit the access calibration of a device preset in ngspice.

    Args:
        device: VTEAM parameters whose r_on..r_off range is covered (default: seed 000).
        nmos: access transistor geometry and word-line voltage (default: NmosAccess()).
        preset: name recorded in the provenance.
        v_read: range of read voltages across the cell (V).
        n_devices: device resistances in the fit grid (log-spaced).
        n_points: points of each voltage sweep.
        timeout_s: ngspice time limit (s).
    """
    device = device or VteamParams()
    nmos = nmos or NmosAccess()
    r_device = device_grid(device, n_devices)
    v, currents = sweep_cells(r_device, nmos, v_read, n_points, timeout_s)
    r_access, residuals = fit_access(r_device, v, currents)
    card = resource_path("models", "nmos_access.lib")
    cell = resource_path("circuits", "cell_1t1r.cir")
    provenance = {
        "ngspice": ngspice_version(), "cosim": __version__,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "preset": preset, "device": to_dict(device), "nmos": to_dict(nmos),
        "model_card": {"file": card.name, "sha256": file_sha256(card)},
        "cell": {"file": cell.name, "subckt": "cell_1t1r_frozen", "sha256": file_sha256(cell)},
        "sweep": {"v_read": [float(v_read[0]), float(v_read[1])], "n_points": n_points,
                  "n_devices": n_devices, "source": "grounded (virtual ground)", "analysis": "dc"},
        "fit": "least squares of i = v / (R + R_acc) per device over the whole sweep (both) and "
               "over its v >= 0 (pos) and v <= 0 (neg) parts; R_acc interpolated linearly in log(R)",
        "residuals": residuals,
    }
    return Calibration(width=nmos.width, length=nmos.length, v_wordline=nmos.v_wordline,
                       r_device=r_device, r_access=r_access,
                       v_read=(float(v_read[0]), float(v_read[1])),
                       card_sha256=file_sha256(card), provenance=provenance)
