"""Transient tile runs and `cosim waves`: the op-amp TIA settles as its
single-pole op-amps predict, the stored waveforms are exactly what ngspice
computes for the stored netlist, and the signals list, plot and export."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest
from scipy.optimize import brentq

from cosim.analysis.transient import run_transient
from cosim.cli import main
from cosim.core.config import DacSpec, TiaSpec, TranSpec
from cosim.core.tile import TileSpec
from cosim.spice.goldens import example_tile4
from cosim.spice.rawfile import read_raw

A0, GBW, ROUT, RINV = 1e5, 100e6, 1.0, 1e4  # circuits/opamp.cir and tia.cir defaults


def test_opamp_tia_settling_time_matches_single_pole_op_amp_formula():
    """A DAC step (1 ps rise) into two cells (source 120 ohm) read by the
    two-stage op-amp TIA (rs = 1 kohm, then a unity inverter). Each op-amp is
    one pole at gbw/a0, closed around a feedback factor beta, so each stage
    is one pole with tau = a0 / (2 pi gbw (1 + a0 beta)): beta1 = Z/(Z + rs)
    (times rout's divider into its load), beta2 = rinv/(2 rinv + rout). The
    1% settling time of that two-pole step matches ngspice within 1%
    (measured 0.06%). The inputs stay below v_off, so the devices hold."""
    g = np.array([[1 / 200.0], [1 / 300.0]])
    z, rs, delay, rise = 1 / g.sum(), 1000.0, 1e-9, 1e-12
    spec = TileSpec(g, tia=TiaSpec(kind="opamp", rs=rs, a0=A0, gbw=GBW), dac=DacSpec(delay=delay, rise=rise))
    tran = TranSpec(t_stop=160e-9, t_step=20e-12, t_sample=150e-9, t_max_step=20e-12)
    result, _ = run_transient(spec, np.array([0.015, 0.015]), tran, keep_raw=False)
    t, vout = result.waveforms[0]["time"], result.waveforms[0]["v(tia_c0)"]

    load = (rs + z) * RINV / (rs + z + RINV)
    beta1 = load / (load + ROUT) * z / (z + rs)
    beta2 = RINV / (2 * RINV + ROUT)
    tau1, tau2 = (A0 / (2 * math.pi * GBW * (1 + A0 * b)) for b in (beta1, beta2))

    def step(s: float) -> float:
        return 1 - (tau1 * math.exp(-s / tau1) - tau2 * math.exp(-s / tau2)) / (tau1 - tau2)

    expected = brentq(lambda s: step(s) - 0.99, 1e-12, 1e-6)
    frac = vout / vout[-1]
    k = np.nonzero(np.abs(frac - 1) > 0.01)[0][-1]  # last sample outside the 1% band
    measured = float(np.interp(0.99, frac[k:k + 2], t[k:k + 2])) - (delay + rise / 2)
    assert measured == pytest.approx(expected, rel=0.01)
    assert vout[-1] == pytest.approx(rs * 0.015 / z, rel=1e-3)


# ------------------------------------------------------- a 4x4 transient file


@pytest.fixture(scope="module")
def tile_file(tmp_path_factory) -> Path:
    """`cosim tile --transient` of the bundled 4x4 example with wires, drivers,
    op-amp TIAs (the transient default) and 6-bit ADCs; two states stored."""
    folder = tmp_path_factory.mktemp("waves")
    g, v = example_tile4()
    np.save(folder / "G.npy", g)
    np.save(folder / "V.npy", v)
    out = folder / "tile.h5"
    code = main(["tile", "--conductance", str(folder / "G.npy"), "--voltage", str(folder / "V.npy"),
                 "--r-wire", "1", "--r-driver", "10", "--adc-bits", "6", "--transient",
                 "--states-of", "0,0;2,3", "--out", str(out)])
    assert code == 0
    return out


def _ascii_raw(path: Path) -> list[dict[str, np.ndarray]]:
    """An ngspice ASCII raw file, read here without cosim: one dict per plot."""
    lines = path.read_text().splitlines()
    plots, k = [], 0
    while k < len(lines):
        header = {}
        while not lines[k].startswith("Variables:"):
            key, _, value = lines[k].partition(":")
            header[key.strip()] = value.strip()
            k += 1
        n_vars, n_points = int(header["No. Variables"]), int(header["No. Points"])
        names = [lines[k + 1 + m].split()[1].lower() for m in range(n_vars)]
        names = [f"i({n[:-7]})" if n.endswith("#branch") else n for n in names]
        k += 1 + n_vars + 1  # variables, then "Values:"
        tokens: list[str] = []  # per point: its index, then one value per line (blank lines between)
        while len(tokens) < n_points * (n_vars + 1):
            tokens += lines[k].split()
            k += 1
        table = np.array([float(x) for m, x in enumerate(tokens) if m % (n_vars + 1) != 0])
        table = table.reshape(n_points, n_vars)
        plots.append({name: table[:, m] for m, name in enumerate(names)})
        while k < len(lines) and not lines[k].strip():
            k += 1
    return plots


def test_saved_4x4_waveforms_equal_what_ngspice_writes_for_the_stored_netlist(tile_file, tmp_path):
    """The stored netlist, run again by plain `ngspice -b` with ASCII output
    (15 significant digits), gives the stored time axis, row-line ends, DAC
    outputs, column currents, TIA outputs, ADC codes and device states; the
    stored raw-file bytes hold the same numbers."""
    with h5py.File(tile_file) as h5:
        netlist = h5["netlist"][()].decode()
        waves = h5["waveforms"]
        raw_bytes = waves["ngspice_raw"][()].tobytes()
        stored = [{key: ds[()] for key, ds in waves[f"vector_{b}"].items()} for b in range(2)]
        cells = waves["state_cells"][()]
    assert netlist.count("set filetype=binary") == 1
    (tmp_path / "tile.cir").write_text(netlist.replace("set filetype=binary", "set filetype=ascii"))
    run = subprocess.run(["ngspice", "-b", "tile.cir"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    reference = _ascii_raw(tmp_path / "tile.raw")
    assert len(reference) == 2
    (tmp_path / "stored.raw").write_bytes(raw_bytes)
    from_bytes = read_raw(tmp_path / "stored.raw")
    for b, (ref, got) in enumerate(zip(reference, stored)):
        expected = {
            "time": ref["time"],
            "row_near": np.column_stack([ref[f"v(r{i}_0)"] for i in range(4)]),
            "row_far": np.column_stack([ref[f"v(r{i}_3)"] for i in range(4)]),
            "dac": np.column_stack([ref[f"v(in_r{i})"] for i in range(4)]),
            "current": np.column_stack([ref[f"i(vsense_c{j})"] for j in range(4)]),
            "vout": np.column_stack([ref[f"v(tia_c{j})"] for j in range(4)]),
            "adc_code": np.column_stack([ref[f"v(adc_c{j})"] for j in range(4)]),
            "state": np.column_stack([ref[f"v(x{i}_{j})"] for i, j in cells]),
        }
        assert sorted(got) == sorted(expected)
        for key, values in expected.items():
            assert got[key].shape == values.shape, key
            assert np.allclose(got[key], values, rtol=1e-13, atol=1e-13 * np.abs(values).max()), key
        assert np.array_equal(from_bytes[b]["time"], got["time"])
        assert np.array_equal(from_bytes[b]["v(tia_c0)"], got["vout"][:, 0])


def test_transient_file_layout_carries_units_and_the_read_summary(tile_file):
    """Units on every stored series, the transient settings, the TIA that ran
    (op-amp by default in transients) and the read-disturb figures."""
    units = {"time": "s", "row_near": "V", "row_far": "V", "dac": "V", "current": "A", "vout": "V",
             "adc_code": "LSB", "state": "1"}
    with h5py.File(tile_file) as h5:
        vec = h5["waveforms/vector_0"]
        assert {key: vec[key].attrs["units"] for key in vec} == units
        assert vec["row_near"].shape[1] == 4 and vec["state"].shape[1] == 2
        assert h5["waveforms"].attrs["t_sample"] == pytest.approx(TranSpec().t_sample)
        assert '"kind": "opamp"' in h5.attrs["config"]
        assert h5["read_disturb"].shape == (2, 4, 4) and h5["read_disturb"].attrs["max_abs"] > 0


# ------------------------------------------------------------- cosim waves


def test_waves_list_prints_every_signal_with_units(tile_file, capsys):
    assert main(["waves", str(tile_file), "--list"]) == 0
    out = capsys.readouterr().out
    for name, units in (("row0.v_near", "V"), ("row3.v_far", "V"), ("col2.current", "A"),
                        ("col1.vout", "V"), ("col0.adc_code", "LSB"), ("cell2_3.x", "1"), ("cell0_0.g", "S")):
        assert any(line.split()[:2] == [name, units] for line in out.splitlines()), name
    assert "cell1_1.x" not in out  # only the chosen states are stored


def test_waves_png_html_and_csv(tile_file, tmp_path, capsys):
    """PNG: a loadable, non-blank image; HTML: the plotly traces by name;
    CSV: a time column and one column per signal, units in the header."""
    import matplotlib.image

    base = ["waves", str(tile_file), "--signal", "col*.vout", "row0.*", "cell*.g"]
    for suffix in ("png", "html", "csv"):
        assert main([*base, "-o", str(tmp_path / f"w.{suffix}")]) == 0
    image = matplotlib.image.imread(tmp_path / "w.png")
    assert image.shape[0] > 200 and image.shape[1] > 200 and float(image[..., :3].std()) > 0.01
    html = (tmp_path / "w.html").read_text()
    assert all(f'"name":"col{j}.vout"' in html for j in range(4)) and '"name":"cell2_3.g"' in html
    assert "plotly" in html.lower() and "time (ns)" in html
    header = (tmp_path / "w.csv").read_text().splitlines()[0].split(",")
    assert header[:3] == ["time (s)", "row0.v_near (V)", "row0.v_far (V)"]
    assert "col3.vout (V)" in header and "cell0_0.g (S)" in header
    table = np.loadtxt(tmp_path / "w.csv", delimiter=",", skiprows=1)
    with h5py.File(tile_file) as h5:
        assert np.allclose(table[:, 0], h5["waveforms/vector_0/time"][()], rtol=1e-11, atol=0)
        vout = h5["waveforms/vector_0/vout"][()]
    assert np.allclose(table[:, header.index("col3.vout (V)")], vout[:, 3], rtol=1e-11, atol=1e-15)


def test_waves_signal_given_twice_plots_both_patterns(tile_file, tmp_path, capsys):
    """--signal is repeatable: each pattern is plotted (it used to keep only the last one)."""
    out = tmp_path / "two.csv"
    assert main(["waves", str(tile_file), "--signal", "col*.vout", "--signal", "cell0_0.g", "row0.v_near",
                 "--signal", "col1.vout", "-o", str(out)]) == 0
    header = out.read_text().splitlines()[0].split(",")
    assert "col3.vout (V)" in header and "cell0_0.g (S)" in header and "row0.v_near (V)" in header
    assert header.count("col1.vout (V)") == 1  # a signal matched twice is written once
    assert "wrote 6 signal(s)" in capsys.readouterr().out


def test_waves_finds_the_tile_in_a_run_file(tile_file, tmp_path, capsys):
    """Under tiles/: --tile picks a group, is optional when one tile has
    waveforms, and a missing or ambiguous tile is one error line."""
    run = tmp_path / "run.h5"
    with h5py.File(tile_file) as src, h5py.File(run, "w") as dst:
        tiles = dst.create_group("tiles")
        for name in ("a", "b"):
            tiles.create_group(name)
            for key in src:
                src.copy(src[key], tiles[name], key)
            tiles[name].attrs.update(src.attrs)
        del tiles["b"]["waveforms"]
    assert main(["waves", str(run), "--list"]) == 0
    assert "tile tiles/a" in capsys.readouterr().out
    assert main(["waves", str(run), "--tile", "b", "--list"]) == 2
    assert "no waveforms" in capsys.readouterr().err
    assert main(["waves", str(run), "--tile", "zz", "--list"]) == 2
    assert "tiles: a, b" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--t-stop", "1e-8"], "--t-stop only applies to transient reads"),
    (["--transient", "--states-of", "9,0"], "outside the 4x4 tile"),
    (["--transient", "--states-of", "0-0"], "cannot read cell"),
    (["--transient", "--engine", "ideal"], "--transient runs ngspice"),
])
def test_bad_transient_options_are_one_line(tile_file, capsys, args, message):
    folder = tile_file.parent
    code = main(["tile", "--conductance", str(folder / "G.npy"), "--voltage", str(folder / "V.npy"), *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_waves_without_a_task_or_with_an_unknown_signal_is_one_line(tile_file, tmp_path, capsys):
    assert main(["waves", str(tile_file)]) == 2
    assert "--list" in capsys.readouterr().err
    assert main(["waves", str(tile_file), "--signal", "col9.*", "-o", str(tmp_path / "x.png")]) == 2
    assert "matches no signal" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
