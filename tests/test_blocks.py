"""Each hand-written peripheral block of circuits/ in ngspice against its
formula in cosim.core.peripherals (many operating points per ngspice run)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cosim.core import peripherals as per
from cosim.core.errors import InputError
from cosim.core.resources import resource_path
from cosim.spice.ngspice import run_netlist
from cosim.spice.rawfile import Plot


def _include(*names: str) -> str:
    return "\n".join(f".include {resource_path('circuits', n)}" for n in names)


def _plot(plots: list[Plot], kind: str) -> Plot:
    """The plot whose name starts with `kind` ('Operating', 'AC', 'Transient')."""
    return next(p for p in plots if p.name.lower().startswith(kind.lower()))


def _op(body: str, *includes: str) -> Plot:
    run = run_netlist(f"block test\n{_include(*includes)}\n{body}\n.op\n.end\n", timeout_s=60,
                      retry=False)
    return _plot(run.plots, "operating")


# ---------------------------------------------------------------------- TIA

TIA_CURRENTS = np.array([-1.2e-3, -1e-4, -3e-6, 1e-7, 2.5e-5, 4e-4, 1.4e-3])  # A
TIA_RS = 1e3  # ohm; |rs*I| <= 1.4 V stays inside vsat = 1.5 V
TIA_VARIANTS = {  # name: (subckt, params, exact closed-loop factor)
    "ideal": ("tia_ideal", "", 1.0),
    "vcvs": ("tia_vcvs", "", per.tia_vcvs_gain(1e6)),
    "vcvs_lowgain": ("tia_vcvs", "a0=1e3", per.tia_vcvs_gain(1e3)),
    "opamp": ("tia_opamp", "", per.tia_opamp_dc_gain(1e5, rs=TIA_RS, rinv=1e4, rout=1.0)),
    "opamp_lowgain": ("tia_opamp", "a0=1e3 rinv=2k",
                      per.tia_opamp_dc_gain(1e3, rs=TIA_RS, rinv=2e3, rout=1.0)),
}


@pytest.fixture(scope="module")
def tia_op() -> Plot:
    lines = []
    for name, (subckt, params, _) in TIA_VARIANTS.items():
        for k, current in enumerate(TIA_CURRENTS):
            # I(0 -> node): the source pushes `current` INTO the TIA input.
            lines.append(f"I{name}_{k} 0 in_{name}_{k} {float(current)!r}")
            lines.append(f"X{name}_{k} in_{name}_{k} out_{name}_{k} {subckt} rs={float(TIA_RS)!r} {params}")
    return _op("\n".join(lines), "tia.cir")


def _tia_out(plot: Plot, name: str, node: str = "out") -> np.ndarray:
    return np.array([plot[f"v({node}_{name}_{k})"][0] for k in range(len(TIA_CURRENTS))])


def test_tia_ideal_is_exact(tia_op: Plot) -> None:
    out = _tia_out(tia_op, "ideal")
    np.testing.assert_allclose(out, TIA_RS * TIA_CURRENTS, rtol=1e-9, atol=0)
    assert np.all(_tia_out(tia_op, "ideal", "in") == 0.0)  # exact virtual ground


TIA_INPUT = {"vcvs": ("vcvs", {"a0": 1e6}), "vcvs_lowgain": ("vcvs", {"a0": 1e3}),
             "opamp": ("opamp", {"a0": 1e5, "rinv": 1e4}), "opamp_lowgain": ("opamp", {"a0": 1e3, "rinv": 2e3})}


@pytest.mark.parametrize("name", sorted(TIA_INPUT))
def test_tia_input_resistance_matches_ngspice(tia_op: Plot, name: str) -> None:
    kind, params = TIA_INPUT[name]
    r_in = per.tia_input_resistance(kind, TIA_RS, **params)
    v_in = _tia_out(tia_op, name, "in")
    # ngspice's virtual ground sits at r_in * I (the fast solver terminates columns with it)
    np.testing.assert_allclose(v_in, r_in * TIA_CURRENTS, rtol=1e-9, atol=0)
    assert per.tia_input_resistance("ideal", TIA_RS) == 0.0


@pytest.mark.parametrize("name", [n for n in TIA_VARIANTS if n != "ideal"])
def test_tia_finite_gain_matches_exact_formula(tia_op: Plot, name: str) -> None:
    factor = TIA_VARIANTS[name][2]
    out = _tia_out(tia_op, name)
    ideal = TIA_RS * TIA_CURRENTS
    # the exact finite-gain closed loop (measured: within 4e-16 relative)
    np.testing.assert_allclose(out, factor * ideal, rtol=1e-9, atol=0)
    # and rs*I within the op-amp gain error |1 - factor|
    gain_error = abs(1.0 - factor)
    assert np.all(np.abs(out - ideal) <= 1.01 * gain_error * np.abs(ideal))


def test_tia_opamp_gain_formula_limits() -> None:
    a0 = 1e5
    assert per.tia_opamp_dc_gain(a0, rout=0.0) == pytest.approx(a0 * a0 / ((1 + a0) * (2 + a0)), rel=1e-15)
    assert per.tia_vcvs_gain(a0) == pytest.approx(1 - 1 / (1 + a0), rel=1e-15)
    with pytest.raises(InputError):
        per.tia_vcvs_gain(0.0)


# ---------------------------------------------------------------------- DAC


def _dac_cases() -> list[tuple[int, float, float, float]]:
    """(bits, vfs, code, en) of every DAC instance in the test netlist."""
    cases = [(3, 0.3, float(c), 1.0) for c in range(-5, 6)]                        # every level + clips
    cases += [(3, 0.3, c, 1.0) for c in (1.4, 1.5, 1.6, -1.4, -1.5, -1.6, -2.5, 2.49, 9.7, -9.7)]
    cases += [(3, 0.3, 2.0, 0.5), (3, 0.3, -3.0, 0.25)]                             # en scales
    cases += [(8, 0.3, c, 1.0) for c in (-300.0, -127.0, -64.0, -1.0, 0.0, 1.0, 12.7, 63.0, 127.0, 128.0)]
    cases += [(2, 1.0, c, 1.0) for c in (-2.0, -1.0, -0.4, 0.6, 3.0)]
    return cases


@pytest.fixture(scope="module")
def dac_op() -> Plot:
    lines = []
    for k, (bits, vfs, code, en) in enumerate(_dac_cases()):
        lines += [f"Vc{k} c{k} 0 {float(code)!r}", f"Ve{k} e{k} 0 {float(en)!r}",
                  f"X{k} c{k} e{k} o{k} dac bits={bits} vfs={float(vfs)!r}"]
    lines += ["Vci ci 0 0.1234", "Vei ei 0 0.5", "Xi ci ei oi dac_ideal"]
    return _op("\n".join(lines), "dac.cir")


def test_dac_levels_rounding_and_clipping(dac_op: Plot) -> None:
    cases = _dac_cases()
    got = np.array([dac_op[f"v(o{k})"][0] for k in range(len(cases))])
    want = np.array([en * per.dac_voltage(code, bits, vfs) for bits, vfs, code, en in cases])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    # spelled out for 3 bits, vfs = 0.3 V: lsb = 0.1 V, codes clip at +-3
    three = {code: v for (bits, _, code, en), v in zip(cases, got) if bits == 3 and en == 1.0}
    assert three[5.0] == pytest.approx(0.3) and three[-5.0] == pytest.approx(-0.3)
    assert three[1.4] == pytest.approx(0.1) and three[1.6] == pytest.approx(0.2)
    assert three[1.5] == pytest.approx(0.2) and three[-1.5] == pytest.approx(-0.1)   # halves up
    assert three[0.0] == 0.0


def test_dac_ideal(dac_op: Plot) -> None:
    assert dac_op["v(oi)"][0] == pytest.approx(0.5 * 0.1234, rel=1e-12)


def test_dac_python_helpers() -> None:
    assert per.dac_lsb(8, 0.3) == pytest.approx(0.3 / 127)
    codes = per.dac_codes([-1.0, -0.149, 0.05, 0.0999, 0.31], 3, 0.3)
    assert codes.tolist() == [-3, -1, 1, 1, 3]
    assert codes.dtype == np.int64
    with pytest.raises(InputError, match="bits"):
        per.dac_lsb(1, 0.3)
    with pytest.raises(InputError, match="vfs"):
        per.dac_codes([0.1], 8, 0.0)


# ---------------------------------------------------------------------- ADC

ADC_BITS, ADC_VFS = 3, 1.0


def _adc_inputs() -> np.ndarray:
    lsb = per.dac_lsb(ADC_BITS, ADC_VFS)
    thresholds = per.adc_thresholds(ADC_BITS, ADC_VFS)
    around = np.concatenate([thresholds - 1e-6 * lsb, thresholds + 1e-6 * lsb])
    beyond = np.array([-5.0, -1.2, -1.0, 0.0, 1.0, 1.2, 5.0])
    return np.concatenate([around, beyond])


@pytest.fixture(scope="module")
def adc_op() -> Plot:
    lines = ["Vclk clk 0 1"]
    for k, v in enumerate(_adc_inputs()):
        lines += [f"Vi{k} i{k} 0 {float(v)!r}", f"X{k} i{k} clk q{k} adc bits={ADC_BITS} vfs={float(ADC_VFS)!r}"]
    # 8 bits, a few points
    for k, v in enumerate([-0.5, 0.2, 0.73]):
        lines += [f"Vj{k} j{k} 0 {float(v)!r}", f"Xj{k} j{k} clk r{k} adc bits=8 vfs=1"]
    return _op("\n".join(lines), "adc.cir")


def test_adc_codes_around_every_threshold(adc_op: Plot) -> None:
    inputs = _adc_inputs()
    got = np.array([adc_op[f"v(q{k})"][0] for k in range(len(inputs))])
    np.testing.assert_array_equal(got, per.adc_codes(inputs, ADC_BITS, ADC_VFS).astype(float))
    kmax = 2 ** (ADC_BITS - 1) - 1
    n = 2 * kmax
    np.testing.assert_array_equal(got[:n], np.arange(-kmax, kmax))            # just below: k-1
    np.testing.assert_array_equal(got[n:2 * n], np.arange(-kmax + 1, kmax + 1))  # just above: k
    np.testing.assert_array_equal(got[2 * n:], [-3, -3, -3, 0, 3, 3, 3])       # clipping
    eight = [adc_op[f"v(r{k})"][0] for k in range(3)]
    assert eight == per.adc_codes([-0.5, 0.2, 0.73], 8, 1.0).tolist() == [-63, 25, 93]  # -63.5 rounds up


def test_adc_thresholds_python() -> None:
    np.testing.assert_allclose(per.adc_thresholds(3, 1.0), np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5]) / 3)
    with pytest.raises(InputError):
        per.adc_thresholds(8, -1.0)


def test_adc_tracks_then_holds_after_clk_falls() -> None:
    # input ramps 0 -> 1 V over 10 ns; clk falls through 0.5 V at 3.5 ns (vin = 0.35 V)
    netlist = f"""adc hold
{_include('adc.cir')}
Vin in 0 pwl(0 0 10n 1)
Vclk clk 0 pulse(1 0 3.45n 100p 100p 1 2)
Vhi hi 0 1
Xs in clk q adc bits=3 vfs=1
Xt in hi qt adc bits=3 vfs=1
.tran 10p 10n 0 20p
.end
"""
    tran = _plot(run_netlist(netlist, timeout_s=60, retry=False).plots, "transient")
    t, q, qt, h = tran["time"], tran["v(q)"], tran["v(qt)"], tran["v(xs.h)"]

    def at(vec: np.ndarray, when: float) -> float:
        return float(np.interp(when, t, vec))
    assert at(q, 1.0e-9) == 0 and at(q, 3.0e-9) == 1           # tracking: 0.1 V, 0.3 V
    after = t > 3.8e-9
    assert np.all(q[after] == 1)                                # held although vin reaches 1 V
    assert at(qt, 9.5e-9) == 3                                  # a tracking ADC moves on
    held = at(h, 3.8e-9)
    assert held == pytest.approx(0.35, abs=0.015)               # sampled value (ron*chold lag)
    assert np.max(np.abs(h[after] - held)) < 1e-6               # no droop while held


# ---------------------------------------------------------------------- Abs

ABS_INPUTS = np.array([-2.0, -1.0, -0.3, -0.1, -0.05, 0.05, 0.1, 0.3, 1.0, 2.0])  # V
ABS_A0 = 1e5  # the rectifier's op-amp gain (abs.cir default)


def _abs_tolerance(v: np.ndarray) -> np.ndarray:
    """Rectifier error bound (V): the finite-gain error is about
    (8|V| + 4*V_diode)/a0 for V > 0 and 4|V|/a0 for V < 0; bound it by
    (10|V| + 4 V)/a0, i.e. 1e-4 relative plus 40 uV at a0 = 1e5."""
    return (10.0 * np.abs(v) + 4.0) / ABS_A0


@pytest.fixture(scope="module")
def abs_op() -> Plot:
    lines = []
    for k, v in enumerate(ABS_INPUTS):
        lines += [f"Vi{k} i{k} 0 {float(v)!r}", f"Xi{k} i{k} oi{k} abs_ideal", f"Xr{k} i{k} or{k} abs_rectifier"]
    return _op("\n".join(lines), "abs.cir")


def test_abs_ideal_exact(abs_op: Plot) -> None:
    got = np.array([abs_op[f"v(oi{k})"][0] for k in range(len(ABS_INPUTS))])
    # exact against the input as ngspice holds it (its number parser can be
    # an ulp off Python's: -0.3 reads as -0.30000000000000004)
    vin = np.array([abs_op[f"v(i{k})"][0] for k in range(len(ABS_INPUTS))])
    np.testing.assert_array_equal(got, np.abs(vin))
    np.testing.assert_allclose(got, np.abs(ABS_INPUTS), rtol=1e-15)


def test_abs_rectifier_within_tolerance(abs_op: Plot) -> None:
    got = np.array([abs_op[f"v(or{k})"][0] for k in range(len(ABS_INPUTS))])
    err = got - np.abs(ABS_INPUTS)
    assert np.all(np.abs(err) <= _abs_tolerance(ABS_INPUTS)), err
    assert np.all(got > 0)


# ------------------------------------------------------------------- op-amp

A0, GBW, VSAT = 1e5, 100e6, 1.5


@pytest.fixture(scope="module")
def opamp_plots() -> list[Plot]:
    netlist = f"""opamp macromodel
{_include('opamp.cir')}
Vd1 d1 0 1e-5
Vd2 d2 0 -7e-6
Vd3 d3 0 1e-3
Vd4 d4 0 -1e-3
Xol1 d1 0 ol1 opamp
Xol2 d2 0 ol2 opamp
Xol3 d3 0 ol3 opamp
Xol4 d4 0 ol4 opamp
Vf in 0 dc 0.4 ac 1 pulse(0.4 0.41 1n 1p 1p 1 2)
Xf in fo fo opamp
.op
.ac dec 200 1meg 1g
.tran 5p 20n 0 5p
.end
"""
    return run_netlist(netlist, timeout_s=60, retry=False).plots


def test_opamp_dc_gain_and_clamp(opamp_plots: list[Plot]) -> None:
    op = _plot(opamp_plots, "operating")
    assert op["v(ol1)"][0] == pytest.approx(A0 * 1e-5, rel=1e-9)
    assert op["v(ol2)"][0] == pytest.approx(A0 * -7e-6, rel=1e-9)
    for node, sign in (("v(ol3)", 1), ("v(ol4)", -1)):            # 100 V asked, clamped
        assert sign * op[node][0] == pytest.approx(VSAT, abs=0.015)
        assert sign * op[node][0] <= VSAT
    assert op["v(fo)"][0] == pytest.approx(0.4 * A0 / (1 + A0), rel=1e-9)  # follower


def test_opamp_follower_bandwidth(opamp_plots: list[Plot]) -> None:
    ac = _plot(opamp_plots, "ac")
    f = np.real(ac["frequency"])
    mag_db = 20 * np.log10(np.abs(ac["v(fo)"]))
    f3 = float(np.exp(np.interp(10 * math.log10(2), -mag_db, np.log(f))))  # -3.01 dB
    assert f3 == pytest.approx(per.follower_bandwidth_hz(A0, GBW), rel=0.05)


def test_opamp_follower_step_time_constant(opamp_plots: list[Plot]) -> None:
    tran = _plot(opamp_plots, "transient")
    t, v = tran["time"], tran["v(fo)"]
    start, final = 0.4 * A0 / (1 + A0), 0.41 * A0 / (1 + A0)
    # time to 1 - 1/e of the 10 mV step, from the step at 1 ns
    frac = (v - start) / (final - start)
    rising = t > 1e-9
    tau = float(np.interp(1 - math.exp(-1), frac[rising], t[rising])) - 1e-9
    assert tau == pytest.approx(1 / (2 * math.pi * per.follower_bandwidth_hz(A0, GBW)), rel=0.05)
