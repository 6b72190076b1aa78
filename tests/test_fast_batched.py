"""The batched exact 1T1R solver (`cosim.fast.batched_newton`): the exact DC
operating point of whole batches by BLAS-3 steps, against the full Newton
(sparse LU of the exact Jacobian, per vector) and real ngspice, with
per-vector convergence masks, and `cosim tile --engine fast` without torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from cosim import fast
from cosim.core.config import NmosAccess, TiaSpec, VteamParams
from cosim.core.tile import TileSpec
from cosim.engines import solve_spice
from cosim.fast.batched_newton import BatchedFactor, batched_factor, batched_nodes
from cosim.fast.newton import NEWTON_VTOL, NGSPICE_GMIN, access_card, newton_currents, newton_node_voltages

SEED000 = VteamParams()  # 50 ohm .. 1 kohm
SEED001 = VteamParams(r_on=1e3, r_off=12e3)  # 1 kohm .. 12 kohm
DEVICES = [SEED000, SEED001]
IDS = ["seed000", "seed001"]


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max |b|."""
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def tile(seed: int, shape: tuple[int, int], device: VteamParams, batch: int = 5, **settings
         ) -> tuple[TileSpec, np.ndarray]:
    rng = np.random.default_rng(seed)
    settings = {"r_wire": 1.0, "r_driver": 10.0, "access": "nmos", **settings}
    spec = TileSpec.from_states(rng.uniform(0, 1, size=shape), device, **settings)
    return spec, rng.uniform(-0.3, 0.3, size=(batch, shape[0]))


@pytest.mark.parametrize("device", DEVICES, ids=IDS)
@pytest.mark.parametrize("shape, tia", [((24, 20), TiaSpec()), ((13, 31), TiaSpec(kind="vcvs", rs=1e3))])
def test_batched_solver_equals_full_newton_within_1e_10(device, shape, tia):
    """The spec asks 1e-9; each vector stops at an estimated 1e-9 of its scale
    (extrapolated from its contraction), which lands the currents ~10x closer."""
    spec, v = tile(5, shape, device, batch=7, tia=tia)
    prepared = fast.prepare(spec, nonlinear="newton")
    assert prepared.method == "structured" and isinstance(prepared.factor, BatchedFactor)
    assert rel_err(prepared.currents(v), newton_currents(spec, v)) < 1e-10


@pytest.mark.parametrize("device", DEVICES, ids=IDS)
def test_batched_node_voltages_equal_full_newton(device):
    spec, v = tile(6, (12, 9), device, batch=3)
    got = fast.prepare(spec, nonlinear="newton").node_voltages(v)
    want = newton_node_voltages(spec, v)
    for a, b in zip(got, want):
        assert np.max(np.abs(a - b)) < 1e-11  # V


@pytest.mark.parametrize("device", DEVICES, ids=IDS)
def test_batched_solver_matches_ngspice_within_1e_9(device):
    spec, v = tile(7, (16, 16), device, batch=3)
    ref = solve_spice(spec, v)
    got = fast.solve_fast(spec, v)  # nonlinear 'auto': exact, batched at any batch size
    assert rel_err(got.current, ref.current) < 1e-9


def test_convergence_masks_let_easy_vectors_leave_and_change_nothing():
    """A batch of zero, tiny and full-scale vectors: each stops on its own
    count of steps, and every result equals that vector solved alone."""
    spec, v = tile(8, (20, 16), SEED000, batch=6)
    v[0] = 0.0
    v[1] *= 1e-4
    factor = batched_factor(spec, access_card(), NGSPICE_GMIN)
    currents, _, steps = batched_nodes(factor, v, NEWTON_VTOL, workers=1)
    assert steps[0] == steps.min() and steps[1] < steps[2:].min()
    assert np.all(currents[0] == 0.0)
    for k in range(1, v.shape[0]):
        alone, _, _ = batched_nodes(factor, v[k:k + 1], NEWTON_VTOL, workers=1)
        assert rel_err(currents[k], alone[0]) < 1e-10
    assert rel_err(currents[1:], newton_currents(spec, v[1:])) < 1e-9  # the spec's tolerance


def test_chunks_and_worker_threads_change_nothing_but_rounding():
    spec, v = tile(9, (10, 12), SEED001, batch=23)
    factor = batched_factor(spec, access_card(), NGSPICE_GMIN)
    whole, _, _ = batched_nodes(factor, v, NEWTON_VTOL, workers=1)
    for chunk, workers in ((1, 1), (5, 2), (None, 2)):
        got, _, _ = batched_nodes(factor, v, NEWTON_VTOL, chunk=chunk, workers=workers)
        assert rel_err(got, whole) < 1e-10


def test_inputs_beyond_the_triode_range_fall_back_to_the_chord_on_the_chains():
    """|v| >= V_wl - vto leaves the closed-form triode law: the tile then
    takes the general chord iteration, still the exact operating point."""
    spec, v = tile(10, (8, 6), SEED001, batch=2, nmos=NmosAccess(v_wordline=0.9))
    v *= 0.5 / 0.3  # up to 0.5 V > a = 0.4 V
    prepared = fast.prepare(spec, nonlinear="newton")
    assert isinstance(prepared.factor, BatchedFactor) and not prepared.takes_batched(v)
    assert rel_err(prepared.currents(v), newton_currents(spec, v)) < 1e-11


def test_no_driver_resistance_keeps_the_structured_chord():
    spec, v = tile(11, (9, 7), SEED001, batch=3, r_driver=0.0)
    prepared = fast.prepare(spec, nonlinear="newton")
    assert not isinstance(prepared.factor, BatchedFactor)
    assert rel_err(prepared.currents(v), newton_currents(spec, v)) < 1e-10


def _imports_of_tile_command(tmp_path, access: str) -> str:
    """stderr of `python -X importtime -m cosim tile --engine fast` on a 16 x 16 tile."""
    rng = np.random.default_rng(0)
    np.save(tmp_path / "G.npy", rng.uniform(1e-4, 1e-3, (16, 16)))
    np.save(tmp_path / "V.npy", rng.uniform(-0.3, 0.3, (20, 16)))
    run = subprocess.run([sys.executable, "-X", "importtime", "-m", "cosim", "tile", "--conductance",
                          str(tmp_path / "G.npy"), "--voltage", str(tmp_path / "V.npy"), "--r-wire", "1",
                          "--r-driver", "10", "--access", access, "--engine", "fast"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "tile 16x16, engine fast" in run.stdout
    return run.stderr


@pytest.mark.parametrize("access", ["none", "nmos"])
def test_tile_command_on_the_fast_engine_does_not_import_torch(tmp_path, access):
    """The fast solver is numpy and LAPACK: `cosim tile --engine fast` never
    pays torch's ~1 s import (python -X importtime lists every module)."""
    modules = {line.rsplit("|", 1)[-1].strip() for line in _imports_of_tile_command(tmp_path, access).splitlines()
               if line.startswith("import time:")}
    assert "numpy" in modules and "cosim.fast.prepared" in modules
    assert "torch" not in modules
