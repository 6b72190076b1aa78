"""Tile settings in RUN.h5 / RESULT.h5 groups: written as JSON beside the
conductances, and read back as validated TileSpecs (the only way a stored tile
is simulated again).
"""

from __future__ import annotations

import json
from typing import Any

import h5py
import numpy as np

from cosim.core.config import (
    ACCESS_KINDS,
    AdcSpec,
    DacSpec,
    NmosAccess,
    Rule,
    TiaSpec,
    VteamParams,
    from_dict,
    json_kind,
    to_dict,
)
from cosim.core.errors import InputError, first_line
from cosim.core.tile import TileSpec
from cosim.mapping.pairs import interleave
from cosim.results import h5check

#: Keys of a tile `config` attribute (`tile_config`), each required.
TILE_CONFIG_KEYS = ("name", "rows", "cols", "r_wire", "r_driver", "access", "nmos", "device", "tia", "dac", "adc")
#: The config sections of a tile and their dataclasses.
TILE_PARTS = {"nmos": NmosAccess, "device": VteamParams, "tia": TiaSpec, "dac": DacSpec, "adc": AdcSpec}
#: Largest tile read back (devices); cosim's own tiles stop far below (README: 1024 x 1024).
MAX_TILE_DEVICES = 4096 * 4096


_TILE_SCALARS = {"rows": Rule("integer", "", 1, None), "cols": Rule("integer", "", 1, None),
                 "r_wire": Rule("number", "ohm", 0.0), "r_driver": Rule("number", "ohm", 0.0),
                 "access": Rule("string", choices=ACCESS_KINDS), "name": Rule("string", max_len=1000)}


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


def tile_config(spec: TileSpec) -> dict[str, Any]:
    """Every setting of a tile except its conductances, as JSON-ready data."""
    return {"name": spec.name, "rows": spec.rows, "cols": spec.cols, "r_wire": spec.r_wire,
            "r_driver": spec.r_driver, "access": spec.access, "nmos": to_dict(spec.nmos),
            "device": to_dict(spec.device), "tia": to_dict(spec.tia), "dac": to_dict(spec.dac),
            "adc": to_dict(spec.adc)}


def read_tile_spec(group: h5py.Group, as_run: bool = True) -> TileSpec:
    """The TileSpec a tile group was written from (its `config` attr and
    conductances, `group_conductance`); for a tile of `cosim simulate
    --transient` with `as_run`, the tile as the transient ran it (`waveforms`
    attr `tile_config`: the op-amp TIA), else the layer's tile.

    Everything is checked before a TileSpec exists (the file may come from
    anyone): the config is a JSON object with exactly the keys of
    `tile_config`, every field is of its type and range (`cosim.core.config`
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
    g = interleave(g_pos, g_neg)
    return g


def spec_from_config(config: str | dict, conductance: np.ndarray, where: str = "tile") -> TileSpec:
    """The TileSpec of a `tile_config` (JSON text or its dict) and its (R, C)
    conductances (S), every field checked (`check_tile_config`, the config
    dataclasses' rules); `where` names the source in the one-line messages."""
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except (ValueError, RecursionError) as exc:
            raise InputError(f"{where} is not JSON ({first_line(exc, 80)}); {h5check.FIX}") from None
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
