"""RUN.h5 files and checkpoints are untrusted input. A real small run is
edited with h5py as a stranger could (config attributes changed or not
JSON, wrong dtypes, NaN or zero conductances, mismatched shapes, missing
datasets, links to other files, an emptied waveforms group) and each copy
is handed to `cosim report`, `cosim waves` and `cosim simulate --resume`:
every one ends in a single `cosim: error:` line (exit 2) naming the file,
the HDF5 object and what is wrong, writes nothing, and runs no simulator on
an unchecked tile. User strings in a valid file (`$`, `<script>`, a netlist
line in a tile name) render as plain text and run nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch import nn
from trust_helpers import assert_one_line
from trust_helpers import cli_in_process as cli

import cosim.analysis.irdrop
import cosim.results.store
from cosim.cli import main

pytestmark = pytest.mark.skipif(not shutil.which("ngspice"), reason="ngspice is not installed")

TRANSIENT = "2.r0c0"


@pytest.fixture(scope="module")
def base_run(tmp_path_factory) -> Path:
    """Linear(5,3) - ReLU - Linear(3,2) on 4x4 tiles, fast engine, tile 2.r0c0 also read as an ngspice transient."""
    folder = tmp_path_factory.mktemp("untrusted")
    torch.manual_seed(1)
    torch.save(nn.Sequential(nn.Linear(5, 3), nn.ReLU(), nn.Linear(3, 2)), folder / "mlp.pt")
    out = folder / "base.h5"
    assert main(["simulate", str(folder / "mlp.pt"), "--tile", "4", "--batch", "2", "--engine", "fast",
                 "--transient", TRANSIENT, "--quiet", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def worst(base_run) -> str:
    """The tile `cosim report` re-simulates: largest tile error among those with a sample vector."""
    with h5py.File(base_run, "r") as h5:
        tiles = h5["tiles"]
        return max((float(tiles[k].attrs["ideal_rel_error"]), k) for k in tiles if "sample_voltage" in tiles[k])[1]


def hostile(base: Path, folder: Path, edit) -> Path:
    """A copy of the run, edited with h5py."""
    path = folder / "run.h5"
    shutil.copy(base, path)
    with h5py.File(path, "a") as h5:
        edit(h5)
    return path


def replace(group: h5py.Group, key: str, data, **kwargs) -> None:
    del group[key]
    group.create_dataset(key, data=data, **kwargs)


def set_config(group: h5py.Group, change, key: str = "config") -> None:
    config = json.loads(group.attrs[key])
    change(config)
    group.attrs[key] = json.dumps(config)


def tile_edit(change):
    """An edit of the worst tile's group (`worst` is filled in by the test)."""
    return lambda h5, name: change(h5["tiles"][name])


def cfg(change):
    return tile_edit(lambda g: set_config(g, change))


def g_pos(change):
    return tile_edit(lambda g: replace(g, "g_pos", change(g["g_pos"][()])))


def first_nan(a):
    a = a.copy()
    a.flat[0] = np.nan
    return a


# What `cosim report` must refuse: (edit of (h5, worst tile name), words of the message).
REPORT_CASES = {
    "root config not JSON": (lambda h5, w: h5.attrs.__setitem__("config", "{not json"),
                             "/: attribute 'config' is not JSON"),
    "root config a list": (lambda h5, w: h5.attrs.__setitem__("config", "[1, 2]"),
                           "attribute 'config' must be a JSON object {...}, got a list"),
    "root config a number": (lambda h5, w: h5.attrs.__setitem__("config", 5), "attribute 'config' must be text"),
    "root config invalid UTF-8": (lambda h5, w: h5.attrs.create("config", data=np.array(b"\xff\xfe{", dtype=object),
                                                                dtype=h5py.string_dtype("utf-8")),
                                  "attribute 'config' is not UTF-8 text"),
    "root config undecodable bytes": (lambda h5, w: h5.attrs.__setitem__("config", np.bytes_(b"\xff\xfe")),
                                      "attribute 'config' is not UTF-8 text"),
    "preset not an object": (lambda h5, w: h5.attrs.__setitem__("config", json.dumps({"preset": [1]})),
                             "preset must be a JSON object"),
    "versions not JSON": (lambda h5, w: h5.attrs.__setitem__("versions", "{"), "attribute 'versions' is not JSON"),
    "relative error a string": (lambda h5, w: h5.attrs.__setitem__("relative_error", "abc"),
                                "attribute 'relative_error' must be a number, got \"abc\""),
    "tile config not JSON": (tile_edit(lambda g: g.attrs.__setitem__("config", '{"name": ')),
                             "attribute 'config' is not JSON"),
    "tile config r_on a string": (cfg(lambda c: c["device"].update(r_on="1e3")),
                                  'attribute config: device.r_on must be a number (ohm), got "1e3"'),
    "tile config r_wire NaN": (cfg(lambda c: c.update(r_wire=float("nan"))),
                               "r_wire must be a finite number (ohm), got NaN"),
    "tile config r_wire negative": (cfg(lambda c: c.update(r_wire=-1.0)), "r_wire must be a number >= 0 (ohm)"),
    "tile config access unknown": (cfg(lambda c: c.update(access="pmos")), 'access must be one of "none", "nmos"'),
    "tile config tia kind a netlist": (cfg(lambda c: c["tia"].update(kind="ideal\n.control\nshell touch X\n.endc")),
                                       "tia.kind must be one of"),
    "tile config bits out of range": (cfg(lambda c: c["dac"].update(bits=99)),
                                      "dac.bits must be an integer from 2 to 24"),
    "tile config device a list": (cfg(lambda c: c.update(device=[1, 2])), "device must be a JSON object"),
    "tile config missing section": (cfg(lambda c: c.pop("adc")), "attribute config lacks adc"),
    "tile config unknown field": (cfg(lambda c: c.update(shell="rm -rf /")), "has unknown field(s) shell"),
    "tile config rows mismatch": (cfg(lambda c: c.update(rows=c["rows"] + 1)), "dataset 'g_pos' (S) has shape"),
    "tile config a huge tile": (cfg(lambda c: c.update(rows=10**6, cols=10**6)), "is larger than cosim reads back"),
    "conductance NaN": (g_pos(first_nan), "dataset 'g_pos' (S) has a NaN or infinite value at index (0, 0)"),
    "conductance zero": (g_pos(np.zeros_like), "dataset 'g_pos' (S) has a value <= 0"),
    "conductance complex": (g_pos(lambda a: a.astype(complex)), "holds complex values (dtype complex128)"),
    "conductance boolean": (g_pos(lambda a: np.ones(a.shape, bool)), "holds boolean values"),
    "conductance integer": (g_pos(lambda a: np.ones(a.shape, int)), "holds integer values"),
    "conductance text": (tile_edit(lambda g: replace(g, "g_pos", np.array([["x"] * g["g_pos"].shape[1]]
                                                                         * g["g_pos"].shape[0], dtype=object),
                                                 dtype=h5py.string_dtype())), "holds string values"),
    "conductance shapes differ": (g_pos(lambda a: np.ones((a.shape[0], a.shape[1] + 1))),
                                  "dataset 'g_pos' (S) has shape"),
    "conductance missing": (tile_edit(lambda g: g.__delitem__("g_pos")), "is not a cosim tile"),
    "g_neg missing": (tile_edit(lambda g: g.__delitem__("g_neg")), "has no dataset 'g_neg'"),
    "conductance an external link": (tile_edit(lambda g: (g.__delitem__("g_pos"), g.__setitem__(
        "g_pos", h5py.ExternalLink("other.h5", "/g")))), "'g_pos' is an external link"),
    "conductance stored in another file": (tile_edit(lambda g: (g.__delitem__("g_pos"), g.create_dataset(
        "g_pos", shape=(1, 2), dtype="f8", external=[("/etc/hostname", 0, 16)]))), "keeps its data in another file"),
    "sample voltage NaN": (tile_edit(lambda g: replace(g, "sample_voltage",
                                                       np.full(g["sample_voltage"].shape, np.nan))),
                           "dataset 'sample_voltage' (V) has a NaN"),
    "sample voltage wrong shape": (tile_edit(lambda g: replace(g, "sample_voltage", np.zeros((1, 17)))),
                                   "dataset 'sample_voltage' (V) has shape (1, 17)"),
    "rows attr a string": (tile_edit(lambda g: g.attrs.__setitem__("rows", "4")),
                           "attribute 'rows' must be an integer"),
    "engine not an engine": (tile_edit(lambda g: g.attrs.__setitem__("engine", "spice; rm")),
                             "attribute 'engine' must be one of spice, fast, ideal"),
    "tile error a string": (tile_edit(lambda g: g.attrs.__setitem__("ideal_rel_error", "big")),
                            "attribute 'ideal_rel_error' must be a number"),
    "layer order not JSON": (lambda h5, w: h5["layers"].attrs.__setitem__("order", "[0"),
                             "/layers: attribute 'order' is not JSON"),
    "layer order names a missing layer": (lambda h5, w: h5["layers"].attrs.__setitem__("order", '["nope"]'),
                                          "/layers: has no group 'nope'"),
    "outputs missing": (lambda h5, w: h5.__delitem__("outputs"), "is not a cosim run file (it lacks outputs)"),
    "outputs of another shape": (lambda h5, w: replace(h5, "outputs", np.zeros((3, 3))), "dataset 'ideal'"),
    "outputs text": (lambda h5, w: replace(h5, "outputs", np.array([["a", "b"]] * 2, dtype=object),
                                           dtype=h5py.string_dtype()), "dataset 'outputs'"),
    "tiles a dataset": (lambda h5, w: replace(h5, "tiles", np.zeros(3)), "'tiles' is a dataset, not a group"),
    "emptied waveforms group": (lambda h5, w: [h5["tiles"][TRANSIENT]["waveforms"].__delitem__(k)
                                               for k in list(h5["tiles"][TRANSIENT]["waveforms"])],
                                f"/tiles/{TRANSIENT}/waveforms: holds no input vector"),
    "transient tile_config not JSON": (lambda h5, w: h5["tiles"][TRANSIENT]["waveforms"].attrs.__setitem__(
        "tile_config", "nope"), "attribute 'tile_config' is not JSON"),
    "read disturb figures gone": (lambda h5, w: [h5["tiles"][TRANSIENT]["read_disturb"].attrs.__delitem__(k)
                                                 for k in list(h5["tiles"][TRANSIENT]["read_disturb"].attrs)],
                                  "read_disturb: has no attribute 't_read'"),
}


@pytest.mark.parametrize("case", list(REPORT_CASES))
def test_report_refuses_an_edited_run_file_in_one_line(case, base_run, worst, tmp_path, capsys, monkeypatch):
    edit, message = REPORT_CASES[case]
    run = hostile(base_run, tmp_path, lambda h5: edit(h5, worst))
    out = tmp_path / "report.html"
    ran = []

    def simulate_tile(*args, **kwargs):  # the report must refuse the file before any tile runs
        ran.append(args)
        raise AssertionError("a tile was simulated before the file was checked")

    monkeypatch.setattr(cosim.analysis.irdrop, "irdrop_map", simulate_tile)
    rc, _, err = cli(["report", str(run), "-o", str(out)], capsys)
    assert_one_line(rc, err, "run.h5", message)
    assert not out.exists() and not ran


def test_the_unedited_run_reports_fine(base_run, tmp_path, capsys):
    """The control: the same file unedited gives the page (so the cases above fail only by their edit)."""
    out = tmp_path / "report.html"
    rc, _, err = cli(["report", str(base_run), "-o", str(out)], capsys)
    assert rc == 0, err
    assert "IR drop" in out.read_text()


@pytest.mark.parametrize("content", [b"not hdf5 at all\n", b"", b"\x89HDF\r\n\x1a\n" + b"\0" * 64],
                         ids=["text", "empty", "bad superblock"])
def test_a_file_that_is_not_hdf5_is_one_line(content, tmp_path, capsys):
    path = tmp_path / "run.h5"
    path.write_bytes(content)
    rc, _, err = cli(["report", str(path), "-o", str(tmp_path / "r.html")], capsys)
    assert_one_line(rc, err, "is not an HDF5 file")
    rc, _, err = cli(["waves", str(path), "--list"], capsys)
    assert_one_line(rc, err, "is not a readable HDF5 file")


def test_a_truncated_run_file_is_one_line(base_run, tmp_path, capsys):
    path = tmp_path / "run.h5"
    path.write_bytes(base_run.read_bytes()[:20000])
    rc, _, err = cli(["report", str(path), "-o", str(tmp_path / "r.html")], capsys)
    assert_one_line(rc, err, "is not an HDF5 file", "truncated")
    rc, _, err = cli(["waves", str(path), "--list"], capsys)
    assert_one_line(rc, err, "truncated")


def test_an_hdf5_file_that_is_not_a_run_is_one_line(tmp_path, capsys):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as h5:
        h5.create_dataset("current", data=np.zeros(3))
    rc, _, err = cli(["report", str(path), "-o", str(tmp_path / "r.html")], capsys)
    assert_one_line(rc, err, "is not a cosim run file")
    rc, _, err = cli(["waves", str(path), "--list"], capsys)
    assert_one_line(rc, err, "holds no tile")


def dollar_labels(h5: h5py.File) -> None:
    for key in h5["tiles"]:
        h5["tiles"][key].attrs["layer"] = "a$\\frac{$x <b>"


def test_a_layer_label_with_dollars_is_plain_text_in_the_report(base_run, tmp_path, capsys, monkeypatch):
    """The tile-error heatmaps title each layer with its label; unescaped,
    matplotlib's mathtext raises on `$\\frac{$` (the traceback of the issue)."""
    run = hostile(base_run, tmp_path, dollar_labels)
    out = tmp_path / "report.html"
    rc, _, err = cli(["report", str(run), "-o", str(out)], capsys)
    assert rc == 0, err
    assert 'alt="tile errors"' in out.read_text()
    import cosim.results.report

    monkeypatch.setattr(cosim.results.report, "plain_text", lambda text: text)  # what the escape prevents
    with pytest.raises(ValueError, match="frac"):
        main(["report", str(run), "-o", str(tmp_path / "unescaped.html")])


def test_a_tile_name_with_dollars_is_plain_text_in_report_and_waves(base_run, worst, tmp_path, capsys):
    name = "w$\\frac{$"

    def rename(h5):
        h5["tiles"].move(TRANSIENT, "t$\\frac{$")
        if worst != TRANSIENT:
            h5["tiles"].move(worst, name)

    run = hostile(base_run, tmp_path, rename)
    rc, _, err = cli(["report", str(run), "-o", str(tmp_path / "r.html")], capsys)
    assert rc == 0, err
    png = tmp_path / "w.png"
    rc, _, err = cli(["waves", str(run), "--tile", "t$\\frac{$", "--signal", "col*.vout", "-o", str(png)], capsys)
    assert rc == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_layer_name_holding_a_script_tag_is_escaped(base_run, tmp_path, capsys):
    def script(h5):
        for key in h5["tiles"]:
            h5["tiles"][key].attrs["layer"] = "<script>alert(1)</script>"
        set_config(h5, lambda c: c.update(layer="<script>alert(2)</script>.pt"))

    run = hostile(base_run, tmp_path, script)
    out = tmp_path / "report.html"
    rc, _, err = cli(["report", str(run), "-o", str(out)], capsys)
    assert rc == 0, err
    page = out.read_text()
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page


def test_a_netlist_line_in_a_spice_tile_name_runs_nothing(base_run, worst, tmp_path, capsys):
    """The worst tile, marked as an ngspice tile, so the report re-simulates it
    in ngspice, with a config name that would open a .control block."""
    marker = tmp_path / "MARKER"

    def spice_name(h5):
        group = h5["tiles"][worst]
        group.attrs["engine"] = "spice"
        set_config(group, lambda c: c.update(name=f"x\n.control\nshell touch {marker}\n.endc\n"))

    run = hostile(base_run, tmp_path, spice_name)
    out = tmp_path / "report.html"
    rc, _, err = cli(["report", str(run), "-o", str(out)], capsys)
    assert rc == 0, err
    assert "engine spice" in out.read_text()  # it did run in ngspice
    assert not marker.exists()


# ------------------------------------------------------------------ cosim waves


def wave_edit(change):
    return lambda h5: change(h5["tiles"][TRANSIENT])


def vec(group):
    return group["waveforms"]["vector_0"]


WAVES_CASES = {
    "emptied waveforms group": (wave_edit(lambda g: [g["waveforms"].__delitem__(k) for k in list(g["waveforms"])]),
                                "holds no input vector (the waveforms group is empty)"),
    "no vectors attribute": (wave_edit(lambda g: g["waveforms"].attrs.__delitem__("vectors")), "holds no input vector"),
    "vectors attribute a string": (wave_edit(lambda g: g["waveforms"].attrs.__setitem__("vectors", "1")),
                                   "attribute 'vectors' must be an integer"),
    "vector group renamed": (wave_edit(lambda g: g["waveforms"].move("vector_0", "vector_5")),
                             "has no group 'vector_0'"),
    "time NaN": (wave_edit(lambda g: replace(vec(g), "time", first_nan(vec(g)["time"][()]))),
                 "dataset 'time' (s) has a NaN"),
    "time missing": (wave_edit(lambda g: vec(g).__delitem__("time")), "has no dataset 'time'"),
    "vout complex": (wave_edit(lambda g: replace(vec(g), "vout", vec(g)["vout"][()].astype(complex))),
                     "dataset 'vout' holds complex values"),
    "vout wrong shape": (wave_edit(lambda g: replace(vec(g), "vout", vec(g)["vout"][()][:, :2])),
                         "dataset 'vout' has shape"),
    "state cells outside the tile": (wave_edit(lambda g: replace(
        g["waveforms"], "state_cells", np.array([[99, 0]] * g["waveforms"]["state_cells"].shape[0]))),
                                     "state_cells names cell (99, 0) outside the 3x4 tile"),
    "state cells floats": (wave_edit(lambda g: replace(g["waveforms"], "state_cells",
                                                       g["waveforms"]["state_cells"][()].astype(float))),
                           "dataset 'state_cells' holds floating-point values"),
    "config not JSON": (wave_edit(lambda g: g.attrs.__setitem__("config", "{")), "attribute 'config' is not JSON"),
    "device r_on a string": (wave_edit(lambda g: set_config(g, lambda c: c["device"].update(r_on="1e3"))),
                             'device.r_on must be a number (ohm), got "1e3"'),
    "rows not the conductance's": (wave_edit(lambda g: g.attrs.__setitem__("rows", 7)),
                                   "do not match its conductance dataset"),
    "t_sample a string": (wave_edit(lambda g: g["waveforms"].attrs.__setitem__("t_sample", "soon")),
                          "attribute 't_sample' must be a number"),
    "waveforms an external link": (wave_edit(lambda g: (g.__delitem__("waveforms"), g.__setitem__(
        "waveforms", h5py.ExternalLink("x.h5", "/w")))), "'waveforms' is an external link"),
}


@pytest.mark.parametrize("case", list(WAVES_CASES))
def test_waves_refuses_an_edited_tile_in_one_line(case, base_run, tmp_path, capsys):
    edit, message = WAVES_CASES[case]
    run = hostile(base_run, tmp_path, edit)
    out = tmp_path / "w.csv"
    rc, _, err = cli(["waves", str(run), "--tile", TRANSIENT, "--signal", "col*.vout", "cell0_0.g", "-o", str(out)],
                     capsys)
    assert_one_line(rc, err, message)
    assert not out.exists()


def test_waves_reads_the_unedited_tile(base_run, tmp_path, capsys):
    out = tmp_path / "w.csv"
    rc, _, err = cli(["waves", str(base_run), "--tile", TRANSIENT, "--signal", "col*.vout", "cell0_0.g",
                      "-o", str(out)], capsys)
    assert rc == 0, err
    header = out.read_text().splitlines()[0]
    assert header.startswith("time (s),col0.vout (V)") and "cell0_0.g (S)" in header


def test_waves_on_a_run_whose_other_tiles_are_damaged_still_reads_its_tile(base_run, worst, tmp_path, capsys):
    """Only what is read is checked: a damaged tile elsewhere does not block the transient tile."""
    run = hostile(base_run, tmp_path, lambda h5: replace(h5["tiles"][worst], "g_pos", np.zeros((1, 1), complex)))
    rc, _, err = cli(["waves", str(run), "--tile", TRANSIENT, "--list"], capsys)
    assert rc == 0, err


# ------------------------------------------------------------------ simulate --resume


@pytest.fixture(scope="module")
def layer(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("resume")
    torch.manual_seed(3)
    torch.save(nn.Linear(6, 3), folder / "lin.pt")
    return folder / "lin.pt"


def simulate_args(layer: Path, out: Path) -> list[str]:
    return ["simulate", str(layer), "--tile", "4", "--batch", "3", "--engine", "fast", "--quiet", "--out", str(out)]


def interrupted(layer: Path, out: Path, monkeypatch, capsys) -> list[Path]:
    """A run stopped (Ctrl-C) after its tiles, before RUN.h5 is written: its checkpoints."""
    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(cosim.results.store, "write_run", stop)
        rc, _, _ = cli(simulate_args(layer, out), capsys)
    assert rc == 130 and not out.exists()
    saved = sorted(Path(f"{out}.partial").glob("*.npz"))
    assert len(saved) == 4  # 6 inputs x 6 device columns on 4x4 tiles
    return saved


def nan_current(path: Path) -> None:
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["current"] = np.full_like(arrays["current"], np.nan)
    np.savez(path, **arrays)


def wrong_shape(path: Path) -> None:
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["vout"] = np.zeros((1, 1))
    np.savez(path, **arrays)


def complex_vout(path: Path) -> None:
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["vout"] = arrays["vout"].astype(complex)
    np.savez(path, **arrays)


def not_npz(path: Path) -> None:
    path.write_bytes(b"PK\x03\x04 this is no archive")


RESUME_CASES = {"NaN current": (nan_current, "non-finite"), "wrong shape": (wrong_shape, "shape"),
                "complex vout": (complex_vout, "dtype complex128"), "not an archive": (not_npz, "unreadable")}


@pytest.mark.parametrize("case", list(RESUME_CASES))
def test_resume_recomputes_a_tampered_checkpoint_and_matches_a_clean_run(case, layer, tmp_path, monkeypatch, capsys):
    tamper, words = RESUME_CASES[case]
    clean = tmp_path / "clean.h5"
    assert cli(simulate_args(layer, clean), capsys)[0] == 0
    out = tmp_path / "run.h5"
    saved = interrupted(layer, out, monkeypatch, capsys)
    tamper(saved[0])
    rc, stdout, err = cli([*simulate_args(layer, out), "--resume"], capsys)
    assert rc == 0, err
    warnings = [line for line in err.splitlines() if "checkpoint" in line]
    assert len(warnings) == 1 and warnings[0].startswith("cosim: warning:") and words in warnings[0], err
    assert "3 reused from an interrupted run" in stdout
    with h5py.File(clean, "r") as a, h5py.File(out, "r") as b:
        np.testing.assert_array_equal(a["outputs"][()], b["outputs"][()])
        for key in a["tiles"]:
            np.testing.assert_array_equal(a["tiles"][key]["g_pos"][()], b["tiles"][key]["g_pos"][()])


# ------------------------------------------------------------------ the console script


def test_the_console_script_refuses_hostile_files_in_one_line_and_debug_shows_the_traceback(base_run, tmp_path):
    import subprocess
    import sys

    cosim = Path(sys.executable).with_name("cosim")
    if not cosim.is_file():
        pytest.skip("the cosim console script is not installed")
    config = hostile(base_run, tmp_path, lambda h5: h5.attrs.__setitem__("config", "not json"))
    emptied = tmp_path / "emptied.h5"
    shutil.copy(base_run, emptied)
    with h5py.File(emptied, "a") as h5:
        for key in list(h5["tiles"][TRANSIENT]["waveforms"]):
            del h5["tiles"][TRANSIENT]["waveforms"][key]
    for args in (["report", str(config), "-o", str(tmp_path / "r.html")],
                 ["waves", str(emptied), "--list"], ["report", str(emptied), "-o", str(tmp_path / "r.html")]):
        run = subprocess.run([str(cosim), *args], capture_output=True, text=True, timeout=300)
        assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr
        assert run.stderr.startswith("cosim: error: ") and "Traceback" not in run.stderr
    assert not (tmp_path / "r.html").exists()
    run = subprocess.run([str(cosim), "--debug", "waves", str(emptied), "--list"], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode != 0 and "Traceback" in run.stderr and "InputError" in run.stderr
