"""A weight matrix on prepared tiles (`TileBank`): its rows of tiles
(`RowGroup`), how each tile is solved (`TileSolver`), as the prepared tile
cache (`cosim.twin.tilecache`) keeps them, and the memory budget of the
corrected 1T1R path (`CorrectedBudget`)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Union

import numpy as np
import torch

from cosim.core.tile import TileSpec
from cosim.fast.corrected import corrected_bytes
from cosim.fast.prepared import FastTile
from cosim.mapping.pairs import MappedMatrix
from cosim.mapping.partition import TileSlice


@dataclass(frozen=True)
class MatrixSolver:
    """A tile read as transfer matrices (S): the ideal engine (T = G) or a
    linear fast tile (`fast.LinearTile` with a transfer matrix).

    Attributes:
        engine: 'ideal' or 'fast' (sets the TIA gain factor, `_gain`).
        transfer: (R, C) transfer matrix (S), of positive reads when `transfer_neg` is set.
        transfer_neg: (R, C) transfer matrix of negative reads (S), or None.
    """

    engine: str
    transfer: np.ndarray
    transfer_neg: np.ndarray | None = None


@dataclass(frozen=True)
class PreparedSolver:
    """A fast tile that is no single matrix (Newton, or iterative chains): applied per batch."""

    tile: FastTile


@dataclass(frozen=True)
class SpiceSolver:
    """A tile simulated in SPICE at every matmul."""


#: How one tile of a RowGroup is solved.
TileSolver = Union[MatrixSolver, PreparedSolver, SpiceSolver]


@dataclass
class RowGroup:
    """The tiles of one matrix that share input rows (their outputs tile all columns).

    Attributes:
        rows: the matrix inputs on these tiles' rows.
        tiles: the tiles, in output order.
        specs: their TileSpecs.
        transfer: (rows, 2 * outputs) concatenated transfer matrices times
            `gain` (V/V: DAC volts to TIA volts) when every tile is linear, of
            positive reads when `transfer_neg` is set.
        transfer_neg: the same for negative reads (calibrated access), or None.
        solvers: per tile, how it is solved (`TileSolver`); empty once the
            tiles are concatenated into `transfer`.
        gain: TIA output per amp of column current, rs times its DC gain factor (V/A).
        transfer_t, transfer_neg_t: `transfer` and `transfer_neg` as torch
            tensors at the cache's precision (V/V), cast once, columns
            reordered: every positive device's column, then every negative
            one (outputs in order in each half).
    """

    rows: slice
    tiles: list[TileSlice]
    specs: list[TileSpec]
    transfer: np.ndarray | None = None
    transfer_neg: np.ndarray | None = None
    solvers: list[TileSolver] = field(default_factory=list)
    gain: float = 1.0
    transfer_t: torch.Tensor | None = None
    transfer_neg_t: torch.Tensor | None = None


@dataclass
class TileBank:
    """One weight matrix on prepared tiles.

    Attributes:
        weight: (outputs, inputs) weights it was programmed with.
        mapped: the conductance pairs (from `Simulation.map`).
        groups: one RowGroup per row of tiles.
        prepare_s: wall time of the preparation (s).
        folded: without an ADC, (inputs, outputs) transfer of the whole
            matrix, differential pairs subtracted (V/V; positive reads) and
            the same for negative reads or None; built on first use.
        stacked: (count, rows, T, T_neg) the leading `count` rows of tiles of
            `rows` inputs each as (count, rows, 2 * outputs) tensors (`_stack`), or None.
    """

    weight: np.ndarray
    mapped: MappedMatrix
    groups: list[RowGroup]
    prepare_s: float
    folded: tuple[torch.Tensor, torch.Tensor | None] | None = None
    stacked: tuple[int, int, torch.Tensor, torch.Tensor | None] | None = None

    @property
    def linear(self) -> bool:
        """Every row of tiles is one prepared transfer matrix (the torch path applies)."""
        return all(g.transfer_t is not None for g in self.groups)




#: Memory the corrected path's maps may take in one twin (bytes): 2 GiB, ~50
#: tiles of 128 x 128 (`cosim.fast.corrected.corrected_bytes`, 42 MiB each).
CORRECTED_BUDGET_BYTES = 2 * 2**30


@dataclass
class CorrectedBudget:
    """Which matrices of a twin get the corrected 1T1R path: each matrix's
    1T1R fast tiles while the maps of all of them stay within `budget`
    bytes, 'linear' (transfer matrices) for the matrices beyond it, with one
    warning. A full-width ResNet-18 (1425 tiles of 128) would need ~60 GB.

    Attributes:
        budget: bytes the maps may take in all.
        by_label: bytes of the maps of each matrix on the corrected path.
        warned: the warning was given.
    """

    budget: int = CORRECTED_BUDGET_BYTES
    by_label: dict[str, int] = field(default_factory=dict)
    warned: bool = False

    def mode_for(self, label: str, nonlinear: str, specs: list[TileSpec]) -> str:
        """The nonlinear mode of matrix `label`'s fast tiles `specs`:
        `nonlinear`, or 'linear' when it is 'corrected' and the maps would
        exceed the budget."""
        self.by_label.pop(label, None)
        if nonlinear != "corrected":
            return nonlinear
        need = sum(corrected_bytes(s.rows, s.cols) for s in specs if s.access == "nmos")
        if sum(self.by_label.values()) + need <= self.budget:
            self.by_label[label] = need
            return nonlinear
        if not self.warned:
            self.warned = True
            warnings.warn(f"{label}: the corrected 1T1R maps would exceed {self.budget / 2**30:.0f} GiB; this "
                          "and later matrices use nonlinear='linear' (small-signal transfer matrices)",
                          stacklevel=4)
        return "linear"
