"""`cosim tile` and `cosim netlist` from the command line: results on disk,
and one clear line (no traceback, non-zero exit, no file) for bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest


def cosim(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cosim", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


@pytest.fixture
def tile_files(tmp_path):
    rng = np.random.default_rng(7)
    g = 1.0 / rng.uniform(50, 1000, size=(5, 3))
    np.save(tmp_path / "G.npy", g)
    np.save(tmp_path / "V1.npy", rng.uniform(-0.3, 0.3, size=5))
    np.save(tmp_path / "VB.npy", rng.uniform(-0.3, 0.3, size=(4, 5)))
    return tmp_path, g


@pytest.mark.parametrize("engine", ["spice", "ideal"])
def test_tile_writes_current_and_vout_of_shape_b_by_c(tile_files, engine):
    path, g = tile_files
    out = path / f"{engine}.h5"
    run = cosim("tile", "--conductance", str(path / "G.npy"), "--voltage", str(path / "VB.npy"),
                "--engine", engine, "--rs", "50", "--out", str(out))
    assert run.returncode == 0, run.stderr
    assert "tile 5x3" in run.stdout
    v = np.load(path / "VB.npy")
    with h5py.File(out) as h5:
        assert h5["current"].shape == (4, 3) and h5["vout"].shape == (4, 3)
        assert np.allclose(h5["current"][()], v @ g, rtol=1e-9, atol=0)
        assert np.allclose(h5["vout"][()], 50 * (v @ g), rtol=1e-9, atol=0)
        assert h5.attrs["engine"] == engine and "cosim" in h5.attrs["command"]


def test_tile_with_a_single_voltage_vector_gives_batch_one(tile_files):
    path, _ = tile_files
    out = path / "one.h5"
    run = cosim("tile", "--conductance", str(path / "G.npy"), "--voltage", str(path / "V1.npy"),
                "--r-wire", "1", "--r-driver", "10", "--access", "nmos", "--out", str(out))
    assert run.returncode == 0, run.stderr
    with h5py.File(out) as h5:
        assert h5["current"].shape == (1, 3)
        assert "Vsense_c0" in h5["netlist"][()].decode()


def test_netlist_directory_is_self_contained_and_runs_in_ngspice(tile_files):
    path, _ = tile_files
    run = cosim("netlist", "--conductance", str(path / "G.npy"), "--voltage", str(path / "V1.npy"),
                "--access", "nmos", "--r-wire", "1", "--mode", "tran", "--out-dir", str(path / "net"))
    assert run.returncode == 0, run.stderr
    files = {p.name for p in (path / "net").iterdir()}
    assert {"tile.cir", "vteam.lib", "cell_1t1r.cir", "nmos_access.lib", "tia.cir", "opamp.cir"} <= files
    spice = subprocess.run(["ngspice", "-b", "tile.cir"], cwd=path / "net", capture_output=True,
                           text=True, timeout=300)
    assert spice.returncode == 0 and (path / "net" / "tile.raw").is_file(), spice.stdout + spice.stderr


def _bad(tmp_path: Path, name: str, array) -> str:
    np.save(tmp_path / name, np.asarray(array))
    return str(tmp_path / name)


@pytest.mark.parametrize("case, expected", [
    ("nan", "NaN"),
    ("negative", "conductance must be > 0"),
    ("shape", "voltage must have shape"),
    ("missing", "does not exist"),
    ("not_npy", "not a numeric .npy"),
])
def test_bad_inputs_end_in_one_clear_line(tmp_path, case, expected):
    g = np.full((3, 2), 1e-3)
    v = np.full(3, 0.1)
    g_path, v_path = _bad(tmp_path, "G.npy", g), _bad(tmp_path, "V.npy", v)
    if case == "nan":
        g[1, 1] = np.nan
        g_path = _bad(tmp_path, "Gnan.npy", g)
    elif case == "negative":
        g[2, 0] = -1e-3
        g_path = _bad(tmp_path, "Gneg.npy", g)
    elif case == "shape":
        v_path = _bad(tmp_path, "V4.npy", np.full(4, 0.1))
    elif case == "missing":
        g_path = str(tmp_path / "nothere.npy")
    elif case == "not_npy":
        (tmp_path / "junk.npy").write_text("not an array")
        g_path = str(tmp_path / "junk.npy")
    out = tmp_path / "r.h5"
    run = cosim("tile", "--conductance", g_path, "--voltage", v_path, "--out", str(out))
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cosim: error:") and expected in lines[0], run.stderr
    assert not out.exists() and not list(tmp_path.glob(".r.h5*"))


def test_missing_ngspice_says_how_to_install_it(tmp_path):
    g_path = _bad(tmp_path, "G.npy", np.full((2, 2), 1e-3))
    v_path = _bad(tmp_path, "V.npy", np.full(2, 0.1))
    env = dict(os.environ, PATH=str(tmp_path))  # no ngspice on PATH
    env.pop("COSIM_NGSPICE", None)
    run = cosim("tile", "--conductance", g_path, "--voltage", v_path, env=env)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "ngspice is not installed" in run.stderr and "apt-get install ngspice" in run.stderr


def test_output_in_a_missing_directory_is_refused_before_running(tile_files):
    path, _ = tile_files
    run = cosim("tile", "--conductance", str(path / "G.npy"), "--voltage", str(path / "V1.npy"),
                "--out", str(path / "no" / "such" / "dir.h5"))
    assert run.returncode == 2 and "does not exist" in run.stderr and "Traceback" not in run.stderr


def _tile_config(out: Path) -> dict:
    import json

    with h5py.File(out) as h5:
        return json.loads(h5.attrs["config"])


def test_tile_preset_sets_the_hardware_and_explicit_flags_override_it(tile_files):
    """`cosim tile --preset`: device, wires, driver, access, TIA and converters from the preset
    (seed001_mlp: 1..12 kohm, 1 ohm wires, 10 ohm drivers, 1T1R, 8-bit converters); the ADC full
    scale calibrated on the batch; a flag given on the command line wins, even at its default value."""
    import json

    from cosim.core.config import load_preset
    from cosim.core.resources import resource_path

    path, g = tile_files
    preset = load_preset("seed001_mlp")
    files = ["--conductance", str(path / "G.npy"), "--voltage", str(path / "VB.npy")]
    run = cosim("tile", *files, "--preset", "seed001_mlp", "--engine", "ideal", "--out", str(path / "p.h5"))
    assert run.returncode == 0, run.stderr
    config = _tile_config(path / "p.h5")
    assert (config["r_wire"], config["r_driver"], config["access"]) == (preset.r_wire, preset.r_driver, preset.access)
    assert config["device"]["r_off"] == preset.device.r_off == json.loads(
        resource_path("presets", "seed001_mlp.json").read_text())["device"]["r_off"]
    assert config["tia"]["rs"] == preset.tia.rs and config["dac"] == {**config["dac"], "bits": preset.dac_bits,
                                                                     "vfs": preset.v_read}
    v = np.clip(np.load(path / "VB.npy"), -preset.v_read, preset.v_read)
    assert config["adc"]["bits"] == preset.adc_bits
    ideal_vout = preset.tia.rs * np.abs(v @ g).max()
    assert abs(config["adc"]["vfs"] - ideal_vout) <= 0.02 * ideal_vout  # DAC-quantised inputs
    run = cosim("tile", *files, "--preset", "seed001_mlp", "--engine", "ideal", "--r-wire", "0", "--access", "none",
                "--rs", "100", "--adc-vfs", "1", "--out", str(path / "o.h5"))
    assert run.returncode == 0, run.stderr
    config = _tile_config(path / "o.h5")
    assert (config["r_wire"], config["access"], config["tia"]["rs"], config["adc"]["vfs"]) == (0.0, "none", 100.0, 1.0)
    assert config["r_driver"] == preset.r_driver  # not given: the preset's
    run = cosim("tile", *files, "--engine", "ideal", "--out", str(path / "n.h5"))  # no preset: the old defaults
    config = _tile_config(path / "n.h5")
    assert (config["r_wire"], config["access"], config["adc"]["bits"], config["dac"]["bits"]) == (0.0, "none", None, None)


def test_tile_with_an_unknown_preset_is_one_line(tile_files):
    path, _ = tile_files
    run = cosim("tile", "--conductance", str(path / "G.npy"), "--voltage", str(path / "V1.npy"), "--preset", "nope")
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "neither a preset name" in run.stderr


def test_warnings_and_errors_are_one_escaped_line(tmp_path, capsys):
    """A warning is one `cosim: warning:` line without Python's source-file line; control
    characters from a user's names (a file name, a layer name) never reach the terminal raw."""
    import warnings

    from cosim.cli import _one_line_warnings, main

    with _one_line_warnings(debug=False):
        warnings.warn("layer \x1b[31mevil: the maps would exceed 2 GiB\nsecond line")
    err = capsys.readouterr().err
    assert err == "cosim: warning: layer \\x1b[31mevil: the maps would exceed 2 GiB\n"
    assert main(["simulate", str(tmp_path / "no\x1b[2Jsuch.pt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "\x1b" not in err and "no\\x1b[2Jsuch.pt" in err, err
