"""Seed 001's calibration + in-situ training on the digits MLP with injected
defects: accuracy after > before, writes are counted, faults stay put."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cosim.core.config import load_preset
from cosim.mapping.nonideal import NonIdeal
from cosim.run.simulation import SimOptions
from cosim.twin.insitu import CalibratedSimulation, InsituOptions, calibrate_outputs, insitu_train

PRESET = load_preset("seed001_mlp").with_(access="none")


@pytest.fixture(scope="module")
def mlp(digits_mlp, digits_split):
    """The session's trained MLP, 600 training digits (enough for k-means and in-situ), the test split."""
    train, test = digits_split
    return digits_mlp, (train[0][:600], train[1][:600]), test


def test_calibration_plus_insitu_recovers_accuracy_lost_to_defects(mlp):
    model, train, test = mlp
    options = SimOptions(engine="ideal", seed=1, quiet=True, nonideal=NonIdeal(defect_alpha=0.2))
    result = insitu_train(model, PRESET, options, train, test, InsituOptions(epochs=2))
    # defects cost ~5 points here (0.94 vs 0.99 float); calibration + 2 epochs win back most of them
    assert result.accuracy_after >= result.accuracy_before + 0.02
    assert result.accuracy_calibrated >= result.accuracy_before
    assert result.writes > 0 and result.epochs == 2 and not result.converged
    assert len(result.errors) == 2


def test_ideal_array_meets_the_threshold_at_once_with_no_writes(mlp):
    model, train, test = mlp
    options = SimOptions(engine="ideal", seed=1, quiet=True)
    preset = PRESET.with_(dac_bits=None, adc_bits=None)
    result = insitu_train(model, preset, options, train, test, InsituOptions(epochs=3, calibrate=False))
    assert result.converged and result.epochs == 0 and result.writes == 0
    assert result.errors[0] < 1e-2


def test_inputs_split_calibration_is_exact_on_an_ideal_array(mlp):
    """V_std + V'_out - delta' equals the float layer when the array is ideal."""
    model, train, test = mlp
    sim = CalibratedSimulation(PRESET.with_(dac_bits=None, adc_bits=None), SimOptions(engine="ideal", quiet=True))
    calibrate_outputs(sim, model, train[0], k=8)
    assert all(np.abs(s.delta).max() < 1e-9 for s in sim.standards.values())
    with torch.no_grad():
        assert torch.allclose(sim.forward(model, test[0][:50]), model(test[0][:50]).double(), atol=1e-5)


def test_retraining_reprograms_the_same_faulty_devices(mlp):
    """Masks are drawn from seed and label only: re-mapping new weights keeps the same stuck devices."""
    model, _, _ = mlp
    sim = CalibratedSimulation(PRESET, SimOptions(engine="ideal", seed=3, quiet=True,
                                                  nonideal=NonIdeal(stuck_at_rate=0.1)))
    w = model[0].weight.detach().double().numpy()
    sim.map("0", w)
    first = sim.fault_masks["0"]["stuck_pos"].copy()
    sim.map("0", w * 0.5 + 0.01)
    assert np.array_equal(first, sim.fault_masks["0"]["stuck_pos"])
