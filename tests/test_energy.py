"""Energy models, the layer graph's critical path, the run's energy report,
RUN.h5 `energy/`, RESULT.h5 `power` and the CLI lines."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
from torch import nn

from cosim.cli import main
from cosim.core.config import EnergySpec, Preset, from_dict
from cosim.core.energy_models import adc_conversion_j, read_energy, read_latency_s, tia_read_j
from cosim.core.errors import InputError
from cosim.nets.layer_graph import critical_path, layer_graph, layer_of
from cosim.run.energy import EnergyMeter, energy_report
from cosim.run.simulation import SimOptions, Simulation


def test_models_follow_their_formulas() -> None:
    spec = EnergySpec()
    assert adc_conversion_j(spec, 8) == pytest.approx(33.8e-15 * 256, rel=1e-15)
    assert adc_conversion_j(spec, None) == 0.0
    assert tia_read_j(spec) == pytest.approx(4.49e-7 * 1.0 * 23e-9, rel=1e-15)
    e = read_energy(spec, 128, 64, 8, 8)
    assert e.dac == pytest.approx(128 * 8 * 0.3255e-12) and e.adc == pytest.approx(64 * 33.8e-15 * 256)
    assert e.digital == pytest.approx(64 * 0.1e-12) and e.tia == pytest.approx(64 * tia_read_j(spec))
    assert read_energy(spec, 4, 4, None, None).dac == 0.0
    shared = EnergySpec(columns_per_adc=16)
    assert read_latency_s(shared, 64) == pytest.approx(1e-9 + 23e-9 + 16 / 1.2e9)
    assert read_latency_s(shared, 4) == pytest.approx(1e-9 + 23e-9 + 4 / 1.2e9)  # fewer columns than the share
    assert read_energy(shared, 8, 64, 8, 8).adc == e.adc  # sharing changes the time, not the conversions


def test_energy_fields_are_checked() -> None:
    with pytest.raises(InputError, match=r"energy\.t_read must be a number > 0 \(s\)"):
        from_dict(Preset, {"energy": {"t_read": -1}}, "preset x.json")
    with pytest.raises(InputError, match=r"energy.columns_per_adc must be an integer"):
        from_dict(Preset, {"energy": {"columns_per_adc": 1.5}}, "preset x.json")
    with pytest.raises(InputError, match="unknown field"):
        from_dict(Preset, {"energy": {"t_reed": 1e-9}}, "preset x.json")


class Block(nn.Module):
    """A ResNet basic block: two convolutions beside a 1x1 shortcut."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2, 2, 3, padding=1)
        self.conv2 = nn.Conv2d(2, 2, 3, padding=1)
        self.shortcut = nn.Conv2d(2, 2, 1)
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(torch.relu(self.conv1(x))) + self.shortcut(x)
        return self.fc(y.flatten(1))


def test_critical_path_runs_the_shortcut_in_parallel() -> None:
    graph = layer_graph(Block())
    latency = {"conv1": 3.0, "conv2": 5.0, "shortcut": 7.0, "fc": 1.0}
    total, path = critical_path(graph, latency)
    assert total == 9.0 and path == ["conv1", "conv2", "fc"]
    total, path = critical_path(graph, {**latency, "shortcut": 10.0})
    assert total == 11.0 and path == ["shortcut", "fc"]
    chain = layer_graph(nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)))
    assert critical_path(chain, {"0": 2.0, "2": 3.0}) == (5.0, ["0", "2"])
    assert layer_of("conv.g1") == "conv" and layer_of("gru.hh_l0") == "gru"


def _simulated(preset: Preset, model: nn.Module, x: torch.Tensor) -> tuple[Simulation, EnergyMeter]:
    sim = Simulation(preset, SimOptions(tile=8, engine="fast", quiet=True))
    meter = EnergyMeter(sim)
    sim.products = meter
    sim.forward(model, x)
    return sim, meter


def test_report_sums_tiles_and_counts_macs() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 5), nn.ReLU(), nn.Linear(5, 3))
    preset = Preset(r_wire=0.0, r_driver=0.0, access="none", dac_bits=None, adc_bits=8)
    x = torch.rand(4, 12)
    sim, meter = _simulated(preset, model, x)
    report = energy_report(sim.records, meter.tiles, preset, 4, model)
    assert report.macs == 12 * 5 + 5 * 3  # one per weight per inference
    # Without wires, drivers or access the array energy is sum_b v^2 @ G * t_read.
    array = sum(float(np.sum((meter.tiles[n].v_sq) @ r.spec.conductance)) for n, r in sim.records.items())
    assert report.per_layer[:, 0].sum() == pytest.approx(array * preset.energy.t_read / 4, rel=1e-12)
    rows = energy_report(sim.records, meter.tiles, preset, 4, model, mode="rows")
    assert rows.energy_per_inference_j == pytest.approx(report.energy_per_inference_j, rel=1e-12)
    assert report.tops_per_w == pytest.approx(2 * report.macs / report.energy_per_inference_j / 1e12)
    assert report.latency_s == pytest.approx(report.layer_latency_s.sum())


def test_simulate_writes_energy_and_prints_it(tmp_path, capsys) -> None:
    torch.manual_seed(1)
    layer = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 2))
    torch.save(layer, tmp_path / "m.pt")
    out = tmp_path / "run.h5"
    assert main(["simulate", str(tmp_path / "m.pt"), "--batch", "3", "--tile", "8", "--engine", "fast",
                 "--out", str(out), "--quiet"]) == 0
    line = [s for s in capsys.readouterr().out.splitlines() if s.startswith("energy ")]
    assert len(line) == 1 and "TOPS/W" in line[0] and "nJ per inference" in line[0]
    with h5py.File(out) as h5:
        assert h5.attrs["energy_per_inference_j"] > 0 and h5.attrs["latency_s"] > 0 and h5.attrs["tops_per_w"] > 0
        per_layer = h5["energy/per_layer"][()]
        assert per_layer.shape == (2, 5)
        assert per_layer.sum() == pytest.approx(h5.attrs["energy_per_inference_j"], rel=1e-12)
        from cosim.results.energy_io import read_energy

        assert read_energy(h5).layers == ["0", "2"]
    page = tmp_path / "r.html"
    assert main(["report", str(out), "-o", str(page)]) == 0
    html = page.read_text()
    section = html[html.index('id="energy"'):]
    assert "none in this run" not in section[:2000] and "data:image/png;base64," in section[:4000]


def run_tile(tmp_path, g: np.ndarray, v: np.ndarray, *flags: str) -> int:
    """`cosim tile` on conductances g (S) and voltages v (V) saved as .npy under tmp_path, with `flags`."""
    np.save(tmp_path / "G.npy", g)
    np.save(tmp_path / "V.npy", v)
    return main(["tile", "--conductance", str(tmp_path / "G.npy"), "--voltage", str(tmp_path / "V.npy"), *flags])


def test_tile_result_holds_power(tmp_path, capsys) -> None:
    g = np.full((3, 2), 1e-3)
    v = np.array([[0.2, 0.1, -0.1]])
    out = tmp_path / "t.h5"
    assert run_tile(tmp_path, g, v, "--engine", "fast", "--out", str(out)) == 0
    assert "read power (input vector 0, fast)" in capsys.readouterr().out
    with h5py.File(out) as h5:
        assert h5["power"][()] == pytest.approx((v ** 2) @ g.sum(axis=1), rel=1e-12)
        assert list(h5["power_parts"].attrs["parts"]) == ["devices", "wires", "drivers", "tia_input"]


def test_tile_1t1r_power_comes_from_the_same_exact_solve(tmp_path) -> None:
    """`cosim tile --engine fast --access nmos` solves once (`solve_with_power`, the power
    computed as vectors converge, on both solver threads): its currents equal `solve_fast`'s
    and its power `tile_power`'s."""
    from cosim.core.tile import TileSpec
    from cosim.fast import power as fast_power
    from cosim.fast.prepared import solve_fast

    rng = np.random.default_rng(7)
    g = rng.uniform(1 / 12e3, 1 / 1e3, (6, 5))
    v = rng.uniform(-0.3, 0.3, (133, 6))
    v[:40] *= 1e-3  # small inputs converge in fewer steps: the power is visited in several pieces
    out = tmp_path / "t.h5"
    assert run_tile(tmp_path, g, v, "--engine", "fast", "--access", "nmos", "--r-wire", "1", "--r-driver", "10",
                    "--out", str(out)) == 0
    spec = TileSpec(conductance=g, r_wire=1.0, r_driver=10.0, access="nmos")
    reference = fast_power.tile_power(spec, v)
    with h5py.File(out) as h5:
        np.testing.assert_allclose(h5["current"][()], solve_fast(spec, v).current, rtol=1e-9, atol=0)
        np.testing.assert_allclose(h5["power"][()], reference.total, rtol=1e-9, atol=0)
        np.testing.assert_allclose(h5["power_parts"][()], reference.stacked(), rtol=1e-8, atol=1e-18)


def test_tile_spice_power_comes_from_its_own_op_run(tmp_path) -> None:
    """`cosim tile --engine spice` takes the power from the `.op` that gives its outputs
    (every vector saved, one ngspice run): equal to the fast solver's exact power to 1e-6."""
    from cosim.core.tile import TileSpec
    from cosim.fast.power import tile_power

    rng = np.random.default_rng(3)
    g = rng.uniform(1 / 12e3, 1 / 1e3, (4, 3))
    v = rng.uniform(-0.3, 0.3, (2, 4))
    out = tmp_path / "t.h5"
    assert run_tile(tmp_path, g, v, "--engine", "spice", "--access", "nmos", "--r-wire", "1", "--r-driver", "10",
                    "--out", str(out)) == 0
    reference = tile_power(TileSpec(conductance=g, r_wire=1.0, r_driver=10.0, access="nmos"), v)
    with h5py.File(out) as h5:
        assert h5["power"].attrs["engine"] == "spice"
        np.testing.assert_allclose(h5["power"][()], reference.total, rtol=1e-6, atol=0)


def test_twin_row_statistics_match_the_simulated_tiles() -> None:
    """The evaluate hooks (per-row sums of v^2 from the feature map) equal the
    sums over the im2col reads the simulation's tiles actually answered."""
    from cosim.run.energy import RowStats
    from cosim.twin.convert import analog_layers, convert, tile_cache

    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2), nn.ReLU(), nn.Flatten(),
                          nn.Linear(6 * 3 * 3, 4))
    preset = Preset(dac_bits=6)
    x = torch.rand(3, 4, 5, 5).double()
    x[:, 0, 0, 0] = x[:, 2, 0, 0] = 1.0  # the same largest |x| in both groups (simulate scales each group's
    # patches by their own largest |x|, the twin the whole feature map)
    sim, meter = _simulated(preset, model, x)
    twin = convert(model, preset=preset, tile=8, precision="float64")
    hooks = RowStats(analog_layers(twin), preset)
    with torch.no_grad():
        twin(x)
    hooks.close()
    rows = hooks.tile_reads(tile_cache(twin).records)
    conv_tiles = [n for n in meter.tiles if n.startswith("0.")]
    assert conv_tiles and set(meter.tiles) == set(rows)
    for name in conv_tiles:
        assert rows[name].reads == meter.tiles[name].reads
        np.testing.assert_allclose(rows[name].v_sq, meter.tiles[name].v_sq, rtol=1e-12)


def test_settling_time_of_an_exponential_step() -> None:
    from cosim.analysis.settling import settling_times
    from cosim.core.config import AdcSpec
    from cosim.core.tile import TileSpec

    spec = TileSpec(np.full((1, 2), 1e-3), adc=AdcSpec(bits=8, vfs=1.0))
    t = np.linspace(0, 30e-9, 30001)
    tau, delay = 2e-9, spec.dac.delay
    on = np.clip(t - delay, 0, None)
    waves = {"time": t, "v(tia_c0)": 0.8 * (1 - np.exp(-on / tau)), "v(tia_c1)": np.zeros_like(t)}
    times = settling_times(spec, waves, 25e-9)
    half_lsb = 0.5 / 127
    expected = tau * np.log(0.8 / half_lsb)  # |v - final| = 0.8 exp(-t/tau) (final ~ 0.8)
    assert times[0] == pytest.approx(expected, abs=2e-12 + 1e-3 * expected)
    assert times[1] == 0.0


def test_tile_transient_reports_settling(tmp_path, capsys) -> None:
    assert run_tile(tmp_path, np.full((2, 2), 5e-3), np.array([0.01, 0.005]), "--engine", "spice", "--transient",
                    "--tia", "opamp", "--rs", "100", "--adc-bits", "8", "--out", str(tmp_path / "t.h5")) == 0
    line = [s for s in capsys.readouterr().out.splitlines() if s.startswith("TIA settling")]
    assert len(line) == 1 and "ns after the DAC step" in line[0]


def test_a_gru_reads_once_per_step() -> None:
    from cosim.run.energy import inferences_in

    torch.manual_seed(3)
    gru = nn.GRU(3, 4)  # (T, B, features)
    x = torch.rand(5, 2, 3) * 2 - 1
    preset = Preset()
    sim, meter = _simulated(preset, gru, x)
    n = inferences_in(gru, x)
    assert n == 2
    report = energy_report(sim.records, meter.tiles, preset, n, gru)
    assert report.layers == ["gru"] and report.reads[0] == 5  # one read per time step
    per_read = 1e-9 + 23e-9 + 1 / 1.2e9
    assert report.latency_s == pytest.approx(5 * per_read)


def test_evaluate_prints_energy_and_stores_it(digits_mlp, tmp_path, capsys) -> None:
    torch.save(digits_mlp, tmp_path / "m.pt")
    out = tmp_path / "e.h5"
    assert main(["evaluate", str(tmp_path / "m.pt"), "--data", "digits", "--limit", "40", "--tile", "32",
                 "--preset", "seed001_mlp", "--quiet", "--out", str(out)]) == 0
    line = [s for s in capsys.readouterr().out.splitlines() if s.startswith("energy ")]
    assert len(line) == 1 and "TOPS/W" in line[0] and "(array: rows)" in line[0]
    with h5py.File(out) as h5:
        assert h5.attrs["energy_per_inference_j"] > 0 and h5.attrs["tops_per_w"] > 0
