"""`cosim simulate --transient NAME`: the named tiles of a layer run as ngspice
transients on their first input vectors, their waveforms land in RUN.h5 in
the layout `cosim waves` reads, and they are exactly what `cosim tile
--transient` gives for the same tile and voltages."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch
from torch import nn

from cosim.cli import main
from cosim.results.tile_specs import read_tile_spec

TILE = "linear.r0c0"  # a bare Linear's tiles are linear.r<i>c<j>; 6->3 at --tile 4 gives 2x2 tiles


@pytest.fixture(scope="module")
def run_file(tmp_path_factory) -> tuple[str, str]:
    """A Linear 6->3 on 4x4 tiles (fast solver), two transient input vectors on one tile."""
    folder = tmp_path_factory.mktemp("simtran")
    torch.manual_seed(0)
    layer = folder / "lin.pt"
    torch.save(nn.Linear(6, 3), layer)
    out = folder / "run.h5"
    assert main(["simulate", str(layer), "--tile", "4", "--batch", "3", "--engine", "fast", "--quiet",
                 "--transient", TILE, "--transient-vectors", "2", "--preset", "seed000_vteam", "--out", str(out)]) == 0
    return str(out), str(folder)


def test_transient_tile_has_waveforms_conductances_and_its_first_input_vectors(run_file):
    out, _ = run_file
    with h5py.File(out, "r") as h5:
        group = h5["tiles"][TILE]
        assert group["waveforms"].attrs["vectors"] == 2
        g = group["conductance"][()]
        np.testing.assert_array_equal(g[:, 0::2], group["g_pos"][()])  # interleaved differential pairs
        np.testing.assert_array_equal(g[:, 1::2], group["g_neg"][()])
        np.testing.assert_array_equal(group["voltage"][()], group["sample_voltage"][()][:2])
        spec = read_tile_spec(group)
        assert spec.conductance.shape == (4, 4)
        assert spec.tia.kind == "opamp"  # the tile as the transient ran it
        assert json.loads(group.attrs["config"])["tia"]["kind"] == "ideal"  # the layer's tile
        assert group["read_disturb"].shape == (2, 4, 4)
        assert "mode tran, 2 input vector(s)" in group["waveforms"]["netlist"][()].decode()
        # Only the named tile ran as a transient.
        assert [k for k in h5["tiles"] if "waveforms" in h5["tiles"][k]] == [TILE]


def test_cosim_waves_lists_and_exports_a_run_file_tile(run_file, capsys, tmp_path):
    out, _ = run_file
    capsys.readouterr()
    assert main(["waves", out, "--tile", TILE, "--list"]) == 0
    listing = capsys.readouterr().out
    assert "signals of tile tiles/linear.r0c0" in listing and "col3.vout" in listing and "cell3_3.g" in listing
    csv = tmp_path / "w.csv"
    assert main(["waves", out, "--tile", TILE, "--signal", "col*.current", "-o", str(csv)]) == 0
    header = csv.read_text().splitlines()[0]
    assert header == "time (s),col0.current (A),col1.current (A),col2.current (A),col3.current (A)"


def test_waveforms_equal_a_cosim_tile_transient_of_the_same_tile(run_file, tmp_path):
    """Same G (S), V (V), wires, access, DAC and op-amp TIA through `cosim
    tile --transient`: the same netlist physics, so every stored sample agrees
    to ngspice's print precision."""
    out, _ = run_file
    with h5py.File(out, "r") as h5:
        group = h5["tiles"][TILE]
        config = json.loads(group["waveforms"].attrs["tile_config"])
        g, v = group["conductance"][()], group["voltage"][()]
        ours = {key: group["waveforms"]["vector_1"][key][()] for key in ("time", "vout", "current", "state")}
    np.save(tmp_path / "G.npy", g)
    np.save(tmp_path / "V.npy", v)
    single = tmp_path / "tile.h5"
    assert main(["tile", "--conductance", str(tmp_path / "G.npy"), "--voltage", str(tmp_path / "V.npy"),
                 "--r-wire", str(config["r_wire"]), "--r-driver", str(config["r_driver"]),
                 "--access", config["access"], "--rs", str(config["tia"]["rs"]),
                 "--dac-bits", str(config["dac"]["bits"]), "--dac-vfs", str(config["dac"]["vfs"]),
                 "--transient", "--out", str(single)]) == 0
    with h5py.File(single, "r") as h5:
        theirs_config = json.loads(h5.attrs["config"])
        theirs = {key: h5["waveforms"]["vector_1"][key][()] for key in ours}
    assert {**theirs_config, "name": ""} == {**config, "name": ""}
    assert config["tia"]["kind"] == "opamp"
    for key in ours:
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-12, atol=0, err_msg=key)
    assert np.ptp(ours["vout"][:, 0]) > 0  # the DAC step reaches the TIA output


def test_unknown_transient_tile_is_one_line_and_writes_nothing(run_file, capsys, tmp_path):
    _, folder = run_file
    out = tmp_path / "bad.h5"
    code = main(["simulate", f"{folder}/lin.pt", "--tile", "4", "--batch", "2", "--engine", "fast", "--quiet",
                 "--transient", "linear.r0c0,linear.r9c9", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "no tile named linear.r9c9" in err and "linear.r1c1" in err
    assert not out.exists() and not list(tmp_path.iterdir())


def test_transient_options_without_transient_are_refused(run_file, capsys, tmp_path):
    _, folder = run_file
    code = main(["simulate", f"{folder}/lin.pt", "--tile", "4", "--t-stop", "1e-8",
                 "--out", str(tmp_path / "x.h5")])
    assert code == 2 and "add --transient" in capsys.readouterr().err


def test_read_disturb_above_the_threshold_warns_and_is_stored(run_file, capsys, tmp_path):
    """A 30 ns read at up to 0.3 V moves VTEAM states (v_off = 0.02 V): with a
    limit of 1e-6 the run warns on stderr and keeps the report beside the waveforms."""
    _, folder = run_file
    out = tmp_path / "run.h5"
    assert main(["simulate", f"{folder}/lin.pt", "--tile", "4", "--batch", "2", "--engine", "fast", "--quiet",
                 "--transient", "linear.r1c0", "--disturb-threshold", "1e-6", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "cosim: warning: linear.r1c0: read disturb over a 30 ns read" in captured.err
    assert "transient linear.r1c0 (2x4, 1 vector(s), 30 ns, TIA opamp)" in captured.out
    with h5py.File(out, "r") as h5:
        report = h5["tiles"]["linear.r1c0"]["read_disturb"]
        assert report.attrs["threshold"] == 1e-6 and report.attrs["max_abs"] > 1e-6
        assert h5["tiles"]["linear.r1c0"]["read_disturb_from_spice"][()].all()


@pytest.mark.parametrize("layer, x", [
    (nn.Sequential(nn.Conv2d(3, 4, 3, groups=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 5)),
     torch.randn(2, 3, 6, 6)),
    (nn.Conv2d(4, 6, 3, groups=2), torch.randn(1, 4, 5, 5)),
    (nn.GRU(5, 7, num_layers=2), torch.randn(3, 2, 5)),
    (nn.Sequential(nn.Linear(20, 30), nn.Tanh(), nn.Linear(30, 3)), torch.randn(4, 20)),
])
def test_tile_names_of_the_dry_run_are_the_names_a_simulation_records(layer, x):
    """--transient names are checked before any tile is solved: the layer's
    plan names exactly the tiles (in order) that the real run records."""
    from cosim.core.config import load_preset
    from cosim.run.plan import layer_tile_names
    from cosim.run.simulation import SimOptions, Simulation

    preset, options = load_preset("seed000_vteam"), SimOptions(tile=8, engine="ideal", quiet=True)
    sim = Simulation(preset, options)
    sim.forward(layer, x.double())
    assert layer_tile_names(layer, options.tile, options.split) == list(sim.records)


def test_read_disturb_recomputed_from_the_stored_states_equals_the_stored_report(run_file):
    """`group_disturb(recompute=True)` rebuilds the tile as it ran (op-amp TIA)
    from RUN.h5 and integrates the stored ngspice states again."""
    from cosim.results.stored_disturb import group_disturb

    out, _ = run_file
    with h5py.File(out, "r") as h5:
        group = h5["tiles"][TILE]
        stored, again = group_disturb(group), group_disturb(group, recompute=True)
    np.testing.assert_allclose(again.change, stored.change, rtol=1e-9, atol=1e-15)


def test_states_of_selects_the_stored_cells_while_disturb_covers_every_cell(run_file, tmp_path):
    _, folder = run_file
    out = tmp_path / "run.h5"
    assert main(["simulate", f"{folder}/lin.pt", "--tile", "4", "--batch", "2", "--engine", "fast", "--quiet",
                 "--transient", TILE, "--states-of", "0,0;2,3", "--out", str(out)]) == 0
    with h5py.File(out, "r") as h5:
        group = h5["tiles"][TILE]
        np.testing.assert_array_equal(group["waveforms"]["state_cells"][()], [[0, 0], [2, 3]])
        assert group["read_disturb"].shape == (1, 4, 4)  # every cell, from ngspice's states
