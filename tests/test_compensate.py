"""IR-drop-compensated programming (`cosim.fast.compensate`, `cosim.run.compensation`):
the derivatives against finite differences and the sparse graph, convergence
inside the device range and on its levels, the tile's transfer against the
fast solver's own prepared tile and against ngspice, and the whole pipeline."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from cosim.cli import main
from cosim.core.config import TiaSpec, VteamParams, load_preset
from cosim.core.errors import InputError
from cosim.core.tile import TileSpec
from cosim.engines import solve
from cosim.fast.compensate import (
    cell_and_slope,
    compensate_tile,
    nodal_sensitivities,
    sensitivities,
    snap_levels,
)
from cosim.fast.prepared import prepare, transfer_matrix
from cosim.mapping.nonideal import NonIdeal
from cosim.mapping.pairs import interleave, map_weights
from cosim.run.simulation import SimOptions, Simulation

HIGH_R = VteamParams(r_on=25e3, r_off=1e6)  # the NeuRRAM range (cosim/presets/neurram_wan2022.json)
LOW_R = VteamParams(r_on=1e3, r_off=12e3)  # seed 001's


def _tile(rows: int, cols: int, device: VteamParams, seed: int = 0, **settings) -> TileSpec:
    g = np.random.default_rng(seed).uniform(device.g_min, device.g_max, (rows, cols))
    return TileSpec(g, device=device, **settings)


@pytest.mark.parametrize("settings", [
    dict(r_wire=1.0, r_driver=10.0),
    dict(r_wire=2.0, r_driver=0.0),
    dict(r_wire=1.0, r_driver=10.0, access="nmos"),
    dict(r_wire=0.5, r_driver=5.0, tia=TiaSpec(kind="vcvs", rs=1e4, a0=100.0)),
    dict(r_wire=0.0, r_driver=10.0, tia=TiaSpec(kind="vcvs", rs=1e4, a0=100.0)),
])
def test_sensitivities_match_the_sparse_graph_and_finite_differences(settings):
    spec = _tile(7, 5, LOW_R, **settings)
    cell, _ = cell_and_slope(spec, spec.conductance)
    transfer, volts, adjoint = sensitivities(spec, cell)
    t_graph, v_graph, a_graph = nodal_sensitivities(spec, cell)
    scale = np.abs(transfer).max()
    np.testing.assert_allclose(transfer, transfer_matrix(spec, cell), rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(transfer, t_graph, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(volts, v_graph, rtol=0, atol=1e-11)
    np.testing.assert_allclose(adjoint, a_graph, rtol=0, atol=1e-11)
    for k, l in ((0, 0), (3, 2), (6, 4)):  # central differences of the transfer in one cell
        h = 1e-4 * cell[k, l]
        up, down = cell.copy(), cell.copy()
        up[k, l] += h
        down[k, l] -= h
        numeric = (transfer_matrix(spec, up) - transfer_matrix(spec, down)) / (2 * h)
        exact = np.outer(volts[:, k, l], adjoint[:, k, l])
        np.testing.assert_allclose(exact, numeric, rtol=0, atol=1e-7 * np.abs(exact).max())


def test_compensated_tile_meets_its_target_in_the_fast_solvers_own_transfer():
    spec = _tile(64, 64, HIGH_R, r_wire=1.0, r_driver=10.0, access="nmos")
    result = compensate_tile(spec, rtol=1e-9)
    g = result.conductance
    assert g.min() >= HIGH_R.g_min and g.max() <= HIGH_R.g_max
    assert result.residual < 1e-9 and result.steps <= 6  # Gauss-Newton: the residual squares each step
    assert result.uncompensated > 0.05  # the same tile programmed with its targets is 7 % off
    programmed = spec.with_(conductance=g)
    actual = prepare(programmed, nonlinear="linear").transfer  # what every linear read of the tile uses
    signal = np.linalg.norm(result.target - result.floor)
    assert np.linalg.norm(actual - result.target) / signal < 1e-9
    # the target is an affine image of the ideal array: pairs of columns cancel the floor
    np.testing.assert_array_equal(result.floor[:, 0::2], result.floor[:, 1::2])
    np.testing.assert_allclose(result.target, result.floor + result.scale * (spec.conductance - HIGH_R.g_min),
                               rtol=1e-15)
    assert 0 < result.scale < 1


def test_levels_are_kept_and_the_residual_is_what_the_snapped_tile_reaches():
    """seed 001's devices at 32x32 lose ~half their signal; on 16 levels the
    compensated tile is off by its level steps (~4 % of the range over the
    scale), far less than the same tile's targets snapped to the levels."""
    spec = _tile(32, 32, LOW_R, seed=3, r_wire=1.0, r_driver=10.0)
    result = compensate_tile(spec, levels=16)
    g_min, g_max = LOW_R.g_min, LOW_R.g_max
    np.testing.assert_array_equal(snap_levels(result.conductance, 16, g_min, g_max), result.conductance)
    actual = transfer_matrix(spec, result.conductance)
    measured = np.linalg.norm(actual - result.target) / np.linalg.norm(result.target - result.floor)
    assert result.residual == pytest.approx(measured, rel=1e-9)
    snapped = snap_levels(spec.conductance, 16, g_min, g_max)  # uncompensated, on the same levels
    plain = np.linalg.norm(transfer_matrix(spec, snapped) - spec.conductance) / np.linalg.norm(spec.conductance - g_min)
    assert 1e-3 < result.residual < plain / 3


def test_a_fixed_scale_is_kept_and_bad_arguments_are_one_line():
    spec = _tile(16, 16, HIGH_R, r_wire=1.0, r_driver=10.0)
    assert compensate_tile(spec, scale=0.8).scale == 0.8
    with pytest.raises(InputError, match="must lie in"):
        compensate_tile(spec, g_target=spec.conductance * 100)
    with pytest.raises(InputError, match="levels"):
        compensate_tile(spec, levels=1)
    uneven = np.full((16, 16), HIGH_R.g_min)
    uneven[:, 1] *= 2  # differs within pair 0: it would not cancel in I_pos - I_neg
    with pytest.raises(InputError, match="equal in both columns"):
        compensate_tile(spec, floor=uneven)
    with pytest.raises(InputError, match="compensate must be one of"):
        SimOptions(compensate="magic")


def _mapped_tile(rows: int, outputs: int, device: VteamParams, half: float = 1.0, **settings) -> TileSpec:
    """A tile of mapped weights (one device of every pair at g_min, `map_weights`);
    `half` < 1 keeps the tile's largest weight that far below the matrix's w_max."""
    w = np.random.default_rng(7).normal(size=(outputs, rows))
    mapped = map_weights(half * w, device, w_max=float(np.abs(w).max()))
    return TileSpec(interleave(mapped.g_pos, mapped.g_neg), device=device, **settings)


def test_each_pairs_floor_is_the_transfer_of_its_device_at_g_min():
    """The floor cancels within a pair, so it is per row and pair and as small
    as the range allows: every pair's lower device stays at g_min, within 5 %
    (FLOOR_MARGIN's 1 % plus the drop of that device's transfer as the
    compensated tile loads the lines: 1.7 % at most here). A floor common to
    the whole tile (the largest g_min transfer, next to the drivers) lifted
    the far pairs' lower devices by up to 23 % of g_min on this tile: common
    mode that takes ADC range and cancels only after the conversion."""
    spec = _mapped_tile(32, 16, LOW_R, r_wire=1.0, r_driver=10.0)
    result = compensate_tile(spec)
    assert result.residual < 1e-4
    lower = np.minimum(result.conductance[:, 0::2], result.conductance[:, 1::2])
    assert lower.max() < 1.05 * LOW_R.g_min
    np.testing.assert_array_equal(result.floor[:, 0::2], result.floor[:, 1::2])


def test_the_scale_is_the_largest_at_which_every_cell_reaches_its_own_target():
    """A tile whose largest weight is half its matrix's: its scale doubles
    (> 1) and the hardest device ends near g_max (>= 0.9 g_max; MARGIN puts
    it 3 % below its estimated reach). A scale that every cell could reach at
    g_max, as before, left this tile's devices below 0.5 g_max."""
    spec = _mapped_tile(32, 16, LOW_R, half=0.5, r_wire=1.0, r_driver=10.0)
    result = compensate_tile(spec)
    assert result.residual < 1e-4
    assert result.scale > 1 and result.conductance.max() >= 0.9 * LOW_R.g_max


def test_compensation_costs_little_adc_range():
    """With a 6-bit ADC (full scale: the batch's largest |vout|) a compensated
    64x64 tile of seed 001's devices stays within 1.36x the output error of
    an ideal array with the same ADC, mean over two batches of 1024 vectors
    (1.24x and 1.29x measured: its floor over its scale is a larger common
    mode than the ideal array's g_min). A floor common to the tile and a
    scale that every cell reaches at g_max gave 1.40x and 1.55x (mean 1.47)."""
    layer = _wire_layer()
    preset = load_preset("seed001_mlp").with_(access="none", dac_bits=None, adc_bits=6)
    ratios = []
    for seed in (0, 1):
        x = torch.rand(1024, 64, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            reference = layer(x).double()
        errors = {}
        for engine, mode in (("ideal", "none"), ("fast", "irdrop")):
            out = Simulation(preset, SimOptions(tile=64, engine=engine, quiet=True, compensate=mode)).forward(layer, x)
            errors[engine] = float((out - reference).norm() / reference.norm())
        ratios.append(errors["fast"] / errors["ideal"])
    assert np.mean(ratios) < 1.36


@pytest.mark.parametrize("engine", ["ngspice"])
def test_compensated_tile_in_ngspice_meets_the_target(engine):
    """What is programmed reaches ngspice as it is: ngspice's currents of the
    compensated tile equal v @ T* to the residual (access 'none': the linear
    network is exact), and equal the fast solver's to 1e-9."""
    spec = _tile(12, 10, LOW_R, seed=5, r_wire=1.0, r_driver=10.0)
    result = compensate_tile(spec, rtol=1e-10)
    programmed = spec.with_(conductance=result.conductance)
    v = np.random.default_rng(1).uniform(-0.3, 0.3, (3, 12))
    spice = solve(programmed, v, engine="spice", spice=engine).current
    fast = solve(programmed, v, engine="fast").current
    scale = np.abs(spice).max()
    assert np.abs(fast - spice).max() / scale < 1e-9
    assert np.abs(spice - v @ result.target).max() / scale < 1e-8


def _wire_layer():
    torch.manual_seed(0)
    return torch.nn.Linear(64, 32)


def test_pipeline_cuts_a_wire_dominated_layer_error_tenfold():
    """seed 001's 1 to 12 kohm devices at tile 64: most of the error is wires and
    drivers; compensated, the layer matches the ideal array (same weights, no
    wires) at least 10x better. Converters off, so the circuit alone is measured."""
    layer = _wire_layer()
    preset = load_preset("seed001_mlp").with_(access="none", dac_bits=None, adc_bits=None)
    x = torch.rand(16, 64)
    ideal = Simulation(preset, SimOptions(tile=64, engine="ideal", quiet=True)).forward(layer, x)
    errors = {}
    for mode in ("none", "irdrop"):
        sim = Simulation(preset, SimOptions(tile=64, engine="fast", quiet=True, compensate=mode))
        out = sim.forward(layer, x)
        errors[mode] = float((out - ideal).norm() / ideal.norm())
        if mode == "irdrop":
            assert set(sim.compensation) == {"linear.r0c0"}
            assert max(c.residual for c in sim.compensation.values()) < 1e-4
    assert errors["none"] > 0.1 and errors["irdrop"] < errors["none"] / 10


def test_compensation_runs_before_device_levels_and_variability():
    layer = _wire_layer()
    preset = load_preset("neurram_wan2022").with_(access="none")
    sim = Simulation(preset, SimOptions(tile=64, engine="fast", quiet=True, compensate="irdrop",
                                        nonideal=NonIdeal(states=8)))
    mapped = sim.map("linear", layer.weight.detach().double().numpy())
    dev = preset.device
    for g in (mapped.g_pos, mapped.g_neg):
        np.testing.assert_allclose(snap_levels(g, 8, dev.g_min, dev.g_max), g, rtol=0, atol=1e-18)


def test_simulate_stores_each_tiles_residual_and_the_report_shows_it(tmp_path):
    torch.manual_seed(0)
    torch.save(torch.nn.Sequential(torch.nn.Linear(24, 8)), tmp_path / "m.pt")
    out = tmp_path / "r.h5"
    assert main(["simulate", str(tmp_path / "m.pt"), "--preset", "seed001_mlp", "--tile", "16", "--engine", "fast",
                 "--compensate", "irdrop", "--batch", "2", "--quiet", "--out", str(out)]) == 0
    with h5py.File(out) as h5:
        groups = [h5["tiles"][name] for name in h5["tiles"]]
        assert all("compensation" in g for g in groups)
        residuals = [float(g["compensation"].attrs["residual"]) for g in groups]
        assert max(residuals) < 1e-4
        assert all(g["compensation"].attrs["uncompensated"] > 10 * r for g, r in zip(groups, residuals))
    assert main(["report", str(out), "--out", str(tmp_path / "r.html")]) == 0
    html = (tmp_path / "r.html").read_text()
    assert "IR-drop compensation" in html and "Gauss-Newton steps" in html
    with pytest.raises(SystemExit) as exc:
        main(["simulate", str(tmp_path / "m.pt"), "--compensate", "magic"])
    assert exc.value.code == 2
