"""Options and loaders shared by the commands that take a tile from .npy files."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cosim.commands import argtypes
from cosim.core.config import AdcSpec, DacSpec, NmosAccess, TiaSpec
from cosim.core.errors import InputError, first_line
from cosim.core.tile import TileSpec

if TYPE_CHECKING:
    import torch
    from torch import nn

# numpy dtype kinds a conductance or voltage file may hold: real integers and floats.
_NUMERIC_KINDS = {"i": "integer", "u": "unsigned integer", "f": "floating-point"}
_REFUSED_KINDS = {"b": "boolean", "c": "complex", "U": "string", "S": "byte-string", "O": "object",
                  "V": "structured", "M": "datetime", "m": "timedelta"}


def load_npy(path: str, what: str) -> np.ndarray:
    """A non-empty real numeric .npy array (integers or floats; never pickled
    objects), or one line saying what is wrong with the file."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{what} file {p} does not exist; give a .npy file made with numpy.save")
    if p.stat().st_size == 0:
        raise InputError(f"{what} file {p} is empty (0 bytes); save the array with numpy.save")
    try:
        array = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        reason = first_line(exc, 100)
        raise InputError(f"{what} file {p} is not a numeric .npy array ({reason}); "
                         "save it with numpy.save") from None
    if not isinstance(array, np.ndarray):  # np.load of an .npz archive
        raise InputError(f"{what} file {p} is an .npz archive, not one .npy array; save it with numpy.save")
    kind = array.dtype.kind
    if kind not in _NUMERIC_KINDS:
        held = _REFUSED_KINDS.get(kind, f"{array.dtype}")
        raise InputError(f"{what} file {p} holds {held} values (dtype {array.dtype}); {what} values "
                         "must be real numbers: save a float array, e.g. numpy.save(path, a.astype(float))")
    if array.size == 0:
        raise InputError(f"{what} file {p} holds no values (shape {array.shape}); save a non-empty array")
    finite = np.abs(array[np.isfinite(array)]) if kind == "f" else np.abs(array.astype(float))
    if finite.size and float(finite.max()) > FLOAT32_MAX:  # NaN and inf: TileSpec names the index
        raise InputError(f"{what} file {p} has a value of magnitude {float(finite.max()):.3g}, beyond "
                         f"float32's range ({FLOAT32_MAX:.3g}); give {what}s in "
                         f"{ {'conductance': 'siemens', 'voltage': 'volts'}.get(what, 'physical units') }")
    return array


def add_tile_options(parser: argparse.ArgumentParser, required: bool = True) -> None:
    """--conductance, --voltage and the wire, access and peripheral options."""
    parser.add_argument("--conductance", required=required, metavar="G.npy",
                        help="(R, C) device conductances in siemens")
    parser.add_argument("--voltage", required=required, metavar="V.npy",
                        help="row input voltages in volts, (R,) or (B, R)")
    parser.add_argument("--r-wire", type=argtypes.RESISTANCE, default=0.0, metavar="OHM",
                        help="resistance of one wire segment (default 0)")
    parser.add_argument("--r-driver", type=argtypes.RESISTANCE, default=0.0, metavar="OHM",
                        help="row driver output resistance (default 0)")
    parser.add_argument("--access", choices=("none", "nmos"), default="none",
                        help="memristor alone or 1T1R with the access NMOS (default none)")
    parser.add_argument("--v-wordline", type=argtypes.float_above(0.0, "V"), default=NmosAccess.v_wordline, metavar="V",
                        help="access transistor gate voltage (default %(default)s V)")
    parser.add_argument("--tia", choices=("ideal", "vcvs", "opamp"), default=None,
                        help="TIA model (default ideal; opamp with --transient, so settling shows)")
    parser.add_argument("--rs", type=argtypes.POSITIVE_RESISTANCE, default=TiaSpec.rs, metavar="OHM",
                        help="TIA feedback resistance (default %(default)s ohm)")
    parser.add_argument("--dac-bits", type=argtypes.bits_or_none(), default=None, metavar="N",
                        help="DAC resolution (default: exact voltages)")
    parser.add_argument("--dac-vfs", type=argtypes.float_above(0.0, "V"), default=DacSpec.vfs, metavar="V",
                        help="DAC full scale (default %(default)s V)")
    parser.add_argument("--adc-bits", type=argtypes.bits_or_none(), default=None, metavar="N",
                        help="ADC resolution (default: no ADC)")
    parser.add_argument("--adc-vfs", type=argtypes.float_above(0.0, "V"), default=AdcSpec.vfs, metavar="V",
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
    from cosim.core.config import DEFAULT_PRESET, PRESET_NAMES

    hw = parser.add_argument_group("hardware")
    hw.add_argument("--preset", default=DEFAULT_PRESET,
                    help=f"preset name ({', '.join(PRESET_NAMES)}) or JSON file (default {DEFAULT_PRESET})")
    if converters:
        hw.add_argument("--dac-bits", type=argtypes.converter_bits("exact voltages"), metavar="N",
                        help="override the preset; 0 = exact voltages")
        hw.add_argument("--adc-bits", type=argtypes.converter_bits("no quantisation"), metavar="N",
                        help="override the preset; 0 = no quantisation")
    hw.add_argument("--r-wire", type=argtypes.RESISTANCE, metavar="OHM", help="override the preset's wire segment")
    hw.add_argument("--r-driver", type=argtypes.RESISTANCE, metavar="OHM", help="override the preset's row driver")
    hw.add_argument("--access", choices=("none", "nmos"), help="override the preset's access device")


def add_compensate_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """--compensate {none,irdrop} (`cosim.run.compensation`)."""
    parser.add_argument("--compensate", choices=("none", "irdrop"), default="none",
                        help="irdrop: program each tile so that its exact transfer (wires, drivers, TIA, "
                             "access NMOS linearised) matches the weights; the digital side undoes the "
                             "tile's scale (default none)")


def preset_from_args(args: argparse.Namespace):
    """The preset that --preset and its overrides describe (bits 0 = unlimited)."""
    from cosim.core.config import load_preset

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

    from cosim.nets.loading import is_torchscript, load_error_line

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{what} file {p} does not exist; torch.save a tensor, batch first")
    if p.stat().st_size == 0:
        raise InputError(f"{what} file {p} is empty (0 bytes); torch.save a tensor, batch first")
    if is_torchscript(p):
        raise InputError(f"{what} file {p} is a TorchScript archive, which cosim does not load (its code "
                         "would run); torch.save a tensor, batch first")
    try:
        with warnings.catch_warnings():  # torch's own notes (sparse CSR is beta...) are not errors
            warnings.simplefilter("ignore")
            value = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(f"{what} file {p} is not a torch.save'd tensor ({load_error_line(exc, 100)}); "
                         "torch.save a tensor, batch first") from None
    if not isinstance(value, torch.Tensor):
        raise InputError(f"{what} file {p} must hold one tensor, batch first")
    return value


FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_input_tensor(x: torch.Tensor, where: str) -> None:
    """One line unless `x` is a dense, real, floating-point, non-empty tensor
    whose values are finite and inside float32's range (float PyTorch, the
    reference, runs in float32)."""
    import torch

    if x.layout != torch.strided:
        raise InputError(f"{where} is a sparse tensor ({x.layout}); save it dense: torch.save(x.to_dense(), path)")
    if x.is_complex() or not x.is_floating_point():
        raise InputError(f"{where} must hold one real floating-point tensor, batch first (got {x.dtype}); "
                         "save x.float()")
    if x.dim() == 0 or x.numel() == 0:
        raise InputError(f"{where} holds no input (shape {tuple(x.shape)}); save a batch of at least "
                         "one sample, batch first")
    if not torch.isfinite(x).all():
        raise InputError(f"{where} has NaN or infinite values; replace them with finite numbers")
    largest = float(x.abs().max())
    if largest > FLOAT32_MAX:
        raise InputError(f"{where} has a value of magnitude {largest:.3g}, beyond float32's range "
                         f"({FLOAT32_MAX:.3g}) that float PyTorch computes the reference in; scale the input down")


# cosim refuses a run whose inputs alone would take more than this share of MemAvailable.
MEMORY_FRACTION = 0.5


def memory_available_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (bytes), None where it cannot be read."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def input_memory_bytes(first: nn.Module, shape: tuple[int, ...]) -> int:
    """About the bytes the first analog step needs for inputs of `shape`: the
    float64 inputs and their float32 copy, and for Conv2d the im2col patches
    (twice: patches and DAC voltages) and outputs; GRU gate inputs likewise."""
    from torch import nn

    elements = 1
    for n in shape:
        elements *= max(int(n), 0)
    total = 12 * elements  # float64 inputs + float32 copy for the float reference
    if isinstance(first, nn.Conv2d) and len(shape) == 4:
        (kh, kw), (sh, sw), (dh, dw), (ph, pw) = first.kernel_size, first.stride, first.dilation, first.padding
        h_out = max((shape[2] + 2 * ph - dh * (kh - 1) - 1) // sh + 1, 0)
        w_out = max((shape[3] + 2 * pw - dw * (kw - 1) - 1) // sw + 1, 0)
        positions = shape[0] * h_out * w_out
        total += 16 * positions * first.in_channels * kh * kw + 24 * positions * first.out_channels
    elif isinstance(first, nn.GRU):
        total += 24 * (elements // max(first.input_size, 1)) * 3 * first.hidden_size
    elif isinstance(first, nn.Linear):
        total += 8 * (elements // max(first.in_features, 1)) * (first.in_features + 3 * first.out_features)
    return total


def check_input_memory(first: nn.Module, shape: tuple[int, ...], what: str, fix: str) -> None:
    """One line when inputs of `shape` would need more than MEMORY_FRACTION of
    MemAvailable, before anything of that size is allocated."""
    need = input_memory_bytes(first, shape)
    available = memory_available_bytes()
    if available is None:
        return
    limit = int(available * MEMORY_FRACTION)
    if need > limit:
        raise InputError(f"{what} {tuple(shape)} would need about {need:,} bytes ({need / 2**30:.3g} GiB) "
                         f"for the inputs of {type(first).__name__} alone, over the limit of {limit:,} bytes "
                         f"({MEMORY_FRACTION:g} of MemAvailable); {fix}")


def add_spice_timeout(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """--spice-timeout S: the wall-clock limit of one ngspice/VACASK run (> 0; checked again where it is used)."""
    parser.add_argument("--spice-timeout", type=argtypes.float_above(0.0, "s"), default=600.0, metavar="S",
                        help="wall-clock limit of one ngspice/VACASK run; a run past it is killed "
                             "(default %(default)s s)")
