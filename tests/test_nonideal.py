"""Mapping-stage non-idealities: each test measures the quantity its flag claims
(stuck fraction, spread of ln G, distinct levels) and the seeding contract."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
from torch import nn

from cosim.cli import main
from cosim.core.config import load_preset
from cosim.core.errors import InputError
from cosim.mapping.nonideal import STUCK_HRS, STUCK_LRS, NonIdeal, apply, label_rng
from cosim.mapping.pairs import map_weights
from cosim.run.simulation import SimOptions, Simulation

DEVICE = load_preset("seed001_mlp").device  # 1 k .. 12 kohm


def _mapped(shape=(60, 80), seed=0):
    return map_weights(np.random.default_rng(seed).normal(size=shape), DEVICE)


def _all(m):
    return np.concatenate([m.g_pos.ravel(), m.g_neg.ravel()])


@pytest.mark.parametrize("kind", ["hrs", "lrs", "both"])
def test_stuck_fraction_and_values_are_what_the_rate_says(kind):
    out, masks = apply(_mapped(), NonIdeal(stuck_at_rate=0.15, stuck_at=kind), label_rng(1, "w"), DEVICE)
    codes = np.concatenate([masks["stuck_pos"].ravel(), masks["stuck_neg"].ravel()])
    g = _all(out)
    assert abs((codes > 0).mean() - 0.15) < 1e-3  # exact count, rounding only
    assert np.all(g[codes == STUCK_HRS] == DEVICE.g_min) and np.all(g[codes == STUCK_LRS] == DEVICE.g_max)
    lrs_share = (codes == STUCK_LRS).sum() / (codes > 0).sum()
    assert {"hrs": lrs_share == 0, "lrs": lrs_share == 1, "both": 0.4 < lrs_share < 0.6}[kind]


def test_lognormal_spread_of_ln_g_is_sigma():
    g0 = np.sqrt(DEVICE.g_min * DEVICE.g_max)  # mid-range in ln G: clipping is > 6 sigma away
    base = map_weights(np.ones((200, 200)), DEVICE)
    base = type(base)(np.full((200, 200), g0), np.full((200, 200), g0), 1.0)
    out, _ = apply(base, NonIdeal(variability_sigma=0.2), label_rng(0, "w"), DEVICE)
    spread = np.log(_all(out) / g0)
    assert abs(spread.std() - 0.2) < 0.005 and abs(spread.mean()) < 0.005


@pytest.mark.parametrize("states", [2, 4, 16])
def test_finite_states_leave_that_many_levels_evenly_spaced(states):
    uniform = map_weights(np.random.default_rng(0).uniform(-1, 1, size=(60, 80)), DEVICE)
    out, _ = apply(uniform, NonIdeal(states=states), label_rng(0, "w"), DEVICE)
    levels = np.unique(_all(out))
    assert len(levels) == states
    assert np.allclose(np.diff(levels), (DEVICE.g_max - DEVICE.g_min) / (states - 1))


def test_defect_alpha_splits_into_stuck_and_variable_devices_by_beta():
    out, masks = apply(_mapped(), NonIdeal(defect_alpha=0.2, defect_beta=0.5), label_rng(0, "w"), DEVICE)
    n = 2 * 60 * 80
    stuck = (masks["stuck_pos"] > 0).sum() + (masks["stuck_neg"] > 0).sum()
    varied = masks["varied_pos"].sum() + masks["varied_neg"].sum()
    assert stuck == round(0.1 * n) and varied == round(0.2 * n) - round(0.1 * n)
    g = _all(out)
    assert np.all((g >= DEVICE.g_min) & (g <= DEVICE.g_max))


def test_out_of_range_options_are_refused_in_one_line():
    for bad in (dict(states=1), dict(states=65), dict(stuck_at_rate=0.3), dict(stuck_at="mid"),
                dict(variability_sigma=1.5)):
        with pytest.raises(InputError):
            NonIdeal(**bad)


def _simulation(seed: int) -> Simulation:
    nonideal = NonIdeal(stuck_at_rate=0.1, stuck_at="both", variability_sigma=0.3, states=16)
    return Simulation(load_preset("seed001_mlp"), SimOptions(engine="ideal", seed=seed, quiet=True,
                                                               nonideal=nonideal))


def test_same_seed_same_conductances_whatever_the_order_and_other_seed_differs():
    w1, w2 = np.random.default_rng(0).normal(size=(2, 10, 12))
    a, b, c = _simulation(5), _simulation(5), _simulation(6)
    a1, a2 = a.map("l1", w1), a.map("l2", w2)
    b2, b1 = b.map("l2", w2), b.map("l1", w1)  # reversed order
    assert np.array_equal(a1.g_pos, b1.g_pos) and np.array_equal(a2.g_neg, b2.g_neg)
    assert not np.array_equal(a1.g_pos, c.map("l1", w1).g_pos)


def test_simulate_cli_records_fault_masks_and_config_in_run_file(tmp_path):
    torch.manual_seed(0)
    layer = nn.Linear(16, 6)
    torch.save(layer, tmp_path / "lin.pt")
    out = tmp_path / "run.h5"
    assert main(["simulate", str(tmp_path / "lin.pt"), "--tile", "8", "--engine", "ideal", "--quiet",
                 "--stuck-at-rate", "0.2", "--stuck-at", "lrs", "--states", "8", "--seed", "3",
                 "--preset", "seed001_mlp", "--out", str(out)]) == 0
    with h5py.File(out) as h5:
        masks = [h5["tiles"][name]["fault_mask"][()] for name in h5["tiles"]]
        g = np.concatenate([np.r_[h5["tiles"][n]["g_pos"][()].ravel(), h5["tiles"][n]["g_neg"][()].ravel()]
                            for n in h5["tiles"]])
        assert '"stuck_at_rate": 0.2' in h5.attrs["config"]
    codes = np.concatenate([m.ravel() for m in masks])
    assert abs((codes == STUCK_LRS).mean() - 0.2) < 0.02 and set(np.unique(codes)) <= {0, STUCK_LRS}
    assert len(np.unique(g)) <= 8
