"""Sweeps over the hardware itself (`cosim.twin.sweep`): preset fields by name
(dotted or bare), tile size and compensation as axes, the Pareto plot, and
grid points on a Dask cluster giving exactly the local rows."""

from __future__ import annotations

import pytest
import torch

from cosim.cli import main
from cosim.core.config import load_preset
from cosim.core.errors import InputError
from cosim.results.sweep_outputs import pareto_axis, pareto_front, write_outputs
from cosim.twin.sweep import SweepSetup, parse_grid, point_config, run_sweep

TIMING = ("seconds",)


def test_preset_fields_tile_and_compensation_are_axes():
    grid = parse_grid(["r_wire=0.5,1", "tile=16,32", "compensate=none,irdrop", "rs=50", "device.r_off=2e4",
                       "r_on=500", "nmos.v_wordline=2.5", "access=none", "adc_bits=0,6"])
    assert grid == {"r_wire": [0.5, 1.0], "tile": [16, 32], "compensate": ["none", "irdrop"], "tia.rs": [50.0],
                    "device.r_off": [2e4], "device.r_on": [500.0], "nmos.v_wordline": [2.5], "access": ["none"],
                    "adc_bits": [0, 6]}
    point = point_config({"r_wire": 0.5, "tile": 16, "compensate": "irdrop", "tia.rs": 50.0, "device.r_on": 500.0,
                          "adc_bits": 0}, load_preset("seed001_mlp"), SweepSetup(access=None))
    assert point.preset.r_wire == 0.5 and point.preset.tia.rs == 50.0 and point.preset.device.r_on == 500.0
    assert point.preset.adc_bits is None and point.tile == 16 and point.compensate == "irdrop"
    assert point.preset.access == "nmos"  # access=None keeps the preset's


@pytest.mark.parametrize("params, message", [
    (["colour=red"], "unknown sweep axis"),
    (["access=diode"], "not one of"),
    (["r_wire=thin"], "not a number"),
    (["tile=1.5"], "not an integer"),
    (["compensate=magic"], "not one of"),
    (["r_wire="], "has no values"),
])
def test_bad_axes_and_values_are_one_line(params, message):
    with pytest.raises(InputError, match=message):
        parse_grid(params)


def test_out_of_range_values_are_refused_before_any_work():
    preset = load_preset("seed001_mlp")
    with pytest.raises(InputError, match="r_wire"):
        point_config({"r_wire": -1.0}, preset, SweepSetup())
    with pytest.raises(InputError, match="r_on < r_off"):
        point_config({"device.r_on": 5e4}, preset, SweepSetup())
    with pytest.raises(InputError, match="tile"):
        point_config({"tile": 1}, preset, SweepSetup())


@pytest.fixture(scope="module")
def small_case(digits_mlp, digits_split):
    (x, y), (xt, yt) = digits_split
    return digits_mlp, (x[:64], y[:64]), (xt[:120], yt[:120])


def test_compensation_wins_back_what_long_tiles_lose(small_case):
    """seed 001's devices: the 64-tile loses accuracy to its wires and drivers and
    compensation takes it back; rows carry the tile axis, so the Pareto plot is drawn."""
    model, train, test = small_case
    grid = parse_grid(["tile=16,64", "compensate=none,irdrop"])
    setup = SweepSetup(engine="fast", access="none", draws=1)
    rows = run_sweep(model, grid, load_preset("seed001_mlp").with_(adc_bits=None, dac_bits=None), setup,
                     train, test)
    by = {(r["tile"], r["compensate"]): r["mean"] for r in rows}
    assert by[(64, "none")] < by[(16, "none")] - 0.03
    assert by[(64, "irdrop")] >= by[(16, "none")] - 0.01
    assert by[(16, "irdrop")] >= by[(16, "none")] - 0.01
    assert pareto_axis(rows) in ("tile", "energy_per_inference_j")
    front = pareto_front(rows, "tile")
    assert front and all(not any(o["mean"] > f["mean"] and o["tile"] <= f["tile"] for o in rows) for f in front)


def test_pareto_plot_is_written_with_the_other_outputs(tmp_path):
    rows = [{"tile": t, "mean": m, "std": 0.0, "draws": 1, "seconds": 0.1, "energy_per_inference_j": float("nan"),
             "latency_s": float("nan"), "tops_per_w": float("nan")} for t, m in ((16, 0.9), (32, 0.95), (64, 0.7))]
    paths = write_outputs(rows, tmp_path, "p")
    assert paths["pareto"].stat().st_size > 1000 and paths["png"].exists()
    assert [r["tile"] for r in pareto_front(rows, "tile")] == [16, 32]
    no_axis = [{k: v for k, v in r.items() if k != "tile"} | {"r_wire": 1.0} for r in rows]
    assert "pareto" not in write_outputs(no_axis, tmp_path, "q")


def test_dask_cluster_gives_the_local_rows(small_case):
    """Every (point, draw) on a 2-worker LocalCluster: the same accuracies and energies as in-process."""
    from distributed import LocalCluster

    model, train, test = small_case
    grid = parse_grid(["r_wire=0.5,2", "variability_sigma=0.2"])
    setup = SweepSetup(engine="fast", access="none", draws=2, tile=32)
    preset = load_preset("seed001_mlp")
    local = run_sweep(model, grid, preset, setup, train, test)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        remote = run_sweep(model, grid, preset, setup, train, test, executor="dask",
                           scheduler=cluster.scheduler_address)
    strip = [[{k: v for k, v in r.items() if k not in TIMING} for r in rows] for rows in (local, remote)]
    assert all(r["draws"] == 2 for r in local)
    assert repr(strip[0]) == repr(strip[1])  # repr: NaN energy columns compare equal too


def test_sweep_cli_over_wire_resistance_writes_the_pareto_plot(tmp_path):
    torch.manual_seed(0)
    torch.save(torch.nn.Sequential(torch.nn.Linear(64, 10)), tmp_path / "m.pt")
    assert main(["sweep", str(tmp_path / "m.pt"), "--param", "r_wire=0,2", "--param", "tile=16,32",
                 "--preset", "seed001_mlp", "--draws", "1", "--out-dir", str(tmp_path), "--name", "w",
                 "--quiet"]) == 0
    header = (tmp_path / "w.csv").read_text().splitlines()[0]
    assert header.startswith("r_wire,tile,mean,std")
    assert (tmp_path / "w.pareto.png").stat().st_size > 1000
    assert main(["sweep", str(tmp_path / "m.pt"), "--param", "r_wire=1", "--executor", "dask"]) == 2


def test_evaluate_on_a_dask_cluster_writes_the_local_run(tmp_path, digits_mlp):
    """Batches on a 2-worker LocalCluster: the same outputs, accuracy, per-layer errors and energy."""
    import h5py
    import numpy as np
    from distributed import LocalCluster

    torch.save(digits_mlp, tmp_path / "mlp.pt")
    base = ["evaluate", str(tmp_path / "mlp.pt"), "--data", "digits", "--limit", "150", "--batch-size", "40",
            "--tile", "32", "--compensate", "irdrop", "--quiet"]
    assert main(base + ["--out", str(tmp_path / "local.h5")]) == 0
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        assert main(base + ["--executor", "dask", "--scheduler", cluster.scheduler_address,
                            "--out", str(tmp_path / "dask.h5")]) == 0
    with h5py.File(tmp_path / "local.h5") as a, h5py.File(tmp_path / "dask.h5") as b:
        assert np.array_equal(a["outputs"][()], b["outputs"][()])
        for key in ("cosim_accuracy", "layer_errors", "energy_per_inference_j", "relative_error"):
            assert a.attrs[key] == b.attrs[key], key
        assert {k: a["tiles"][k].attrs["vectors"] for k in a["tiles"]} == \
            {k: b["tiles"][k].attrs["vectors"] for k in b["tiles"]}
