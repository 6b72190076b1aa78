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
    net.add_argument("--pyspice", metavar="FILE.py",
                     help="also (or instead of --out-dir) write a Python script whose build() returns the "
                          "tile's PySpice Circuit (first input vector)")
    net.add_argument("--check", metavar="DIR",
                     help="check a netlist directory (or .cir file), e.g. one edited by hand: every node has a "
                          "DC path to ground, no loop of voltage sources; exit 2 on a problem")
    net.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run `cosim netlist` from parsed arguments; returns the exit status."""
    from cosim.spice.ngspice_netlist import write_netlist_dir

    if args.golden:
        from cosim.spice.goldens import write_golden_netlists

        for path in write_golden_netlists(Path(args.golden)):
            print(f"wrote {path}")
        return 0
    if args.check:
        return check(Path(args.check))
    if not (args.conductance and args.voltage and (args.out_dir or args.pyspice)):
        raise InputError("cosim netlist needs --conductance G.npy --voltage V.npy and --out-dir DIR and/or "
                         "--pyspice FILE.py (or --golden DIR, or --check DIR)")
    spec, v = tile_from_args(args)
    tran = TranSpec(t_stop=args.t_stop, t_sample=args.t_sample) if args.mode == "tran" else None
    if args.pyspice:
        from cosim.spice.pyspice_export import write_pyspice_script

        if v.shape[0] > 1:
            print(f"--pyspice: the script holds input vector 0 of {v.shape[0]} (a PySpice circuit holds one)")
        script = write_pyspice_script(spec, v[:1], Path(args.pyspice), mode=args.mode, tran=tran)
        print(f"wrote {script}; build the circuit with: python {script} (prints its netlist)")
    if args.out_dir:
        path = write_netlist_dir(spec, v, Path(args.out_dir), mode=args.mode, tran=tran)
        print(f"wrote {path}; run it with: cd {path.parent} && ngspice -b tile.cir")
    return 0


def check(path: Path) -> int:
    """`cosim netlist --check DIR`: one line per problem on stderr and exit 2, or one OK line."""
    import sys

    from cosim.spice.graphcheck import check_netlist_path
    from cosim.core.errors import terminal_text

    summary, problems = check_netlist_path(path)
    for problem in problems:  # the file's own text, escaped: no control characters reach the terminal
        print(f"cosim: netlist check: {terminal_text(problem, 400)}", file=sys.stderr)
    if problems:
        raise InputError(f"{len(problems)} problem(s) in {path} (listed above); fix the netlist, or write it "
                         "again with cosim netlist --out-dir")
    print(f"OK {path}: {summary}; every node has a DC path to ground, no loop of voltage sources")
    return 0
