"""The corrected fast path of 1T1R tiles (`cosim.fast.corrected`): the
small-signal transfer plus batched correction terms, within 1e-4 of the
exact operating point for the seed 000 and seed 001 devices, its maps
checked against direct solves, and what `cosim.convert` uses by default."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import cosim
from cosim import fast
from cosim.core.config import VteamParams
from cosim.core.tile import TileSpec
from cosim.engines import solve_spice
from cosim.fast.batched_newton import solve_injections
from cosim.fast.corrected import CorrectedTile, corrected_bytes
from cosim.twin.convert import tile_cache
from cosim.twin.tile_banks import CorrectedBudget

SEED000 = VteamParams()  # 50 ohm .. 1 kohm: the access NMOS carries most of the voltage
SEED001 = VteamParams(r_on=1e3, r_off=12e3)


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max |b|."""
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def tile(seed: int, n: int, device: VteamParams, batch: int = 40, **settings) -> tuple[TileSpec, np.ndarray]:
    rng = np.random.default_rng(seed)
    spec = TileSpec.from_states(rng.uniform(0, 1, size=(n, n)), device, r_wire=1.0, r_driver=10.0,
                                access="nmos", **settings)
    return spec, rng.uniform(-0.3, 0.3, size=(batch, n))


@pytest.mark.parametrize("device, one_term", [(SEED000, 3e-4), (SEED001, 1e-5)], ids=["seed000", "seed001"])
@pytest.mark.parametrize("n", [32, 64])
def test_corrected_path_is_within_1e_4_of_the_exact_operating_point(device, one_term, n):
    spec, v = tile(n, n, device)
    exact = fast.prepare(spec, nonlinear="newton").currents(v)
    linear = fast.prepare(spec, nonlinear="linear").currents(v)
    corrected = fast.prepare(spec, nonlinear="corrected")
    assert isinstance(corrected, CorrectedTile) and corrected.mode == "corrected" and corrected.terms == 2
    err = rel_err(corrected.currents(v), exact)
    assert err < 1e-4 and err < rel_err(linear, exact) / 50
    one = fast.corrected.corrected_tile(spec, corrected.factor, terms=1)
    assert rel_err(one.currents(v), exact) < one_term  # seed 001 needs one term, seed 000 two


def test_corrected_path_against_ngspice():
    spec, v = tile(3, 16, SEED000, batch=2)
    ref = solve_spice(spec, v)
    assert rel_err(fast.prepare(spec, nonlinear="corrected").currents(v), ref.current) < 1e-4


def test_maps_equal_direct_solves_of_the_small_signal_network():
    """v @ T is the small-signal transfer matrix; column c of H is the TIA
    current a unit cell current (row node to column node) sends to column c."""
    spec, v = tile(4, 12, SEED001, batch=3)
    corrected = fast.prepare(spec, nonlinear="corrected")
    small_signal = fast.prepare(spec, nonlinear="linear")
    assert rel_err(corrected.transfer, small_signal.transfer) < 1e-12
    factor, rows, cols = corrected.factor, spec.rows, spec.cols
    inject = np.zeros((rows, cols, 1))
    inject[5, 7, 0] = 1e-3  # A, from the row node of cell (5, 7) into its column node
    _, y = solve_injections(factor, -inject, inject)
    direct = factor.w_end * y[rows - 1, :, 0]
    assert rel_err(1e-3 * corrected.to_columns[5 * cols + 7], direct) < 1e-6  # float32 maps


def test_corrected_falls_back_where_it_does_not_apply(tmp_path):
    spec, v = tile(5, 8, SEED001, batch=2)
    no_wires = TileSpec(spec.conductance, r_wire=0.0, r_driver=10.0, access="nmos")
    assert fast.prepare(no_wires, nonlinear="corrected").mode == "newton"
    none = TileSpec(spec.conductance, r_wire=1.0, r_driver=10.0)
    assert fast.prepare(none, nonlinear="corrected").mode == "linear"


def test_convert_reads_1t1r_tiles_on_the_corrected_path_by_default():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(24, 10), nn.ReLU(), nn.Linear(10, 4)).eval()
    x = torch.rand(16, 24)
    twin = cosim.convert(model, preset="seed001_mlp", tile=16, adc_bits=None, dac_bits=None)
    solvers = [s for bank in tile_cache(twin).banks.values() for g in bank.groups for s in g.solvers]
    assert solvers and all(s.tile.mode == "corrected" for s in solvers)
    exact = cosim.convert(model, preset="seed001_mlp", tile=16, adc_bits=None, dac_bits=None, nonlinear="newton")
    linear = cosim.convert(model, preset="seed001_mlp", tile=16, adc_bits=None, dac_bits=None, nonlinear="linear")
    with torch.no_grad():
        want = exact(x)
        assert rel_err(twin(x).numpy(), want.numpy()) < 1e-4 < rel_err(linear(x).numpy(), want.numpy())


def test_budget_sends_matrices_beyond_it_to_the_linear_path_with_one_warning():
    specs = [TileSpec(np.full((128, 128), 1e-4), r_wire=1.0, r_driver=10.0, access="nmos")] * 2
    budget = CorrectedBudget(budget=corrected_bytes(128, 128) * 3)
    assert budget.mode_for("a", "corrected", specs) == "corrected"
    with pytest.warns(UserWarning, match="use nonlinear='linear'"):
        assert budget.mode_for("b", "corrected", specs) == "linear"
    assert budget.mode_for("a", "corrected", specs) == "corrected"  # re-programming a matrix frees its share
    assert budget.mode_for("c", "linear", specs) == "linear"
