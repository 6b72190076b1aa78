"""HDF5 output: written to a temporary file beside the target and renamed
into place, so a run that dies never leaves a half-written file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np

from cosim.analysis.transient import TileTransient, TransientRun
from cosim.core.results import TileResult
from cosim.core.tile import TileSpec
from cosim.results.tile_specs import tile_config
from cosim.results.waveforms import write_tile_transient, write_waveforms


def check_output_path(path: Path | str) -> Path:
    """Refuse (one line) an output file that names a directory, or whose
    directory is missing or not writable (`cosim.core.atomic.check_output_file`)."""
    from cosim.core.atomic import check_output_file

    return check_output_file(path)


@contextmanager
def atomic_h5(path: Path | str) -> Iterator[h5py.File]:
    """Open `path` for writing; it appears only if the block completes.

    The file is built in memory (HDF5's core driver, no backing store) and
    written out in one go through `cosim.core.atomic`: HDF5 meets no disk error
    itself (a failing HDF5 close on a full disk leaves its library in a state
    that crashes later), and a failed write of the image removes the
    temporary and ends in one line."""
    from cosim.core.atomic import atomic_write_bytes, check_output_file

    target = check_output_file(path)
    handle = h5py.File(target, "w", driver="core", backing_store=False, block_size=1 << 20)
    try:
        yield handle
        handle.flush()
        image = handle.id.get_file_image()
    finally:
        handle.close()
    atomic_write_bytes(target, image)


def write_tile_group(group: h5py.Group, spec: TileSpec, voltages: np.ndarray, result: TileResult,
                     transient: TransientRun | None = None) -> None:
    """A tile's inputs, conductances, outputs, netlist and waveforms into `group`
    (waveforms: see `cosim.results.waveforms.write_waveforms`; `transient` chooses
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




def write_run(h5: h5py.File, inputs: np.ndarray, outputs: np.ndarray, ideal: np.ndarray,
              records: dict, attrs: dict[str, object], layers: dict | None = None,
              transients: dict[str, TileTransient] | None = None) -> None:
    """A `cosim simulate` run: root datasets inputs/outputs/ideal, one group per
    tile under tiles/ (attrs engine, rows, cols; g_pos, g_neg in S; netlist
    text for ngspice tiles; spot-check errors; compensation/ of --compensate irdrop
    tiles (attrs residual, uncompensated, scale, floor_s (largest floor), steps,
    wall_s; datasets target_transfer and floor, S); when kept: attr ideal_rel_error,
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
        if getattr(record, "compensation", None) is not None:  # --compensate irdrop (cosim.run.compensation)
            comp = group.create_group("compensation")
            comp.attrs.update(record.compensation.attrs())
            comp.create_dataset("target_transfer", data=record.compensation.target).attrs["units"] = "S"
            comp.create_dataset("floor", data=record.compensation.floor).attrs["units"] = "S"
        if getattr(record, "first_voltages", None) is not None:
            group.create_dataset("sample_voltage", data=record.first_voltages).attrs["units"] = "V"
        transient = (transients or {}).get(name)
        if transient is not None:
            write_tile_transient(group, transient, json.dumps(tile_config(transient.spec)))
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
