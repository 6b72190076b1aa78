"""Options and loaders shared by the commands that take a tile from .npy files."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from cosim.config import AdcSpec, DacSpec, NmosAccess, TiaSpec
from cosim.errors import InputError
from cosim.tile import TileSpec


def load_npy(path: str, what: str) -> np.ndarray:
    """A numeric .npy array, or one line saying what is wrong with the file."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{what} file {p} does not exist; give a .npy file made with numpy.save")
    try:
        return np.load(p, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise InputError(f"{what} file {p} is not a numeric .npy array ({exc}); "
                         "save it with numpy.save") from None


def add_tile_options(parser: argparse.ArgumentParser, required: bool = True) -> None:
    """--conductance, --voltage and the wire, access and peripheral options."""
    parser.add_argument("--conductance", required=required, metavar="G.npy",
                        help="(R, C) device conductances in siemens")
    parser.add_argument("--voltage", required=required, metavar="V.npy",
                        help="row input voltages in volts, (R,) or (B, R)")
    parser.add_argument("--r-wire", type=float, default=0.0, metavar="OHM",
                        help="resistance of one wire segment (default 0)")
    parser.add_argument("--r-driver", type=float, default=0.0, metavar="OHM",
                        help="row driver output resistance (default 0)")
    parser.add_argument("--access", choices=("none", "nmos"), default="none",
                        help="memristor alone or 1T1R with the access NMOS (default none)")
    parser.add_argument("--v-wordline", type=float, default=NmosAccess.v_wordline, metavar="V",
                        help="access transistor gate voltage (default %(default)s V)")
    parser.add_argument("--tia", choices=("ideal", "vcvs", "opamp"), default=None,
                        help="TIA model (default ideal; opamp with --transient, so settling shows)")
    parser.add_argument("--rs", type=float, default=TiaSpec.rs, metavar="OHM",
                        help="TIA feedback resistance (default %(default)s ohm)")
    parser.add_argument("--dac-bits", type=int, default=None, metavar="N",
                        help="DAC resolution (default: exact voltages)")
    parser.add_argument("--dac-vfs", type=float, default=DacSpec.vfs, metavar="V",
                        help="DAC full scale (default %(default)s V)")
    parser.add_argument("--adc-bits", type=int, default=None, metavar="N",
                        help="ADC resolution (default: no ADC)")
    parser.add_argument("--adc-vfs", type=float, default=AdcSpec.vfs, metavar="V",
                        help="ADC full scale (default %(default)s V)")


def default_tia(args: argparse.Namespace) -> str:
    """The TIA when --tia is not given: the op-amp macromodel in transients, else ideal."""
    return "opamp" if getattr(args, "transient", False) else "ideal"


def tile_from_args(args: argparse.Namespace) -> tuple[TileSpec, np.ndarray]:
    """The TileSpec and (B, R) voltages that the tile options describe."""
    g = load_npy(args.conductance, "conductance")
    v = load_npy(args.voltage, "voltage")
    spec = TileSpec(g, r_wire=args.r_wire, r_driver=args.r_driver, access=args.access,
                    nmos=NmosAccess(v_wordline=args.v_wordline),
                    tia=TiaSpec(kind=args.tia or default_tia(args), rs=args.rs),
                    dac=DacSpec(bits=args.dac_bits, vfs=args.dac_vfs),
                    adc=AdcSpec(bits=args.adc_bits, vfs=args.adc_vfs), name=Path(args.conductance).stem)
    return spec, spec.check_voltages(v)


def add_hardware_options(parser: argparse.ArgumentParser, converters: bool = True) -> None:
    """--preset and its overrides (converter bits, wires, driver, access)."""
    from cosim.config import PRESET_NAMES

    hw = parser.add_argument_group("hardware")
    hw.add_argument("--preset", default="seed000_vteam",
                    help=f"preset name ({', '.join(PRESET_NAMES)}) or JSON file (default seed000_vteam)")
    if converters:
        hw.add_argument("--dac-bits", type=int, metavar="N", help="override the preset; 0 = exact voltages")
        hw.add_argument("--adc-bits", type=int, metavar="N", help="override the preset; 0 = no quantisation")
    hw.add_argument("--r-wire", type=float, metavar="OHM", help="override the preset's wire segment")
    hw.add_argument("--r-driver", type=float, metavar="OHM", help="override the preset's row driver")
    hw.add_argument("--access", choices=("none", "nmos"), help="override the preset's access device")


def preset_from_args(args: argparse.Namespace):
    """The preset that --preset and its overrides describe (bits 0 = unlimited)."""
    from cosim.config import load_preset

    preset = load_preset(args.preset)
    changes = {}
    for name in ("dac_bits", "adc_bits"):
        if getattr(args, name, None) is not None:
            changes[name] = getattr(args, name) or None
    for name in ("r_wire", "r_driver", "access"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    return preset.with_(**changes) if changes else preset


def load_tensor(path: str, what: str):
    """One tensor saved with torch.save (loaded with weights_only), or one line
    saying what is wrong with the file."""
    import torch

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{what} file {p} does not exist; torch.save a tensor, batch first")
    try:
        value = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(f"{what} file {p} is not a torch.save'd tensor "
                         f"({str(exc).splitlines()[0][:100]})") from None
    if not isinstance(value, torch.Tensor):
        raise InputError(f"{what} file {p} must hold one tensor, batch first")
    return value
