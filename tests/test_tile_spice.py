"""ngspice tiles against independent references: hand-derived circuits, the
ideal v @ G, and a scipy nodal solve of the same crossbar."""

from __future__ import annotations

import numpy as np
import pytest
from nodal_reference import crossbar_currents
from scipy.optimize import brentq

from cosim.core import peripherals
from cosim.core.config import AdcSpec, DacSpec, NmosAccess, TranSpec
from cosim.core.resources import resource_path
from cosim.core.tile import TileSpec
from cosim.engines import solve


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def test_single_cell_without_wires_draws_v_times_g():
    g = np.array([[1 / 437.0]])
    result = solve(TileSpec(g), np.array([[0.25], [-0.1]]))
    assert np.allclose(result.current[:, 0], [0.25 / 437.0, -0.1 / 437.0], rtol=1e-12, atol=0)


def test_single_cell_with_driver_and_wire_draws_v_over_series_resistance():
    """1x1 tile: driver, device, one column segment into the TIA, in series."""
    r_dev, r_drv, r_w = 300.0, 10.0, 2.0
    result = solve(TileSpec(np.array([[1 / r_dev]]), r_wire=r_w, r_driver=r_drv), np.array([0.3]))
    assert result.current[0, 0] == pytest.approx(0.3 / (r_dev + r_drv + r_w), rel=1e-12)


def test_single_1t1r_cell_solves_memristor_in_series_with_level1_nmos():
    """One 1T1R cell: R*I + V_ds(I) = V with the level-1 triode law of models/nmos_access.lib."""
    card = peripherals.read_model_card(resource_path("models", "nmos_access.lib"))
    nmos = NmosAccess()
    r_dev = 120.0
    for v in (0.3, 0.05, -0.2):
        result = solve(TileSpec(np.array([[1 / r_dev]]), access="nmos", nmos=nmos), np.array([v]))

        def kcl(vds: float) -> float:
            current = peripherals.nmos_level1_current(vds, nmos.v_wordline, nmos.width, nmos.length, card)
            return current - (v - vds) / r_dev

        vds = brentq(kcl, min(0.0, v), max(0.0, v), xtol=1e-15, rtol=1e-15)
        assert result.current[0, 0] == pytest.approx((v - vds) / r_dev, rel=1e-9)
        r_access = peripherals.access_resistance(nmos.width, nmos.length, nmos.v_wordline, card)
        # Small-signal series resistance V/(R + R_access): exact as V -> 0; at 50 mV the
        # triode's Vds/(2 Vov) curvature (Vds ~ 34 mV, Vov = 1.3 V) costs ~1%.
        if abs(v) <= 0.05:
            assert result.current[0, 0] == pytest.approx(v / (r_dev + r_access), rel=0.02)


def test_2x2_with_wires_matches_hand_solved_nodal_equations():
    """KCL at the 8 nodes of a 2x2 tile, written out by hand."""
    g00, g01, g10, g11 = 1 / 100.0, 1 / 700.0, 1 / 250.0, 1 / 900.0
    v0, v1 = 0.3, -0.12
    gw, gd = 1 / 1.5, 1 / 10.0
    # unknowns: r00 r01 r10 r11 c00 c01 c10 c11
    a = np.array([
        [gd + gw + g00, -gw, 0, 0, -g00, 0, 0, 0],
        [-gw, gw + g01, 0, 0, 0, -g01, 0, 0],
        [0, 0, gd + gw + g10, -gw, 0, 0, -g10, 0],
        [0, 0, -gw, gw + g11, 0, 0, 0, -g11],
        [-g00, 0, 0, 0, g00 + gw, 0, -gw, 0],
        [0, -g01, 0, 0, 0, g01 + gw, 0, -gw],
        [0, 0, -g10, 0, -gw, 0, g10 + 2 * gw, 0],
        [0, 0, 0, -g11, 0, -gw, 0, g11 + 2 * gw],
    ])
    rhs = np.array([gd * v0, 0, gd * v1, 0, 0, 0, 0, 0])
    nodes = np.linalg.solve(a, rhs)
    expected = gw * nodes[6:8]
    spec = TileSpec(np.array([[g00, g01], [g10, g11]]), r_wire=1.5, r_driver=10.0)
    result = solve(spec, np.array([v0, v1]))
    assert rel_err(result.current[0], expected) < 1e-9


def test_ideal_wires_and_no_access_give_exactly_v_at_g_for_a_batch():
    rng = np.random.default_rng(1)
    g = rng.uniform(1e-3, 2e-2, size=(8, 6))
    v = rng.uniform(-0.3, 0.3, size=(3, 8))
    result = solve(TileSpec(g), v)
    assert result.current.shape == (3, 6)
    assert rel_err(result.current, v @ g) < 1e-9
    assert rel_err(result.vout, 100.0 * (v @ g)) < 1e-9  # ideal TIA: vout = rs * current


@pytest.mark.parametrize("seed", [0, 1])
def test_random_16x16_with_wires_matches_scipy_nodal_solve(seed):
    rng = np.random.default_rng(seed)
    g = 1.0 / rng.uniform(50.0, 1000.0, size=(16, 16))
    v = rng.uniform(-0.3, 0.3, size=(2, 16))
    result = solve(TileSpec(g, r_wire=1.0, r_driver=10.0), v)
    reference = crossbar_currents(g, v, r_wire=1.0, r_driver=10.0)
    assert rel_err(result.current, reference) < 1e-9
    # IR drop is real: the wired tile draws less than v @ G.
    assert np.abs(result.current).sum() < np.abs(v @ g).sum()


def test_dac_and_adc_quantise_like_their_formulas():
    """ngspice DAC/ADC blocks in a tile agree with cosim.core.peripherals."""
    rng = np.random.default_rng(5)
    g = rng.uniform(1e-3, 1e-2, size=(4, 3))
    v = rng.uniform(-0.3, 0.3, size=(4, 4))
    spec = TileSpec(g, dac=DacSpec(bits=4, vfs=0.3), adc=AdcSpec(bits=6, vfs=0.5))
    spice, ideal = solve(spec, v, engine="spice"), solve(spec, v, engine="ideal")
    applied = peripherals.dac_voltage(peripherals.dac_codes(v, 4, 0.3), 4, 0.3)
    assert rel_err(spice.current, applied @ g) < 1e-9
    assert np.array_equal(spice.adc_code, ideal.adc_code)


def test_transient_below_threshold_settles_to_the_operating_point():
    """Reads below v_off = 0.02 V leave VTEAM states frozen, so the sampled
    transient current equals the .op current once the op-amp TIAs settle."""
    rng = np.random.default_rng(3)
    g = 1.0 / rng.uniform(100.0, 900.0, size=(3, 3))
    v = rng.uniform(-0.015, 0.015, size=(1, 3))
    spec = TileSpec(g, r_wire=1.0, r_driver=10.0)
    op = solve(spec, v, mode="op")
    tran = solve(spec, v, mode="tran", tran=TranSpec(t_stop=20e-9, t_sample=15e-9))
    assert rel_err(tran.current, op.current) < 1e-3
    wave = tran.waveforms[0]
    states = np.array([[wave[f"v(x{i}_{j})"] for j in range(3)] for i in range(3)])
    assert np.allclose(states[..., -1], spec.states, atol=1e-9)


@pytest.mark.slow
def test_random_64x64_with_wires_matches_scipy_nodal_solve():
    rng = np.random.default_rng(64)
    g = 1.0 / rng.uniform(50.0, 1000.0, size=(64, 64))
    v = rng.uniform(-0.3, 0.3, size=(2, 64))
    result = solve(TileSpec(g, r_wire=1.0, r_driver=10.0), v)
    assert rel_err(result.current, crossbar_currents(g, v, r_wire=1.0, r_driver=10.0)) < 1e-9
