"""`cosim spotcheck`: the fast solver against SPICE, on random tiles or on
named tiles of a layer."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from cosim.commands.common import add_compensate_option, add_hardware_options, add_spice_timeout, preset_from_args
from cosim.core.errors import InputError
from cosim.core.names import SPICE_ENGINES
from cosim.spice.process import check_timeout

if TYPE_CHECKING:
    from cosim.core.config import Preset


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `cosim spotcheck`'s options."""
    spot = sub.add_parser("spotcheck", help="compare the fast solver with ngspice (or VACASK)")
    spot.add_argument("--k", type=int, default=3, help="random tiles to check (default 3)")
    spot.add_argument("--size", type=int, default=32, help="random tiles of N x N devices (default 32)")
    spot.add_argument("--batch", type=int, default=4, help="input vectors per tile (default 4)")
    spot.add_argument("--layer", metavar="LAYER.pt", help="check tiles of this layer instead of random ones")
    spot.add_argument("--tile", type=int, default=128, help="with --layer: tile size (default 128)")
    spot.add_argument("--tiles", metavar="NAME,...", help="with --layer: tile names (default: K random tiles)")
    add_hardware_options(spot, converters=False)
    add_compensate_option(spot)
    spot.add_argument("--calibration", metavar="CAL.json", help="fast-solver access calibration")
    spot.add_argument("--spice", choices=SPICE_ENGINES, default="ngspice", help="reference engine")
    add_spice_timeout(spot)
    spot.add_argument("--seed", type=int, default=0)
    spot.add_argument("--plot", metavar="PNG", help="write a plot of the errors (random tiles)")
    spot.add_argument("--json", metavar="FILE", help="write the report as JSON")
    spot.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run `cosim spotcheck` from parsed arguments; returns the exit status."""
    from cosim.core.atomic import atomic_write_text, check_output_file

    if args.k < 1 or args.batch < 1:
        raise InputError("--k and --batch must be >= 1")
    check_timeout(args.spice_timeout, "--spice-timeout")
    # Before any simulation: a directory, a missing or read-only one (--plot's directory is created).
    if args.json:
        check_output_file(args.json)
    if args.plot and Path(args.plot).parent.is_dir():
        check_output_file(args.plot)
    if args.plot:
        from cosim.analysis.spotcheck import PLOT_FORMATS

        if Path(args.plot).suffix.lstrip(".").lower() not in PLOT_FORMATS:
            raise InputError(f"cannot write {args.plot}: --plot must end in "
                             f"{', '.join('.' + f for f in PLOT_FORMATS)}")
    preset = preset_from_args(args)
    report = _layer_tiles(args, preset) if args.layer else _random_tiles(args, preset)
    if args.json:
        atomic_write_text(args.json, json.dumps(report, indent=2))
        print(f"wrote {args.json}")
    return 0


def _random_tiles(args: argparse.Namespace, preset: Preset) -> dict:
    from cosim.analysis.spotcheck import spotcheck

    report = spotcheck(args.k, args.size, seed=args.seed, batch=args.batch, v_max=preset.v_read,
                       device=preset.device, calibration=args.calibration, plot=args.plot, spice=args.spice,
                       timeout_s=args.spice_timeout,
                       r_wire=preset.r_wire, r_driver=preset.r_driver, access=preset.access, nmos=preset.nmos)
    print(f"fast solver vs {args.spice}, {args.k} random {args.size}x{args.size} tiles, preset {preset.name}")
    print(report.summary())
    return report.to_dict()


def _layer_tiles(args: argparse.Namespace, preset: Preset) -> dict:
    import torch

    from cosim.commands.simulate import make_inputs
    from cosim.nets.loading import load_layer
    from cosim.run.simulation import SimOptions, Simulation

    module = load_layer(args.layer)
    args.input, args.input_size, args.seq_len = None, "8,8", 8
    x = make_inputs(module, args)
    names = [n for n in args.tiles.split(",") if n] if args.tiles else None
    options = SimOptions(tile=args.tile, engine="fast", spot_check=len(names) if names else args.k,
                         spot_vectors=args.batch, seed=args.seed, quiet=True, calibration=args.calibration,
                         spice=args.spice, spice_timeout_s=args.spice_timeout, compensate=args.compensate)
    simulation = Simulation(preset, options)
    with torch.no_grad():
        simulation.forward(module, x)
    simulation.spot_check(names)
    print(f"fast solver vs {args.spice} on tiles of {args.layer} (tile {args.tile}, preset {preset.name})")
    print(f"{'tile':>20} {'shape':>9} {'max rel':>10} {'mean rel':>10}")
    rows = []
    for name, record in sorted(simulation.records.items()):
        if record.spot:
            print(f"{name:>20} {f'{record.tile.rows}x{record.tile.cols}':>9} "
                  f"{record.spot['max_rel_error']:>10.3e} {record.spot['mean_rel_error']:>10.3e}")
            rows.append({"tile": name, "rows": record.tile.rows, "cols": record.tile.cols,
                         "max_rel": record.spot["max_rel_error"], "mean_rel": record.spot["mean_rel_error"],
                         "per_column": record.spot["column_rel_error"].tolist()})
    return {"layer": str(args.layer), "spice": args.spice, "tiles": rows}
