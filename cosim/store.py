"""HDF5 output: written to a temporary file beside the target and renamed
into place, so a run that dies never leaves a half-written file."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from cosim.config import AdcSpec, DacSpec, NmosAccess, TiaSpec, VteamParams, from_dict, to_dict
from cosim.engines import TileResult
from cosim.errors import InputError
from cosim.tile import TileSpec
from cosim.transient import TransientRun
from cosim.waveforms import write_tile_transient, write_waveforms


def check_output_path(path: Path | str) -> Path:
    """Refuse (one line) an output file whose directory does not exist."""
    target = Path(path)
    if not target.parent.is_dir():
        raise InputError(f"cannot write {target}: directory {target.parent} does not exist; create it first")
    return target


@contextmanager
def atomic_h5(path: Path | str) -> Iterator[h5py.File]:
    """Open `path` for writing; it appears only if the block completes."""
    target = check_output_path(path)
    tmp = target.with_name(f".{target.name}.partial-{os.getpid()}")
    handle = h5py.File(tmp, "w")
    try:
        yield handle
        handle.close()
        os.replace(tmp, target)
    except BaseException:
        handle.close()
        tmp.unlink(missing_ok=True)
        raise


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


def read_tile_spec(group: h5py.Group, as_run: bool = True) -> TileSpec:
    """The TileSpec a tile group was written from (its `config` attr and
    conductances, `group_conductance`); for a tile of `cosim simulate
    --transient` with `as_run`, the tile as the transient ran it (`waveforms`
    attr `tile_config`: the op-amp TIA), else the layer's tile."""
    if "config" not in group.attrs or not ("conductance" in group or "g_pos" in group):
        raise InputError(f"HDF5 group {group.name} is not a cosim tile (no config or conductance)")
    config = group.attrs["config"]
    if as_run and "waveforms" in group and "tile_config" in group["waveforms"].attrs:
        config = group["waveforms"].attrs["tile_config"]
    return spec_from_config(config, group_conductance(group), f"tile {group.name}")


def group_conductance(group: h5py.Group) -> np.ndarray:
    """(R, C) device conductances of a tile group (S): `conductance`, or a RUN.h5
    tile's `g_pos` and `g_neg` (R, outputs) interleaved as columns 2k and 2k + 1."""
    if "conductance" in group:
        return group["conductance"][()]
    g_pos, g_neg = group["g_pos"][()], group["g_neg"][()]
    g = np.empty((g_pos.shape[0], 2 * g_pos.shape[1]))
    g[:, 0::2], g[:, 1::2] = g_pos, g_neg
    return g


def spec_from_config(config_json: str, conductance: np.ndarray, where: str = "tile") -> TileSpec:
    """The TileSpec of a `tile_config` JSON and its (R, C) conductances (S)."""
    config = json.loads(config_json)
    kinds = {"nmos": NmosAccess, "device": VteamParams, "tia": TiaSpec, "dac": DacSpec, "adc": AdcSpec}
    parts = {key: from_dict(cls, config[key], where) for key, cls in kinds.items()}
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
    reference) and chain_relative_error (output vs chain_reference)."""
    root = h5.create_group("layers")
    root.attrs["order"] = json.dumps(list(layers))
    for name, layer in layers.items():
        group = root.create_group(name.replace("/", "_"))
        group.attrs["kind"] = layer.kind
        for key in ("output", "reference", "chain_reference"):
            group.create_dataset(key, data=getattr(layer, key))
        group.attrs["relative_error"] = layer.relative_error
        group.attrs["chain_relative_error"] = layer.chain_relative_error
