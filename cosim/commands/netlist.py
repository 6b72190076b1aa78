"""`cosim netlist`: write a self-contained ngspice netlist directory."""

from __future__ import annotations

import argparse
from pathlib import Path

from cosim.commands.common import add_tile_options, tile_from_args
from cosim.core.config import TranSpec
from cosim.core.errors import InputError


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `cosim netlist`'s options."""
    net = sub.add_parser("netlist", help="write a self-contained ngspice netlist directory")
    net.add_argument("--golden", metavar="DIR", help="regenerate the golden netlists into DIR")
    add_tile_options(net, required=False)
    net.add_argument("--mode", choices=("op", "tran"), default="op",
                     help="frozen states (.op) or live VTEAM states (.tran)")
    net.add_argument("--t-stop", type=float, default=TranSpec.t_stop, metavar="S",
                     help="transient stop time (default %(default)s s)")
    net.add_argument("--t-sample", type=float, default=TranSpec.t_sample, metavar="S",
                     help="ADC sampling instant (default %(default)s s)")
    net.add_argument("--out-dir", metavar="DIR", help="directory to write tile.cir and its includes")
    net.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run `cosim netlist` from parsed arguments; returns the exit status."""
    from cosim.spice.ngspice_netlist import write_netlist_dir

    if args.golden:
        from cosim.spice.goldens import write_golden_netlists

        for path in write_golden_netlists(Path(args.golden)):
            print(f"wrote {path}")
        return 0
    if not (args.conductance and args.voltage and args.out_dir):
        raise InputError("cosim netlist needs --conductance G.npy --voltage V.npy --out-dir DIR "
                         "(or --golden DIR)")
    spec, v = tile_from_args(args)
    tran = TranSpec(t_stop=args.t_stop, t_sample=args.t_sample) if args.mode == "tran" else None
    path = write_netlist_dir(spec, v, Path(args.out_dir), mode=args.mode, tran=tran)
    print(f"wrote {path}; run it with: cd {path.parent} && ngspice -b tile.cir")
    return 0
