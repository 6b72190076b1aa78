"""The fast solver against real ngspice `.op` runs of the same TileSpec:
exact where the read path is linear, exact (Newton) with the level-1 access
NMOS, and within the stated error of the calibrated linear model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from nodal_reference import crossbar_currents

from cosim import fast
from cosim.analysis.nmos_calibration import fit_access_calibration
from cosim.analysis.spotcheck import spotcheck
from cosim.core.config import AdcSpec, DacSpec, NmosAccess, TiaSpec, VteamParams
from cosim.core.errors import InputError
from cosim.core.tile import TileSpec
from cosim.engines import solve_spice
from cosim.fast.calibration import load_calibration, save_calibration

SEED000 = VteamParams()  # 50 ohm .. 1 kohm
MLP = VteamParams(r_on=1e3, r_off=12e3)  # 1 kohm .. 12 kohm


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max |b|."""
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def random_tile(seed: int, shape: tuple[int, int], device: VteamParams = SEED000, batch: int = 3,
                **settings) -> tuple[TileSpec, np.ndarray]:
    rng = np.random.default_rng(seed)
    spec = TileSpec.from_states(rng.uniform(0, 1, size=shape), device, **settings)
    return spec, rng.uniform(-0.3, 0.3, size=(batch, shape[0]))


@pytest.fixture(scope="module")
def calibrations(tmp_path_factory) -> dict[str, str]:
    """ngspice calibrations of both presets, written as JSON files."""
    folder = tmp_path_factory.mktemp("calibration")
    return {name: str(save_calibration(fit_access_calibration(device, preset=name), folder / f"{name}.json"))
            for name, device in (("seed000", SEED000), ("mlp", MLP))}


# ------------------------------------------------------------ linear, exact


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (7, 1), (9, 13), (24, 24)])
@pytest.mark.parametrize("r_wire, r_driver", [(1.0, 10.0), (0.5, 0.0), (0.0, 10.0), (0.0, 0.0), (3.0, 0.2)])
def test_structured_sweep_equals_sparse_lu_for_every_wire_and_driver_case(shape, r_wire, r_driver):
    spec, _ = random_tile(3, shape, r_wire=r_wire, r_driver=r_driver)
    structured = fast.transfer_matrix(spec, method="structured")
    sparse = fast.transfer_matrix(spec, method="splu")
    assert rel_err(structured, sparse) < 1e-12


def test_strongly_damped_long_rows_underflow_instead_of_overflowing():
    """1 kohm segments against 50 ohm..1 kohm cells: a 300-cell row's far end
    sees e^-900 of the input; the structured sweep still equals sparse LU."""
    for r_driver in (10.0, 0.0):
        spec, _ = random_tile(14, (3, 300), r_wire=1000.0, r_driver=r_driver)
        assert rel_err(fast.transfer_matrix(spec), fast.transfer_matrix(spec, method="splu")) < 1e-12


def test_transfer_matrix_matches_the_independent_nodal_reference():
    """tests/nodal_reference.py assembles the grid from docs/architecture.md alone."""
    spec, v = random_tile(4, (20, 11), r_wire=1.5, r_driver=7.0, batch=5)
    reference = crossbar_currents(spec.conductance, v, 1.5, 7.0)
    assert rel_err(v @ fast.transfer_matrix(spec), reference) < 1e-12


@pytest.mark.parametrize("shape", [(8, 8), (16, 16), (32, 32), (12, 20), (20, 12)])
def test_fast_matches_ngspice_within_1e_9_with_wires_access_none(shape):
    spec, v = random_tile(sum(shape), shape, r_wire=1.0, r_driver=10.0)
    ref = solve_spice(spec, v)
    got = fast.solve_fast(spec, v)
    assert got.engine == "fast"
    assert rel_err(got.current, ref.current) < 1e-9
    assert rel_err(got.vout, ref.vout) < 1e-9


@pytest.mark.parametrize("r_wire, r_driver", [(0.0, 10.0), (1.0, 0.0), (0.0, 0.0)])
def test_zero_ohm_wires_or_drivers_merge_nodes_exactly_as_ngspice(r_wire, r_driver):
    spec, v = random_tile(11, (10, 6), r_wire=r_wire, r_driver=r_driver)
    assert rel_err(fast.solve_fast(spec, v).current, solve_spice(spec, v).current) < 1e-12


def test_ideal_wires_and_no_access_give_exactly_v_at_g():
    spec, v = random_tile(12, (16, 9), batch=50)
    got = fast.solve_fast(spec, v).current
    assert np.allclose(got, v @ spec.conductance, rtol=1e-14, atol=0)


def test_single_cell_with_driver_and_wire_draws_v_over_series_resistance():
    spec = TileSpec(np.array([[1 / 300.0]]), r_wire=2.0, r_driver=10.0)
    assert fast.solve_fast(spec, np.array([0.3])).current[0, 0] == pytest.approx(0.3 / 312.0, rel=1e-14)


# ------------------------------------------------------------ iterative (no transfer matrix)


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (7, 1), (9, 13), (40, 24)])
@pytest.mark.parametrize("r_wire, r_driver", [(1.0, 10.0), (0.5, 0.0), (3.0, 0.2)])
def test_iterative_solve_equals_the_transfer_matrix(shape, r_wire, r_driver):
    """CG on the column nodes (row chains eliminated by banded solves) gives
    the transfer matrix's currents for every wire/driver case and shape."""
    spec, v = random_tile(21, shape, r_wire=r_wire, r_driver=r_driver, batch=5)
    tile = fast.prepare(spec, method="iterative")
    assert tile.transfer is None and len(tile.networks) == 1
    assert rel_err(tile.currents(v), v @ fast.transfer_matrix(spec)) < 1e-11


@pytest.mark.parametrize("device", [SEED000, MLP], ids=["seed000", "mlp"])
def test_iterative_chord_newton_and_calibrated_paths_equal_the_structured_ones(calibrations, device):
    preset = "seed000" if device is SEED000 else "mlp"
    spec, v = random_tile(23, (18, 15), device, r_wire=1.0, r_driver=10.0, access="nmos", batch=4)
    structured = fast.prepare(spec, nonlinear="newton", method="structured").currents(v)
    iterative = fast.prepare(spec, nonlinear="newton", method="iterative")
    assert type(iterative.factor).__name__ == "ChainNetwork"
    assert rel_err(iterative.currents(v), structured) < 1e-9  # both exact, each to its own tolerance
    cal = calibrations[preset]
    linear = fast.prepare(spec, calibration=cal).currents(v)
    assert rel_err(fast.prepare(spec, calibration=cal, method="iterative").currents(v), linear) < 1e-11


def test_solve_fast_solves_few_vectors_iteratively_and_batches_by_transfer_matrix():
    spec, _ = random_tile(2, (6, 6), r_wire=1.0)
    assert fast.choose_method(spec, fast.ITERATIVE_MAX_BATCH) == "iterative"
    assert fast.choose_method(spec, fast.ITERATIVE_MAX_BATCH + 1) == "auto"
    assert fast.choose_method(random_tile(2, (6, 6))[0], 1) == "auto"  # no wires: closed form
    assert fast.prepare(spec).method == "structured"
    assert fast.prepare(TileSpec(spec.conductance, r_wire=1.0, access="nmos")).method == "structured"


@pytest.mark.parametrize("kind", ["vcvs", "opamp"])
@pytest.mark.parametrize("r_wire, access", [(1.0, "none"), (0.0, "none"), (1.0, "nmos")])
def test_finite_gain_tia_input_resistance_terminates_the_columns_as_in_ngspice(kind, r_wire, access):
    """A TIA of gain a0 = 1e3 holds its input at rs/(1+a0) * I, not 0 V: the
    fast solver puts that resistance at the end of each column (structured,
    iterative, Newton) and matches ngspice to 1e-9 (it was ~1e-3 off before)."""
    tia = TiaSpec(kind=kind, rs=10.0, a0=1e3)
    spec, v = random_tile(31, (8, 6), r_wire=r_wire, r_driver=10.0, tia=tia, access=access)
    assert fast.tia_termination(spec) > 0.009
    ref = solve_spice(spec, v)
    for method in ("structured", "iterative", "splu"):
        got = fast.solve_fast(spec, v, method=method)
        assert rel_err(got.current, ref.current) < 1e-9, method
        assert rel_err(got.vout, ref.vout) < 1e-9, method


# ------------------------------------------------------------ batches


def test_batch_chunking_changes_nothing_but_rounding():
    """Chunks of 1, 5, 36 or all 37 vectors: the same currents to 1e-15 of
    the largest (BLAS picks other kernels for other chunk sizes)."""
    spec, v = random_tile(5, (24, 17), r_wire=1.0, r_driver=10.0, batch=37)
    tile = fast.prepare(spec)
    whole = tile.currents(v, chunk=1000)
    for chunk in (1, 5, 36):
        assert rel_err(tile.currents(v, chunk=chunk), whole) < 1e-15


def test_newton_chunks_give_the_same_operating_points():
    spec, v = random_tile(8, (12, 10), r_wire=1.0, r_driver=10.0, access="nmos", batch=9)
    tile = fast.prepare(spec, nonlinear="newton")
    assert rel_err(tile.currents(v, chunk=2), tile.currents(v)) < 1e-13


def test_torch_backend_equals_numpy():
    spec, v = random_tile(6, (24, 17), r_wire=1.0, r_driver=10.0, batch=40)
    tile = fast.prepare(spec)
    assert rel_err(tile.currents(v, backend="torch", chunk=7), tile.currents(v)) < 1e-15


def test_unknown_backend_is_one_clear_input_error():
    spec, v = random_tile(6, (4, 4))
    with pytest.raises(InputError, match="backend"):
        fast.solve_fast(spec, v, backend="jax")


def test_dac_and_adc_codes_equal_ngspice():
    spec, v = random_tile(7, (8, 8), r_wire=1.0, r_driver=10.0, access="nmos", batch=4,
                          dac=DacSpec(bits=6, vfs=0.3), adc=AdcSpec(bits=8, vfs=0.3))
    ref = solve_spice(spec, v)
    got = fast.solve_fast(spec, v, nonlinear="newton")
    assert rel_err(got.vout, ref.vout) < 1e-9
    assert np.array_equal(got.adc_code, ref.adc_code)


# ------------------------------------------------------------ access NMOS


@pytest.mark.parametrize("device", [SEED000, MLP], ids=["seed000", "mlp"])
@pytest.mark.parametrize("n", [16, 32])
def test_newton_matches_ngspice_op_within_1e_9_with_level1_access_nmos(device, n):
    spec, v = random_tile(n, (n, n), device, r_wire=1.0, r_driver=10.0, access="nmos")
    ref = solve_spice(spec, v)
    assert rel_err(fast.solve_fast(spec, v, nonlinear="newton").current, ref.current) < 1e-9


@pytest.mark.parametrize("r_wire, r_driver", [(0.0, 10.0), (1.0, 0.0), (0.0, 0.0)])
def test_newton_handles_merged_wire_and_driver_nodes_like_ngspice(r_wire, r_driver):
    spec, v = random_tile(13, (8, 5), r_wire=r_wire, r_driver=r_driver, access="nmos",
                          nmos=NmosAccess(width=1.0e-6, v_wordline=1.5))
    assert rel_err(fast.solve_fast(spec, v).current, solve_spice(spec, v).current) < 1e-9


@pytest.mark.parametrize("r_driver", [10.0, 0.0])
@pytest.mark.parametrize("device", [SEED000, MLP], ids=["seed000", "mlp"])
def test_chord_newton_over_a_batch_equals_full_newton_per_vector(device, r_driver):
    """The chord iteration (Jacobian frozen at the small-signal network) and
    full Newton (sparse LU of the exact Jacobian) reach one operating point."""
    spec, v = random_tile(9, (20, 14), device, r_wire=1.0, r_driver=r_driver, access="nmos", batch=6)
    full = fast.prepare(spec, nonlinear="newton", method="splu")
    assert full.factor is None
    for method in ("structured", "iterative"):
        chord = fast.prepare(spec, nonlinear="newton", method=method)
        assert chord.factor is not None
        assert rel_err(chord.currents(v), full.currents(v)) < 1e-9  # the spec; the batched solver stops at ~1e-10


@pytest.mark.parametrize("preset, device, tolerance", [("seed000", SEED000, 5e-2), ("mlp", MLP, 1.5e-3)])
def test_calibrated_linear_error_is_the_access_nmos_own_curvature(calibrations, preset, device, tolerance):
    """The level-1 channel is I = beta*(Vov*Vds - Vds^2/2): its conductance
    moves by Vds/(2 Vov), up to ~10 % over +-0.3 V for 50 ohm devices (the
    248 ohm access takes most of the voltage) and ~2 % for 1 kohm devices.
    Separate fits for positive and negative reads remove the odd part; what
    is left is the curvature within each polarity: 1-3.5 % (seed 000) and
    0.5-1.3e-3 (1-12 kohm) of the largest current, 2-5x below one
    conductance per cell. The fit is for full-amplitude (+-0.3 V) reads.
    (Newton is exact for both.)"""
    cal = load_calibration(calibrations[preset])
    for n in (16, 32):
        spec, v = random_tile(n + 1, (n, n), device, r_wire=1.0, r_driver=10.0, access="nmos")
        ref = solve_spice(spec, v).current
        split = rel_err(fast.solve_fast(spec, v, calibration=cal).current, ref)
        single = rel_err(fast.solve_fast(spec, v, nonlinear="linear").current, ref)
        assert split < tolerance and split < single / 2


@pytest.mark.parametrize("device", [SEED000, MLP], ids=["seed000", "mlp"])
def test_small_signal_linear_model_becomes_exact_as_the_read_amplitude_falls(device):
    """The access NMOS is a resistor 1/(kp W/L (V_wl - vto)) as Vds -> 0:
    at 100x smaller inputs the uncalibrated linear model is ~100x closer."""
    spec, v = random_tile(21, (16, 16), device, r_wire=1.0, r_driver=10.0, access="nmos")
    errors = []
    for scale in (1.0, 0.01):
        ref = solve_spice(spec, v * scale).current
        errors.append(rel_err(fast.solve_fast(spec, v * scale, nonlinear="linear").current, ref))
    assert errors[1] < errors[0] / 30


def test_calibration_file_keeps_its_provenance_and_fits_the_sweep(calibrations):
    data = json.loads(open(calibrations["mlp"]).read())
    prov = data["provenance"]
    assert prov["ngspice"].startswith("ngspice-")
    assert len(data["card_sha256"]) == 64 and prov["model_card"]["sha256"] == data["card_sha256"]
    assert prov["preset"] == "mlp" and prov["device"]["r_off"] == 12e3
    assert data["nmos"] == {"width": 3.1e-6, "length": 0.1e-6, "v_wordline": 1.8}
    assert prov["date"] and prov["sweep"]["v_read"] == [-0.3, 0.3]
    # The effective access resistances bracket the triode small-signal value
    # 1/(kp W/L (V_wl - vto)) = 248.1 ohm: positive reads see more channel
    # resistance (Vgs stays at V_wl, Vds eats into Vov), negative ones less.
    fit = data["fit"]
    assert np.allclose(fit["r_access_both_ohm"], 248.1, rtol=0.01)
    assert np.all(np.array(fit["r_access_pos_ohm"]) > 248.1)
    assert np.all(np.array(fit["r_access_neg_ohm"]) < 248.1)
    residuals = prov["residuals"]
    assert 1e-3 < residuals["single_max_rel"] < 1e-2
    assert residuals["split_max_rel"] < residuals["single_max_rel"] / 3


def test_calibration_is_refused_for_another_card_transistor_or_device_range(calibrations, tmp_path):
    data = json.loads(open(calibrations["mlp"]).read())
    data["card_sha256"] = "0" * 64
    other = tmp_path / "other.json"
    other.write_text(json.dumps(data))
    with pytest.raises(InputError, match="model card"):
        load_calibration(other)
    spec, v = random_tile(1, (4, 4), MLP, access="nmos", nmos=NmosAccess(width=1e-6))
    with pytest.raises(InputError, match="calibrate"):
        fast.solve_fast(spec, v, calibration=calibrations["mlp"])
    spec, v = random_tile(1, (4, 4), SEED000, access="nmos")
    with pytest.raises(InputError, match="covers"):
        fast.solve_fast(spec, v, calibration=calibrations["mlp"])


def test_auto_mode_is_exact_newton_without_a_calibration_and_linear_with_one(calibrations):
    spec, _ = random_tile(2, (4, 4), MLP, r_wire=1.0, access="nmos")
    assert fast.prepare(spec).mode == "newton"
    assert fast.prepare(spec, calibration=calibrations["mlp"]).access == "calibrated"


# ------------------------------------------------------------ spot check


def test_spotcheck_reports_errors_per_column_and_writes_a_png(tmp_path):
    report = spotcheck(2, (6, 9), seed=3, r_wire=1.0, r_driver=10.0, plot=tmp_path / "spot.png")
    assert len(report.tiles) == 2 and report.per_column.shape == (9,)
    assert report.max_rel < 1e-9 and report.mean_rel <= report.max_rel
    assert (tmp_path / "spot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "max rel" in report.summary() and json.dumps(report.to_dict())


# ------------------------------------------------------------ 64 x 64 (slow)


@pytest.mark.slow
def test_fast_matches_ngspice_at_64x64_access_none_and_newton_nmos():
    spec, v = random_tile(64, (64, 64), r_wire=1.0, r_driver=10.0, batch=2)
    assert rel_err(fast.solve_fast(spec, v).current, solve_spice(spec, v).current) < 1e-9
    for device in (SEED000, MLP):
        spec, v = random_tile(65, (64, 64), device, r_wire=1.0, r_driver=10.0, access="nmos", batch=2)
        ref = solve_spice(spec, v)
        assert rel_err(fast.solve_fast(spec, v, nonlinear="newton").current, ref.current) < 1e-9
        full = fast.solve_fast(spec, v, nonlinear="newton", method="splu")
        assert rel_err(full.current, ref.current) < 1e-9


@pytest.mark.slow
@pytest.mark.parametrize("preset, device, tolerance", [("seed000", SEED000, 5e-2), ("mlp", MLP, 2e-3)])
def test_calibrated_linear_at_64x64_stays_within_the_cell_nonlinearity(calibrations, preset, device, tolerance):
    spec, v = random_tile(66, (64, 64), device, r_wire=1.0, r_driver=10.0, access="nmos", batch=2)
    err = rel_err(fast.solve_fast(spec, v, calibration=calibrations[preset]).current, solve_spice(spec, v).current)
    assert err < tolerance


def test_prepare_restores_torch_threads_and_none_leaves_them_alone():
    """The block sweep's thread count is an explicit argument: torch's
    process-wide count is the caller's again after prepare, and threads=None
    never touches it."""
    import torch

    from cosim.fast.structured import torch_threads

    spec = TileSpec(np.random.default_rng(5).uniform(1e-4, 1e-3, (8, 8)), r_wire=1.0, r_driver=10.0)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        seen = []
        with torch_threads(None):
            seen.append(torch.get_num_threads())
        with torch_threads(1):
            seen.append(torch.get_num_threads())
        one = fast.prepare(spec, method="structured").transfer
        after_default = torch.get_num_threads()
        untouched = fast.prepare(spec, method="structured", threads=None).transfer
        assert seen == [2, 1] and after_default == 2 and torch.get_num_threads() == 2
        np.testing.assert_array_equal(one, untouched)
    finally:
        torch.set_num_threads(before)
