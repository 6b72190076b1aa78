"""`cosim sweep`: classification accuracy over a grid of hardware, non-idealities
and methods, averaged over random draws -> markdown, CSV, accuracy and Pareto PNGs.

The grid, its axes and the evaluation are `cosim.twin.sweep` (every preset
field, dotted names like tia.rs, tile, compensate, the NonIdeal fields,
ir_drop, insitu); the outputs are `cosim.results.sweep_outputs`. This module
is the command line: arguments, data loading and printing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cosim.commands import argtypes
from cosim.commands.common import add_compensate_option, add_spice_timeout
from cosim.core.config import DEFAULT_PRESET, PRESET_NAMES
from cosim.core.errors import InputError
from cosim.spice.process import check_timeout


def load_model_and_data(args: argparse.Namespace):
    """(model, train, test) from the CLI arguments."""
    import torch

    from cosim.core.seeds import EXAMPLE_SEED
    from cosim.nets.examples import digits_data, make_mlp_digits
    from cosim.nets.loading import load_layer

    if args.model == "mlp-digits":
        model, _ = make_mlp_digits()
    else:
        model = load_layer(args.model)
    if args.data:
        x = torch.load(args.data, map_location="cpu", weights_only=True)
        y = torch.load(args.labels, map_location="cpu", weights_only=True) if args.labels else None
        if y is None or len(x) != len(y):
            raise InputError("--data needs --labels with one label per sample")
    else:
        x, y = digits_data()
    from cosim.twin.sweep import split

    train, test = split(x, y, EXAMPLE_SEED)
    return model, train, test


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `cosim sweep`'s options."""
    p = sub.add_parser("sweep", help="accuracy over a grid of hardware and non-idealities (markdown, CSV, PNG)")
    p.add_argument("model", metavar="MODEL.pt|mlp-digits", help="a saved classifier, or the bundled digits MLP")
    p.add_argument("--param", action="append", default=[], metavar="NAME=v1,v2",
                   help="grid axis (repeatable): tile, compensate (none,irdrop), any preset field (r_wire, "
                        "r_driver, v_read, adc_bits, dac_bits, access; r_on, r_off, rs, v_wordline or dotted "
                        "device.r_on, tia.rs, ...), a non-ideality (states, stuck_at_rate, stuck_at, "
                        "variability_sigma, defect_alpha, defect_beta), ir_drop (on,off), insitu")
    p.add_argument("--data", metavar="X.pt", help="labelled data (default: sklearn digits), split 80/20")
    p.add_argument("--labels", metavar="Y.pt", help="labels of --data")
    p.add_argument("--preset", default=DEFAULT_PRESET,
                   help=f"{', '.join(PRESET_NAMES)} or JSON (default {DEFAULT_PRESET})")
    p.add_argument("--engine", choices=("fast", "ideal", "spice", "auto"), default="fast")
    add_spice_timeout(p)
    p.add_argument("--access", choices=("none", "nmos", "preset"), default="none",
                   help="access device of every point (default none: the fast solver's exact linear path; "
                        "preset: the preset's)")
    p.add_argument("--tile", type=argtypes.int_at_least(2), default=128, help="tile size without a tile axis")
    add_compensate_option(p)
    p.add_argument("--draws", type=argtypes.POSITIVE_INT, default=5, help="random draws per grid point (default 5)")
    p.add_argument("--seed", type=argtypes.SEED, default=0, help="seed of draw 0 (draw d uses seed + d)")
    p.add_argument("--methods", metavar="M1,M2",
                   help="compare methods: none, calibration, insitu, both (calibration + in-situ); "
                        "short for --param insitu=...")
    p.add_argument("--insitu-epochs", type=argtypes.NON_NEGATIVE_INT, default=10,
                   help="in-situ training epochs (default 10)")
    p.add_argument("--workers", type=argtypes.POSITIVE_INT, default=1,
                   help="local worker processes for the grid points and draws (default 1)")
    p.add_argument("--executor", choices=("local", "dask"), default="local",
                   help="dask: the grid points and draws run on the cluster at --scheduler")
    p.add_argument("--scheduler", metavar="ADDR", help="Dask scheduler address (with --executor dask)")
    p.add_argument("--out-dir", default="sweep", help="directory of NAME.md/.csv/.png (default ./sweep)")
    p.add_argument("--name", default="sweep", help="file stem (default sweep)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run_sweep_command)


def run_sweep_command(args: argparse.Namespace) -> int:
    """Run `cosim sweep` from parsed arguments; returns the exit status."""
    from cosim.core.config import load_preset
    from cosim.results.sweep_outputs import check_outputs, markdown, write_outputs
    from cosim.twin.sweep import SweepSetup, parse_grid, run_sweep

    grid = parse_grid(args.param + ([f"insitu={args.methods}"] if args.methods else []))
    if not grid:
        raise InputError("give at least one --param NAME=v1,v2,...")
    if args.draws < 1:
        raise InputError(f"--draws must be >= 1, got {args.draws}")
    if args.executor == "dask" and not args.scheduler:
        raise InputError("--executor dask needs --scheduler ADDR (e.g. tcp://127.0.0.1:8786)")
    check_timeout(args.spice_timeout, "--spice-timeout")
    check_outputs(Path(args.out_dir), args.name)
    model, train, test = load_model_and_data(args)
    setup = SweepSetup(engine=args.engine, access=None if args.access == "preset" else args.access,
                       tile=args.tile, draws=args.draws, seed=args.seed, insitu_epochs=args.insitu_epochs,
                       spice_timeout_s=check_timeout(args.spice_timeout, "--spice-timeout"),
                       compensate=args.compensate)
    rows = run_sweep(model, grid, load_preset(args.preset), setup, train, test, executor=args.executor,
                     scheduler=args.scheduler, workers=args.workers, quiet=args.quiet)
    paths = write_outputs(rows, Path(args.out_dir), args.name)
    print(markdown(rows), end="")
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0
