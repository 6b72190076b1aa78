"""HDF5 output: written to a temporary file beside the target and renamed
into place, so a run that dies never leaves a half-written file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from cosim import h5check
from cosim.config import (ACCESS_KINDS, AdcSpec, DacSpec, NmosAccess, Rule, TiaSpec, VteamParams, from_dict,
                          json_kind, to_dict)
from cosim.engines import TileResult
from cosim.errors import InputError
from cosim.tile import TileSpec
from cosim.transient import TransientRun
from cosim.waveforms import write_tile_transient, write_waveforms


def check_output_path(path: Path | str) -> Path:
    """Refuse (one line) an output file that names a directory, or whose
    directory is missing or not writable (`cosim.atomic.check_output_file`)."""
    from cosim.atomic import check_output_file

    return check_output_file(path)


@contextmanager
def atomic_h5(path: Path | str) -> Iterator[h5py.File]:
    """Open `path` for writing; it appears only if the block completes.

    The file is built in memory (HDF5's core driver, no backing store) and
    written out in one go through `cosim.atomic`: HDF5 meets no disk error
    itself (a failing HDF5 close on a full disk leaves its library in a state
    that crashes later), and a failed write of the image removes the
    temporary and ends in one line."""
    from cosim.atomic import atomic_write_bytes, check_output_file

    target = check_output_file(path)
    handle = h5py.File(target, "w", driver="core", backing_store=False, block_size=1 << 20)
    try:
        yield handle
        handle.flush()
        image = handle.id.get_file_image()
    finally:
        handle.close()
    atomic_write_bytes(target, image)


def tile_config(spec: TileSpec) -> dict[str, Any]:
    """Every setting of a tile except its conductances, as JSON-ready data."""
    return {"name": spec.name, "rows": spec.rows, "cols": spec.cols, "r_wire": spec.r_wire,
            "r_driver": spec.r_driver, "access": spec.access, "nmos": to_dict(spec.nmos),
            "device": to_dict(spec.device), "tia": to_dict(spec.tia), "dac": to_dict(spec.dac),
            "adc": to_dict(spec.adc)}


def write_tile_group(group: h5py.Group, spec: TileSpec, voltages: np.ndarray, result: TileResult,
                     transient: TransientRun | None = None) -> None:
    """A tile's inputs, conductances, outputs, netlist and waveforms into `group`
    (waveforms: see `cosim.waveforms.write_waveforms`; `transient` chooses
    the stored states and carries ngspice's raw file)."""
    group.attrs["engine"] = result.engine
    group.attrs["rows"] = spec.rows
    group.attrs["cols"] = spec.cols
    group.attrs["config"] = json.dumps(tile_config(spec))
    group.attrs["wall_s"] = result.wall_s
    group.create_dataset("conductance", data=spec.conductance).attrs["units"] = "S"
    group.create_dataset("voltage", data=spec.check_voltages(voltages)).attrs["units"] = "V"
    group.create_dataset("current", data=result.current).attrs["units"] = "A"
    group.create_dataset("vout", data=result.vout).attrs["units"] = "V"
    if result.adc_code is not None:
        group.create_dataset("adc_code", data=result.adc_code).attrs["units"] = "LSB"
    if result.netlist is not None:
        group.create_dataset("netlist", data=result.netlist, dtype=h5py.string_dtype())
    if result.log is not None:
        group.create_dataset("spice_log", data=result.log, dtype=h5py.string_dtype())
    if result.waveforms:
        write_waveforms(group, spec, result.waveforms, transient)


#: Keys of a tile `config` attribute (`tile_config`), each required.
TILE_CONFIG_KEYS = ("name", "rows", "cols", "r_wire", "r_driver", "access", "nmos", "device", "tia", "dac", "adc")
#: The config sections of a tile and their dataclasses.
TILE_PARTS = {"nmos": NmosAccess, "device": VteamParams, "tia": TiaSpec, "dac": DacSpec, "adc": AdcSpec}
#: Largest tile read back (devices); cosim's own tiles stop far below (README: 1024 x 1024).
MAX_TILE_DEVICES = 4096 * 4096
_TILE_SCALARS = {"rows": Rule("integer", "", 1, None), "cols": Rule("integer", "", 1, None),
                 "r_wire": Rule("number", "ohm", 0.0), "r_driver": Rule("number", "ohm", 0.0),
                 "access": Rule("string", choices=ACCESS_KINDS), "name": Rule("string", max_len=1000)}


def read_tile_spec(group: h5py.Group, as_run: bool = True) -> TileSpec:
    """The TileSpec a tile group was written from (its `config` attr and
    conductances, `group_conductance`); for a tile of `cosim simulate
    --transient` with `as_run`, the tile as the transient ran it (`waveforms`
    attr `tile_config`: the op-amp TIA), else the layer's tile.

    Everything is checked before a TileSpec exists (the file may come from
    anyone): the config is a JSON object with exactly the keys of
    `tile_config`, every field is of its type and range (`cosim.config`
    rules: numbers finite, strings from their allowlists), rows and cols match
    the conductances, which are real, finite, > 0 floats. One line otherwise."""
    if not h5check.has(group, "conductance") and not h5check.has(group, "g_pos"):
        raise h5check.problem(group, "is not a cosim tile (no conductance or g_pos dataset)")
    key, holder = "config", group
    if as_run:
        waves = h5check.group(group, "waveforms", required=False)
        if waves is not None and "tile_config" in waves.attrs:
            key, holder = "tile_config", waves
    config = h5check.json_attr(holder, key, dict)
    check_tile_config(config, f"{h5check.where(holder)} attribute {key}")
    conductance = group_conductance(group, config["rows"], config["cols"])
    return spec_from_config(config, conductance, f"{h5check.where(holder)} attribute {key}")


def check_tile_config(config: dict, where: str) -> None:
    """One line unless `config` has exactly the tile_config keys, each of its
    type and range (sections are checked by `spec_from_config`)."""
    missing = [k for k in TILE_CONFIG_KEYS if k not in config]
    unknown = sorted(str(k) for k in config if k not in TILE_CONFIG_KEYS)
    if missing or unknown:
        what = (f"lacks {', '.join(missing)}" if missing else "") + ("; " if missing and unknown else "") + (
            f"has unknown field(s) {', '.join(unknown)[:120]}" if unknown else "")
        raise InputError(f"{where} {what}; {h5check.FIX}")
    for field, rule in _TILE_SCALARS.items():
        reason = rule.problem(config[field])
        if reason:
            raise InputError(f"{where}: {field} {reason}; {h5check.FIX}")
    if config["rows"] * config["cols"] > MAX_TILE_DEVICES:
        raise InputError(f"{where}: a {config['rows']}x{config['cols']} tile is larger than cosim reads back "
                         f"({MAX_TILE_DEVICES} devices); {h5check.FIX}")


def group_conductance(group: h5py.Group, rows: int | None = None, cols: int | None = None) -> np.ndarray:
    """(R, C) device conductances of a tile group (S): `conductance`, or a RUN.h5
    tile's `g_pos` and `g_neg` (R, outputs) interleaved as columns 2k and 2k + 1;
    real, finite and > 0 (checked), of shape (rows, cols) where given."""
    if h5check.has(group, "conductance"):
        return h5check.array(group, "conductance", shape=(rows, cols), positive=True, what="S")
    if cols is not None and cols % 2:
        raise h5check.problem(group, f"a tile of g_pos/g_neg pairs must have an even number of columns, got {cols}")
    half = None if cols is None else cols // 2
    g_pos = h5check.array(group, "g_pos", shape=(rows, half), positive=True, what="S")
    g_neg = h5check.array(group, "g_neg", shape=g_pos.shape, positive=True, what="S")
    g = np.empty((g_pos.shape[0], 2 * g_pos.shape[1]))
    g[:, 0::2], g[:, 1::2] = g_pos, g_neg
    return g


def spec_from_config(config: str | dict, conductance: np.ndarray, where: str = "tile") -> TileSpec:
    """The TileSpec of a `tile_config` (JSON text or its dict) and its (R, C)
    conductances (S), every field checked (`check_tile_config`, the config
    dataclasses' rules); `where` names the source in the one-line messages."""
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except (ValueError, RecursionError) as exc:
            raise InputError(f"{where} is not JSON ({str(exc).splitlines()[0][:80]}); {h5check.FIX}") from None
    if not isinstance(config, dict):
        raise InputError(f"{where} must be a JSON object {{...}}, got {json_kind(config)}; {h5check.FIX}")
    check_tile_config(config, where)
    if np.shape(conductance) != (config["rows"], config["cols"]):
        raise InputError(f"{where}: rows x cols {config['rows']}x{config['cols']} do not match the "
                         f"conductances of shape {np.shape(conductance)}; {h5check.FIX}")
    try:
        parts = {key: from_dict(cls, config[key], where, f"{key}.") for key, cls in TILE_PARTS.items()}
    except InputError as exc:
        raise InputError(f"{exc}; {h5check.FIX}") from None
    return TileSpec(conductance, r_wire=config["r_wire"], r_driver=config["r_driver"],
                    access=config["access"], name=config["name"], **parts)


def write_run(h5: h5py.File, inputs: np.ndarray, outputs: np.ndarray, ideal: np.ndarray,
              records: dict, attrs: dict[str, object], layers: dict | None = None) -> None:
    """A `cosim simulate` run: root datasets inputs/outputs/ideal, one group per
    tile under tiles/ (attrs engine, rows, cols; g_pos, g_neg in S; netlist
    text for ngspice tiles; spot-check errors; when kept: attr ideal_rel_error,
    sample_voltage (N, R) V, transient waveforms), one group per analog layer
    under layers/ (see `write_layers`), root attrs (config, versions, command)."""
    h5.create_dataset("inputs", data=inputs)
    h5.create_dataset("outputs", data=outputs)
    h5.create_dataset("ideal", data=ideal)
    for key, value in attrs.items():
        h5.attrs[key] = value
    tiles = h5.create_group("tiles")
    strings = h5py.string_dtype()
    for name, record in records.items():
        group = tiles.create_group(name.replace("/", "_"))
        group.attrs.update({"engine": record.engine, "rows": record.tile.rows, "cols": record.tile.cols,
                            "layer": record.layer, "row_start": record.tile.row_start,
                            "out_start": record.tile.out_start, "outputs": record.tile.outputs,
                            "wall_s": record.wall_s, "vectors": record.vectors,
                            "config": json.dumps(tile_config(record.spec))})
        group.create_dataset("g_pos", data=record.g_pos).attrs["units"] = "S"
        group.create_dataset("g_neg", data=record.g_neg).attrs["units"] = "S"
        if record.netlist:
            group.create_dataset("netlist", data=record.netlist, dtype=strings)
        if getattr(record, "fault_mask", None) is not None:
            group.create_dataset("fault_mask", data=record.fault_mask).attrs["codes"] = "0 ok, 1 stuck HRS, 2 stuck LRS"
        if record.spot:
            spot = group.create_group("spot_check")
            spot.attrs["max_rel_error"] = record.spot["max_rel_error"]
            spot.attrs["mean_rel_error"] = record.spot["mean_rel_error"]
            spot.create_dataset("column_rel_error", data=record.spot["column_rel_error"])
            spot.create_dataset("voltage", data=record.sample_voltages).attrs["units"] = "V"
            spot.create_dataset("current", data=record.sample_current).attrs["units"] = "A"
            spot.create_dataset("spice_current", data=record.spot["spice_current"]).attrs["units"] = "A"
            spot.create_dataset("netlist", data=record.spot["netlist"], dtype=strings)
        if getattr(record, "ideal_rel_error", None) is not None:
            group.attrs["ideal_rel_error"] = record.ideal_rel_error
        if getattr(record, "first_voltages", None) is not None:
            group.create_dataset("sample_voltage", data=record.first_voltages).attrs["units"] = "V"
        if getattr(record, "transient", None) is not None:
            write_tile_transient(group, record.transient, json.dumps(tile_config(record.transient.spec)))
    if layers:
        write_layers(h5, layers)


def write_layers(h5: h5py.File, layers: dict) -> None:
    """layers/<name>: `output` (co-simulated), `reference` (float PyTorch on
    the same input), `chain_reference` (float PyTorch of the whole chain so
    far), in the layer's units; attrs kind, relative_error (output vs
    reference) and chain_relative_error (output vs chain_reference), and
    absolute_error, chain_absolute_error (the same norms, unnormalised)."""
    root = h5.create_group("layers")
    root.attrs["order"] = json.dumps(list(layers))
    for name, layer in layers.items():
        group = root.create_group(name.replace("/", "_"))
        group.attrs["kind"] = layer.kind
        for key in ("output", "reference", "chain_reference"):
            group.create_dataset(key, data=getattr(layer, key))
        group.attrs["relative_error"] = layer.relative_error
        group.attrs["chain_relative_error"] = layer.chain_relative_error
        group.attrs["absolute_error"] = layer.absolute_error  # layer units; what a zero layer reports
        group.attrs["chain_absolute_error"] = layer.chain_absolute_error
