"""IR-drop-compensated programming: the device conductances G (S) of a tile
whose actual transfer, as the exact fast solver computes it, equals a target.

The actual transfer T(G) (R, C) (S) is the linear read network of
`cosim.fast.prepared.transfer_matrix`: row drivers, row and column wire
segments, the TIA's DC input resistance, and each cell its device in series
with the access NMOS linearised at its operating point (the calibrated
effective resistance, or the triode small-signal one without a calibration:
`cell_conductance`).

Target. For device conductances G_t (the weights mapped onto [g_min, g_max])
the target transfer is

    T* = F + scale * (G_t - g_min),

an affine image of the ideal array. `scale` (1; < 1 where the tile loses
signal) is undone digitally. The floor F (R, C) (S) is a common mode: equal
in the two columns 2p, 2p + 1 of every differential pair at every row, so
v @ F adds the same current to both and cancels in I_pos - I_neg exactly.
It has to be common to a pair, not to the whole tile, and it is taken as
small as the device range allows: at row i and pair p, the transfer of the
pair's device left at g_min (the mapping leaves one device of each pair
there, `cosim.mapping.pairs`), FLOOR_MARGIN above (`pair_max`). It does not
cancel at the ADC: each column is converted on its own, its full scale set by
the largest |vout| of the matrix, so the common mode takes converter range
from the signal, and what a quantised read costs grows with F / scale
(docs/compensation.md measures it). `scale` is the largest at which every
cell reaches its own target inside [g_min, g_max] (not the top of the range
in every cell: a cell with a small weight need not reach g_max), estimated
from each cell's attenuation in the uncompensated tile and lowered while a
device ends at g_max short of its target; a caller may fix it (one scale for
all the tiles of a matrix, whose ADC codes add before one digital scale).

Solver. Projected Gauss-Newton on all R C conductances at once. The
Jacobian is exact and never formed: with V[i, k, l] the voltage across cell
(k, l) when row i is driven at 1 V and the others at 0 V, and A[j, k, l] the
adjoint of column j's TIA current at that cell (one structured solve with a
unit injection at the column's end, the network being reciprocal),

    dT[i, j] / dg_cell[k, l] = V[i, k, l] * A[j, k, l],

so J dG and J^T r are two (R x RC) (RC x C) products. Each Gauss-Newton step
solves its linear least-squares problem by conjugate gradients on the normal
equations (CGLS), preconditioned by the exact diagonal of J, over the
conductances that are not held at a bound; a backtracking line search keeps
the residual decreasing. When `levels` is given (quantised devices) the
continuous solution is snapped to the nearest level. `Compensation.residual`
is ||T(G) - T*||_F / ||T* - F||_F of what is programmed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from cosim.core.errors import InputError
from cosim.core.tile import TileSpec
from cosim.fast.nodal import nodal_graph
from cosim.fast.structured import SWEEP_THREADS, factor_structured
from cosim.fast.tia import tia_termination

#: Gauss-Newton stops when the relative residual is below this: 1/80 of an
#: 8-bit ADC's LSB (1/127 of full scale); each step squares the residual near
#: the solution (bench/compensation.py shows 0.2 -> 9e-3 -> 1e-5 -> 2e-11).
RTOL = 1e-4
#: Gauss-Newton steps at most (each one exact Jacobian and residual).
MAX_STEPS = 12
#: CGLS steps at most per Gauss-Newton step.
CG_STEPS = 60
#: The largest target stays this far below the estimated reachable transfer.
MARGIN = 0.97
#: A pair's floor stays this far above the transfer of its device at g_min in the
#: uncompensated tile: compensation changes the load, and where it lowers it, that
#: transfer rises (a target below it would be out of reach); 1 % of g_min's
#: transfer is 1/16 % of g_max's for an on/off ratio of 16, below an 8-bit LSB.
FLOOR_MARGIN = 1.01
#: Times `compensate_tile` moves the floor or lowers the scale (each at most
#: halves it) before it reports the residual that is left.
ADAPT_ROUNDS = 3
#: Halvings of a Gauss-Newton step before it is given up.
BACKTRACKS = 6
#: A step that keeps more than this share of the residual ends the Gauss-Newton
#: loop (the bounds hold the rest; `compensate_tile` then moves floor or scale).
STALL = 0.7
#: Quantiles of the cells' reachable scale tried in turn: 0 (every cell reaches
#: its target), then, where the tile's far corner reaches less than its floor,
#: the best the rest allow (the residual says what is lost).
SCALE_QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.9)


@dataclass(frozen=True)
class Compensation:
    """What `compensate_tile` programs into one tile.

    Attributes:
        conductance: (R, C) device conductances to program (S), in [g_min, g_max]
            (and on `levels` when given).
        target: (R, C) the target transfer T* (S).
        scale: T* = floor + scale * (G_t - g_min); the digital side divides by it (1).
        floor: (R, C) the floor F (S): per row and differential pair, the
            transfer of the pair's device at g_min (equal in both columns).
        residual: ||T(G) - T*||_F / ||T* - floor||_F of `conductance` (1).
        uncompensated: ||T(G_t) - G_t||_F / ||G_t - g_min||_F: the error the
            same tile has when programmed with its targets directly (1).
        steps: Gauss-Newton steps taken.
        wall_s: wall time (s).
    """

    conductance: np.ndarray
    target: np.ndarray
    scale: float
    floor: np.ndarray
    residual: float
    uncompensated: float
    steps: int
    wall_s: float


def cell_and_slope(spec: TileSpec, g_device: np.ndarray, calibration: object | None = None,
                   card: dict[str, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Whole-cell conductances (R, C) (S) of devices `g_device` (S) and their
    derivative d g_cell / d g_device (1): the device itself without access,
    else in series with the access resistance of `cell_conductance`
    (calibrated: its resistance varies with the device's, differentiated by a
    central difference in the device resistance)."""
    from cosim.fast.prepared import cell_conductance

    g = np.asarray(g_device, dtype=float)
    if spec.access == "none":
        return g.copy(), np.ones_like(g)
    cell = cell_conductance(spec.with_(conductance=g), calibration, card)
    if calibration is None:  # constant series resistance: g_c = 1 / (1/g + r)
        return cell, (cell / g) ** 2
    h = 1e-6
    up = cell_conductance(spec.with_(conductance=g * (1 + h)), calibration, card)
    down = cell_conductance(spec.with_(conductance=g * (1 - h)), calibration, card)
    return cell, (up - down) / (2 * h * g)


def sensitivities(spec: TileSpec, g_cell: np.ndarray, threads: int | None = SWEEP_THREADS,
                  adjoint: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(T, V, A) of the linear network with whole-cell conductances g_cell (R, C) (S):
    T (R, C) the transfer (S); V (R, R, C) the voltage across every cell for
    each row driven at 1 V (1); A (C, R, C) the adjoint of each column's TIA
    current at every cell (1), so that dT[i, j] / dg_cell[k, l] = V[i, k, l] A[j, k, l].
    Structured solves with wires, the sparse nodal graph without; A is None
    when `adjoint` is False (one solve fewer)."""
    transfer, volts, later = network_sensitivities(spec, g_cell, threads)
    return transfer, volts, later() if adjoint else None


def network_sensitivities(spec: TileSpec, g_cell: np.ndarray, threads: int | None = SWEEP_THREADS
                          ) -> tuple[np.ndarray, np.ndarray, Callable[[], np.ndarray]]:
    """(T, V, adjoint) as `sensitivities`, with A computed only when
    `adjoint()` is called (on the same factor: one more solve)."""
    g = np.asarray(g_cell, dtype=float)
    if spec.r_wire > 0:
        return _structured_sensitivities(spec, g, threads)
    transfer, volts, adj = nodal_sensitivities(spec, g)
    return transfer, volts, lambda: adj


def _structured_sensitivities(spec: TileSpec, g: np.ndarray, threads: int | None
                              ) -> tuple[np.ndarray, np.ndarray, Callable[[], np.ndarray]]:
    rows, cols = g.shape
    factor = factor_structured(g, spec.r_wire, spec.r_driver, tia_termination(spec), threads=threads)
    w_end = factor.w_end
    x, y = factor.drive(np.eye(rows))  # each row driven at 1 V, the others at 0 V
    transfer = w_end * y[:, -1, :]

    def adjoint() -> np.ndarray:
        """A: a unit injection at each column's last node, -w_end scaled (1)."""
        inject = np.zeros((cols, rows, cols))
        inject[np.arange(cols), rows - 1, np.arange(cols)] = -w_end
        xa, ya = factor.solve(np.zeros_like(inject), inject)
        return xa - ya

    return transfer, x - y, adjoint


def nodal_sensitivities(spec: TileSpec, g: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`sensitivities` from the sparse nodal graph (any r_wire, r_driver; the
    cross-check of the structured solves). With L the Laplacian, u the unknown
    nodes and t the TIA inputs, a column's adjoint is L_uu^{-1} L_ut on the
    unknowns, -1 at its own TIA input and 0 at the other known nodes."""
    import scipy.sparse.linalg as spla

    rows, cols = g.shape
    graph = nodal_graph(spec, g, with_nmos=False)
    lap = graph.laplacian.tocsc()
    n, total = graph.n_unknown, lap.shape[0]
    known = np.zeros((total - n, rows))
    known[graph.source - n, np.arange(rows)] = 1.0
    x = np.zeros((total, rows))
    x[n:] = known
    adj = np.zeros((total, cols))
    adj[graph.tia, np.arange(cols)] = -1.0
    if n:
        lu = spla.splu(lap[:n, :n].tocsc(), permc_spec="MMD_AT_PLUS_A")
        x[:n] = lu.solve(-(lap[:n, n:] @ known))
        adj[:n] = lu.solve(lap[:n][:, graph.tia].toarray())
    transfer = -(lap[graph.tia] @ x).T
    volts = x[graph.row] - x[graph.col]  # (R, C, rows driven)
    adjoint = adj[graph.row] - adj[graph.col]
    return np.asarray(transfer), np.moveaxis(volts, -1, 0), np.moveaxis(adjoint, -1, 0)


class _Jacobian:
    """dT / dG of the device conductances, applied without forming it:
    J[(i, j), (k, l)] = V[i, k, l] A[j, k, l] slope[k, l] on the cells `free`
    (zero elsewhere). The two products run in torch float32 on one thread
    (the Gauss-Newton step is an inexact solve; every residual is float64)."""

    def __init__(self, volts: np.ndarray, adjoint: np.ndarray, slope: np.ndarray, free: np.ndarray) -> None:
        import torch

        rows, _, cols = volts.shape
        self.shape = (rows, cols)
        self.v = torch.from_numpy(volts.reshape(rows, -1)).float()
        self.a = torch.from_numpy(adjoint.reshape(cols, -1)).float()
        self.weight = torch.from_numpy((slope * free).ravel()).float()
        self.diagonal = np.einsum("kkl,lkl->kl", volts, adjoint) * slope

    def restrict(self, free: np.ndarray) -> None:
        """Keep only the cells `free` (R, C) bool as unknowns."""
        import torch

        self.weight = self.weight * torch.from_numpy(free.ravel()).float()

    def apply(self, dg: np.ndarray) -> np.ndarray:
        """J dG (R, C) (S) for conductance changes dG (R, C) (S)."""
        import torch

        scaled = self.v * (self.weight * torch.from_numpy(dg.ravel()).float())
        return torch.mm(scaled, self.a.T).double().numpy()

    def apply_t(self, r: np.ndarray) -> np.ndarray:
        """J^T r (R, C) for a transfer residual r (R, C) (S)."""
        import torch

        spread = torch.mm(torch.from_numpy(r).float(), self.a)  # (R, R C)
        return ((spread * self.v).sum(0) * self.weight).double().numpy().reshape(self.shape)


def _cgls(jac: _Jacobian, rhs: np.ndarray, free: np.ndarray, tol: float) -> np.ndarray:
    """min ||J dG - rhs|| over the free cells by CGLS, right-preconditioned by
    the diagonal of J (dG = P z, P = 1 / diag(J) on free cells), until the
    normal-equation residual falls by `tol`."""
    p_inv = np.where(free, 1.0 / np.where(jac.diagonal != 0, jac.diagonal, 1.0), 0.0)
    z = np.zeros(jac.shape)
    r = rhs.copy()
    s = jac.apply_t(r) * p_inv
    p = s.copy()
    gamma = float(np.sum(s * s))
    stop = (tol ** 2) * gamma
    for _ in range(CG_STEPS):
        if gamma <= stop or gamma == 0:
            break
        q = jac.apply(p * p_inv)
        qq = float(np.sum(q * q))
        if qq == 0:
            break
        alpha = gamma / qq
        z += alpha * p
        r -= alpha * q
        s = jac.apply_t(r) * p_inv
        gamma_new = float(np.sum(s * s))
        p = s + (gamma_new / gamma) * p
        gamma = gamma_new
    return z * p_inv


def snap_levels(g: np.ndarray, levels: int, g_min: float, g_max: float) -> np.ndarray:
    """Conductances (S) snapped to `levels` evenly spaced levels in [g_min, g_max]
    (the levels of `cosim.mapping.nonideal.quantize_states`)."""
    step = (g_max - g_min) / (levels - 1)
    return g_min + np.clip(np.rint((g - g_min) / step), 0, levels - 1) * step


def pair_max(values: np.ndarray) -> np.ndarray:
    """(R, C) with each differential pair's two columns (2p, 2p + 1) both set
    to the larger of the two; a last unpaired column keeps its own values."""
    out = np.array(values, dtype=float)
    paired = out.shape[1] - out.shape[1] % 2
    top = np.maximum(out[:, 0:paired:2], out[:, 1:paired:2])
    out[:, 0:paired:2] = top
    out[:, 1:paired:2] = top
    return out


def _scale_floor(spec: TileSpec, state: "_State", g_t: np.ndarray, calibration: object | None
                 ) -> tuple[float, np.ndarray]:
    """(scale (1), floor F (R, C) (S)) at `state` for target devices `g_t` (S).

    F: per row and pair, the transfer of the pair's devices at g_min
    (FLOOR_MARGIN above, `pair_max`); a pair with no device at g_min takes
    its devices' tangents followed down to g_min (above the concave T: safe).
    Scale: MARGIN times the smallest over cells of (reach - F) / (g_t - g_min),
    reach = T[k, l] + a (g_cell(g_max) - g_cell[k, l]) the cell's transfer at
    g_max linearised with its own attenuation a = dT[k, l] / dg_cell[k, l]; only
    cells with a target above g_min count (all cells, over g_max - g_min,
    when none has)."""
    g_min, g_max = spec.device.g_min, spec.device.g_max
    own = state.own
    cell, _ = cell_and_slope(spec, state.g, calibration)
    cell_min, _ = cell_and_slope(spec, np.full(own.shape, g_min), calibration)
    cell_max, _ = cell_and_slope(spec, np.full(own.shape, g_max), calibration)
    at_min = state.g <= g_min * (1 + 1e-9)
    tangent = pair_max(state.transfer + own * (cell_min - cell))
    measured = pair_max(np.where(at_min, state.transfer * FLOOR_MARGIN, -np.inf))
    floor = np.where(np.isfinite(measured), measured, tangent)  # a pair's device at g_min sets its floor
    reach = state.transfer + own * (cell_max - cell)
    need = g_t - g_min
    needed = need > 1e-9 * (g_max - g_min)
    ratio = (reach - floor)[needed] / need[needed] if needed.any() else (reach - floor).ravel() / (g_max - g_min)
    for q in SCALE_QUANTILES:  # the worst cell first; a hopeless corner must not zero the whole tile
        scale = MARGIN * float(np.quantile(ratio, q))
        if scale > 0:
            return scale, floor
    raise InputError(f"tile {spec.name}: the wires and drivers leave no usable conductance range "
                     f"(reachable {float(np.max(floor)):.3g}..{float(np.max(reach)):.3g} S); use smaller tiles or "
                     "lower r_wire / r_driver")


def reachable_scale(spec: TileSpec, g_target: np.ndarray | None = None, calibration: object | None = None,
                    threads: int | None = SWEEP_THREADS) -> tuple[float, np.ndarray]:
    """(scale (1), floor F (R, C) (S)) of a target transfer that tile `spec`
    can reach with devices in [g_min, g_max], the ideal devices at `g_target`
    (S; default the tile's): F each pair's least common mode, the scale the
    largest at which every cell reaches its own target (`_scale_floor`).
    `compensate_tile` lowers the scale further when a device still ends at
    g_max short of its target, and raises a pair's floor when its device at
    g_min ends above it."""
    g = spec.conductance if g_target is None else np.asarray(g_target, dtype=float)
    return _scale_floor(spec, _State.at(spec, g, calibration, threads), g, calibration)


def compensate_tile(spec: TileSpec, g_target: np.ndarray | None = None, *, scale: float | None = None,
                    floor: float | np.ndarray | None = None, levels: int | None = None,
                    calibration: object | None = None,
                    rtol: float = RTOL, max_steps: int = MAX_STEPS,
                    threads: int | None = SWEEP_THREADS) -> Compensation:
    """Device conductances for tile `spec` whose actual transfer matches
    floor + scale * (g_target - g_min) (see the module docstring).

    Args:
        spec: the tile (wires, drivers, access, TIA; its conductances are the
            default `g_target`).
        g_target: (R, C) the ideal array's device conductances (S).
        scale, floor: fix the target's scale (1) and floor (S: a number, or
            (R, C) equal in both columns of each pair); default
            `reachable_scale` (lowered while devices end at g_max short of
            their target, a pair's floor raised while its device at g_min
            ends above it).
        levels: device levels (2..64) to snap to; None: continuous.
        calibration: access calibration (`cosim.fast.calibration.Calibration`)
            of the linear path; None: the triode small-signal access.
        rtol: relative residual at which Gauss-Newton stops.
        max_steps: Gauss-Newton steps at most.
        threads: torch threads of the structured solves and Jacobian products.
    """
    from cosim.fast.structured import torch_threads

    start = time.perf_counter()
    g_t = np.asarray(spec.conductance if g_target is None else g_target, dtype=float)
    g_min, g_max = spec.device.g_min, spec.device.g_max
    if g_t.shape != spec.conductance.shape:
        raise InputError(f"tile {spec.name}: g_target has shape {g_t.shape}, the tile {spec.conductance.shape}")
    if np.any(g_t < g_min * (1 - 1e-9)) or np.any(g_t > g_max * (1 + 1e-9)):
        raise InputError(f"tile {spec.name}: target conductances must lie in [g_min, g_max] = "
                         f"[{g_min:.6g}, {g_max:.6g}] S")
    if levels is not None and not (isinstance(levels, (int, np.integer)) and 2 <= levels <= 64):
        raise InputError(f"levels must be an integer from 2 to 64, got {levels!r}")
    g_t = np.clip(g_t, g_min, g_max)
    with torch_threads(threads):
        state = _State.at(spec, g_t, calibration, threads)
        uncompensated = float(np.linalg.norm(state.transfer - g_t)) / (float(np.linalg.norm(g_t - g_min)) or 1.0)
        fixed_scale, fixed_floor = scale is not None, floor is not None
        est_scale, est_floor = _scale_floor(spec, state, g_t, calibration)
        scale = est_scale if scale is None else float(scale)
        floor = est_floor if floor is None else _given_floor(spec, floor)
        steps = rounds = 0
        while True:
            target = floor + scale * (g_t - g_min)
            norm = float(np.linalg.norm(target - floor)) or 1.0
            state, taken = _gauss_newton(spec, state, target, norm, calibration, rtol, max_steps - steps, threads)
            steps += taken
            if steps >= max_steps or state.cost / norm <= rtol:
                break
            short = (state.g >= g_max) & (state.transfer < target) & (target > floor)  # at g_max, below it
            over = (state.g <= g_min) & (state.transfer > target)  # at g_min, above it (sneak paths grew)
            adapt_floor, adapt_scale = over.any() and not fixed_floor, short.any() and not fixed_scale
            if not (adapt_floor or adapt_scale) or rounds == ADAPT_ROUNDS:
                break
            rounds += 1
            if adapt_floor:  # raise those pairs' floor to what their devices carry
                floor = np.maximum(floor, pair_max(np.where(over, state.transfer * FLOOR_MARGIN, 0.0)))
            if adapt_scale:  # lower the scale to what those devices reach
                reach = float(np.min((state.transfer[short] - floor[short]) / (target[short] - floor[short])))
                scale *= max(0.5, min(reach, 0.999)) * MARGIN
        g = state.g
        if levels is not None:
            g = snap_levels(g, levels, g_min, g_max)
            state = _State.at(spec, g, calibration, threads)
        cost = float(np.linalg.norm(state.transfer - target))
    return Compensation(g, target, float(scale), floor, cost / norm, uncompensated, steps,
                        time.perf_counter() - start)


def _given_floor(spec: TileSpec, floor: float | np.ndarray) -> np.ndarray:
    """A caller's floor (S) as (R, C), or one InputError line when it is not a
    number or an (R, C) array equal in both columns of every pair (it would
    not cancel in I_pos - I_neg)."""
    given = np.asarray(floor, dtype=float)
    shape = spec.conductance.shape
    if given.ndim == 0:
        return np.full(shape, float(given))
    if given.shape != shape or not np.array_equal(pair_max(given), given):
        raise InputError(f"tile {spec.name}: floor must be a number or a {shape} array equal in both columns "
                         "of every differential pair")
    return given.copy()


@dataclass
class _State:
    """Devices g (R, C) (S), their cells' slope d g_cell / d g (1), the
    transfer (S), V of `sensitivities`, its A on demand (`adjoint`), and the
    residual norm `cost` (S) against the target it was last measured on."""

    g: np.ndarray
    slope: np.ndarray
    transfer: np.ndarray
    volts: np.ndarray
    later: Callable[[], np.ndarray]
    cost: float = float("inf")
    _adjoint: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def at(cls, spec: TileSpec, g: np.ndarray, calibration: object | None, threads: int | None) -> "_State":
        cell, slope = cell_and_slope(spec, g, calibration)
        transfer, volts, later = network_sensitivities(spec, cell, threads)
        return cls(g, slope, transfer, volts, later)

    @property
    def adjoint(self) -> np.ndarray:
        """A (C, R, C) of `sensitivities`, solved on first use."""
        if self._adjoint is None:
            self._adjoint = self.later()
        return self._adjoint

    @property
    def own(self) -> np.ndarray:
        """dT[k, l] / dg_cell[k, l]: each cell's own attenuation (1)."""
        return np.einsum("kkl,lkl->kl", self.volts, self.adjoint)


def _gauss_newton(spec: TileSpec, state: _State, target: np.ndarray, floor_norm: float,
                  calibration: object | None, rtol: float, max_steps: int,
                  threads: int | None) -> tuple[_State, int]:
    """Projected Gauss-Newton from `state` towards `target` (R, C) (S) until
    ||T - target|| < rtol * floor_norm (S): (final state, steps)."""
    g_min, g_max = spec.device.g_min, spec.device.g_max
    state.cost = float(np.linalg.norm(state.transfer - target))
    steps = 0
    while state.cost / floor_norm > rtol and steps < max_steps:
        steps += 1
        residual = state.transfer - target
        jac = _Jacobian(state.volts, state.adjoint, state.slope, np.ones(state.g.shape, dtype=bool))
        gradient = jac.apply_t(residual)  # J^T r: where the cost falls if g rises
        free = ~(((state.g <= g_min) & (gradient > 0)) | ((state.g >= g_max) & (gradient < 0)))
        jac.restrict(free)
        relative = state.cost / floor_norm
        dg = _cgls(jac, -residual, free, tol=min(1e-2, max(relative, 1e-6)))
        for _ in range(BACKTRACKS):  # backtracking on the projected step
            trial = _State.at(spec, np.clip(state.g + dg, g_min, g_max), calibration, threads)
            cost = float(np.linalg.norm(trial.transfer - target))
            if cost < state.cost:
                stalled = cost > STALL * state.cost and not free.all()
                trial.cost = cost
                state = trial
                break
            dg = 0.5 * dg
        else:
            break
        if stalled:  # bounds hold the rest: a caller's floor or scale has to move
            break
    return state, steps
