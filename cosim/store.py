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

from cosim.config import to_dict
from cosim.engines import TileResult
from cosim.errors import InputError
from cosim.tile import TileSpec


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


def write_tile_group(group: h5py.Group, spec: TileSpec, voltages: np.ndarray, result: TileResult) -> None:
    """A tile's inputs, conductances, outputs, netlist and waveforms into `group`."""
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
    for b, vectors in enumerate(result.waveforms or []):
        wave = group.create_group(f"waveforms/vector_{b}")
        for name, values in vectors.items():
            wave.create_dataset(name.replace("/", "_"), data=values)
