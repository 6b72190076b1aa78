"""Transient reads and IR-drop maps on the command line: options, the run
and its summary lines, shared by `cosim tile` (and `cosim simulate --transient`)."""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import TYPE_CHECKING

import numpy as np

from cosim.core.errors import InputError

if TYPE_CHECKING:
    from cosim.analysis.disturb import DisturbReport
    from cosim.analysis.transient import TransientRun
    from cosim.core.results import TileResult
    from cosim.core.tile import TileSpec


def add_transient_options(parser: argparse.ArgumentParser) -> None:
    """--transient and its settings: read window, stored states, read-disturb limit."""
    group = parser.add_argument_group("transient read (--transient)")
    group.add_argument("--transient", action="store_true",
                       help="run ngspice .tran: DAC step, op-amp TIA settling (--tia defaults to opamp), "
                            "ADC sample, live VTEAM states; waveforms go to --out (see cosim waves)")
    add_transient_settings(group)


def add_transient_settings(group: argparse._ArgumentGroup) -> None:
    """The settings of a transient read (`cosim tile` and `cosim simulate`):
    --t-stop, --t-sample, --states-of, --disturb-threshold."""
    group.add_argument("--t-stop", type=float, default=None, metavar="S",
                       help="end of the transient (default 30e-9 s)")
    group.add_argument("--t-sample", type=float, default=None, metavar="S",
                       help="ADC sample instant (default 25e-9 s, or 3/4 of --t-stop)")
    group.add_argument("--states-of", default=None, metavar="CELLS",
                       help="cells whose device states are stored: 'all' (default), 'none' or "
                            "'i,j;i,j' (0-based row,column within each transient tile)")
    group.add_argument("--disturb-threshold", type=float, default=None, metavar="FRACTION",
                       help="warn when a read changes a conductance by more than this fraction "
                            "(default 0.01)")


def check_transient_settings(args: argparse.Namespace, add: str = "--transient") -> None:
    """One line for transient settings given without --transient (`add` says
    what to add), a transient off ngspice, or a disturb limit that is no fraction."""
    given = [flag for flag, value in (("--t-stop", args.t_stop), ("--t-sample", args.t_sample),
                                      ("--states-of", args.states_of),
                                      ("--disturb-threshold", args.disturb_threshold)) if value is not None]
    if given and not args.transient:
        raise InputError(f"{given[0]} only applies to transient reads; add {add}")
    if args.transient and getattr(args, "spice", "ngspice") != "ngspice":
        raise InputError(f"--transient runs ngspice (waveforms, raw file); drop --spice {args.spice}")
    if args.disturb_threshold is not None and not args.disturb_threshold > 0:
        raise InputError(f"--disturb-threshold must be a fraction > 0, got {args.disturb_threshold}")


def check_transient_options(args: argparse.Namespace) -> None:
    """`cosim tile`: `check_transient_settings`, and a transient only with --engine spice."""
    check_transient_settings(args)
    if args.transient and args.engine != "spice":
        raise InputError(f"--transient runs ngspice; drop --engine {args.engine} (or use --engine spice)")


def run_transient_read(spec: TileSpec, v: np.ndarray,
                       args: argparse.Namespace) -> tuple[TileResult, TransientRun, DisturbReport]:
    """The transient run, what to store beside it, and its read-disturb report
    (every cell's state comes from ngspice, stored or not)."""
    from cosim.analysis.transient import read_transient, tran_spec

    read = read_transient(spec, v, tran_spec(args.t_stop, args.t_sample), args.disturb_threshold,
                          args.timeout, stored=args.states_of or "all")
    return read.result, read.run, read.disturb


def print_transient_summary(spec: TileSpec, transient: TransientRun, disturb: DisturbReport) -> None:
    """The read window, what was stored, and the read-disturb line (plus a
    warning on stderr when the read passes the limit)."""
    from cosim.analysis.disturb import ReadDisturbWarning, warn_if_disturbed

    tran = transient.tran
    print(f"transient: {tran.t_stop * 1e9:.4g} ns, outputs sampled at {tran.t_sample * 1e9:.4g} ns, "
          f"TIA {spec.tia.kind}, states of {len(transient.cells)} of {spec.rows * spec.cols} cells stored")
    print(disturb.summary())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ReadDisturbWarning)
        warn_if_disturbed(disturb, tile=spec.name)
    for warning in caught:
        print(f"cosim: warning: {warning.message}", file=sys.stderr)


def write_irdrop_png(spec: TileSpec, ratio: np.ndarray, path: str) -> str:
    """Heatmap of the IR-drop map of input vector 0 to `path`; returns the summary line."""
    from cosim.results.plots import plot_heatmap_png

    first = ratio[0]
    if not np.any(np.isfinite(first)):
        raise InputError("input vector 0 applies 0 V to every row, so its IR-drop map is undefined; "
                         "put a non-zero row voltage first")
    i, j = np.unravel_index(int(np.nanargmin(first)), first.shape)
    title = (f"IR drop of tile {spec.name} ({spec.rows}x{spec.cols}), input vector 0\n"
             f"r_wire {spec.r_wire:g} ohm, r_driver {spec.r_driver:g} ohm, access {spec.access}")
    plot_heatmap_png(first, path, title, "V_cell / V_row applied (V/V)")
    return (f"IR-drop map: V_cell/V_row from {np.nanmax(first):.4f} down to {first[i, j]:.4f} "
            f"(cell {i},{j}); wrote {path}")
