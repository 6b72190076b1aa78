"""The `cosim` command line: one line per user error, `--debug` for a traceback."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np

from cosim import __version__
from cosim.config import AdcSpec, DacSpec, NmosAccess, TiaSpec, TranSpec
from cosim.errors import CosimError, InputError, SpiceError


def _load_npy(path: str, what: str) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{what} file {p} does not exist; give a .npy file made with numpy.save")
    try:
        return np.load(p, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise InputError(f"{what} file {p} is not a numeric .npy array ({exc}); "
                         "save it with numpy.save") from None


def _add_tile_options(parser: argparse.ArgumentParser, required: bool = True) -> None:
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
    parser.add_argument("--tia", choices=("ideal", "vcvs", "opamp"), default="ideal",
                        help="TIA model (default ideal)")
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


def _tile_from_args(args: argparse.Namespace):
    from cosim.tile import TileSpec

    g = _load_npy(args.conductance, "conductance")
    v = _load_npy(args.voltage, "voltage")
    spec = TileSpec(g, r_wire=args.r_wire, r_driver=args.r_driver, access=args.access,
                    nmos=NmosAccess(v_wordline=args.v_wordline), tia=TiaSpec(kind=args.tia, rs=args.rs),
                    dac=DacSpec(bits=args.dac_bits, vfs=args.dac_vfs),
                    adc=AdcSpec(bits=args.adc_bits, vfs=args.adc_vfs), name=Path(args.conductance).stem)
    return spec, spec.check_voltages(v)


def _cmd_tile(args: argparse.Namespace) -> int:
    from cosim.engines import solve, solve_ideal
    from cosim.store import atomic_h5, check_output_path, write_tile_group

    spec, v = _tile_from_args(args)
    if args.out:
        check_output_path(args.out)
    options = {"timeout_s": args.timeout} if args.engine == "spice" else {}
    result = solve(spec, v, engine=args.engine, **options)
    if args.out:
        from cosim.provenance import versions

        with atomic_h5(args.out) as h5:
            write_tile_group(h5, spec, v, result)
            h5.attrs["versions"] = versions(spice=args.engine == "spice")
            h5.attrs["command"] = shlex.join(["cosim", *sys.argv[1:]])
    ideal = solve_ideal(spec, v).current
    print(f"tile {spec.rows}x{spec.cols}, engine {result.engine}, batch {v.shape[0]}: "
          f"{result.wall_s:.3f} s (r_wire {spec.r_wire:g} ohm, r_driver {spec.r_driver:g} ohm, "
          f"access {spec.access}, TIA {spec.tia.kind} rs {spec.tia.rs:g} ohm)")
    shown = min(spec.cols, 8)
    print(f"{'column':>6} {'current mA':>12} {'ideal v@G mA':>13} {'ratio':>7}   (input vector 0)")
    for j in range(shown):
        ratio = result.current[0, j] / ideal[0, j] if ideal[0, j] != 0 else float("nan")
        print(f"{j:>6} {1e3 * result.current[0, j]:>12.5g} {1e3 * ideal[0, j]:>13.5g} {ratio:>7.4f}")
    if spec.cols > shown:
        print(f"   ... {spec.cols - shown} more columns in the output file")
    if args.out:
        print(f"wrote {args.out}")
    return 0


def _cmd_netlist(args: argparse.Namespace) -> int:
    from cosim.netlist import write_netlist_dir

    if args.golden:
        from cosim.examples import write_golden_netlists

        for path in write_golden_netlists(Path(args.golden)):
            print(f"wrote {path}")
        return 0
    if not (args.conductance and args.voltage and args.out_dir):
        raise InputError("cosim netlist needs --conductance G.npy --voltage V.npy --out-dir DIR "
                         "(or --golden DIR)")
    spec, v = _tile_from_args(args)
    tran = TranSpec(t_stop=args.t_stop, t_sample=args.t_sample) if args.mode == "tran" else None
    path = write_netlist_dir(spec, v, Path(args.out_dir), mode=args.mode, tran=tran)
    print(f"wrote {path}; run it with: cd {path.parent} && ngspice -b tile.cir")
    return 0


def _cmd_example(args: argparse.Namespace) -> int:
    from cosim.examples import example_tile4

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    g, v = example_tile4()
    np.save(out / "G.npy", g)
    np.save(out / "V.npy", v)
    print(f"wrote {out / 'G.npy'} (4x4 conductances, S) and {out / 'V.npy'} (2 input vectors, V)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cosim", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"cosim {__version__}")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)

    tile = sub.add_parser("tile", help="solve one crossbar tile")
    _add_tile_options(tile)
    tile.add_argument("--engine", choices=("spice", "ideal"), default="spice",
                      help="ngspice or the ideal v@G reference (default spice)")
    tile.add_argument("--timeout", type=float, default=600.0, metavar="S",
                      help="ngspice wall-clock limit (default %(default)s s)")
    tile.add_argument("--out", metavar="RESULT.h5", help="write current (B, C) A and vout (B, C) V here")
    tile.set_defaults(run=_cmd_tile)

    net = sub.add_parser("netlist", help="write a self-contained ngspice netlist directory")
    net.add_argument("--golden", metavar="DIR", help="regenerate the golden netlists into DIR")
    _add_tile_options(net, required=False)
    net.add_argument("--mode", choices=("op", "tran"), default="op",
                     help="frozen states (.op) or live VTEAM states (.tran)")
    net.add_argument("--t-stop", type=float, default=TranSpec.t_stop, metavar="S",
                     help="transient stop time (default %(default)s s)")
    net.add_argument("--t-sample", type=float, default=TranSpec.t_sample, metavar="S",
                     help="ADC sampling instant (default %(default)s s)")
    net.add_argument("--out-dir", metavar="DIR", help="directory to write tile.cir and its includes")
    net.set_defaults(run=_cmd_netlist)

    example = sub.add_parser("example", help="write a bundled example's input files")
    example.add_argument("name", choices=("tile4",), help="tile4: a 4x4 VTEAM tile and 2 input vectors")
    example.add_argument("--out-dir", default=".", metavar="DIR")
    example.set_defaults(run=_cmd_example)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `cosim` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except CosimError as exc:
        if args.debug:
            raise
        print(f"cosim: error: {exc}", file=sys.stderr)
        if isinstance(exc, SpiceError) and exc.log:
            print(f"cosim: last ngspice lines:\n{exc.log_tail(5)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cosim: interrupted", file=sys.stderr)
        return 130
