"""`cosim calibrate`: fit the fast solver's access-transistor linearisation in ngspice."""

from __future__ import annotations

import argparse

from cosim.core.config import PRESET_NAMES


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `cosim calibrate`'s options."""
    cal = sub.add_parser("calibrate", help="fit the 1T1R access calibration from ngspice I-V sweeps")
    cal.add_argument("--preset", default="seed000_vteam", help=f"preset ({', '.join(PRESET_NAMES)} or JSON)")
    cal.add_argument("--v-read", type=float, metavar="V", help="sweep +-V across the cell (default: preset v_read)")
    cal.add_argument("--devices", type=int, default=25, help="device resistances in the fit grid (default 25)")
    cal.add_argument("--out", default="calibration.json", metavar="CAL.json", help="output JSON")
    cal.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run `cosim calibrate` from parsed arguments; returns the exit status."""
    from pathlib import Path

    from cosim.analysis.nmos_calibration import fit_access_calibration
    from cosim.core.atomic import check_output_file
    from cosim.core.config import load_preset
    from cosim.fast.calibration import save_calibration

    if Path(args.out).parent.is_dir():  # a missing directory is created when the fit is written
        check_output_file(args.out)  # before ngspice runs: a directory, a read-only one
    preset = load_preset(args.preset)
    v = args.v_read or preset.v_read
    calibration = fit_access_calibration(preset.device, preset.nmos, preset=preset.name, v_read=(-v, v),
                            n_devices=args.devices)
    path = save_calibration(calibration, args.out)
    print(f"calibrated the access NMOS for preset {preset.name} in ngspice ({args.devices} devices, "
          f"+-{v:g} V); wrote {path}")
    return 0
