"""Tile read power: the fast engine against ngspice and VACASK (.op source
currents), hand-derived small tiles, and the transient read energy."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from cosim.core.config import TiaSpec, TranSpec
from cosim.core.drive import dac_output
from cosim.core.tile import TileSpec
from cosim.core.tile_power import GMIN, PARTS
from cosim.fast.newton import NGSPICE_GMIN
from cosim.fast.power import admittance_parts, quadratic_power, row_model_power, tile_power
from cosim.analysis.read_power import spice_power, spice_read_energy

CASES = [("none", 1.0, 10.0, "ideal"), ("none", 0.0, 10.0, "ideal"), ("none", 1.0, 0.0, "vcvs"),
         ("none", 0.0, 0.0, "ideal"), ("nmos", 1.0, 10.0, "ideal"), ("nmos", 0.0, 10.0, "vcvs"),
         ("nmos", 1.0, 0.0, "ideal")]


@pytest.fixture(scope="module", autouse=True)
def _ngspice() -> None:
    if shutil.which("ngspice") is None:
        pytest.fail("ngspice not found: install it (apt-get install ngspice) to run the power tests")


def _random_tile(rng: np.random.Generator, rows: int, cols: int, access: str, r_wire: float, r_driver: float,
                 tia: str) -> TileSpec:
    return TileSpec(rng.uniform(1e-4, 2e-3, (rows, cols)), r_wire=r_wire, r_driver=r_driver, access=access,
                    tia=TiaSpec(kind=tia, rs=1000.0))


@pytest.mark.parametrize("access,r_wire,r_driver,tia", CASES)
def test_fast_matches_ngspice_and_vacask(access: str, r_wire: float, r_driver: float, tia: str) -> None:
    rng = np.random.default_rng(hash((access, r_wire, r_driver, tia)) % 2**32)
    spec = _random_tile(rng, 6, 5, access, r_wire, r_driver, tia)
    v = rng.uniform(-0.3, 0.3, (3, 6))
    fast = tile_power(spec, dac_output(spec, v))
    assert np.allclose(sum(fast.parts.values()), fast.total, rtol=1e-12, atol=0)  # Tellegen
    for engine in ("ngspice", "vacask"):
        ref = spice_power(spec, v, spice=engine)
        assert np.max(np.abs(fast.total / ref.total - 1)) <= 1e-6, engine
        for part in PARTS:
            assert np.max(np.abs(fast.parts[part] - ref.parts[part])) <= 1e-6 * np.max(ref.total), (engine, part)
        assert np.allclose(sum(ref.parts.values()), ref.total, rtol=1e-6, atol=0)


def test_single_cell_by_hand() -> None:
    """Driver, cell and the last column segment in series: P = v^2 / (r_d + 1/g + r_w)."""
    spec = TileSpec(np.array([[1e-3]]), r_wire=1.0, r_driver=10.0)
    v = np.array([[0.3], [-0.2]])
    p = tile_power(spec, v)
    i = v[:, 0] / (10.0 + 1000.0 + 1.0)
    assert np.allclose(p.total, v[:, 0] * i, rtol=1e-13)
    assert np.allclose(p.parts["devices"], i * i * 1000.0, rtol=1e-13)
    assert np.allclose(p.parts["drivers"], i * i * 10.0, rtol=1e-13)
    assert np.allclose(p.parts["wires"], i * i * 1.0, rtol=1e-13)


def test_two_by_two_by_hand() -> None:
    """No wires, drivers r_d: each row is one node at v g_d / (g_d + G_i) above the
    TIAs' virtual ground; P_i = v_i^2 g_d G_i / (g_d + G_i)."""
    g = np.array([[1e-3, 2e-3], [5e-4, 1e-3]])
    spec = TileSpec(g, r_driver=100.0)
    v = np.array([[0.3, -0.1]])
    g_d, g_row = 1e-2, g.sum(axis=1)
    expected = v[0] ** 2 * g_d * g_row / (g_d + g_row)
    p = tile_power(spec, v)
    assert np.allclose(p.total, expected.sum(), rtol=1e-13)
    rows = row_model_power(spec, v[0] ** 2)
    assert np.isclose(rows["devices"] + rows["drivers"], expected.sum(), rtol=1e-13)
    # Without drivers the devices take it all: sum_ij v_i^2 g_ij.
    bare = tile_power(spec.with_(r_driver=0.0), v)
    assert np.allclose(bare.total, (v[0] ** 2) @ g_row, rtol=1e-13)


def test_admittance_is_the_quadratic_form_of_the_node_solution() -> None:
    rng = np.random.default_rng(3)
    spec = _random_tile(rng, 12, 9, "none", 0.5, 20.0, "ideal")
    y = admittance_parts(spec)
    total = sum(y.values())
    assert np.allclose(total, total.T, rtol=1e-10, atol=1e-15)
    assert np.all(np.linalg.eigvalsh(total) > -1e-15)
    v = rng.uniform(-0.3, 0.3, (4, 12))
    from cosim.core.tile_power import power_from_nodes
    from cosim.fast.prepared import prepare

    row, col, _ = prepare(spec, nonlinear="linear", method="iterative").node_voltages(v)
    nodes = power_from_nodes(spec, v, row, col)
    quad = quadratic_power(y, v)
    assert np.allclose(quad.total, nodes.total, rtol=1e-9)


def test_gmin_constants_agree() -> None:
    assert GMIN == NGSPICE_GMIN


@pytest.mark.parametrize("engine", ["ngspice", "vacask"])
def test_transient_energy_of_a_below_threshold_read(engine: str) -> None:
    """Below v_off (0.02 V) no state moves: the energy over a window after the
    DAC step equals the DC power times its length."""
    rng = np.random.default_rng(7)
    spec = TileSpec(rng.uniform(1.1e-3, 1.9e-2, (3, 3)), r_wire=1.0, r_driver=10.0)  # inside Roff..Ron
    v = rng.uniform(-0.015, 0.015, (1, 3))
    tran = TranSpec(t_stop=12e-9, t_step=0.05e-9, t_sample=10e-9, t_max_step=0.1e-9)
    t0, t1 = float(spec.dac.delay + spec.dac.rise) + 1e-9, 11e-9
    energy = spice_read_energy(spec, v, t0, t1, spice=engine, tran=tran)[0]
    power = spice_power(spec, v, spice=engine).total[0]
    assert abs(energy["total"] / (power * (t1 - t0)) - 1) <= 1e-3
    assert abs(sum(energy[k] for k in PARTS) / energy["total"] - 1) <= 1e-9


def test_summed_power_is_the_batch_sum_from_its_moment_alone() -> None:
    rng = np.random.default_rng(5)
    for r_wire, r_driver in ((1.0, 10.0), (1.0, 0.0), (0.0, 10.0)):
        spec = _random_tile(rng, 10, 7, "none", r_wire, r_driver, "ideal")
        for batch in (3, 25):  # rank-deficient and full-rank moments
            v = rng.uniform(-0.3, 0.3, (batch, 10))
            direct = tile_power(spec, v)
            from cosim.fast.power import summed_power

            summed = summed_power(spec, v.T @ v)
            for part in PARTS:
                assert summed[part] == pytest.approx(float(direct.parts[part].sum()), rel=1e-9, abs=1e-18)
