"""VTEAM memristor equations: the one Python implementation, vectorised.

Kvatinsky, Ramadan, Friedman, Kolodny, "VTEAM: A general model for
voltage-controlled memristors", IEEE TCAS-II 62(8), 786-790, 2015, as used
in seed 000 (eq. 4-5) with its device: Ron 50 ohm, Roff 1 kohm, v_on -0.2 V,
v_off 0.02 V, alpha_on 3, alpha_off 1, k_on -10 m/s, k_off 5e-4 m/s,
w_on 0, w_off 3 nm (the defaults of `cosim.core.config.VteamParams`).

The same equations live in `models/vteam.va` (Verilog-A, the source of
truth) and `models/vteam.lib` (ngspice behavioral); tests/test_vteam.py
checks that the three agree to 1e-9. Every function takes numpy arrays
(broadcasting), never one object per device.

State: x = (w - w_on) / (w_off - w_on), dimensionless; x = 0 is r_on,
x = 1 is r_off. A voltage v = V(p) - V(n) above v_off drives x towards 1,
one below v_on towards 0:

    dw/dt = k_off * (v/v_off - 1)**alpha_off * f_off(x)   v > v_off   (m/s)
          = k_on  * (v/v_on  - 1)**alpha_on  * f_on(x)    v < v_on
          = 0                                              otherwise
    dx/dt = dw/dt / (w_off - w_on)                                    (1/s)
    R(x)  = r_on + (r_off - r_on) * x          linear (seed eq. 5)   (ohm)
          = r_on * exp(ln(r_off/r_on) * x)     exponential
    i     = v / R(x)                                                  (A)

R is evaluated at x as given (no clipping to [0, 1]) so that the three
implementations agree exactly; the windows keep x in range.

In circuits the state is the voltage of a third terminal `x` on a 1 F
capacitor, with a leak g_leak * (V(x) - x0) that makes the DC operating
point x = x0 below threshold; `integrate_state` integrates that same node.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from cosim.core.config import VteamParams
from cosim.core.errors import CosimError, InputError

#: Integer code of each window in the subckt / Verilog-A `window` parameter
#: (the codes are written in models/vteam.lib and models/vteam.va).
WINDOW_CODES: dict[str, int] = {"clamp": 0, "biolek": 1, "joglekar": 2, "prodromakis": 3}
#: Integer code of each R(x) law in the subckt / Verilog-A `rmodel` parameter.
RMODEL_CODES: dict[str, int] = {"linear": 0, "exponential": 1}

#: Relative slack allowed outside [1/r_off, 1/r_on] before a conductance is refused.
CONDUCTANCE_TOLERANCE = 1e-9


def spice_params(p: VteamParams, x0: float | None = None) -> dict[str, float]:
    """`p` as the parameters of the `vteam` subckt (models/vteam.lib) and the
    Verilog-A module (models/vteam.va): the one place this mapping lives.

    Args:
        p: device parameters.
        x0: initial / DC state of the instance (dimensionless); left out
            (subckt default 0.5) when None.

    Returns:
        {name: value} in the models' units (ohm, V, m/s, m, S); `window`,
        `pwin` and `rmodel` are integer codes (window 0 clamp, 1 biolek,
        2 joglekar, 3 prodromakis; rmodel 0 linear, 1 exponential).
    """
    out: dict[str, float] = {
        "ron": p.r_on, "roff": p.r_off, "von": p.v_on, "voff": p.v_off,
        "alphaon": p.alpha_on, "alphaoff": p.alpha_off, "kon": p.k_on, "koff": p.k_off,
        "won": p.w_on, "woff": p.w_off, "window": WINDOW_CODES[p.window],
        "pwin": int(p.window_p), "rmodel": RMODEL_CODES[p.resistance_model], "gleak": p.g_leak,
    }
    if x0 is not None:
        out["x0"] = float(x0)
    return out


def resistance(x: ArrayLike, p: VteamParams) -> np.ndarray:
    """Memristance R(x) (ohm) at state x (dimensionless, not clipped)."""
    x = np.asarray(x, dtype=float)
    if p.resistance_model == "exponential":
        return p.r_on * np.exp(np.log(p.r_off / p.r_on) * x)
    return p.r_on + (p.r_off - p.r_on) * x


def conductance(x: ArrayLike, p: VteamParams) -> np.ndarray:
    """Conductance 1/R(x) (S) at state x (dimensionless)."""
    return 1.0 / resistance(x, p)


def current(v: ArrayLike, x: ArrayLike, p: VteamParams) -> np.ndarray:
    """Current p -> n, i = v / R(x) (A), for voltage v = V(p,n) (V)."""
    return np.asarray(v, dtype=float) / resistance(x, p)


def window(x: ArrayLike, v: ArrayLike, p: VteamParams) -> np.ndarray:
    """Window f(x) (dimensionless) that applies at voltage v (V): f_off for
    v >= 0, f_on for v < 0 (they differ only for 'clamp' and 'biolek')."""
    x, v = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(v, dtype=float))
    negative = v < 0
    two_p = 2 * int(p.window_p)
    if p.window == "clamp":
        return np.where(negative, x > 0, x < 1).astype(float)
    if p.window == "biolek":
        stp = np.where(negative, 1.0, 0.0)  # stp(-v)
        return 1.0 - np.abs(x - stp) ** two_p
    if p.window == "joglekar":
        return 1.0 - np.abs(2.0 * x - 1.0) ** two_p
    return 1.0 - ((x - 0.5) ** 2 + 0.75) ** int(p.window_p)  # prodromakis


def dw_dt(v: ArrayLike, x: ArrayLike, p: VteamParams) -> np.ndarray:
    """VTEAM state velocity dw/dt (m/s) at voltage v (V) and state x."""
    v = np.asarray(v, dtype=float)
    f = window(x, v, p)
    # abs() only keeps the unused branch of np.where finite; where a branch is
    # used its base is positive, as in the .va/.lib pow(abs(.), .).
    rate_off = p.k_off * np.abs(v / p.v_off - 1.0) ** p.alpha_off
    rate_on = p.k_on * np.abs(v / p.v_on - 1.0) ** p.alpha_on
    return np.where(v > p.v_off, rate_off * f, np.where(v < p.v_on, rate_on * f, 0.0))


def dx_dt(v: ArrayLike, x: ArrayLike, p: VteamParams) -> np.ndarray:
    """Normalised state velocity dx/dt = dw/dt / (w_off - w_on) (1/s)."""
    return dw_dt(v, x, p) / (p.w_off - p.w_on)


def state_from_conductance(g: ArrayLike, p: VteamParams,
                           tolerance: float = CONDUCTANCE_TOLERANCE) -> np.ndarray:
    """State x (dimensionless, in [0, 1]) whose conductance is g (S).

    The inverse of `conductance`. Values outside [1/r_off, 1/r_on] by less
    than `tolerance` (relative) are clipped onto the range; anything further
    out, or not finite, is an InputError.
    """
    g = np.asarray(g, dtype=float)
    g_lo, g_hi = p.g_min, p.g_max
    bad = ~np.isfinite(g) | (g < g_lo * (1 - tolerance)) | (g > g_hi * (1 + tolerance))
    if np.any(bad):
        first = np.atleast_1d(g)[np.atleast_1d(bad)][0]
        raise InputError(f"{int(np.sum(bad))} conductance(s) outside the VTEAM range "
                         f"[{g_lo:g}, {g_hi:g}] S (1/r_off to 1/r_on), e.g. {first:g} S; scale "
                         f"the weights into that range or use a device preset that covers it")
    r = 1.0 / np.clip(g, g_lo, g_hi)
    if p.resistance_model == "exponential":
        x = np.log(r / p.r_on) / np.log(p.r_off / p.r_on)
    else:
        x = (r - p.r_on) / (p.r_off - p.r_on)
    return np.clip(x, 0.0, 1.0)


#: Steps of v smaller than this (V) count as flat when looking for turns of v.
_FLAT_STEP_V = 1e-12


def integrate_state(v_of_t: ArrayLike, t: ArrayLike, x0: ArrayLike, p: VteamParams,
                    rtol: float = 1e-9, atol: float = 1e-12) -> np.ndarray:
    """State x(t) of devices driven by sampled voltages, as the circuit's
    state node computes it: dx/dt = dx_dt(v, x) - g_leak * (x - x0) on 1 F.

    v is taken linear between samples. The time axis is cut at every sample
    where some device's v turns (rises, falls or stays flat in turn) beyond a
    threshold; between cuts each v is monotone, so an adaptive step cannot
    jump over a pulse. Each piece is integrated by scipy's LSODA (stiff when
    needed: the ON rate reaches ~1e11 1/s at -1 V for seed 000's device;
    diagonal Jacobian, as the devices are independent).

    Args:
        v_of_t: voltages V(p,n) (V), shape (T,) or (T, *devices).
        t: sample times (s), shape (T,), strictly increasing.
        x0: state at t[0] (dimensionless), broadcastable to the devices.
        p: device parameters.
        rtol: relative tolerance of the integrator.
        atol: absolute tolerance on x.

    Returns:
        x at each sample time, shape (T, *devices).
    """
    t = np.asarray(t, dtype=float)
    v = np.asarray(v_of_t, dtype=float)
    if t.ndim != 1 or t.size < 2 or not np.all(np.diff(t) > 0):
        raise InputError("integrate_state needs at least 2 strictly increasing sample times t (s)")
    if v.ndim == 0 or v.shape[0] != t.size:
        raise InputError(f"integrate_state: v_of_t has {v.shape[:1]} samples, t has {t.size}; "
                         f"give one voltage (row) per time")
    shape = np.broadcast_shapes(v.shape[1:], np.shape(x0))
    per_time = v.reshape((t.size,) + (1,) * (len(shape) - v.ndim + 1) + v.shape[1:])
    volts = np.broadcast_to(per_time, (t.size, *shape)).reshape(t.size, -1)
    x_start = np.broadcast_to(np.asarray(x0, dtype=float), shape).ravel()
    slope = np.diff(volts, axis=0) / np.diff(t)[:, None]

    def rhs(time: float, x: np.ndarray) -> np.ndarray:
        """dx/dt (1/s) of the flattened states x at `time` (s), voltages interpolated linearly in time."""
        k = min(max(int(np.searchsorted(t, time, side="right")) - 1, 0), t.size - 2)
        v_now = volts[k] + slope[k] * (time - t[k])
        return dx_dt(v_now, x, p) - p.g_leak * (x - x_start)

    from scipy.integrate import solve_ivp  # here, not at import: scipy.integrate costs ~0.3 s of start-up

    x = np.empty_like(volts)
    x[0] = x_start
    cuts = _turning_samples(volts, p)
    for a, b in zip(cuts[:-1], cuts[1:]):
        sol = solve_ivp(rhs, (t[a], t[b]), x[a], method="LSODA", t_eval=t[a:b + 1],
                        rtol=rtol, atol=atol, lband=0, uband=0)
        if not sol.success:
            raise CosimError(f"integrate_state: the ODE solver failed near t = {t[a]:g} s "
                             f"({sol.message})")
        x[a + 1:b + 1] = sol.y.T[1:]
    return x.reshape(t.size, *shape)


def _turning_samples(volts: np.ndarray, p: VteamParams) -> np.ndarray:
    """Sample indices that cut the time axis into pieces on which every
    device's v (V, shape (T, N)) is monotone: the ends, and each sample where
    v changes direction (or starts or stops being flat) while beyond a
    switching threshold. Turns inside [v_on, v_off] move nothing, so no cut."""
    step = np.diff(volts, axis=0)
    direction = np.where(np.abs(step) > _FLAT_STEP_V, np.sign(step), 0.0)
    turns = direction[:-1] != direction[1:]
    inner = volts[1:-1]
    active = (inner > p.v_off) | (inner < p.v_on)
    inner_cuts = np.flatnonzero(np.any(turns & active, axis=1)) + 1
    return np.concatenate([[0], inner_cuts, [volts.shape[0] - 1]])
