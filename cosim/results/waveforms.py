"""HDF5 layout of a transient tile's waveforms, and reading them back as
named signals with units.

Inside a tile group (the root of a `cosim tile` file, or `tiles/<name>` of
RUN.h5)::

    waveforms/                    attrs: layout, vectors, t_stop, t_step, t_sample,
                                         [t_max_step], dac_delay, dac_rise (s)
        state_cells   (K, 2) int  (row, column) of each stored device state
        ngspice_raw   opaque      ngspice's binary raw file, one Transient plot per vector
        vector_<b>/               input vector b (every dataset has attrs units,
                                  name_format, index, description)
            time      (T,)        s
            row_near  (T, R)      V    row line at its driver end (column 0)
            row_far   (T, R)      V    row line at its far end (column C-1)
            dac       (T, R)      V    DAC output before r_driver (only if r_driver > 0)
            current   (T, C)      A    current into each column's TIA
            vout      (T, C)      V    TIA outputs
            adc_code  (T, C)      LSB  ADC codes (only with ADCs)
            state     (T, K)      1    VTEAM state x of the cells in state_cells

In RUN.h5 (`cosim simulate --transient NAME`) the tile group also gets
`conductance` (R, C) S and `voltage` (B, R) V (the transient's inputs, so
`cosim.results.store.read_tile_spec` works on it; its `config` attr stays the
layer's tile, with the preset's TIA), `read_disturb` (cosim.analysis.disturb), and
in `waveforms/`: attr `tile_config` (JSON of the tile as the transient ran
it: the layer's tile with an op-amp TIA of the same rs), `netlist` (the
transient's ngspice netlist), `sampled_current` (B, C) A and `sampled_vout`
(B, C) V (outputs at the ADC sample instant).

Signal names (for `cosim waves`): `row{i}.v_near`, `row{i}.v_far`,
`row{i}.v_dac`, `col{j}.current`, `col{j}.vout`, `col{j}.adc_code`,
`cell{i}_{j}.x` and, derived from x, `cell{i}_{j}.g` (S).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import h5py
import numpy as np

from cosim.core import vteam
from cosim.core.config import VteamParams, from_dict
from cosim.core.errors import InputError
from cosim.core.tile import TileSpec
from cosim.results import h5check
from cosim.spice import nodenames

if TYPE_CHECKING:
    from cosim.analysis.transient import TileTransient, TransientRun

LAYOUT = "cosim-waveforms-1"


@dataclass(frozen=True)
class Series:
    """One dataset of a vector group: a family of signals sharing units.

    Attributes:
        key: dataset name.
        name_format: signal name, formatted with i (row) and/or j (column).
        units: units of the values ('V', 'A', 'LSB', '1').
        index: what the second axis counts: 'row', 'column' or 'cell'.
        description: one line for `--list`.
    """

    key: str
    name_format: str
    units: str
    index: str
    description: str


SERIES = (
    Series("row_near", "row{i}.v_near", "V", "row", "row line at its driver end (column 0)"),
    Series("row_far", "row{i}.v_far", "V", "row", "row line at its far end (last column)"),
    Series("dac", "row{i}.v_dac", "V", "row", "DAC output, before the driver resistance"),
    Series("current", "col{j}.current", "A", "column", "current into the column's TIA"),
    Series("vout", "col{j}.vout", "V", "column", "TIA output voltage"),
    Series("adc_code", "col{j}.adc_code", "LSB", "column", "ADC output code"),
    Series("state", "cell{i}_{j}.x", "1", "cell", "VTEAM state x (0 = r_on, 1 = r_off)"),
)
#: Derived from `state`: the device conductance 1/R(x).
CONDUCTANCE = Series("state", "cell{i}_{j}.g", "S", "cell", "device conductance 1/R(x)")


def _vector_names(spec: TileSpec, cells: np.ndarray) -> dict[str, list[str] | None]:
    """ngspice vector of each signal of each series; None where the tile lacks it."""
    rows, cols = range(spec.rows), range(spec.cols)
    return {
        "row_near": [nodenames.row_node(spec, i, 0) for i in rows],
        "row_far": [nodenames.row_node(spec, i, spec.cols - 1) for i in rows],
        "dac": [nodenames.dac_out(spec, i) for i in rows] if spec.r_driver > 0 else None,
        "current": [nodenames.column_current(j) for j in cols],
        "vout": [nodenames.tia_out(j) for j in cols],
        "adc_code": [nodenames.adc_code(j) for j in cols] if spec.adc.bits is not None else None,
        "state": [nodenames.state(int(i), int(j)) for i, j in cells],
    }


def write_waveforms(group: h5py.Group, spec: TileSpec, waveforms: list[dict[str, np.ndarray]],
                    transient: TransientRun | None = None) -> h5py.Group:
    """Write the transient `waveforms` (one dict of ngspice vectors per input
    vector, with `time`) into `group/waveforms` (layout in the module doc).

    `transient` gives the settings, the cells whose states are kept (default
    all) and ngspice's raw file.
    """
    cells = (np.argwhere(np.ones((spec.rows, spec.cols), dtype=bool)) if transient is None
             else np.asarray(transient.cells, dtype=np.int64).reshape(-1, 2))
    root = group.create_group("waveforms")
    root.attrs["layout"] = LAYOUT
    root.attrs["vectors"] = len(waveforms)
    root.attrs["dac_delay"] = spec.dac.delay
    root.attrs["dac_rise"] = spec.dac.rise
    if transient is not None:
        tran = transient.tran
        for key in ("t_stop", "t_step", "t_sample", "t_max_step"):
            if getattr(tran, key) is not None:
                root.attrs[key] = getattr(tran, key)
    root.create_dataset("state_cells", data=cells).attrs["columns"] = "row, column (0-based)"
    if transient is not None and transient.raw is not None:
        raw = root.create_dataset("ngspice_raw", data=np.void(transient.raw))
        raw.attrs["format"] = "ngspice binary raw file, one Transient plot per input vector"
    names = _vector_names(spec, cells)
    for b, vectors in enumerate(waveforms):
        vec = root.create_group(f"vector_{b}")
        time = vec.create_dataset("time", data=vectors["time"])
        time.attrs["units"] = "s"
        for series in SERIES:
            wanted = names[series.key]
            if wanted is None:
                continue
            data = np.column_stack([vectors[n] for n in wanted]) if wanted else np.zeros((len(time), 0))
            if series.key == "adc_code":
                data = np.rint(data).astype(np.int64)
            ds = vec.create_dataset(series.key, data=data)
            ds.attrs.update({"units": series.units, "name_format": series.name_format,
                             "index": series.index, "description": series.description})
    return root


def write_tile_transient(group: h5py.Group, transient: TileTransient, tile_config: str) -> h5py.Group:
    """A `cosim simulate --transient` tile into its RUN.h5 group: conductance
    (S) and voltage (V) if absent, waveforms (with `tile_config`, the JSON of
    the tile as it ran, and the sampled outputs) and the read-disturb report."""
    from cosim.results.disturb_io import write_disturb

    spec = transient.spec
    if "conductance" not in group:
        group.create_dataset("conductance", data=spec.conductance).attrs["units"] = "S"
    if "voltage" not in group:
        group.create_dataset("voltage", data=transient.voltages).attrs["units"] = "V"
    root = write_waveforms(group, spec, transient.result.waveforms, transient.run)
    root.attrs["tile_config"] = tile_config
    if transient.result.netlist:
        root.create_dataset("netlist", data=transient.result.netlist, dtype=h5py.string_dtype())
    root.create_dataset("sampled_current", data=transient.result.current).attrs["units"] = "A"
    root.create_dataset("sampled_vout", data=transient.result.vout).attrs["units"] = "V"
    write_disturb(group, transient.disturb)
    return root


# ------------------------------------------------------------------ reading


@dataclass(frozen=True)
class Signal:
    """One waveform: `values` (T,) in `units`, sampled at the vector's time (s)."""

    name: str
    units: str
    description: str
    values: np.ndarray


def find_tile_group(h5: h5py.File, name: str | None = None) -> h5py.Group:
    """The tile group of a `cosim tile` file (the root; `name` optional) or
    `tiles/<name>` of RUN.h5 (`name` optional when one tile has waveforms)."""
    if h5check.has(h5, "conductance"):
        return h5
    tiles = h5check.group(h5, "tiles", required=False)
    members = h5check.names(tiles) if tiles is not None else []
    if not members:
        raise InputError(f"{h5.filename} holds no tile (no conductance at the root, no tiles/ group or an "
                         "empty one); give a file written by cosim tile or cosim simulate")
    if name is not None:
        if name not in members:
            raise InputError(f"no tile {name!r} in {h5.filename}; tiles: {_listing(members)}")
        return h5check.group(tiles, name)
    with_waves = [key for key in members if h5check.has(h5check.group(tiles, key), "waveforms")]
    if len(with_waves) == 1:
        return h5check.group(tiles, with_waves[0])
    choices = with_waves or members
    raise InputError(f"{h5.filename} has {len(choices)} tiles{' with waveforms' if with_waves else ''}; "
                     f"pick one with --tile NAME: {_listing(choices)}")


def _listing(names: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(repr(n) if not n.isprintable() else n for n in names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def tile_label(group: h5py.Group) -> str:
    """How messages name a tile group: its path in RUN.h5, or the file of a `cosim tile` result."""
    return Path(group.file.filename).name if group.name == "/" else group.name.lstrip("/")


def waveforms_group(group: h5py.Group) -> h5py.Group:
    """`waveforms/` of a tile group, or one line saying the tile has none."""
    if not h5check.has(group, "waveforms"):
        raise InputError(f"tile {tile_label(group)} has no waveforms; run it as a transient "
                         "(cosim tile --transient, or cosim simulate --transient TILE)")
    return h5check.group(group, "waveforms")


def vector_count(group: h5py.Group) -> int:
    """How many input vectors a tile's waveforms hold (attr `vectors`, each
    with its `vector_<b>` group); one line for an empty or inconsistent group."""
    root = waveforms_group(group)
    count = h5check.number(root, "vectors", integer=True, low=0, required=False, default=0)
    stored = [k for k in h5check.names(root) if k.startswith("vector_")]
    if count == 0 or not stored:
        raise h5check.problem(root, "holds no input vector (the waveforms group is empty)",
                              "run the tile as a transient again (cosim tile --transient, or cosim simulate "
                              "--transient TILE)")
    return count


def vector_group(group: h5py.Group, vector: int = 0) -> h5py.Group:
    """`waveforms/vector_<vector>` of a tile group, or one line on what is missing."""
    count = vector_count(group)
    if not 0 <= vector < count:
        raise InputError(f"tile {tile_label(group)} has waveforms of input vectors 0..{count - 1}, not {vector}")
    return h5check.group(waveforms_group(group), f"vector_{vector}")


def tile_shape(group: h5py.Group) -> tuple[int, int]:
    """(rows, cols) of a tile group: attrs `rows` and `cols` (checked against
    the conductance dataset's shape where there is one)."""
    rows = h5check.number(group, "rows", integer=True, low=1)
    cols = h5check.number(group, "cols", integer=True, low=1)
    if h5check.has(group, "conductance"):
        shape = h5check.member(group, "conductance", "dataset").shape
        if shape != (rows, cols):
            raise h5check.problem(group, f"attrs rows x cols {rows}x{cols} do not match its conductance "
                                  f"dataset of shape {shape}")
    return rows, cols


def state_cells(group: h5py.Group) -> np.ndarray:
    """(K, 2) (row, column) of the cells whose states a tile's waveforms keep, inside the tile."""
    rows, cols = tile_shape(group)
    cells = h5check.array(waveforms_group(group), "state_cells", kinds="iu", shape=(None, 2))
    inside = (cells[:, 0] >= 0) & (cells[:, 0] < rows) & (cells[:, 1] >= 0) & (cells[:, 1] < cols)
    if not np.all(inside):
        bad = cells[int(np.argmin(inside))]
        raise h5check.problem(waveforms_group(group), f"state_cells names cell ({bad[0]}, {bad[1]}) outside the "
                              f"{rows}x{cols} tile")
    return cells.astype(np.int64)


def sample_time(group: h5py.Group) -> float | None:
    """The ADC sample instant of a tile's waveforms (attr `t_sample`, s), None if absent."""
    return h5check.number(waveforms_group(group), "t_sample", required=False, low=0.0)


def _signal_names(series: Series, count: int, cells: np.ndarray) -> list[str]:
    if series.index == "row":
        return [series.name_format.format(i=k) for k in range(count)]
    if series.index == "column":
        return [series.name_format.format(j=k) for k in range(count)]
    return [series.name_format.format(i=int(i), j=int(j)) for i, j in cells]


def _vector_time(vec: h5py.Group) -> np.ndarray:
    return h5check.array(vec, "time", shape=(None,), min_size=1, what="s")


def _families(group: h5py.Group, vector: int) -> list[tuple[Series, list[str], Callable[[], np.ndarray]]]:
    """(series, signal names, loader of the (T, N) values) of every stored
    family, in layout order; dtypes and shapes are checked here (T time
    points; N rows, columns or stored cells), values when loaded."""
    vec = vector_group(group, vector)
    rows, cols = tile_shape(group)
    cells = state_cells(group)
    time = h5check.member(vec, "time", "dataset")
    if len(time.shape) != 1 or time.shape[0] < 1:
        _vector_time(vec)  # one line on the shape
    points = time.shape[0]
    out = []
    for series in SERIES:
        if not h5check.has(vec, series.key):
            continue
        width = {"row": rows, "column": cols, "cell": len(cells)}[series.index]
        kinds = "iuf" if series.key == "adc_code" else "f"
        ds = h5check.member(vec, series.key, "dataset")
        if ds.shape != (points, width):
            raise h5check.problem(vec, f"dataset {series.key!r} has shape {ds.shape}, expected ({points}, {width}) "
                                  f"({points} time points by {width} {series.index}s)")

        def load(key: str = series.key, kinds: str = kinds) -> np.ndarray:
            """The series' samples, (time points, signals), in its unit (V, A, LSB, or state x)."""
            return h5check.array(vec, key, kinds=kinds, shape=(points, None)).astype(float)

        out.append((series, _signal_names(series, width, cells), load))
        if series.key == "state":
            def conductance(load: Callable[[], np.ndarray] = load) -> np.ndarray:
                """Device conductances (S), (time points, cells), from the stored VTEAM states."""
                return vteam.conductance(load(), device_params(group))

            out.append((CONDUCTANCE, _signal_names(CONDUCTANCE, width, cells), conductance))
    return out


def device_params(group: h5py.Group) -> VteamParams:
    """The VTEAM parameters in a tile group's `config` attr (JSON), every field checked."""
    config = h5check.json_attr(group, "config", dict)
    if "device" not in config:
        raise h5check.problem(group, "attribute 'config' has no device parameters (key 'device')")
    try:
        return from_dict(VteamParams, config["device"], f"{h5check.where(group)} attribute config", "device.")
    except InputError as exc:
        raise InputError(f"{exc}; {h5check.FIX}") from None


def signal_table(group: h5py.Group, vector: int = 0) -> list[tuple[str, str, str]]:
    """(name, units, description) of every signal of a tile's waveforms."""
    return [(name, series.units, series.description)
            for series, names, _ in _families(group, vector) for name in names]


def read_signals(group: h5py.Group, patterns: Sequence[str],
                 vector: int = 0) -> tuple[np.ndarray, list[Signal]]:
    """Time (s) and the signals whose names match any glob pattern (fnmatch,
    case-sensitive), in layout order. A pattern matching nothing is an InputError."""
    time = _vector_time(vector_group(group, vector))
    unmatched = list(patterns)
    signals: list[Signal] = []
    for series, names, load in _families(group, vector):
        hits = [k for k, name in enumerate(names) if any(fnmatch.fnmatchcase(name, p) for p in patterns)]
        if not hits:
            continue
        unmatched = [p for p in unmatched if not any(fnmatch.fnmatchcase(names[k], p) for k in hits)]
        values = load()
        signals += [Signal(names[k], series.units, series.description, values[:, k]) for k in hits]
    if unmatched:
        raise InputError(f"signal pattern {unmatched[0]!r} matches no signal of tile {tile_label(group)}; "
                         "list them with cosim waves FILE --list (patterns are globs, e.g. 'col*.vout')")
    return time, signals


def plain_text(text: object) -> str:
    """A user string (tile, layer or file name) made literal for matplotlib:
    every `$` escaped, so mathtext never parses it."""
    return str(text).replace("$", r"\$")
