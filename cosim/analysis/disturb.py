"""Read disturb: how far a read moves the VTEAM devices it reads.

A read voltage above v_off (seed 000: 0.02 V; reads are +-0.3 V) drives
x towards r_off (below v_on = -0.2 V towards r_on) for as long as the read
lasts, so a read changes the conductances it measures. Per tile this module
reports the relative conductance change dG/G = G(x_end)/G(x_start) - 1 of
every cell over the read (the transient's 0..t_stop):

- from the device states ngspice computed, for the cells whose states were
  stored;
- for the other cells, from `cosim.core.vteam.integrate_state` driven by the
  memristor's DC read voltage (an ngspice `.op` with all nodes saved)
  times the DAC's enable step (delay, then a linear rise to 1): the
  quasi-static read. It ignores the TIAs' settling (the virtual ground
  lifts while an op-amp TIA settles, which lowers the cell voltage) and
  the drift's own effect on the voltages, so it overstates dG/G: by up to
  8% per cell for the 4x4 example read for 20 ns through op-amp TIAs
  (tau ~3 ns), 0.3% through ideal TIAs. Store every state (the default)
  for exact figures.

`max_read_pulse` gives the longest read at a voltage that keeps the drift
under a fraction for the worst-case state, from the VTEAM equations.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from cosim.analysis.irdrop import node_voltages
from cosim.core import vteam
from cosim.core.config import DacSpec, VteamParams
from cosim.core.errors import InputError
from cosim.core.tile import TileSpec

#: Default limit on |dG/G| over one read before a warning (1 %).
DEFAULT_THRESHOLD = 0.01


class ReadDisturbWarning(UserWarning):
    """A read moved some device's conductance by more than the set fraction."""


@dataclass(frozen=True)
class DisturbReport:
    """Relative conductance change of every cell of a tile over one read.

    Attributes:
        change: (B, R, C) dG/G = G(end)/G(start) - 1 per input vector (1).
        from_spice: (R, C) True where the change comes from ngspice's states,
            False where it was integrated from the DC read voltage.
        t_read: length of the read window, 0 to the end of the transient (s).
        threshold: the |dG/G| above which the read counts as disturbing (1).
    """

    change: np.ndarray
    from_spice: np.ndarray
    t_read: float
    threshold: float = DEFAULT_THRESHOLD

    @property
    def max_abs(self) -> float:
        """Largest |dG/G| over all cells and input vectors (1)."""
        return float(np.max(np.abs(self.change)))

    @property
    def mean_abs(self) -> float:
        """Mean |dG/G| over all cells and input vectors (1)."""
        return float(np.mean(np.abs(self.change)))

    @property
    def worst(self) -> tuple[int, int, int]:
        """(input vector, row, column) of the largest |dG/G|."""
        flat = int(np.argmax(np.abs(self.change)))
        return tuple(int(k) for k in np.unravel_index(flat, self.change.shape))  # type: ignore[return-value]

    @property
    def exceeds(self) -> bool:
        """Whether the largest |dG/G| (dimensionless) is above `threshold`."""
        return self.max_abs > self.threshold

    def summary(self) -> str:
        """One line: largest and mean |dG/G|, where, and whether it passes the limit."""
        b, i, j = self.worst
        verdict = (f"ABOVE the {self.threshold:.3g} limit: shorten the read pulse or lower the read voltage"
                   if self.exceeds else f"within the {self.threshold:.3g} limit")
        return (f"read disturb over a {self.t_read * 1e9:.4g} ns read: largest |dG/G| {self.max_abs:.3g} "
                f"(cell {i},{j}, vector {b}), mean {self.mean_abs:.3g}; {verdict}")


def relative_change(x_start: np.ndarray, x_end: np.ndarray, p: VteamParams) -> np.ndarray:
    """dG/G = G(x_end)/G(x_start) - 1 (1) for VTEAM states x."""
    return vteam.resistance(x_start, p) / vteam.resistance(x_end, p) - 1.0


def drive_shape(t: np.ndarray, dac: DacSpec) -> np.ndarray:
    """The DACs' enable step at times t (s): 0 until dac.delay, a linear rise
    over dac.rise, then 1 (1), as the netlist's `Ven` source."""
    return np.clip((np.asarray(t, dtype=float) - dac.delay) / dac.rise, 0.0, 1.0)


def change_from_read_voltage(v_dc: np.ndarray, t: np.ndarray, x0: np.ndarray, p: VteamParams,
                             dac: DacSpec) -> np.ndarray:
    """dG/G at t[-1] of devices at states x0 read quasi-statically at DC
    memristor voltages v_dc (V) times the DAC enable step on times t (s)."""
    v_dc = np.asarray(v_dc, dtype=float)
    if v_dc.size == 0:
        return np.zeros(v_dc.shape)
    v_of_t = drive_shape(t, dac)[:, None] * v_dc.ravel()[None, :]
    x = vteam.integrate_state(v_of_t, t, np.asarray(x0, dtype=float).ravel(), p)
    return relative_change(x[0], x[-1], p).reshape(v_dc.shape)


def read_disturb(spec: TileSpec, voltages: np.ndarray, times: list[np.ndarray], states: list[np.ndarray],
                 cells: np.ndarray, threshold: float = DEFAULT_THRESHOLD,
                 timeout_s: float = 600.0) -> DisturbReport:
    """Read disturb of a transient tile run.

    Args:
        spec: the tile.
        voltages: row input voltages (R,) or (B, R) (V).
        times: per input vector, the transient's time points (s).
        states: per input vector, (T_b, K) VTEAM states of `cells` from ngspice.
        cells: (K, 2) (row, column) of the stored states; the other cells are
            integrated from their DC read voltage (one ngspice `.op`).
        threshold: |dG/G| above which the report `exceeds` (1).
        timeout_s: ngspice limit for that `.op` (s).
    """
    if not threshold > 0:
        raise InputError(f"read-disturb threshold must be a fraction > 0, got {threshold}")
    v = spec.check_voltages(voltages)
    cells = np.asarray(cells, dtype=np.int64).reshape(-1, 2)
    saved = np.zeros((spec.rows, spec.cols), dtype=bool)
    saved[cells[:, 0], cells[:, 1]] = True
    x0 = spec.states
    change = np.empty((v.shape[0], spec.rows, spec.cols))
    v_mem = None if saved.all() else node_voltages(spec, v, "spice", timeout_s).memristor
    for b, (t, x) in enumerate(zip(times, states)):
        change[b][cells[:, 0], cells[:, 1]] = relative_change(x[0], x[-1], spec.device)
        if v_mem is not None:
            change[b][~saved] = change_from_read_voltage(v_mem[b][~saved], t, x0[~saved], spec.device, spec.dac)
    return DisturbReport(change, saved, float(times[0][-1]), threshold)


def warn_if_disturbed(report: DisturbReport, tile: str = "tile") -> None:
    """A ReadDisturbWarning with the report's summary when it exceeds its threshold."""
    if report.exceeds:
        warnings.warn(f"{tile}: {report.summary()}", ReadDisturbWarning, stacklevel=2)


@dataclass(frozen=True)
class PulseLimit:
    """The longest read pulse at `v_read` that keeps |dG/G| <= `fraction`.

    Attributes:
        t_max: pulse length (s) for the worst-case starting state.
        x_worst: that state (1).
        v_read: read voltage across the memristor (V).
        fraction: the allowed |dG/G| (1).
    """

    t_max: float
    x_worst: float
    v_read: float
    fraction: float


def _state_at_resistance(r: float, p: VteamParams) -> float:
    if p.resistance_model == "exponential":
        return float(np.log(r / p.r_on) / np.log(p.r_off / p.r_on))
    return (r - p.r_on) / (p.r_off - p.r_on)


def pulse_to_drift(x0: float, v_read: float, p: VteamParams, fraction: float = DEFAULT_THRESHOLD) -> float:
    """Time (s) a constant v_read (V) takes to move a device at state x0 by
    |dG/G| = fraction: the integral of dx / (dx/dt) from x0 to the state of
    that conductance (inf if it is never reached; the 1e-12 S state leak is
    left out)."""
    rate = float(vteam.dx_dt(v_read, x0, p))
    if rate == 0.0:
        return float("inf")
    # Towards r_off (rate > 0) G falls by `fraction`, towards r_on it rises.
    r_target = float(vteam.resistance(x0, p)) / (1.0 - fraction if rate > 0 else 1.0 + fraction)
    x1 = _state_at_resistance(r_target, p)
    if not 0.0 <= x1 <= 1.0:
        return float("inf")
    from scipy.integrate import quad  # here, not at import: scipy.integrate costs ~0.3 s of start-up

    t, _ = quad(lambda x: 1.0 / float(vteam.dx_dt(v_read, x, p)), x0, x1, limit=200)
    return float(t) if np.isfinite(t) and t > 0 else float("inf")


def max_read_pulse(p: VteamParams, v_read: float = 0.3, fraction: float = DEFAULT_THRESHOLD,
                   grid: int = 401) -> PulseLimit:
    """The longest constant read pulse at v_read (V) across the memristor
    that keeps |dG/G| <= fraction whatever the starting state: the minimum
    over x0 in [0, 1] of `pulse_to_drift` (grid, then a bounded refinement)."""
    if not 0 < fraction < 1:
        raise InputError(f"drift fraction must lie in (0, 1), got {fraction}")
    xs = np.linspace(0.0, 1.0, grid)
    times = np.array([pulse_to_drift(x, v_read, p, fraction) for x in xs])
    if not np.any(np.isfinite(times)):
        return PulseLimit(float("inf"), float("nan"), v_read, fraction)
    k = int(np.argmin(times))
    lo, hi = xs[max(k - 1, 0)], xs[min(k + 1, grid - 1)]
    from scipy.optimize import minimize_scalar

    best = minimize_scalar(lambda x: pulse_to_drift(x, v_read, p, fraction), bounds=(lo, hi),
                           method="bounded", options={"xatol": 1e-9})
    if best.success and best.fun < times[k]:
        return PulseLimit(float(best.fun), float(best.x), v_read, fraction)
    return PulseLimit(float(times[k]), float(xs[k]), v_read, fraction)
