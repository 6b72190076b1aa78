"""Partition a weight matrix into crossbar tiles (pure functions, no I/O).

A layer computing y = x @ W.T (W: outputs x inputs) maps inputs to rows and
each output to a differential pair of columns (g_pos, g_neg; seed 000 eq. 6),
so a tile of at most `tile` x `tile` devices holds at most `tile` inputs and
`tile // 2` outputs. Row tiles of one output block produce partial sums that
are added digitally.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cosim.core.errors import InputError

SPLITS = ("fixed", "balanced")


@dataclass(frozen=True)
class TileSlice:
    """Where one tile sits in its matrix.

    Attributes:
        name: tile name, unique within the layer, e.g. 'fc.r0c1'.
        row_start, row_stop: the matrix inputs on this tile's rows.
        out_start, out_stop: the matrix outputs on this tile's column pairs.
    """

    name: str
    row_start: int
    row_stop: int
    out_start: int
    out_stop: int

    @property
    def rows(self) -> int:
        """Device rows: the matrix inputs on this tile."""
        return self.row_stop - self.row_start

    @property
    def outputs(self) -> int:
        """Matrix outputs on this tile (one column pair each)."""
        return self.out_stop - self.out_start

    @property
    def cols(self) -> int:
        """Device columns: two per output (differential pair)."""
        return 2 * self.outputs


def split_sizes(n: int, max_size: int, split: str = "fixed") -> list[int]:
    """Sizes of consecutive blocks covering n items, each <= max_size.

    'fixed' fills blocks to max_size and leaves the remainder last;
    'balanced' uses as few blocks and makes them differ by at most one."""
    if n < 1 or max_size < 1:
        raise InputError(f"cannot split {n} items into blocks of at most {max_size}")
    if split not in SPLITS:
        raise InputError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    count = math.ceil(n / max_size)
    if split == "fixed":
        return [max_size] * (n // max_size) + ([n % max_size] if n % max_size else [])
    base, extra = divmod(n, count)
    return [base + 1] * extra + [base] * (count - extra)


def partition_matrix(n_inputs: int, n_outputs: int, tile: int, split: str = "fixed",
                     prefix: str = "") -> list[TileSlice]:
    """Tiles of at most tile x tile devices covering an n_outputs x n_inputs matrix."""
    if tile < 2:
        raise InputError(f"--tile must be at least 2 (one differential pair), got {tile}")
    row_sizes = split_sizes(n_inputs, tile, split)
    out_sizes = split_sizes(n_outputs, tile // 2, split)
    tiles = []
    row = 0
    for a, rows in enumerate(row_sizes):
        out = 0
        for b, outs in enumerate(out_sizes):
            tiles.append(TileSlice(f"{prefix}r{a}c{b}", row, row + rows, out, out + outs))
            out += outs
        row += rows
    return tiles
