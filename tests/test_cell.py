"""The 1T1R cell (circuits/cell_1t1r.cir) and the access NMOS card
(models/nmos_access.lib) in ngspice against the level-1 formulas of
cosim.core.peripherals."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq

from cosim.core import peripherals as per
from cosim.core.errors import InputError
from cosim.core.resources import resource_path
from cosim.spice.ngspice import run_netlist
from cosim.spice.rawfile import Plot

W, L, V_WL = 3.1e-6, 0.1e-6, 1.8   # m, m, V: the cell's defaults
R_VALUES = (50.0, 1e3, 12e3)       # ohm: both presets' device range
V_SMALL = (-0.01, -0.001, 0.001, 0.01)   # V
V_LARGE = (-1.0, -0.3, -0.1, 0.1, 0.3, 1.0)  # V

# A trivial stand-in for the tile's `memristor` wrapper: a fixed resistance
# set by x0 (1 kohm .. 50 ohm), its state node held at x0.
TRIVIAL_MEMRISTOR = """.subckt memristor p n x params: x0=0.5
Rm  p n {1000 - 950*x0}
Vx  x 0 {x0}
.ends memristor"""


@pytest.fixture(scope="module")
def card() -> dict[str, float]:
    return per.read_model_card(resource_path("models", "nmos_access.lib"))


def _cases() -> list[tuple[float, float]]:
    return [(r, v) for r in R_VALUES for v in V_SMALL + V_LARGE]


def _memristor_r(x0: float) -> float:
    return 1000.0 - 950.0 * x0


@pytest.fixture(scope="module")
def cell_op() -> Plot:
    lines = [f".include {resource_path('models', 'nmos_access.lib')}",
             f".include {resource_path('circuits', 'cell_1t1r.cir')}",
             TRIVIAL_MEMRISTOR, f"Vwl wl 0 {V_WL!r}"]
    for k, (r, v) in enumerate(_cases()):
        # the column side is a 0 V source: i(vs{k}) is the current leaving sl
        lines += [f"Vb{k} b{k} 0 {v!r}", f"Vs{k} s{k} 0 0",
                  f"X{k} b{k} s{k} wl cell_1t1r_frozen r={r!r}"]
    for k, x0 in enumerate((0.0, 0.5, 1.0)):
        lines += [f"Vmb{k} mb{k} 0 0.2", f"Vms{k} ms{k} 0 0", f"Xm{k} mb{k} ms{k} mx{k} memristor x0={x0!r}",
                  f"Vlb{k} lb{k} 0 0.2", f"Vls{k} ls{k} 0 0", f"Xl{k} lb{k} ls{k} wl lx{k} cell_1t1r x0={x0!r}",
                  f"Vfb{k} fb{k} 0 0.2", f"Vfs{k} fs{k} 0 0",
                  f"Xf{k} fb{k} fs{k} wl cell_1t1r_frozen r={_memristor_r(x0)!r}"]
    netlist = "1t1r cell\n" + "\n".join(lines) + "\n.op\n.end\n"
    run = run_netlist(netlist, timeout_s=60, retry=False)
    return next(p for p in run.plots if p.name.lower().startswith("operating"))


def _series_current(r: float, v: float, card: dict[str, float]) -> float:
    """Exact current (A) of R in series with the level-1 NMOS (source at 0 V,
    gate at V_WL): solve R*I(vds) + vds = v for vds."""
    def residual(vds: float) -> float:
        return r * per.nmos_level1_current(vds, V_WL, W, L, card) + vds - v
    vds = brentq(residual, min(0.0, v), max(0.0, v), xtol=1e-15, rtol=1e-15)
    return float(per.nmos_level1_current(vds, V_WL, W, L, card))


def test_model_card_and_access_resistance(card: dict[str, float]) -> None:
    assert card["level"] == 1 and card["vto"] == 0.5 and card["kp"] == pytest.approx(100e-6)
    assert card["gamma"] == 0 and card["lambda"] == 0
    assert card["cgso"] == pytest.approx(0.2e-9)
    r_acc = per.access_resistance(W, L, V_WL, card)
    assert r_acc == pytest.approx(1 / (100e-6 * 31 * 1.3), rel=1e-12)
    assert r_acc == pytest.approx(248.1, abs=0.1)          # the seeds' ~250 ohm access (1T1R, V_wl = 1.8 V)
    with pytest.raises(InputError, match="word-line"):
        per.access_resistance(W, L, 0.4, card)


def test_read_model_card_suffixes(tmp_path) -> None:
    lib = tmp_path / "m.lib"
    lib.write_text("* comment\n.model a nmos level=1 kp=2meg\n.MODEL b NMOS (VTO=0.7V KP=50U\n"
                   "+ cgso=3p lambda=.02) ; tail\n")
    assert per.read_model_card(lib) == {"level": 1.0, "kp": 2e6}
    assert per.read_model_card(lib, "B") == {"vto": 0.7, "kp": 50e-6, "cgso": 3e-12, "lambda": 0.02}
    with pytest.raises(InputError, match="no model 'c'"):
        per.read_model_card(lib, "c")


def test_cell_small_reads_are_ohmic(cell_op: Plot, card: dict[str, float]) -> None:
    """|V| <= 10 mV: I ~ V/(R + R_access). The triode conductance falls by
    vds/(2*(Vgs - vto)) with vds ~ V*R_acc/(R + R_acc) (rises for V < 0, where
    source and drain swap), so the relative error is at most
    1.1 * |V|/(2*(Vgs - vto)) * (R_acc/(R + R_acc))**2 (3e-3 at R = 50 ohm)."""
    r_acc = per.access_resistance(W, L, V_WL, card)
    vov = V_WL - card["vto"]
    for k, (r, v) in enumerate(_cases()):
        if abs(v) > 0.01:
            continue
        current = cell_op[f"i(vs{k})"][0]
        linear = v / (r + r_acc)
        bound = 1.1 * abs(v) / (2 * vov) * (r_acc / (r + r_acc)) ** 2
        assert abs(current / linear - 1) <= bound, (r, v, current, linear)


def test_cell_matches_level1_series_solution(cell_op: Plot, card: dict[str, float]) -> None:
    """Measured: within 2.5e-10, which is ngspice's gmin (1e-12 S) across the
    drain-bulk junction at node m (2e-12 with `.options gmin=1e-20`)."""
    for k, (r, v) in enumerate(_cases()):
        want = _series_current(r, v, card)
        assert cell_op[f"i(vs{k})"][0] == pytest.approx(want, rel=1e-9), (r, v)
        assert -cell_op[f"i(vb{k})"][0] == pytest.approx(want, rel=1e-9), (r, v)  # same current at bl
        assert np.sign(cell_op[f"i(vs{k})"][0]) == np.sign(v)


def test_memristor_alone_is_ohmic(cell_op: Plot) -> None:
    for k, x0 in enumerate((0.0, 0.5, 1.0)):
        assert cell_op[f"i(vms{k})"][0] == pytest.approx(0.2 / _memristor_r(x0), rel=1e-12)


def test_live_cell_wiring_equals_frozen_cell(cell_op: Plot) -> None:
    """cell_1t1r with a fixed-resistance `memristor` draws what
    cell_1t1r_frozen with that resistance draws."""
    for k in range(3):
        assert cell_op[f"i(vls{k})"][0] == pytest.approx(cell_op[f"i(vfs{k})"][0], rel=1e-12)


def test_nmos_level1_current_matches_ngspice(card: dict[str, float]) -> None:
    """Bare access NMOS (source and bulk at 0 V): a .dc sweep over Vds in
    -1.5..1.5 V at Vgs = 0, 0.4, 0.8, 1.2, 1.8, 2.5 V: cutoff, triode,
    saturation and the swapped (Vds < 0) region. Tight tolerances: with the
    default reltol (1e-3) a sweep point right after a large voltage jump is
    accepted up to 1e-3 off (device voltage limiting)."""
    netlist = f"""nmos sweep
.include {resource_path('models', 'nmos_access.lib')}
Vd d 0 0
Vg g 0 0
M1 d g 0 0 nmos_access w={W!r} l={L!r}
.options reltol=1e-9 abstol=1e-18 vntol=1e-12
.dc Vd -1.5 1.5 0.05 Vg 0 2.5 0.1
.end
"""
    run = run_netlist(netlist, timeout_s=60, retry=False)
    dc = run.plots[0]
    vds, vgs, i_drain = dc["v(d)"], dc["v(g)"], -dc["i(vd)"]
    want = per.nmos_level1_current(vds, vgs, W, L, card)
    # atol: ngspice's gmin (1e-12 S) across the drain-bulk junction
    np.testing.assert_allclose(i_drain, want, rtol=1e-9, atol=2e-12)
    assert np.max(np.abs(want)) > 1e-3  # saturation currents were covered
