"""`cosim tile --preset NAME|FILE.json`: one tile on a preset's hardware, with
the tile flags given explicitly still overriding it.

The preset sets the VTEAM device, the wire segment and row driver
resistances, the access device and its NMOS, the TIA, the DAC (its bits,
full scale v_read) and the ADC bits; the ADC full scale is calibrated on
the batch as `cosim simulate` does (the largest |vout| of the ideal array,
rs * |v_dac @ G|) unless --adc-vfs is given. To tell a flag given on the
command line from its default, `add_preset_option` marks the defaults of
the tile options (`Default` values, which argparse hands through untouched).
"""

from __future__ import annotations

import argparse

import numpy as np

from cosim.core.tile import TileSpec, tile_spec

#: Tile options a preset provides (argparse dest names).
PRESET_FIELDS = ("r_wire", "r_driver", "access", "v_wordline", "tia", "rs", "dac_bits", "dac_vfs",
                 "adc_bits", "adc_vfs")


class DefaultFloat(float):
    """A float default that was not given on the command line."""


class DefaultStr(str):
    """A string default that was not given on the command line."""


def add_preset_option(parser: argparse.ArgumentParser) -> None:
    """--preset, and the tile options' defaults marked as such (call after `add_tile_options`)."""
    from cosim.core.config import PRESET_NAMES

    parser.add_argument("--preset", metavar="NAME|FILE.json",
                        help=f"solve the tile on a preset's device, wires, driver, access, TIA and converters "
                             f"({', '.join(PRESET_NAMES)} or a JSON file); tile flags given explicitly override it")
    for action in parser._actions:
        if action.dest in PRESET_FIELDS and isinstance(action.default, float):
            action.default = DefaultFloat(action.default)
        elif action.dest in PRESET_FIELDS and isinstance(action.default, str):
            action.default = DefaultStr(action.default)


def _given(args: argparse.Namespace, name: str) -> bool:
    value = getattr(args, name, None)
    return value is not None and not isinstance(value, (DefaultFloat, DefaultStr))


def _plain(args: argparse.Namespace) -> None:
    """Turn the marked defaults back into plain floats and strings."""
    for name in PRESET_FIELDS:
        value = getattr(args, name, None)
        if isinstance(value, DefaultFloat):
            setattr(args, name, float(value))
        elif isinstance(value, DefaultStr):
            setattr(args, name, str(value))


def tile_from_preset_args(args: argparse.Namespace) -> tuple[TileSpec, np.ndarray]:
    """The TileSpec and (B, R) voltages of the tile options, on --preset's hardware when given."""
    import dataclasses
    from pathlib import Path

    from cosim.commands.common import load_npy, tile_from_args
    from cosim.core.config import AdcSpec, load_preset
    from cosim.core.drive import dac_output

    given = {name for name in PRESET_FIELDS if _given(args, name)}
    _plain(args)
    if not getattr(args, "preset", None):
        return tile_from_args(args)
    preset = load_preset(args.preset)
    g = load_npy(args.conductance, "conductance")
    v = load_npy(args.voltage, "voltage")
    pick = lambda name, value: getattr(args, name) if name in given else value  # noqa: E731
    tia = dataclasses.replace(preset.tia, kind=pick("tia", preset.tia.kind), rs=pick("rs", preset.tia.rs))
    preset = preset.with_(r_wire=pick("r_wire", preset.r_wire), r_driver=pick("r_driver", preset.r_driver),
                          access=pick("access", preset.access), tia=tia, dac_bits=pick("dac_bits", preset.dac_bits),
                          v_read=pick("dac_vfs", preset.v_read),  # the DAC's full scale
                          nmos=dataclasses.replace(preset.nmos, v_wordline=pick("v_wordline", preset.nmos.v_wordline)))
    spec = tile_spec(preset, g, Path(args.conductance).stem)
    v = spec.check_voltages(v)
    bits = pick("adc_bits", preset.adc_bits)
    if bits is not None:
        if "adc_vfs" in given:
            vfs = args.adc_vfs
        else:  # calibrated on the batch, as cosim simulate does
            vfs = float(np.max(np.abs(spec.tia.rs * (dac_output(spec, v) @ spec.conductance)))) or 1.0
        spec = spec.with_(adc=AdcSpec(bits=bits, vfs=vfs))
    return spec, v
