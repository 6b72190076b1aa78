"""Transient tile runs: the tile as an ngspice `.tran` (DAC step with rise
time, TIA settling, ADC sample, live VTEAM states), keeping ngspice's raw
file and the choice of cells whose states are stored."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from cosim.core.config import TranSpec
from cosim.core.errors import InputError
from cosim.core.results import TileResult
from cosim.core.tile import TileSpec
from cosim.engines import solve_spice
from cosim.spice.ngspice_netlist import RAW_NAME
from cosim.spice.process import run_directory

if TYPE_CHECKING:
    from cosim.analysis.disturb import DisturbReport

#: Points per transient when only t_stop is given: print step t_stop/400,
#: largest internal step t_stop/200 (TranSpec's defaults at 20 ns).
POINTS_PER_RUN = 400


@dataclass(frozen=True)
class TransientRun:
    """What a transient tile run keeps besides its TileResult.

    Attributes:
        tran: the transient settings it ran with.
        cells: (K, 2) int (row, column) of the cells whose states are stored.
        raw: ngspice's binary raw file (one Transient plot per input vector),
            or None.
    """

    tran: TranSpec
    cells: np.ndarray
    raw: bytes | None = None


def tran_spec(t_stop: float | None = None, t_sample: float | None = None) -> TranSpec:
    """TranSpec's defaults, or a read of `t_stop` s sampled at `t_sample` s
    (default 3/4 of t_stop), with steps scaled to the run's length."""
    if t_stop is None and t_sample is None:
        return TranSpec()
    stop = TranSpec.t_stop if t_stop is None else float(t_stop)
    if not (np.isfinite(stop) and stop > 0):
        raise InputError(f"--t-stop must be a positive time in seconds, got {t_stop}")
    sample = 0.75 * stop if t_sample is None else float(t_sample)
    return TranSpec(t_stop=stop, t_step=stop / POINTS_PER_RUN, t_sample=sample,
                    t_max_step=2 * stop / POINTS_PER_RUN)


def parse_cells(text: str, rows: int, cols: int) -> np.ndarray:
    """Cells named by `text` as a (K, 2) int array (row, column), in order.

    'all' is every cell (row by row), 'none' no cell, otherwise pairs `i,j`
    separated by ';' or spaces, 0-based, e.g. '0,0;3,2'.
    """
    spec = text.strip().lower()
    if spec == "all":
        return np.argwhere(np.ones((rows, cols), dtype=bool))
    if spec in ("", "none"):
        return np.zeros((0, 2), dtype=np.int64)
    cells: list[tuple[int, int]] = []
    for item in re.split(r"[;\s]+", spec):
        if not item:
            continue
        match = re.fullmatch(r"(\d+),(\d+)", item)
        if not match:
            raise InputError(f"cannot read cell {item!r} in {text!r}; write cells as i,j;i,j "
                             "(0-based row, column), or 'all'")
        i, j = int(match.group(1)), int(match.group(2))
        if i >= rows or j >= cols:
            raise InputError(f"cell {i},{j} is outside the {rows}x{cols} tile; rows run 0..{rows - 1}, "
                             f"columns 0..{cols - 1}")
        if (i, j) not in cells:
            cells.append((i, j))
    return np.array(cells, dtype=np.int64).reshape(-1, 2)


def run_transient(spec: TileSpec, voltages: np.ndarray, tran: TranSpec | None = None,
                  cells: np.ndarray | None = None, timeout_s: float = 600.0,
                  keep_raw: bool = True) -> tuple[TileResult, TransientRun]:
    """Run `spec` as a transient for row voltages (R,) or (B, R) (V).

    Args:
        spec: the tile; its TIA kind is used as given (use 'opamp' to see settling).
        voltages: row input voltages (V), one `.tran` per input vector.
        tran: transient settings (default TranSpec()).
        cells: (K, 2) cells whose states to store (default all).
        timeout_s: ngspice wall-clock limit (s).
        keep_raw: keep the bytes of ngspice's raw file.

    Returns:
        The TileResult (outputs at the ADC sample time, all ngspice vectors in
        `waveforms`) and the TransientRun to store beside it.
    """
    tran = tran or TranSpec()
    chosen = np.argwhere(np.ones((spec.rows, spec.cols), dtype=bool)) if cells is None else cells
    # On an ngspice failure the directory stays (the error names it); removed on
    # success and when interrupted (Ctrl-C, SIGTERM, a cancelled task).
    with run_directory("tran") as run_dir:
        result = solve_spice(spec, voltages, mode="tran", tran=tran, timeout_s=timeout_s, keep_dir=run_dir)
        raw = (run_dir / RAW_NAME).read_bytes() if keep_raw else None
    return result, TransientRun(tran, np.asarray(chosen, dtype=np.int64).reshape(-1, 2), raw)


@dataclass(frozen=True)
class TileTransient:
    """A transient read of one tile of a layer (`cosim simulate --transient`).

    Attributes:
        spec: the tile as it ran: the layer's tile with an op-amp TIA (same rs).
        voltages: (B, R) row input voltages, the tile's first input vectors (V).
        result: outputs at the ADC sample time and every ngspice vector.
        run: settings, stored cells (all) and ngspice's raw file.
        disturb: read-disturb report of every cell (cosim.analysis.disturb.DisturbReport).
    """

    spec: TileSpec
    voltages: np.ndarray
    result: TileResult
    run: TransientRun
    disturb: DisturbReport


def transient_tile_spec(spec: TileSpec, tia_kind: str = "opamp") -> TileSpec:
    """The tile a transient read runs: `spec` with a `tia_kind` TIA of the same
    rs (ohm), as `cosim tile --transient` defaults to, so TIA settling shows."""
    return spec.with_(tia=replace(spec.tia, kind=tia_kind))


def read_transient(spec: TileSpec, voltages: np.ndarray, tran: TranSpec | None = None,
                   threshold: float | None = None, timeout_s: float = 600.0,
                   stored: str = "all") -> TileTransient:
    """Run `spec` as a transient for row voltages (R,) or (B, R) (V), storing
    the states of the `stored` cells ('all', 'none' or 'i,j;i,j'), and report
    the read disturb of every cell (|dG/G| limit `threshold`, default
    cosim.analysis.disturb.DEFAULT_THRESHOLD)."""
    from cosim.analysis.disturb import DEFAULT_THRESHOLD, read_disturb
    from cosim.spice import nodenames

    v = spec.check_voltages(voltages)
    cells = parse_cells(stored, spec.rows, spec.cols)
    result, run = run_transient(spec, v, tran, cells, timeout_s=timeout_s)
    every = parse_cells("all", spec.rows, spec.cols)
    states = [np.column_stack([w[nodenames.state(i, j)] for i, j in every]) for w in result.waveforms]
    disturb = read_disturb(spec, v, [w["time"] for w in result.waveforms], states, every,
                           DEFAULT_THRESHOLD if threshold is None else threshold, timeout_s)
    return TileTransient(spec, v, result, run, disturb)
