"""Read disturb: how far a read above v_off moves the VTEAM devices, against
the VTEAM rate integrated by hand, and the read pulse that keeps it under 1%."""

from __future__ import annotations

import warnings

import h5py
import numpy as np
import pytest

from cosim.analysis.disturb import DisturbReport, ReadDisturbWarning, max_read_pulse, relative_change, warn_if_disturbed
from cosim.analysis.transient import run_transient
from cosim.core.config import DacSpec, TranSpec, VteamParams
from cosim.core.tile import TileSpec
from cosim.results.store import write_tile_group
from cosim.results.stored_disturb import group_disturb

SEED = VteamParams()
RATE = SEED.k_off / (SEED.w_off - SEED.w_on)  # dx/dt per unit of (v/v_off - 1) at f = 1 (1/s)


def hand_state(x0: np.ndarray, v: float, delay: float, rise: float, t_end: float) -> np.ndarray:
    """x at t_end under v ramped from 0 (at `delay`, over `rise`) then held, by hand.

    Above v_off with the Biolek window (p = 1), dx/dt = RATE * (v/v_off - 1) * (1 - x^2),
    so atanh(x) grows by RATE times the integral of (v(t)/v_off - 1) above threshold:
    over the ramp, a triangle (v/v_off - 1) * rise * (1 - v_off/v) / 2; then a rectangle.
    """
    excess = v / SEED.v_off - 1.0
    area = excess * rise * (1.0 - SEED.v_off / v) / 2.0 + excess * (t_end - delay - rise)
    return np.tanh(np.arctanh(x0) + RATE * area)


def test_read_disturb_matches_vteam_rate_integrated_by_hand(tmp_path):
    """A 0.3 V read of 10 ns moves x0 = 0.2 and 0.6 along atanh(x) + RATE*area:
    the figure from ngspice's stored state (cell 0,0) and the one integrated
    from the DC read voltage (cell 0,1, state not stored) both match it."""
    delay, rise, t_stop = 1e-9, 1e-9, 10e-9
    x0 = np.array([[0.2, 0.6]])
    spec = TileSpec.from_states(x0, dac=DacSpec(delay=delay, rise=rise))
    v = np.array([0.3])
    tran = TranSpec(t_stop=t_stop, t_step=t_stop / 400, t_sample=0.75 * t_stop, t_max_step=t_stop / 400)
    result, transient = run_transient(spec, v, tran, cells=np.array([[0, 0]]))
    with h5py.File(tmp_path / "tile.h5", "w") as h5:
        write_tile_group(h5, spec, v, result, transient)
        report = group_disturb(h5)
    expected = relative_change(x0, hand_state(x0, 0.3, delay, rise, t_stop), SEED)
    assert report.from_spice.tolist() == [[True, False]]
    assert report.change[0] == pytest.approx(expected, rel=5e-4)
    assert report.max_abs == pytest.approx(np.abs(expected).max(), rel=5e-4)
    assert report.t_read == pytest.approx(t_stop)


def test_read_pulse_for_one_percent_drift_matches_closed_form():
    """Seed device at +0.3 V: the worst state is x0 = 0 (r_on: the fastest
    relative change); 1% lower conductance is R = 50/0.99 ohm, i.e.
    x1 = (50/0.99 - 50)/950, reached at atanh(x1) / (RATE * (0.3/0.02 - 1))."""
    limit = max_read_pulse(SEED, v_read=0.3, fraction=0.01)
    x1 = (SEED.r_on / 0.99 - SEED.r_on) / (SEED.r_off - SEED.r_on)
    assert limit.x_worst == pytest.approx(0.0, abs=1e-6)
    assert limit.t_max == pytest.approx(np.arctanh(x1) / (RATE * (0.3 / SEED.v_off - 1)), rel=1e-6)


@pytest.mark.parametrize("v_read", [0.3, -0.3])
def test_ngspice_read_of_that_pulse_length_drifts_one_percent(v_read):
    """One ngspice transient of a cell at the worst state, read by a sharp step
    for the pulse `max_read_pulse` gives, ends 1% away in conductance (a
    -0.3 V read is beyond v_on = -0.2 V and drifts towards r_on, faster)."""
    limit = max_read_pulse(SEED, v_read=v_read)
    delay, rise = 10e-12, 1e-14
    t_stop = delay + rise / 2 + limit.t_max
    spec = TileSpec.from_states(np.array([[limit.x_worst]]), dac=DacSpec(delay=delay, rise=rise))
    tran = TranSpec(t_stop=t_stop, t_step=t_stop / 500, t_sample=t_stop / 2, t_max_step=t_stop / 500)
    result, _ = run_transient(spec, np.array([v_read]), tran, keep_raw=False)
    x = result.waveforms[0]["v(x0_0)"]
    assert abs(relative_change(x[0], x[-1], SEED)) == pytest.approx(0.01, rel=2e-3)


def test_a_read_below_threshold_does_not_warn_and_one_above_does():
    """0.015 V (< v_off) leaves the state where it was; 0.3 V for 20 ns at
    x0 = 0.1 moves the conductance by several percent and warns."""
    spec = TileSpec.from_states(np.array([[0.1]]))
    for v, disturbing in ((0.015, False), (0.3, True)):
        result, _ = run_transient(spec, np.array([v]), keep_raw=False)
        x = result.waveforms[0]["v(x0_0)"]
        report = DisturbReport(relative_change(x[0], x[-1], SEED).reshape(1, 1, 1), np.ones((1, 1), bool),
                               float(result.waveforms[0]["time"][-1]))
        assert report.exceeds is disturbing
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warn_if_disturbed(report)
        assert [w.category for w in caught] == ([ReadDisturbWarning] if disturbing else [])
        if not disturbing:
            assert report.max_abs < 1e-9
