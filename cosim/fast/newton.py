"""Exact DC operating points of 1T1R tiles: full Newton per vector on the sparse
graph, and chord Newton for whole batches on a factored small-signal network.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Iterator

import numpy as np

from cosim.core import peripherals
from cosim.core.peripherals import NGSPICE_GMIN  # re-exported (tests, prepared)
from cosim.core.errors import CosimError
from cosim.core.resources import resource_path
from cosim.core.tile import TileSpec
from cosim.fast.iterative import ChainNetwork
from cosim.fast.nodal import NodalGraph, nodal_graph
from cosim.fast.structured import StructuredFactor
from cosim.fast.tia import tia_termination


#: Newton stops when no node moves more than this (V) plus a relative part.
NEWTON_VTOL = 1e-13

NEWTON_MAX_ITER = 60


def access_card(path: str | Path | None = None) -> dict[str, float]:
    """Parameters of the access NMOS card (models/nmos_access.lib by default;
    read once per path, a fresh copy each call)."""
    return dict(_read_card(str(path or _default_card())))


@functools.lru_cache(maxsize=1)
def _default_card() -> Path:
    """models/nmos_access.lib (located once: `resource_path` costs 0.4 ms a call)."""
    return resource_path("models", "nmos_access.lib")


@functools.lru_cache(maxsize=8)
def _read_card(path: str) -> dict[str, float]:
    return peripherals.read_model_card(path)


def _nmos_current_and_slopes(vds: np.ndarray, vgs: np.ndarray, width: float, length: float,
                             card: dict[str, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Drain current (A) and its slopes dI/dVds, dI/dVgs (S) by central
    differences of `peripherals.nmos_level1_current` (exact for its
    piecewise-quadratic law up to rounding; Newton needs only slopes)."""
    h = 1e-6
    f = peripherals.nmos_level1_current
    i0 = f(vds, vgs, width, length, card)
    gds = (f(vds + h, vgs, width, length, card) - f(vds - h, vgs, width, length, card)) / (2 * h)
    gm = (f(vds, vgs + h, width, length, card) - f(vds, vgs - h, width, length, card)) / (2 * h)
    return np.asarray(i0), np.asarray(gds), np.asarray(gm)


def _newton_points(spec: TileSpec, graph: NodalGraph, v_dac: np.ndarray, card: dict[str, float],
                   tol: float = NEWTON_VTOL, max_iter: int = NEWTON_MAX_ITER
                   ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Full Newton per input vector on `graph` (`nodal_graph` with_nmos, its
    gmin): yield (node voltages of every node class (V), NMOS drain currents
    (R*C,) (A)).

    Unknowns: every row, column and memristor-NMOS node. Newton on KCL with
    all NMOS currents and slopes evaluated at once and the Jacobian (the
    linear Laplacian plus each NMOS's 2x2 stamp) factored by sparse LU.
    Starting from 0 V, the first step is the small-signal linear solution.
    The NMOS: drain at the memristor, source on the column, gate at
    v_wordline, bulk at ground, with gmin from drain and source to ground.
    """
    import scipy.sparse as sp  # here, not at import: ~0.1 s of start-up for callers that never need it
    import scipy.sparse.linalg as spla

    n = spec.nmos
    lap = graph.laplacian.tocsr()
    nu = graph.n_unknown
    l_uu = lap[:nu, :nu]
    l_uk = lap[:nu, nu:]
    drain, source = graph.mid.ravel(), graph.col.ravel()
    # Stamp positions of each NMOS (only rows/cols that are unknowns).
    stamp_rows = np.concatenate([drain, drain, source, source])
    stamp_cols = np.concatenate([drain, source, drain, source])
    keep = (stamp_rows < nu) & (stamp_cols < nu)
    for b, v in enumerate(v_dac):
        known = np.zeros(lap.shape[0] - nu)
        known[graph.source - nu] = v
        x = np.zeros(lap.shape[0])
        x[nu:] = known
        lin_rhs = l_uk @ known
        for iteration in range(max_iter):
            vd, vs = x[drain], x[source]
            i_d, gds, gm = _nmos_current_and_slopes(vd - vs, n.v_wordline - vs, n.width, n.length, card)
            resid = l_uu @ x[:nu] + lin_rhs
            np.add.at(resid, drain[drain < nu], i_d[drain < nu])
            np.add.at(resid, source[source < nu], -i_d[source < nu])
            # d(i_d)/d(v_drain) = gds, d(i_d)/d(v_source) = -(gds + gm).
            vals = np.concatenate([gds, -(gds + gm), -gds, gds + gm])
            jac = (l_uu + sp.coo_matrix((vals[keep], (stamp_rows[keep], stamp_cols[keep])),
                                        shape=(nu, nu))).tocsc()
            dx = spla.splu(jac, permc_spec="MMD_AT_PLUS_A").solve(-resid)
            x[:nu] += dx
            if np.max(np.abs(dx)) <= tol + 1e-12 * np.max(np.abs(x[:nu])) and iteration > 0:
                break
        else:
            raise CosimError(f"Newton did not converge in {max_iter} iterations for input vector {b}; "
                             "use --engine spice for this tile")
        vd, vs = x[drain], x[source]
        yield x, np.asarray(peripherals.nmos_level1_current(vd - vs, n.v_wordline - vs, n.width, n.length, card))


def newton_currents(spec: TileSpec, v_dac: np.ndarray, card: dict[str, float] | None = None,
                    gmin: float = NGSPICE_GMIN, tol: float = NEWTON_VTOL,
                    max_iter: int = NEWTON_MAX_ITER) -> np.ndarray:
    """Exact DC column currents (B, C) (A) of a 1T1R tile, by full Newton
    (`_newton_points`; the reference for the chord iteration; any r_wire, r_driver)."""
    graph = nodal_graph(spec, spec.conductance, with_nmos=True, gmin=gmin)
    tia_rows = graph.laplacian.tocsr()[graph.tia]
    src_tia = np.full(graph.laplacian.shape[0], -1)
    src_tia[graph.tia] = np.arange(graph.tia.size)
    into = src_tia[graph.col.ravel()]  # the TIA each NMOS source sits on, or -1
    out = np.empty((v_dac.shape[0], spec.cols))
    for b, (x, i_d) in enumerate(_newton_points(spec, graph, v_dac, card or access_card(), tol, max_iter)):
        out[b] = -(tia_rows @ x) + np.bincount(into[into >= 0], weights=i_d[into >= 0], minlength=spec.cols)
    return out


def newton_node_voltages(spec: TileSpec, v_dac: np.ndarray, card: dict[str, float] | None = None
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact DC row, column and memristor-NMOS node voltages (B, R, C) (V)
    of a 1T1R tile by full Newton (`_newton_points`)."""
    graph = nodal_graph(spec, spec.conductance, with_nmos=True, gmin=NGSPICE_GMIN)
    nodes = [(x[graph.row], x[graph.col], x[graph.mid])
             for x, _ in _newton_points(spec, graph, v_dac, card or access_card())]
    return tuple(np.stack(k) for k in zip(*nodes))  # type: ignore[return-value]


def _chord_residual(spec: TileSpec, x: np.ndarray, y: np.ndarray, m: np.ndarray, v: np.ndarray,
                    card: dict[str, float], gmin: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """KCL residuals (A) at the row, column and memristor-NMOS nodes (B, R, C):
    current leaving each node for node voltages x, y, m (V) and inputs v (B, R) (V)."""
    g_m, w, n = spec.conductance, 1.0 / spec.r_wire, spec.nmos
    fx = g_m * (x - m)
    fx[..., :-1] += w * (x[..., :-1] - x[..., 1:])
    fx[..., 1:] += w * (x[..., 1:] - x[..., :-1])
    if spec.r_driver > 0:
        fx[..., 0] += (x[..., 0] - v) / spec.r_driver
    i_d = peripherals.nmos_level1_current(m - y, n.v_wordline - y, n.width, n.length, card)
    fm = g_m * (m - x) + i_d + gmin * m
    fy = gmin * y - i_d
    fy[:, :-1] += w * (y[:, :-1] - y[:, 1:])
    fy[:, 1:] += w * (y[:, 1:] - y[:, :-1])
    fy[:, -1] += y[:, -1] / (spec.r_wire + tia_termination(spec))
    return fx, fy, fm


def chord_newton_nodes(spec: TileSpec, factor: "StructuredFactor | ChainNetwork", g_channel: float,
                       v_dac: np.ndarray, card: dict[str, float], gmin: float = NGSPICE_GMIN,
                       tol: float = NEWTON_VTOL, max_iter: int = NEWTON_MAX_ITER
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact DC row, column and memristor-NMOS node voltages (B, R, C) (V)
    of a 1T1R tile with wires, for a whole batch at once: Newton's method
    with the Jacobian frozen at the small-signal network (the chord method;
    each NMOS as its triode conductance `g_channel` (S) at Vds = 0), which
    `factor` holds factored (StructuredFactor, or ChainNetwork solved by CG).
    The residual is exact (level-1 NMOS, gmin), so it converges to the same
    operating point as a full Newton, gaining about one digit per step for a
    10 % channel nonlinearity.
    """
    rows, cols = spec.rows, spec.cols
    g_m = spec.conductance
    total = g_m + g_channel
    share_x, share_y = g_m / total, g_channel / total
    batch = v_dac.shape[0]
    x = np.zeros((batch, rows, cols))
    y = np.zeros_like(x)
    m = np.zeros_like(x)
    if spec.r_driver == 0:
        x[..., 0] = v_dac
    scale = max(float(np.max(np.abs(v_dac))), 1e-300)
    for _ in range(max_iter):
        fx, fy, fm = _chord_residual(spec, x, y, m, v_dac, card, gmin)
        dx, dy = factor.solve(-fx - share_x * fm, -fy - share_y * fm)
        dm = share_x * dx + share_y * dy - fm / total
        x += dx
        y += dy
        m += dm
        step = max(np.max(np.abs(dx)), np.max(np.abs(dy)), np.max(np.abs(dm)))
        if step <= tol + 1e-12 * scale:
            return x, y, m
    raise CosimError(f"the chord Newton iteration did not converge in {max_iter} steps; "
                     "use nonlinear='newton' with method='splu' (full Newton) or the spice engine")
