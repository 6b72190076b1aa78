"""The VTEAM device, written three times (models/vteam.va compiled by
openvaf-py, the ngspice subckt models/vteam.lib, cosim/core/vteam.py), gives the
same terminal current and state velocity on a grid of voltages and states,
for every window and both R(x) laws; plus unit tests of cosim/core/vteam.py.

Tolerance of the three-way agreement: 1e-9 relative, with absolute floors
for exact zeros (below threshold, at the window's zeros) of 1e-18 A for the
current and 1e-15 m/s for dw/dt. The floor matters only 1e-6 away from a
threshold, where dw/dt ~ 1e-17 m/s: ngspice reports a branch current through
its Newton companion model, whose rounding is ~1e-16 * (dI/dv)*v, so there
it agrees to ~1e-9 relative (1e-26 m/s absolute). Measured where
|dw/dt| > 1e-9 m/s: VA 1e-11, ngspice 2e-10; currents: VA exact, ngspice 2e-16.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import openvaf_py
import pytest

from cosim.core import vteam as device
from cosim.core.config import VteamParams
from cosim.core.errors import InputError
from cosim.core.resources import resource_path
from cosim.spice.ngspice import run_netlist

REL_TOL = 1e-9
CURRENT_FLOOR_A = 1e-18
DWDT_FLOOR_M_PER_S = 1e-15
X0 = 0.5  # DC state of every instance (the leak pulls x towards it)

SEED = VteamParams()
CASES = {
    **{f"{w}-{r}": dataclasses.replace(SEED, window=w, resistance_model=r)
       for w in ("clamp", "biolek", "joglekar", "prodromakis") for r in ("linear", "exponential")},
    # Exponents, a non-zero w_on and a strong leak off the seed's values.
    "biolek-p2-custom": dataclasses.replace(SEED, window_p=2, alpha_on=2.5, alpha_off=1.5,
                                            w_on=1e-9, w_off=4e-9, g_leak=1e-6),
    "joglekar-p3-exp": dataclasses.replace(SEED, window="joglekar", window_p=3,
                                           resistance_model="exponential"),
    "prodromakis-p2": dataclasses.replace(SEED, window="prodromakis", window_p=2),
}


def voltage_grid(p: VteamParams) -> np.ndarray:
    """Voltages (V) across [-1, 1], with points at and just around v_on, v_off."""
    near = [t * (1 + s) for t in (p.v_on, p.v_off) for s in (-1e-3, -1e-6, 0.0, 1e-6, 1e-3)]
    return np.unique(np.concatenate([np.linspace(-1, 1, 21), near, [1e-3, -1e-3]]))


STATE_GRID = np.array([-0.02, 0.0, 1e-6, 0.1, 0.3, 0.5, 0.77, 0.9, 1 - 1e-6, 1.0, 1.02])


def grid(p: VteamParams) -> tuple[np.ndarray, np.ndarray]:
    """Every (v, x) pair of the voltage and state grids, flattened."""
    v, x = np.meshgrid(voltage_grid(p), STATE_GRID, indexing="ij")
    return v.ravel(), x.ravel()


def instance_params(p: VteamParams) -> str:
    """The `params:` text of one vteam instance (device.spice_params, x0=X0)."""
    return " ".join(f"{k}={v!r}" for k, v in device.spice_params(p, x0=X0).items())


def ngspice_op(p: VteamParams, v: np.ndarray, x: np.ndarray) -> dict[str, np.ndarray]:
    """One `.op` of one vteam instance per grid point: p forced to v, n at
    ground, x forced to x. Returns the node values ngspice used, the device
    current (A) and dw/dt (m/s) recovered from the source currents."""
    lines = ["vteam grid", f".include {resource_path('models', 'vteam.lib')}"]
    params = instance_params(p)
    for k, (vk, xk) in enumerate(zip(v, x)):
        lines += [f"vp{k} p{k} 0 dc {float(vk)!r}", f"vx{k} st{k} 0 dc {float(xk)!r}",
                  f"xm{k} p{k} 0 st{k} vteam params: {params}"]
    lines += [".op", ".end"]
    plot = run_netlist("\n".join(lines) + "\n", timeout_s=60, expect_plots=1).plots[0]
    n = len(v)
    v_used = np.array([plot[f"v(p{k})"][0] for k in range(n)])
    x_used = np.array([plot[f"v(st{k})"][0] for k in range(n)])
    # The source of p sinks the device current; the source of x sinks what
    # flows into x: dx/dt minus the leak g_leak*(x - x0).
    i_dev = -np.array([plot[f"i(vp{k})"][0] for k in range(n)])
    into_x = np.array([plot[f"i(vx{k})"][0] for k in range(n)])
    dxdt = into_x + p.g_leak * (x_used - X0)
    return {"v": v_used, "x": x_used, "i": i_dev, "dwdt": dxdt * (p.w_off - p.w_on)}


@pytest.fixture(scope="module")
def va_module() -> openvaf_py.VaModule:
    """models/vteam.va compiled by OpenVAF (openvaf-py)."""
    modules = openvaf_py.compile_va(str(resource_path("models", "vteam.va")))
    assert [m.name for m in modules] == ["vteam"]
    return modules[0]


def va_inputs(module: openvaf_py.VaModule, p: VteamParams, v: float, x: float) -> dict[str, float]:
    """openvaf-py's input dict: branch voltages by name (`V(p,n)`, `V(x)`),
    parameters by name, `mfactor` 1, internal variables (hidden_state) and
    probed currents 0 (they are outputs, not inputs)."""
    values: dict[str, float] = {k: float(val) for k, val in device.spice_params(p, x0=X0).items()}
    values.update({"V(p,n)": float(v), "V(x)": float(x), "mfactor": 1.0})
    for name, kind in zip(module.param_names, module.param_kinds):
        if kind in ("hidden_state", "current"):
            values[name] = 0.0
    return values


def va_eval(module: openvaf_py.VaModule, p: VteamParams, v: np.ndarray,
            x: np.ndarray) -> dict[str, np.ndarray]:
    """Current (A), dw/dt (m/s) and the x node's charge (C) from the VA.

    A residual is (current, charge) leaving each node into the device: at p
    it is the memristor current; at x it is -dx/dt + g_leak*(x - x0), with
    charge 1 F * V(x)."""
    order = [r["node_name"] for r in module.get_dae_system()["residuals"]]
    at_p, at_x = order.index("p"), order.index("x")
    i_dev, dwdt, charge = (np.empty(len(v)) for _ in range(3))
    for k, (vk, xk) in enumerate(zip(v, x)):
        residuals, _ = module.run_init_eval(va_inputs(module, p, vk, xk))
        i_dev[k] = residuals[at_p][0]
        dwdt[k] = (p.g_leak * (xk - X0) - residuals[at_x][0]) * (p.w_off - p.w_on)
        charge[k] = residuals[at_x][1]
    return {"i": i_dev, "dwdt": dwdt, "charge": charge}


def assert_agree(name: str, got: np.ndarray, want: np.ndarray, floor: float) -> None:
    """|got - want| <= REL_TOL*|want| + floor everywhere, naming the worst point."""
    err = np.abs(got - want)
    bound = REL_TOL * np.abs(want) + floor
    worst = int(np.argmax(err / bound))
    assert np.all(err <= bound), (f"{name}: {got[worst]!r} vs {want[worst]!r} at grid point "
                                  f"{worst}, |diff| {err[worst]:.3g} > bound {bound[worst]:.3g}")


# ---------------------------------------------------------------- three-way agreement

@pytest.mark.parametrize("case", sorted(CASES))
def test_va_ngspice_python_agree_on_current_and_state_velocity(case: str, va_module) -> None:
    """i = v/R(x) and dw/dt of the VTEAM equations agree between the Verilog-A
    (openvaf-py), the ngspice subckt and device.py to 1e-9 on the (v, x) grid,
    around both thresholds, at and beyond the state bounds."""
    p = CASES[case]
    v, x = grid(p)
    spice = ngspice_op(p, v, x)
    np.testing.assert_allclose(spice["v"], v, rtol=1e-15, atol=0)  # ngspice parsed what we wrote
    np.testing.assert_allclose(spice["x"], x, rtol=1e-15, atol=0)
    v, x = spice["v"], spice["x"]
    va = va_eval(va_module, p, v, x)
    py_i, py_dwdt = device.current(v, x, p), device.dw_dt(v, x, p)

    assert_agree("VA vs python current", va["i"], py_i, CURRENT_FLOOR_A)
    assert_agree("ngspice vs python current", spice["i"], py_i, CURRENT_FLOOR_A)
    assert_agree("VA vs python dw/dt", va["dwdt"], py_dwdt, DWDT_FLOOR_M_PER_S)
    assert_agree("ngspice vs python dw/dt", spice["dwdt"], py_dwdt, DWDT_FLOOR_M_PER_S)
    # The grid does exercise switching both ways, and the dead band between.
    assert np.any(py_dwdt > 0) and np.any(py_dwdt < 0)
    assert np.all(py_dwdt[(v >= p.v_on) & (v <= p.v_off)] == 0)


def test_va_state_node_holds_a_one_farad_capacitor(va_module) -> None:
    """The reactive residual of x is the charge 1 F * V(x); p and n store none."""
    p = SEED
    x = np.array([0.0, 0.25, 0.5, 1.0, 1.02])
    v = np.array([-0.5, 0.0, 0.01, 0.3, 1.0])
    assert np.array_equal(va_eval(va_module, p, v, x)["charge"], x)
    residuals, jacobian = va_module.run_init_eval(va_inputs(va_module, p, 0.3, 0.25))
    order = [r["node_name"] for r in va_module.get_dae_system()["residuals"]]
    assert [residuals[order.index(node)][1] for node in ("p", "n")] == [0.0, 0.0]
    names = [n["name"] for n in va_module.get_dae_system()["nodes"]]
    react_xx = [e[3] for e in jacobian if names[e[0]] == "x" and names[e[1]] == "x"]
    assert react_xx == [1.0]


def test_va_dc_leak_pulls_state_to_x0(va_module) -> None:
    """Below threshold only the leak g_leak*(V(x) - x0) leaves x (A)."""
    p = dataclasses.replace(SEED, g_leak=1e-6)
    residuals, _ = va_module.run_init_eval(va_inputs(va_module, p, 0.01, 0.8))
    names = [r["node_name"] for r in va_module.get_dae_system()["residuals"]]
    assert residuals[names.index("x")][0] == pytest.approx(1e-6 * (0.8 - X0), rel=1e-12)


# ---------------------------------------------------------------- one parameter mapping

def test_spice_params_names_match_va_and_subckt(va_module) -> None:
    """device.spice_params (plus x0) names exactly the parameters of the VA
    module and of the `.subckt vteam p n x params: ...` line, with the same
    defaults as the seed's VteamParams."""
    names = set(device.spice_params(SEED, x0=X0))
    va_names = {n for n, k in zip(va_module.param_names, va_module.param_kinds) if k == "param"}
    assert names == va_names
    lib = resource_path("models", "vteam.lib").read_text()
    header = re.search(r"^\.subckt\s+vteam\s+p\s+n\s+x\s+params:(.*)$", lib, re.M | re.I)
    assert header, "vteam.lib must define `.subckt vteam p n x params: ...`"
    lib_defaults = dict(item.split("=") for item in header.group(1).split())
    assert set(lib_defaults) == names
    spice_units = {"k": 1e3, "n": 1e-9, "m": 1e-3}

    def parse(text: str) -> float:
        unit = spice_units.get(text[-1].lower())
        return float(text[:-1]) * unit if unit else float(text)

    ours = device.spice_params(SEED, x0=X0)
    va_defaults = va_module.get_param_defaults()
    for name in names:
        assert parse(lib_defaults[name]) == pytest.approx(ours[name], rel=1e-12), name
        assert va_defaults[name] == pytest.approx(ours[name], rel=1e-12), name


def test_spice_params_codes() -> None:
    """window 0..3 = clamp, biolek, joglekar, prodromakis; rmodel 0 linear, 1 exponential."""
    codes = [device.spice_params(dataclasses.replace(SEED, window=w))["window"]
             for w in ("clamp", "biolek", "joglekar", "prodromakis")]
    assert codes == [0, 1, 2, 3]
    assert device.spice_params(dataclasses.replace(SEED, resistance_model="exponential"))["rmodel"] == 1
    assert "x0" not in device.spice_params(SEED)


# ---------------------------------------------------------------- device.py physics

@pytest.mark.parametrize("model", ["linear", "exponential"])
def test_conductance_state_round_trip(model: str) -> None:
    """state_from_conductance inverts conductance over [1/r_off, 1/r_on] S;
    1/r_off is x = 1 (OFF), 1/r_on is x = 0 (ON)."""
    p = dataclasses.replace(SEED, resistance_model=model)
    g = np.linspace(p.g_min, p.g_max, 101).reshape(101, 1) * np.ones((1, 3))
    x = device.state_from_conductance(g, p)
    assert x.shape == g.shape and np.all((x >= 0) & (x <= 1))
    np.testing.assert_allclose(device.conductance(x, p), g, rtol=1e-12)
    assert device.state_from_conductance(p.g_min, p) == pytest.approx(1.0, abs=1e-15)
    assert device.state_from_conductance(p.g_max, p) == pytest.approx(0.0, abs=1e-15)
    xs = np.linspace(0, 1, 11)
    np.testing.assert_allclose(device.state_from_conductance(device.conductance(xs, p), p), xs,
                               atol=1e-12)


def test_state_from_conductance_clips_rounding_and_refuses_the_rest() -> None:
    """Conductances a hair (1e-12 relative) outside the range are clipped;
    further out, or NaN, is an InputError naming the range in S."""
    p = SEED
    assert device.state_from_conductance(p.g_max * (1 + 1e-12), p) == 0.0
    assert device.state_from_conductance(p.g_min * (1 - 1e-12), p) == 1.0
    for bad in (p.g_max * 1.01, p.g_min * 0.99, 0.0, -1e-3, np.nan):
        with pytest.raises(InputError, match=r"\[0\.001, 0\.02\] S"):
            device.state_from_conductance(np.array([p.g_min, bad]), p)


def test_resistance_laws_hit_r_on_and_r_off() -> None:
    """R(0) = r_on, R(1) = r_off for both laws; linear is seed eq. 5, the
    exponential one is geometric (R(0.5) = sqrt(r_on*r_off))."""
    for model in ("linear", "exponential"):
        p = dataclasses.replace(SEED, resistance_model=model)
        np.testing.assert_allclose(device.resistance([0.0, 1.0], p), [p.r_on, p.r_off], rtol=1e-15)
    lin = device.resistance(0.5, SEED)
    expo = device.resistance(0.5, dataclasses.replace(SEED, resistance_model="exponential"))
    assert lin == pytest.approx(525.0) and expo == pytest.approx(np.sqrt(50.0 * 1000.0))
    assert device.current(0.3, 0.5, SEED) == pytest.approx(0.3 / 525.0)


def test_thresholds_and_switching_direction() -> None:
    """No motion for v_on <= v <= v_off; v > v_off drives x up (towards r_off),
    v < v_on drives it down, at the seed's rates (m/s)."""
    p = SEED
    v = np.linspace(p.v_on, p.v_off, 50)
    assert np.all(device.dw_dt(v, 0.5, p) == 0)
    f = 1 - 0.5 ** 2  # Biolek p=1 at x=0.5, either direction
    assert device.dw_dt(0.3, 0.5, p) == pytest.approx(5e-4 * (0.3 / 0.02 - 1) * f, rel=1e-14)
    assert device.dw_dt(-0.5, 0.5, p) == pytest.approx(-10 * (0.5 / 0.2 - 1) ** 3 * f, rel=1e-14)
    assert device.dx_dt(0.3, 0.5, p) == pytest.approx(device.dw_dt(0.3, 0.5, p) / 3e-9)


@pytest.mark.parametrize("name", ["clamp", "biolek", "joglekar", "prodromakis"])
def test_windows_stop_the_state_at_its_bounds(name: str) -> None:
    """Every window stops x moving out of [0, 1]: f_off(1) = 0, f_on(0) = 0;
    clamp and Biolek let it leave the bound it sits on."""
    p = dataclasses.replace(SEED, window=name)
    assert device.window(1.0, 0.5, p) == pytest.approx(0.0, abs=1e-15)
    assert device.window(0.0, -0.5, p) == pytest.approx(0.0, abs=1e-15)
    assert np.all(device.window(np.linspace(0.01, 0.99, 9), 0.5, p) > 0)
    if name in ("clamp", "biolek"):
        assert device.window(0.0, 0.5, p) == 1.0 and device.window(1.0, -0.5, p) == 1.0


def test_integrate_state_matches_closed_form_biolek() -> None:
    """Constant v > v_off with the Biolek window (p=1): dx/dt = r*(1 - x^2),
    so x(t) = tanh(r*t + atanh(x0)); integrate_state follows it to 1e-7."""
    p = dataclasses.replace(SEED, g_leak=0.0)
    v0, x0 = 0.1, 0.2
    rate = p.k_off * (v0 / p.v_off - 1) / (p.w_off - p.w_on)  # 1/s
    t = np.linspace(0, 3 / rate, 301)
    x = device.integrate_state(np.full(t.size, v0), t, x0, p)
    np.testing.assert_allclose(x, np.tanh(rate * t + np.arctanh(x0)), atol=1e-7)


def test_integrate_state_catches_a_one_sample_pulse() -> None:
    """A 1 V triangle one sample (0.1 ns) wide in a flat 1 us record moves a
    clamp-window device by exactly k_off/(w_off - w_on) * h*(1 - v_off)^2/v_off
    (h the half width): the integrator does not step over it."""
    p = dataclasses.replace(SEED, window="clamp", g_leak=0.0)
    t = np.linspace(0, 1e-6, 10001)
    v = np.zeros(t.size)
    v[5000] = 1.0
    x = device.integrate_state(v, t, 0.5, p)
    half_width = t[1] - t[0]
    moved = p.k_off / (p.w_off - p.w_on) * half_width * (1 - p.v_off) ** 2 / p.v_off
    assert x[-1] - 0.5 == pytest.approx(moved, rel=1e-5)
    assert np.all(x[:5000] == 0.5)


def test_integrate_state_stiff_on_switch_stops_at_zero() -> None:
    """v = -0.3 V moves a clamp device at the constant rate
    k_on*(v/v_on - 1)^alpha_on/(w_off - w_on) (~ -4e8 1/s) until x = 0, then
    holds: x(t) = max(x0 + rate*t, 0) to 1e-9."""
    p = dataclasses.replace(SEED, window="clamp", g_leak=0.0)
    t = np.linspace(0, 3e-9, 301)
    x = device.integrate_state(np.full(t.size, -0.3), t, 0.5, p)
    rate = p.k_on * (-0.3 / p.v_on - 1) ** p.alpha_on / (p.w_off - p.w_on)
    np.testing.assert_allclose(x, np.maximum(0.5 + rate * t, 0.0), atol=1e-9)


def test_integrate_state_batches_devices_and_holds_below_threshold() -> None:
    """A (T, devices) waveform gives (T, devices) states; a device whose |v|
    stays below threshold keeps x0 exactly; each column equals its own run."""
    p = SEED
    t = np.linspace(0, 20e-9, 201)
    v = np.sin(2 * np.pi * 5e7 * t)[:, None] * np.array([0.015, 0.5])
    x = device.integrate_state(v, t, np.array([0.3, 0.6]), p)
    assert x.shape == (201, 2)
    assert np.all(x[:, 0] == 0.3)
    np.testing.assert_allclose(x[:, 1], device.integrate_state(v[:, 1], t, 0.6, p), atol=1e-7)


def test_integrate_state_refuses_bad_time_axis() -> None:
    """Non-increasing times or a length mismatch are InputErrors."""
    with pytest.raises(InputError, match="strictly increasing"):
        device.integrate_state([0.0, 0.1], [0.0, 0.0], 0.5, SEED)
    with pytest.raises(InputError, match="one voltage"):
        device.integrate_state([0.0, 0.1, 0.2], [0.0, 1.0], 0.5, SEED)
