"""What a layer simulation keeps: each tile's task and record, each analog
layer's outputs beside its float references, and the error measures (1, or
output units) they report."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from cosim.core.tile import TileSpec
from cosim.mapping.partition import TileSlice

if TYPE_CHECKING:
    from cosim.run.compensation import TileCompensation


@dataclass
class TileTask:
    """One tile and the input vectors it must answer (picklable for workers)."""

    name: str
    key: str
    tile: TileSlice
    spec: TileSpec
    voltages: np.ndarray
    engine: str
    timeout_s: float
    calibration: str | None = None
    spice: str = "ngspice"


@dataclass
class TileRecord:
    """What a run keeps of a tile."""

    name: str
    layer: str
    engine: str
    tile: TileSlice
    g_pos: np.ndarray
    g_neg: np.ndarray
    spec: TileSpec
    wall_s: float = 0.0
    vectors: int = 0
    netlist: str | None = None
    sample_voltages: np.ndarray | None = None
    sample_current: np.ndarray | None = None
    spot: dict[str, np.ndarray | float] | None = None
    fault_mask: np.ndarray | None = None  # (rows, cols) int8: 0 ok, 1 stuck HRS, 2 stuck LRS
    first_voltages: np.ndarray | None = None  # (N, rows) V: the first input vectors (keep_details)
    ideal_sq: list[float] | None = None  # [sum |I - I_ideal|^2, sum |I_ideal|^2] (A^2), keep_details
    compensation: "TileCompensation | None" = None  # what --compensate irdrop programmed (cosim.run.compensation)

    @property
    def ideal_rel_error(self) -> float | None:
        """||I - v_dac @ G|| / ||v_dac @ G|| over every vector the tile answered (1):
        what wires, drivers and access devices cost this tile (None unless kept)."""
        if self.ideal_sq is None:
            return None
        err, ref = self.ideal_sq
        return math.sqrt(err / ref) if ref > 0 else (0.0 if err == 0 else math.inf)


@dataclass
class LayerRecord:
    """One analog layer's output as the hardware computes it and as float
    PyTorch computes it from the same input (`reference`), and from the float
    chain of every earlier layer (`chain_reference`); same units as the layer."""

    name: str
    kind: str
    output: np.ndarray
    reference: np.ndarray
    chain_reference: np.ndarray

    @property
    def relative_error(self) -> float:
        """What this layer's hardware costs: output vs `reference` (`relative_error`)."""
        return relative_error(torch.from_numpy(self.output), torch.from_numpy(self.reference))

    @property
    def chain_relative_error(self) -> float:
        """What has accumulated up to this layer: output vs `chain_reference`."""
        return relative_error(torch.from_numpy(self.output), torch.from_numpy(self.chain_reference))

    @property
    def absolute_error(self) -> float:
        """||output - reference|| in the layer's units (all-zero weights leave no relative error)."""
        return absolute_error(torch.from_numpy(self.output), torch.from_numpy(self.reference))

    @property
    def chain_absolute_error(self) -> float:
        """||output - chain_reference|| in the layer's units."""
        return absolute_error(torch.from_numpy(self.output), torch.from_numpy(self.chain_reference))


def relative_error(value: torch.Tensor, reference: torch.Tensor) -> float:
    """||value - reference|| / ||reference|| (Frobenius)."""
    ref = float(torch.linalg.vector_norm(reference.double()))
    err = float(torch.linalg.vector_norm(value.double() - reference.double()))
    return err / ref if ref > 0 else (0.0 if err == 0 else math.inf)


def absolute_error(value: torch.Tensor, reference: torch.Tensor) -> float:
    """||value - reference|| (Frobenius), in the layer's output units: what is
    reported where ||reference|| = 0 (all-zero weights) leaves no relative error."""
    return float(torch.linalg.vector_norm(value.double() - reference.double()))


