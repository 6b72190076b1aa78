"""The tile plan of a layer: which matrices it puts on crossbars, how each is
cut into tiles and which engine solves each tile, decided in one place for
the layer simulation, the prepared tile cache and the dry run that only
lists tile names."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from cosim.core.tile import TileSpec
from cosim.mapping.partition import TileSlice, partition_matrix
from cosim.nets.loading import steps


@dataclass(frozen=True)
class PlannedTile:
    """One tile of a matrix: where it sits, its circuit and its engine.

    Attributes:
        slice: the rows (matrix inputs) and outputs it holds.
        spec: its circuit (conductances in S, the preset's wires, driver, access, TIA, DAC).
        engine: 'spice', 'fast' or 'ideal'.
    """

    slice: TileSlice
    spec: TileSpec
    engine: str


def engine_for(tile: TileSlice, engine: str, spice_max_tile: int) -> str:
    """The engine of one tile: `engine`, or with 'auto' SPICE for tiles of at
    most `spice_max_tile` rows and columns and the fast solver for the rest."""
    if engine != "auto":
        return engine
    return "spice" if tile.rows <= spice_max_tile and tile.cols <= spice_max_tile else "fast"


def matrix_tiles(label: str, n_in: int, n_out: int, tile: int, split: str) -> list[TileSlice]:
    """The tiles of matrix `label` with n_in inputs and n_out outputs (each output a pair of columns)."""
    return partition_matrix(n_in, n_out, tile, split, prefix=f"{label}.")


def step_name(name: str, module: nn.Module) -> str:
    """The name a layer step's matrices are labelled with (its Sequential name, or its class)."""
    return name or type(module).__name__.lower()


def layer_matrices(module: nn.Module) -> list[tuple[str, int, int]]:
    """(label, inputs, outputs) of every matrix the layer puts on crossbars, in
    forward order: a Linear's weight, each group of a Conv2d (`NAME.gK`, its
    im2col patches as inputs), each GRU layer's input and hidden matrices
    (`NAME.ih_lK`, `NAME.hh_lK`). No input is needed: the shapes are the weights'."""
    out = []
    for step in steps(module):
        if not step.analog:
            continue
        name, layer = step_name(step.name, step.module), step.module
        if isinstance(layer, nn.Linear):
            out.append((name, layer.in_features, layer.out_features))
        elif isinstance(layer, nn.Conv2d):
            per_group = layer.out_channels // layer.groups
            k_group = layer.in_channels // layer.groups * layer.kernel_size[0] * layer.kernel_size[1]
            labels = [name] if layer.groups == 1 else [f"{name}.g{g}" for g in range(layer.groups)]
            out += [(label, k_group, per_group) for label in labels]
        else:
            for k in range(layer.num_layers):
                n_in = layer.input_size if k == 0 else layer.hidden_size
                out += [(f"{name}.ih_l{k}", n_in, 3 * layer.hidden_size),
                        (f"{name}.hh_l{k}", layer.hidden_size, 3 * layer.hidden_size)]
    return out


def layer_tile_names(module: nn.Module, tile: int, split: str) -> list[str]:
    """Every tile name of the layer, in forward order, without solving anything."""
    return [t.name for label, n_in, n_out in layer_matrices(module) for t in matrix_tiles(label, n_in, n_out, tile, split)]
