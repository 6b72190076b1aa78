"""A RUN.h5 read back for the report: opened and checked, its config, its
tiles as checked records and its run-level numbers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py

from cosim.core.config import json_kind
from cosim.core.errors import InputError, first_line
from cosim.results import h5check
from cosim.results.tile_specs import read_tile_spec

#: What a message about a run file ends with.
RUN_FIX = "make a run file with cosim simulate"


#: Engines a RUN.h5 tile may name.
TILE_ENGINES = ("spice", "fast", "ideal")


def open_run(path: Path | str) -> h5py.File:
    """RUN.h5 opened read-only, or one line saying why it is not a cosim run file."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p} does not exist; give a RUN.h5 written by cosim simulate")
    try:
        h5 = h5py.File(p, "r")
    except OSError as exc:
        detail = first_line(exc, fallback="").replace("Unable to synchronously open file ", "")[:100]
        raise InputError(f"{p} is not an HDF5 file {detail}; give a RUN.h5 written by cosim simulate") from None
    try:
        missing = [key for key in ("inputs", "outputs", "ideal", "tiles") if not h5check.has(h5, key)]
        if missing or "config" not in h5.attrs:
            what = ", ".join(missing) if missing else "the config attribute"
            raise InputError(f"{p} is not a cosim run file (it lacks {what}); {RUN_FIX}")
        h5check.group(h5, "tiles")
        run_config(h5)
    except BaseException:
        h5.close()
        raise
    return h5


def run_config(h5: h5py.File) -> dict:
    """The run's config JSON (root attr `config`) as a dict; its `preset` and
    `options` entries, where present, are JSON objects."""
    config = h5check.json_attr(h5, "config", dict)
    for key in ("preset", "options"):
        if key in config and not isinstance(config[key], dict):
            raise h5check.problem(h5, f"attribute 'config': {key} must be a JSON object {{...}}, got "
                                  f"{json_kind(config[key])}")
    return config


def tile_spec(group: h5py.Group):
    """The TileSpec of a RUN.h5 tile group as the layer has it (`cosim.results.store.read_tile_spec`),
    checked against the group's rows and cols."""
    spec = read_tile_spec(group, as_run=False)
    rows = h5check.number(group, "rows", integer=True, low=1)
    cols = h5check.number(group, "cols", integer=True, low=1)
    if (spec.rows, spec.cols) != (rows, cols):
        raise h5check.problem(group, f"attrs rows x cols {rows}x{cols} do not match its config and "
                              f"conductances ({spec.rows}x{spec.cols})")
    return spec


@dataclass(frozen=True)
class TileInfo:
    """What the page shows of one RUN.h5 tile, read and checked from `tiles/<name>`.

    Attributes:
        name: group name under tiles/.
        group: the HDF5 group.
        engine: 'spice', 'fast' or 'ideal'.
        rows, cols: devices (cols counts both columns of each pair).
        layer: the layer label.
        row_start, out_start: where the tile sits in its layer's matrix.
        error: ||I - v_dac @ G|| / ||v_dac @ G|| (1), None where not kept.
        spot: (max, mean relative error, vectors) of its spot check, or None.
        has_sample: it kept its first input vectors (`sample_voltage`).
        has_waves: it was read as a transient (`waveforms/`).
    """

    name: str
    group: h5py.Group
    engine: str
    rows: int
    cols: int
    layer: str
    row_start: int
    out_start: int
    error: float | None
    spot: tuple[float, float, int] | None
    has_sample: bool
    has_waves: bool


def read_tile(tiles: h5py.Group, name: str) -> TileInfo:
    """One tile group's attributes (and spot-check figures), checked."""
    group = h5check.group(tiles, name)
    rows = h5check.number(group, "rows", integer=True, low=1)
    spot = None
    spot_group = h5check.group(group, "spot_check", required=False)
    if spot_group is not None:
        voltage = h5check.array(spot_group, "voltage", shape=(None, rows), min_size=1, what="V")
        spot = (h5check.number(spot_group, "max_rel_error", finite=False, low=0.0),
                h5check.number(spot_group, "mean_rel_error", finite=False, low=0.0), int(voltage.shape[0]))
    return TileInfo(name, group, h5check.text(group, "engine", choices=TILE_ENGINES), rows,
                    h5check.number(group, "cols", integer=True, low=1), h5check.text(group, "layer"),
                    h5check.number(group, "row_start", integer=True, low=0),
                    h5check.number(group, "out_start", integer=True, low=0),
                    h5check.number(group, "ideal_rel_error", required=False, finite=False, low=0.0), spot,
                    h5check.has(group, "sample_voltage"), h5check.has(group, "waveforms"))


def read_tiles(h5: h5py.File) -> dict[str, TileInfo]:
    """Every tile of the run, in the order they were written, checked."""
    tiles = h5check.group(h5, "tiles")
    return {name: read_tile(tiles, name) for name in h5check.names(tiles)}


def run_numbers(h5: h5py.File) -> dict[str, float | None]:
    """The run's error attributes (relative errors may be inf; absent ones None)."""
    keys = ("relative_error", "converters_only_relative_error", "absolute_error", "converters_only_absolute_error")
    return {key: h5check.number(h5, key, required=False, finite=False, low=0.0) for key in keys}


