"""`cosim report RUN.h5 -o report.html`: a self-contained page with every
section of a real run (ngspice tile, spot check, transient tile), figures as
inline PNGs, that a browser renders; per-tile and per-layer errors stored by
`cosim simulate` mean what the report says; bad input is one line."""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from matplotlib import image as mpimg
from torch import nn

from cosim.cli import main
from cosim.core.config import load_preset
from cosim.results.report import SECTIONS
from cosim.run.simulation import SimOptions, Simulation

pytestmark = pytest.mark.skipif(not shutil.which("ngspice"), reason="ngspice is not installed")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CHROMIUM_HINT = "chromium is not installed; install it with `apt-get install -y chromium` (or `make setup`)"


class Page(HTMLParser):
    """Sections by id (their text), and every src/href attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, list[str]] = {}
        self.links: list[tuple[str, str, str]] = []
        self.tags: list[str] = []
        self._open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = dict(attrs)
        for key in ("src", "href"):
            if values.get(key) is not None:
                self.links.append((tag, key, values[key]))
        if tag == "section":
            self._open.append(values.get("id") or "")
            self.sections[self._open[-1]] = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if self._open:
            self.sections[self._open[-1]].append(data)

    def text(self, sid: str) -> str:
        return " ".join(" ".join(self.sections[sid]).split())


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


@pytest.fixture(scope="module")
def full_run(tmp_path_factory) -> Path:
    """Linear(5,3) - ReLU - Linear(3,2) on 4x4 tiles: tile 0.r1c1 (1x2) in
    ngspice, the rest fast, one fast tile spot-checked in ngspice, tile
    2.r0c0 read as a transient."""
    folder = tmp_path_factory.mktemp("report")
    torch.manual_seed(1)
    torch.save(nn.Sequential(nn.Linear(5, 3), nn.ReLU(), nn.Linear(3, 2)), folder / "mlp.pt")
    out = folder / "run.h5"
    assert main(["simulate", str(folder / "mlp.pt"), "--preset", "seed000_vteam", "--tile", "4", "--batch", "4",
                 "--spice-max-tile", "2",
                 "--spot-check", "1", "--spot-vectors", "2", "--transient", "2.r0c0", "--quiet",
                 "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def full_report(full_run) -> Path:
    out = full_run.with_name("report.html")
    assert main(["report", str(full_run), "-o", str(out)]) == 0
    return out


def test_run_file_keeps_per_layer_outputs_and_tile_errors(full_run):
    with h5py.File(full_run, "r") as h5:
        assert json.loads(h5["layers"].attrs["order"]) == ["0", "2"]
        engines = {k: h5["tiles"][k].attrs["engine"] for k in h5["tiles"]}
        assert engines["0.r1c1"] == "spice" and engines["0.r0c0"] == "fast"
        assert sum("spot_check" in h5["tiles"][k] for k in h5["tiles"]) == 1
        assert "waveforms" in h5["tiles"]["2.r0c0"]
        last = h5["layers"]["2"]
        # The last analog layer's output is the run's output; its float chain is the float model.
        np.testing.assert_array_equal(last["output"][()], h5["outputs"][()])
        np.testing.assert_allclose(last["chain_reference"][()], h5["ideal"][()], rtol=1e-6, atol=1e-7)
        assert last.attrs["chain_relative_error"] == pytest.approx(h5.attrs["relative_error"], rel=1e-5)
        # 1T1R cells with 1 ohm wires and 10 ohm drivers lose current against v@G.
        assert all(0.01 < h5["tiles"][k].attrs["ideal_rel_error"] < 1 for k in h5["tiles"])


def test_tile_error_is_zero_on_an_ideal_array_and_grows_with_wire_resistance():
    """||I - v@G|| / ||v@G|| per tile: 0 (to rounding) with no wires, drivers or
    access device; larger with 5 ohm than with 1 ohm wire segments."""
    torch.manual_seed(0)
    layer = nn.Linear(8, 4)
    x = torch.rand(3, 8, dtype=torch.float64) * 2 - 1
    errors = {}
    for r_wire in (0.0, 1.0, 5.0):
        preset = load_preset("seed000_vteam").with_(r_wire=r_wire, r_driver=0.0, access="none",
                                                   dac_bits=None, adc_bits=None)
        sim = Simulation(preset, SimOptions(tile=4, engine="fast", quiet=True, keep_details=True))
        sim.forward(layer, x)
        errors[r_wire] = max(r.ideal_rel_error for r in sim.records.values())
        assert len(sim.layers) == 1 and sim.layers["linear"].output.shape == (3, 4)
    assert errors[0.0] < 1e-12
    assert 0 < errors[1.0] < errors[5.0]


def test_report_has_every_section_with_its_content(full_report):
    page = parse(full_report)
    assert set(SECTIONS) <= set(page.sections)
    config = page.text("run-config")
    assert "preset seed000_vteam" in config and '"tiles": ["2.r0c0"]' in config and "spice_max_tile 2" in config
    assert "ngspice-" in page.text("run-config")
    layers = page.text("layer-errors")
    assert "Linear" in layers and "none in this run" not in layers
    spot = page.text("spot-checks")
    assert "none in this run" not in spot and "fast" in spot
    assert "2.r0c0" in page.text("waveforms") and "read disturb" in page.text("waveforms")
    assert "V_cell" in page.text("irdrop") or "voltage across each cell" in page.text("irdrop")
    for sid in SECTIONS:
        assert "none in this run" not in page.text(sid), sid


def test_report_is_self_contained_and_its_images_are_pngs(full_report):
    page = parse(full_report)
    assert "script" not in page.tags and "link" not in page.tags
    images = [value for tag, key, value in page.links if tag == "img"]
    assert len(images) >= 4  # tile errors, IR drop, histogram, waveforms
    for tag, key, value in page.links:
        assert value.startswith(("data:", "#")), f"{tag} {key} points outside the page: {value[:60]}"
    for uri in images:
        assert uri.startswith("data:image/png;base64,")
        data = base64.b64decode(uri.split(",", 1)[1], validate=True)
        assert data.startswith(PNG_MAGIC)
        pixels = mpimg.imread(io.BytesIO(data), format="png")
        assert pixels.shape[0] > 100 and pixels.shape[1] > 100 and float(np.std(pixels)) > 0.01


def test_chromium_renders_the_report_to_a_non_blank_page(full_report, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.fail(CHROMIUM_HINT)
    shot = tmp_path / "report.png"
    base = [browser, "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--screenshot={shot}",
            "--window-size=1200,3000", full_report.resolve().as_uri()]
    for headless in ("--headless", "--headless=new"):
        subprocess.run([base[0], headless, *base[1:]], capture_output=True, timeout=120)
        if shot.is_file():
            break
    assert shot.is_file(), "chromium wrote no screenshot"
    pixels = mpimg.imread(shot)[:, :, :3]
    colours = np.unique((pixels.reshape(-1, 3) * 255).round().astype(np.uint8), axis=0)
    assert pixels.shape[:2] == (3000, 1200)
    assert float(np.std(pixels)) > 0.05 and len(colours) > 100  # text, tables and heatmaps, not a blank page


def test_run_without_spot_checks_or_transients_says_none_in_those_sections(tmp_path):
    torch.manual_seed(2)
    torch.save(nn.Linear(6, 3), tmp_path / "lin.pt")
    run = tmp_path / "run.h5"
    assert main(["simulate", str(tmp_path / "lin.pt"), "--tile", "4", "--batch", "3", "--engine", "fast",
                 "--quiet", "--out", str(run)]) == 0
    out = tmp_path / "r.html"
    assert main(["report", str(run), "-o", str(out)]) == 0
    page = parse(out)
    assert page.text("spot-checks") == "Spot checks: fast solver vs ngspice spot checks: none in this run."
    assert page.text("waveforms") == "Transient waveforms transient tiles: none in this run."
    assert "none in this run" not in page.text("irdrop")  # the worst fast tile's map from the fast solver


@pytest.mark.parametrize("case", ["missing", "text", "not-a-run", "no-dir"])
def test_bad_input_is_one_line_and_writes_nothing(case, tmp_path, capsys):
    run = tmp_path / "run.h5"
    out = tmp_path / "report.html"
    if case == "text":
        run.write_text("not hdf5\n")
    elif case == "not-a-run":
        with h5py.File(run, "w") as h5:
            h5.create_dataset("current", data=np.zeros(3))
    elif case == "no-dir":
        with h5py.File(run, "w") as h5:
            h5.create_dataset("current", data=np.zeros(3))
        out = tmp_path / "nowhere" / "report.html"
    before = set(tmp_path.iterdir())
    assert main(["report", str(run), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cosim: error: ") and err.count("\n") == 1
    expected = {"missing": "does not exist", "text": "is not an HDF5 file",
                "not-a-run": "is not a cosim run file", "no-dir": "does not exist; create it first"}[case]
    assert expected in err
    assert set(tmp_path.iterdir()) == before
