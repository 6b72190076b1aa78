"""`cosim tile`: solve one crossbar tile from .npy files and summarise it."""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import TYPE_CHECKING

import numpy as np

from cosim.commands.common import add_tile_options
from cosim.commands.tile_preset import add_preset_option, tile_from_preset_args
from cosim.commands.transient_read import (
    add_transient_options,
    check_transient_options,
    print_transient_summary,
    run_transient_read,
    write_irdrop_png,
)
from cosim.core.names import SPICE_ENGINES

if TYPE_CHECKING:
    import h5py

    from cosim.analysis.transient import TransientRun
    from cosim.core.results import TileResult
    from cosim.core.tile import TileSpec
    from cosim.core.tile_power import TilePower


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `cosim tile`'s options."""
    tile = sub.add_parser("tile", help="solve one crossbar tile")
    add_tile_options(tile)
    add_preset_option(tile)  # --preset NAME|FILE.json; explicit tile flags override it
    tile.add_argument("--engine", choices=("spice", "fast", "ideal"), default="spice",
                      help="SPICE, the fast IR-drop solver, or the ideal v@G reference (default spice)")
    tile.add_argument("--calibration", metavar="CAL.json",
                      help="--engine fast: access calibration from `cosim calibrate`")
    tile.add_argument("--spice", choices=SPICE_ENGINES, default="ngspice",
                      help="SPICE engine for --engine spice: ngspice (behavioral VTEAM), VACASK "
                           "(Verilog-A VTEAM; pip install 'cosim[vacask]') or ngspice-shared (libngspice "
                           "in a worker process) (default ngspice)")
    tile.add_argument("--timeout", type=float, default=600.0, metavar="S",
                      help="SPICE wall-clock limit (default %(default)s s)")
    tile.add_argument("--out", metavar="RESULT.h5", help="write current (B, C) A and vout (B, C) V here")
    add_transient_options(tile)
    tile.add_argument("--irdrop", metavar="MAP.png",
                      help="also write the IR-drop map (cell voltage / applied row voltage) of input "
                           "vector 0 as a heatmap PNG (from --engine's node voltages; stored as irdrop in --out)")
    tile.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run `cosim tile` from parsed arguments; returns the exit status."""
    from cosim.analysis.irdrop import irdrop_map, write_irdrop
    from cosim.analysis.read_power import power_engine, power_line, read_power
    from cosim.engines import solve
    from cosim.results.disturb_io import write_disturb
    from cosim.results.provenance import versions
    from cosim.results.store import atomic_h5, check_output_path, write_tile_group
    from cosim.spice.process import check_timeout

    check_timeout(args.timeout, "--timeout")
    spec, v = tile_from_preset_args(args)
    for path in (args.out, args.irdrop):
        if path:
            check_output_path(path)
    check_transient_options(args)
    transient = disturb = ratio = None
    # The DC read power (W) of each vector: a transient read reports the fast solver's operating point.
    power_on = power_engine(spec, "fast" if args.transient else args.engine)
    if args.transient:
        result, transient, disturb = run_transient_read(spec, v, args)
        power = read_power(spec, v, power_on)
    elif args.engine == "fast" and not args.calibration and spec.access == "nmos":
        from cosim.fast.power import solve_with_power

        result, power = solve_with_power(spec, v)  # one exact solve gives currents and power
    elif power_on == "spice":  # one .op with every vector saved gives the outputs and the power
        from cosim.spice.power import op_power

        result = solve(spec, v, engine="spice", spice=args.spice, timeout_s=args.timeout, save_all=True)
        power = op_power(spec, result.vectors, args.spice)
    else:
        options = {"timeout_s": args.timeout, "spice": args.spice} if args.engine == "spice" else {}
        if args.engine == "fast" and args.calibration:
            options["calibration"] = args.calibration
        result = solve(spec, v, engine=args.engine, **options)
        power = read_power(spec, v, power_on)
    if args.irdrop:
        ratio = irdrop_map(spec, v, engine=args.engine, timeout_s=args.timeout,
                           calibration=args.calibration if args.engine == "fast" else None)
        irdrop_line = write_irdrop_png(spec, ratio, args.irdrop)
    if args.out:
        with atomic_h5(args.out) as h5:
            write_tile_group(h5, spec, v, result, transient)
            write_power(h5, power, power_on)
            if disturb is not None:
                write_disturb(h5, disturb)
            if ratio is not None:
                write_irdrop(h5, ratio, engine=args.engine)
            h5.attrs["versions"] = versions(spice=args.engine == "spice", spice_engine=args.spice)
            h5.attrs["command"] = shlex.join(["cosim", *sys.argv[1:]])
    engine = f"spice ({args.spice})" if args.engine == "spice" and not args.transient else result.engine
    print_summary(spec, v, result.current, engine, result.wall_s)
    print(power_line(power, f"spice ({args.spice})" if power_on == "spice" else power_on))
    if transient is not None:
        print_transient_summary(spec, transient, disturb)
        print(settling_line(spec, result, transient))
    if ratio is not None:
        print(irdrop_line)
    if args.out:
        print(f"wrote {args.out}" + (f"; list its signals: cosim waves {args.out} --list" if transient else ""))
    return 0


def print_summary(spec: TileSpec, v: np.ndarray, current: np.ndarray, engine: str, wall_s: float,
                  max_columns: int = 8) -> None:
    """Print per-column currents (mA) of input vector 0 beside the ideal v@G; v (B, R) V, current (B, C) A."""
    from cosim.engines import solve_ideal

    ideal = solve_ideal(spec, v).current
    print(f"tile {spec.rows}x{spec.cols}, engine {engine}, batch {v.shape[0]}: {wall_s:.3f} s "
          f"(r_wire {spec.r_wire:g} ohm, r_driver {spec.r_driver:g} ohm, access {spec.access}, "
          f"TIA {spec.tia.kind} rs {spec.tia.rs:g} ohm)")
    print(f"{'column':>6} {'current mA':>12} {'ideal v@G mA':>13} {'ratio':>7}   (input vector 0)")
    for j in range(min(spec.cols, max_columns)):
        ratio = current[0, j] / ideal[0, j] if ideal[0, j] != 0 else float("nan")
        print(f"{j:>6} {1e3 * current[0, j]:>12.5g} {1e3 * ideal[0, j]:>13.5g} {ratio:>7.4f}")
    if spec.cols > max_columns:
        print(f"   ... {spec.cols - max_columns} more columns in the output file")


def write_power(h5: "h5py.File", power: "TilePower", engine: str) -> None:
    """RESULT.h5 `power` (B,) W, the power the row drivers deliver (attr `engine`: what
    computed it), and `power_parts` (parts, B) W with the part names in its `parts` attribute."""
    from cosim.core.tile_power import PARTS

    total = h5.create_dataset("power", data=power.total)
    total.attrs.update({"units": "W", "engine": engine})
    parts = h5.create_dataset("power_parts", data=power.stacked())
    parts.attrs["units"] = "W"
    parts.attrs["parts"] = list(PARTS)


def settling_line(spec: TileSpec, result: "TileResult", transient: "TransientRun") -> str:
    """Each column's TIA settling to half an LSB of its value at the sample instant (vector 0), in one line."""
    from cosim.analysis.settling import DEFAULT_BITS, settling_summary, settling_times

    bits = spec.adc.bits if spec.adc.bits is not None else DEFAULT_BITS
    times = settling_times(spec, result.waveforms[0], transient.tran.t_sample)
    return settling_summary(times, bits)
