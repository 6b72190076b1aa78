"""The `cosim` command line: one line per user error, `--debug` for a traceback."""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from cosim.commands import COMMANDS
from cosim.core.errors import CosimError, first_line, terminal_text
from cosim.core.version import __version__


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand listed in cosim.commands.COMMANDS."""
    from cosim.commands.argtypes import OneLineParser  # a bad option is one `cosim: error:` line

    parser = OneLineParser(prog="cosim", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"cosim {__version__}")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"cosim.commands.{name}").add_parser(sub)
    return parser


class Terminated(SystemExit):
    """Raised in the main thread on SIGTERM, so that every cleanup a Ctrl-C
    runs (simulator process groups killed, run directories removed, temporary
    outputs deleted) runs too; `main` turns it into exit status 143."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(128 + signum)


def _on_signal(signum: int, frame: object) -> None:
    """SIGINT -> KeyboardInterrupt, SIGTERM -> Terminated; recorded first, so
    that a simulator being waited for is killed even if Python swallows the
    exception (cosim.spice.process.request_stop)."""
    from cosim.spice.process import request_stop

    exc_type, args = (KeyboardInterrupt, ()) if signum == signal.SIGINT else (Terminated, (signum,))
    if request_stop(exc_type, *args):
        raise exc_type(*args)


@contextmanager
def _signals_raise() -> Iterator[None]:
    """While `main` runs, SIGTERM raises Terminated and SIGINT KeyboardInterrupt
    (a SIGINT that was ignored when cosim started stays ignored); restored
    after, for callers in-process."""
    from cosim.spice.process import clear_stop, signal_handlers

    clear_stop()
    handlers = {signal.SIGTERM: _on_signal}
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        handlers[signal.SIGINT] = _on_signal
    try:
        with signal_handlers(handlers):  # outside the main thread: signals left alone
            yield
    finally:
        clear_stop()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `cosim` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    with _signals_raise(), _one_line_warnings(args.debug):
        return _run(args)


@contextmanager
def _one_line_warnings(debug: bool):
    """Every warning of a command as one `cosim: warning:` line on stderr (no
    source file and line; names from user files escaped), Python's own format
    with --debug; the previous handler is restored after."""
    import warnings

    previous = warnings.showwarning
    if not debug:
        warnings.showwarning = lambda message, *rest: print(
            f"cosim: warning: {terminal_text(first_line(message, fallback=''))}", file=sys.stderr)
    try:
        yield
    finally:
        warnings.showwarning = previous


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.run(args) or 0)
    except CosimError as exc:
        if args.debug:
            raise
        # One line; ngspice failures name the run directory that keeps netlist and log.
        print(f"cosim: error: {terminal_text(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cosim: interrupted", file=sys.stderr)
        return 130
    except Terminated as exc:
        print("cosim: terminated (SIGTERM)", file=sys.stderr)
        return int(exc.code)
    except BrokenPipeError:  # `cosim waves RUN.h5 --list | head`: the reader has gone
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
