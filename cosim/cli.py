"""The `cosim` command line: one line per user error, `--debug` for a traceback."""

from __future__ import annotations

import argparse
import importlib
import sys

from cosim import __version__
from cosim.commands import COMMANDS
from cosim.errors import CosimError


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand listed in cosim.commands.COMMANDS."""
    parser = argparse.ArgumentParser(prog="cosim", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"cosim {__version__}")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"cosim.commands.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `cosim` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except CosimError as exc:
        if args.debug:
            raise
        # One line; ngspice failures name the run directory that keeps netlist and log.
        print(f"cosim: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cosim: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `cosim waves RUN.h5 --list | head`: the reader has gone
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
