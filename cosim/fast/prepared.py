"""The prepared tile: `prepare(spec)` factors a tile once (transfer matrix,
chains or Newton factor) and `FastTile.currents` applies it to any batch;
`solve_fast` does both for one call.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

import numpy as np

from cosim.core import peripherals
from cosim.core.drive import dac_output
from cosim.core.errors import InputError
from cosim.core.names import NONLINEAR_MODES
from cosim.core.tile import TileSpec
from cosim.fast.apply import BACKENDS, apply_transfer, default_newton_chunk, split_polarities
from cosim.fast.batched_newton import BatchedFactor, batched_factor, batched_nodes
from cosim.fast.iterative import ChainNetwork, chain_network
from cosim.fast.newton import (
    NEWTON_VTOL,
    NGSPICE_GMIN,
    access_card,
    chord_newton_nodes,
    newton_currents,
    newton_node_voltages,
)
from cosim.fast.nodal import graph_node_voltages, transfer_splu
from cosim.fast.structured import (
    SWEEP_THREADS,
    StructuredFactor,
    factor_structured,
    transfer_no_wires,
    transfer_structured_numpy,
)
from cosim.fast.tia import tia_gain, tia_termination

if TYPE_CHECKING:
    from cosim.core.results import TileResult
    from cosim.fast.calibration import Calibration



METHODS = ("auto", "structured", "splu", "iterative")

TRANSFER_METHODS = ("structured", "splu")

# solve_fast's method 'auto' solves batches of at most this many vectors
# iteratively (no transfer matrix): bench/fast_solver.py's crossover.
ITERATIVE_MAX_BATCH = 4

#: Largest factor (bytes) of the batched exact 1T1R solver that method 'auto'
#: builds (two R x C x C arrays in float64 and float32, 24 R C^2 bytes: 3 GiB
#: at 512 x 512); larger tiles take the chains ('iterative', O(R C) memory).
BATCHED_MAX_BYTES = 4 * 2**30


def transfer_matrix(spec: TileSpec, g_cell: np.ndarray | None = None, method: str = "structured",
                    threads: int | None = SWEEP_THREADS) -> np.ndarray:
    """Transfer matrix T (R, C) (S) of the tile's linear read network:
    current = v_dac @ T (A for V).

    Args:
        spec: the tile (r_wire, r_driver and, by default, its conductances).
        g_cell: (R, C) conductance of each whole cell, row node to column
            node (S); default spec.conductance (access 'none').
        method: 'structured' (block sweep, numpy and LAPACK:
            `structured.transfer_structured_numpy`) or 'splu' (sparse LU).
        threads: BLAS threads of the block sweep, restored after
            (`structured.blas_threads`); None leaves them alone.
    """
    g = spec.conductance if g_cell is None else np.asarray(g_cell, dtype=float)
    if method not in TRANSFER_METHODS:
        raise InputError(f"method must be one of {', '.join(TRANSFER_METHODS)}, got {method!r}")
    r_in = tia_termination(spec)
    if method == "splu" or (spec.r_wire == 0 and r_in > 0):
        return transfer_splu(spec, g)
    if spec.r_wire == 0:
        return transfer_no_wires(g, spec.r_driver)
    return transfer_structured_numpy(g, spec.r_wire, spec.r_driver, r_tia_in=r_in, threads=threads)


def _check_calibration(spec: TileSpec, calibration: "Calibration") -> None:
    n = spec.nmos
    got = (calibration.width, calibration.length, calibration.v_wordline)
    if not np.allclose(got, (n.width, n.length, n.v_wordline), rtol=1e-12, atol=0):
        raise InputError(f"calibration is for W={got[0]:g} m, L={got[1]:g} m, V_wl={got[2]:g} V but the "
                         f"tile has W={n.width:g} m, L={n.length:g} m, V_wl={n.v_wordline:g} V; "
                         "run `cosim calibrate` for this transistor")


def cell_conductance(spec: TileSpec, calibration: "Calibration | None" = None,
                     card: dict[str, float] | None = None, polarity: str = "both") -> np.ndarray:
    """Conductance of each whole cell for the linear solver (R, C) (S).

    access 'none': the device itself. access 'nmos': the device in series
    with the calibrated effective access resistance for reads of the given
    polarity ('both', 'pos', 'neg'), or, without a calibration, the triode
    small-signal resistance of the model card.
    """
    g = spec.conductance
    if spec.access == "none":
        return g.copy()
    r_device = 1.0 / g
    if calibration is not None:
        _check_calibration(spec, calibration)
        r_access = calibration.access_resistance(r_device, polarity)
    else:
        n = spec.nmos
        r_access = peripherals.access_resistance(n.width, n.length, n.v_wordline, card or access_card())
    return 1.0 / (r_device + r_access)


class FastTile(Protocol):
    """What `prepare` returns: a tile factored once, applied to any batch.

    Three kinds satisfy it: `LinearTile` (one conductance per cell; a
    transfer matrix or factored chains), `NewtonTile` (the exact 1T1R
    operating point) and `cosim.fast.corrected.CorrectedTile` (the
    small-signal transfer plus batched corrections). All carry `spec`,
    `mode` ('linear', 'newton' or 'corrected'), `access` (how the access
    device entered: 'none', 'calibrated', 'small-signal', 'level-1',
    'level-1 corrected'), `method` ('structured', 'splu', 'iterative' or
    'corrected') and `precompute_s` (preparation wall time, s).
    """

    spec: TileSpec
    mode: str
    access: str
    method: str
    precompute_s: float

    def currents(self, v_dac: np.ndarray, backend: str = "numpy", chunk: int | None = None,
                 device: str | None = None) -> np.ndarray:
        """Column currents (B, C) (A) for DAC output voltages (B, R) (V)."""

    def node_voltages(self, v_dac: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Row-line, column-line and (1T1R) memristor-NMOS node voltages, each (B, R, C) (V)."""


def _batch(v_dac: np.ndarray) -> np.ndarray:
    """DAC outputs as a float (B, R) array (V); one vector (R,) becomes (1, R)."""
    v = np.asarray(v_dac, dtype=float)
    return v[None, :] if v.ndim == 1 else v


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise InputError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")


@dataclass(frozen=True)
class LinearTile:
    """A tile whose cells are each one conductance (access 'none', or the
    access NMOS linearised): currents are linear in the row voltages.

    Attributes:
        spec, access, method, precompute_s: see `FastTile`.
        g_cell: (R, C) whole-cell conductances (S), of positive reads when
            `g_cell_neg` is set.
        g_cell_neg: (R, C) the same for negative reads (calibrated access), or None.
        transfer: (R, C) transfer matrix (S), methods 'structured' and 'splu'
            (of positive reads when `transfer_neg` is set); None with 'iterative'.
        transfer_neg: (R, C) transfer matrix of negative reads (S), or None.
        networks: method 'iterative': the factored chains of `g_cell` (and of
            `g_cell_neg`), solved per batch; () otherwise.
    """

    spec: TileSpec
    access: str
    method: str
    precompute_s: float
    g_cell: np.ndarray
    g_cell_neg: np.ndarray | None = None
    transfer: np.ndarray | None = None
    transfer_neg: np.ndarray | None = None
    networks: tuple[ChainNetwork, ...] = ()
    mode: ClassVar[str] = "linear"

    def currents(self, v_dac: np.ndarray, backend: str = "numpy", chunk: int | None = None,
                 device: str | None = None) -> np.ndarray:
        """Column currents (B, C) (A) for DAC outputs (B, R) (V): v @ T
        (sign-split when calibrated) in chunks of `chunk` vectors with
        `backend`, or the chains solved per chunk (method 'iterative')."""
        v = _batch(v_dac)
        _check_backend(backend)
        if not self.networks:
            return apply_transfer(v, self.transfer, backend, chunk, device, self.transfer_neg)
        chunk = chunk or default_newton_chunk(self.spec.rows, self.spec.cols)
        out = np.empty((v.shape[0], self.spec.cols))
        for start in range(0, v.shape[0], chunk):  # the column nodes of each read polarity
            out[start:start + chunk] = sum(network.currents(part) for network, (_, part)
                                           in zip(self.networks, self._polarities(v[start:start + chunk])))
        return out

    def node_voltages(self, v_dac: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Row-line, column-line and (1T1R) memristor-NMOS node voltages at
        every cell, each (B, R, C) (V), for DAC outputs (B, R) (V); the third
        is None without an access device. The network of this tile's cell
        conductances."""
        v = _batch(v_dac)
        spec = self.spec
        row = np.zeros((v.shape[0], spec.rows, spec.cols))
        col = np.zeros_like(row)
        mid = np.zeros_like(row) if spec.access == "nmos" else None
        for k, (g_cell, part) in enumerate(self._polarities(v)):
            if spec.r_wire > 0:
                network = self.networks[k] if self.networks else chain_network(
                    g_cell, spec.r_wire, spec.r_driver, tia_termination(spec))
                x, y = network.node_voltages(part)
            else:
                x, y, _ = graph_node_voltages(spec, g_cell, part)
            row += x
            col += y
            if mid is not None:  # the memristor carries the cell current
                mid += x - g_cell * (x - y) / spec.conductance
        return row, col, mid

    def _polarities(self, v: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """(cell conductances (R, C) S, DAC outputs (B, R) V) of each read
        polarity: all of v, or its two `split_polarities` parts when calibrated."""
        if self.g_cell_neg is None:
            return [(self.g_cell, v)]
        positive, negative = split_polarities(v)
        return [(self.g_cell, positive), (self.g_cell_neg, negative)]


@dataclass(frozen=True)
class NewtonTile:
    """A 1T1R tile solved at its exact DC operating point (level-1 access NMOS).

    Attributes:
        spec, access, method, precompute_s: see `FastTile`.
        g_channel: triode conductance of the access NMOS at Vds = 0 (S).
        card: access NMOS model card (models/nmos_access.lib parameters).
        factor: the factored small-signal network of the chord iteration:
            BatchedFactor (method 'structured' with wires and drivers: the
            batched exact solver of `cosim.fast.batched_newton`),
            StructuredFactor (method 'structured' with r_driver = 0), or
            ChainNetwork ('iterative'); None for a full Newton per vector
            (method 'splu', or r_wire = 0).
    """

    spec: TileSpec
    access: str
    method: str
    precompute_s: float
    g_channel: float
    card: dict[str, float]
    factor: StructuredFactor | ChainNetwork | None = None
    mode: ClassVar[str] = "newton"

    def currents(self, v_dac: np.ndarray, backend: str = "numpy", chunk: int | None = None,
                 device: str | None = None) -> np.ndarray:
        """Column currents (B, C) (A) for DAC outputs (B, R) (V): the chord
        iteration over chunks of `chunk` vectors, or one full Newton per
        vector when there is no factor (`backend` and `device` are checked;
        the iteration runs in numpy)."""
        v = _batch(v_dac)
        _check_backend(backend)
        if self.factor is None:
            return newton_currents(self.spec, v, self.card)
        if self.takes_batched(v):
            return batched_nodes(self.factor, v, NEWTON_VTOL, chunk=chunk)[0]
        chunk = chunk or default_newton_chunk(self.spec.rows, self.spec.cols)
        out = np.empty((v.shape[0], self.spec.cols))
        w_end = 1.0 / (self.spec.r_wire + tia_termination(self.spec))
        for start in range(0, v.shape[0], chunk):
            _, col, _ = self.node_voltages(v[start:start + chunk])
            out[start:start + chunk] = w_end * col[:, -1, :]
        return out

    def node_voltages(self, v_dac: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Row-line, column-line and memristor-NMOS node voltages at every
        cell, each (B, R, C) (V), at the exact operating point."""
        v = _batch(v_dac)
        if self.factor is None:
            return newton_node_voltages(self.spec, v, self.card)
        if self.takes_batched(v):
            return batched_nodes(self.factor, v, NEWTON_VTOL, with_nodes=True)[1]
        factor = self.factor
        if isinstance(factor, BatchedFactor):  # inputs beyond the triode law: the chord on the chains
            spec = self.spec
            factor = chain_network(factor.g_cell, spec.r_wire, spec.r_driver, tia_termination(spec))
        return chord_newton_nodes(self.spec, factor, self.g_channel, v, self.card)

    def takes_batched(self, v: np.ndarray) -> bool:
        """The batched solver applies: its factor, and every DAC output
        within the NMOS's triode range (|v| < V_wl - vto, see
        `cosim.fast.batched_newton`)."""
        return isinstance(self.factor, BatchedFactor) and (v.size == 0 or float(np.abs(v).max()) < self.factor.a)


def _resolve_mode(spec: TileSpec, nonlinear: str, calibration: "Calibration | None") -> str:
    if nonlinear not in NONLINEAR_MODES:
        raise InputError(f"nonlinear must be one of {', '.join(NONLINEAR_MODES)}, got {nonlinear!r}")
    if spec.access == "none" or nonlinear == "linear":
        return "linear"
    if nonlinear == "newton":
        return "newton"
    if nonlinear == "corrected":  # a calibration asks for the calibrated linear path
        return "linear" if calibration is not None else "corrected"
    return "linear" if calibration is not None else "newton"


def _load_calibration(calibration: "Calibration | str | Path | None") -> "Calibration | None":
    if calibration is None or not isinstance(calibration, (str, Path)):
        return calibration
    from cosim.fast.calibration import load_calibration

    return load_calibration(calibration)


def prepare(spec: TileSpec, *, calibration: "Calibration | str | Path | None" = None, nonlinear: str = "auto",
            method: str = "auto", threads: int | None = SWEEP_THREADS) -> FastTile:
    """Prepare `spec` for the fast solver (factor once, apply to any batch).

    Args:
        spec: the tile.
        calibration: access calibration (object or JSON path from
            `cosim calibrate`) for the linear path of an nmos tile.
        nonlinear: 'auto', 'newton', 'linear' (see the module docstring) or
            'corrected': the small-signal transfer plus batched correction
            terms (`cosim.fast.corrected.CorrectedTile`, within 1e-4 of
            'newton'; with a calibration, the calibrated linear path); a
            tile without wire or driver resistance, or whose NMOS card is
            outside the triode law, gets the exact Newton.
        method: 'structured' (transfer matrix by block sweep; the chord
            Newton's Jacobian as R dense blocks), 'splu' (sparse LU; full
            Newton per vector), 'iterative' (chains factored, each batch
            solved by `cosim.fast.iterative`: no transfer matrix, for few vectors;
            the chord Newton's Jacobian in O(R C) memory) or 'auto':
            'structured' for the linear mode; for Newton 'structured' (the
            batched exact solver of `cosim.fast.batched_newton`, numpy BLAS-3
            over whole chunks of vectors) while its factor fits
            BATCHED_MAX_BYTES, 'iterative' beyond.
        threads: BLAS threads of the structured block sweep (numpy's
            OpenBLAS, `structured.blas_threads`; torch's intra-op threads for
            the r_driver = 0 Newton factor), set for the duration of the
            sweep and restored after (the count is process-wide): 1 by
            default, since its chain of small C x C products gains nothing
            from a second thread and stalls on busy cores; None leaves the
            setting alone.
    """
    if method not in METHODS:
        raise InputError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    start = time.perf_counter()
    cal = _load_calibration(calibration)
    mode = _resolve_mode(spec, nonlinear, cal)
    if method == "auto":
        method = _newton_method(spec) if mode == "newton" else "structured"
    r_in = tia_termination(spec)
    iterative = method == "iterative" and spec.r_wire > 0
    if mode == "corrected":
        from cosim.fast.corrected import corrected_tile

        card = access_card()
        factor = batched_factor(spec, card, NGSPICE_GMIN)
        if factor is not None:
            return corrected_tile(spec, factor, start=start)
        mode, method = "newton", "splu" if spec.r_wire == 0 else method  # no wires or no drivers: exact
    if mode == "newton":
        card = access_card()
        n = spec.nmos
        g_channel = 1.0 / peripherals.access_resistance(n.width, n.length, n.v_wordline, card)
        factor = None
        if method != "splu" and spec.r_wire > 0:
            g_cell = 1.0 / (1.0 / spec.conductance + 1.0 / g_channel)
            if iterative:
                factor = chain_network(g_cell, spec.r_wire, spec.r_driver, r_in)
            else:
                factor = batched_factor(spec, card, NGSPICE_GMIN) or factor_structured(
                    g_cell, spec.r_wire, spec.r_driver, r_in, threads=threads)
        return NewtonTile(spec, "level-1", method, time.perf_counter() - start, g_channel, card, factor)
    if spec.access == "nmos" and cal is not None:
        # Positive and negative reads see different channel conductances.
        cells = (cell_conductance(spec, cal, polarity="pos"), cell_conductance(spec, cal, polarity="neg"))
        access = "calibrated"
    else:
        card = access_card() if spec.access == "nmos" else None
        cells = (cell_conductance(spec, None, card), None)
        access = "none" if spec.access == "none" else "small-signal"
    present = [g for g in cells if g is not None]
    if iterative:
        networks = tuple(chain_network(g, spec.r_wire, spec.r_driver, r_in) for g in present)
        return LinearTile(spec, access, method, time.perf_counter() - start, cells[0], g_cell_neg=cells[1],
                          networks=networks)
    transfer_method = "splu" if method == "splu" else "structured"
    transfers = [transfer_matrix(spec, g, transfer_method, threads) for g in present] + [None]
    return LinearTile(spec, access, method, time.perf_counter() - start, cells[0], g_cell_neg=cells[1],
                      transfer=transfers[0], transfer_neg=transfers[1])


def _newton_method(spec: TileSpec) -> str:
    """Method 'auto' of a Newton tile: 'structured' (the batched solver)
    while its factor fits BATCHED_MAX_BYTES, else 'iterative'."""
    return "structured" if 24 * spec.rows * spec.cols ** 2 <= BATCHED_MAX_BYTES else "iterative"


def choose_method(spec: TileSpec, batch: int) -> str:
    """'iterative' for a few vectors on a tile with wires, else 'auto' (the
    transfer matrix of a linear tile pays off from about ITERATIVE_MAX_BATCH
    vectors on; Newton tiles go iterative anyway)."""
    return "iterative" if spec.r_wire > 0 and batch <= ITERATIVE_MAX_BATCH else "auto"


def solve_fast(spec: TileSpec, voltages: np.ndarray, *, calibration: "Calibration | str | Path | None" = None,
               nonlinear: str = "auto", backend: str = "numpy", chunk: int | None = None,
               method: str = "auto", threads: int | None = SWEEP_THREADS) -> "TileResult":
    """Column currents and outputs of `spec` for row voltages (R,) or (B, R) (V).

    The DACs quantise the inputs (`cosim.core.drive.dac_output`), the tile is
    prepared (`prepare`; method 'auto': `choose_method`; `threads` as there) and applied
    (`FastTile.currents`); vout = rs * current (times the TIA's DC gain
    factor), ADC codes when the tile has ADCs. engine 'fast'.
    """
    start = time.perf_counter()
    v = dac_output(spec, voltages)
    calibration = _load_calibration(calibration)
    if method == "auto" and _resolve_mode(spec, nonlinear, calibration) == "linear":
        method = choose_method(spec, v.shape[0])  # Newton tiles: the batched solver at any batch size
    tile = prepare(spec, calibration=calibration, nonlinear=nonlinear, method=method, threads=threads)
    return fast_result(spec, tile.currents(v, backend=backend, chunk=chunk), start)


def fast_result(spec: TileSpec, current: np.ndarray, start: float) -> "TileResult":
    """The TileResult of TIA input currents (B, C) (A) the fast solver found:
    vout = rs * current times the TIA's DC gain factor (V), the ADC codes when
    the tile has ADCs, and the wall time since `start` (a perf_counter, s)."""
    from cosim.core.results import TileResult

    vout = spec.tia.rs * tia_gain(spec) * current
    codes = None if spec.adc.bits is None else peripherals.adc_codes(vout, spec.adc.bits, spec.adc.vfs)
    return TileResult(current, vout, codes, "fast", time.perf_counter() - start)
