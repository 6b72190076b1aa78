"""Run ngspice on netlist text in an isolated worker process and parse the result.

ngspice runs as its own process (`ngspice -b`) in a scratch directory, under a
wall-clock limit: a crash or hang never takes the caller down. Its log is
scanned for errors (ngspice often only warns on a bad netlist); convergence
failures are retried with more gmin and source stepping before giving up.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cosim.core.errors import NgspiceNotFound, SpiceConvergenceError, SpiceError, SpiceTimeout
from cosim.spice.process import TIMED_OUT, check_timeout, run_directory, run_process, scan_log
from cosim.spice.rawfile import Plot, read_raw

RAW_NAME = "tile.raw"
INSTALL_HINT = "install it with `apt-get install ngspice libngspice0` or set COSIM_NGSPICE=/path/to/ngspice"

# Lines of the ngspice log that mean the run is wrong even if it went on.
_FATAL_PATTERNS = [
    r"unknown device",
    r"unknown model",
    r"unknown subckt",
    r"unable to find definition of model",
    r"could not find (include )?file",
    r"could not find a valid modelname",
    r"error on line",
    r"^\s*error\b",
    r"\berror:",
    r"no such vector",
    r"fatal error",
    r"undefined (parameter|function|symbol)",
    r"cannot open",
    r"syntax error",
]
_CONVERGENCE_PATTERNS = [
    r"singular matrix",
    r"timestep too small",
    r"iteration limit reached",
    r"gmin stepping failed",
    r"source stepping failed",
    r"no convergence",
    r"too many iterations",
    r"transient solution failed",
]
# Harmless lines that would otherwise match a pattern above.
_BENIGN_PATTERNS = [
    r"warning: can't find the initialization file",
    r"note: no compatibility mode selected",
]

# Options inserted on each retry after a convergence failure (ngspice manual, 15.1).
RETRY_OPTIONS = (
    "",
    ".options gminsteps=100 srcsteps=100 itl1=1000 itl2=1000 itl4=100",
    ".options noopiter gminsteps=200 srcsteps=200 itl1=5000 itl2=5000 itl4=500 method=gear",
)


@dataclass
class SpiceRun:
    """The outcome of one ngspice run.

    Attributes:
        plots: one Plot per analysis written to the raw file, in order.
        log: ngspice's stdout and stderr.
        netlist: the netlist text that produced it (after retry options).
        wall_s: wall-clock seconds of the ngspice process (s).
        peak_rss_bytes: peak resident memory of the ngspice process, sampled
            while it runs (bytes; 0 when it finished before the first sample).
        attempts: how many runs it took (1 = no retry).
    """

    plots: list[Plot]
    log: str
    netlist: str
    wall_s: float
    peak_rss_bytes: int
    attempts: int = 1
    warnings: list[str] = field(default_factory=list)


def ngspice_executable() -> str:
    """Path of the ngspice binary, or NgspiceNotFound with how to install it."""
    configured = os.environ.get("COSIM_NGSPICE")
    if configured:
        if shutil.which(configured):
            return shutil.which(configured)  # type: ignore[return-value]
        raise NgspiceNotFound(f"COSIM_NGSPICE={configured} is not an executable; {INSTALL_HINT}")
    found = shutil.which("ngspice")
    if not found:
        raise NgspiceNotFound(f"ngspice is not installed (not on PATH); {INSTALL_HINT}")
    return found


@functools.lru_cache(maxsize=None)
def ngspice_version(executable: str | None = None) -> str:
    """ngspice's version string, e.g. 'ngspice-39'."""
    exe = executable or ngspice_executable()
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30,
                         stdin=subprocess.DEVNULL)
    match = re.search(r"ngspice-\S+", out.stdout + out.stderr)
    return match.group(0) if match else "ngspice-unknown"


def _scan(log: str, patterns: list[str]) -> list[str]:
    return scan_log(log, patterns, _BENIGN_PATTERNS)


def _with_options(netlist: str, options: str) -> str:
    """Insert an `.options` line right after the title line."""
    if not options:
        return netlist
    title, _, rest = netlist.partition("\n")
    return f"{title}\n{options}\n{rest}"


def run_netlist(netlist: str, *, timeout_s: float = 600.0, expect_plots: int | None = None,
                retry: bool = True, keep_dir: Path | None = None) -> SpiceRun:
    """Run `netlist` (ngspice text) and return its plots.

    A netlist with a `.control` block must `write tile.raw` itself; one without
    gets its analyses written with `ngspice -b -r tile.raw`. Included files are
    resolved by ngspice relative to the netlist, so absolute `.include` paths
    (or `keep_dir` holding the files) are expected.

    Args:
        netlist: complete ngspice netlist text.
        timeout_s: wall-clock limit of one ngspice process (s).
        expect_plots: number of analyses the raw file must hold (checked).
        retry: retry convergence failures with gmin/source stepping options.
        keep_dir: run in this directory and keep it (default: a temp dir,
            deleted on success, kept and named in the error on failure).
    """
    exe = ngspice_executable()
    timeout_s = check_timeout(timeout_s)
    return run_with_retries(netlist, retry, keep_dir,
                            lambda text, run_dir, attempt: _attempt(exe, text, run_dir, timeout_s, expect_plots,
                                                                    attempt))


#: One run of a netlist's text in a run directory: (the run, or None to retry
#: with the next options; the log lines that asked for the retry).
Attempt = Callable[[str, Path, int], "tuple[SpiceRun | None, list[str]]"]


def run_with_retries(netlist: str, retry: bool, keep_dir: Path | None, attempt: Attempt) -> SpiceRun:
    """Run `netlist` through `attempt` with each of RETRY_OPTIONS in turn (only
    the first without `retry`), in `keep_dir` or a fresh run directory: the
    retry and clean-up policy every ngspice runner (subprocess, in-process) shares.

    A failed run keeps its directory (the SpiceError names it); an interrupted
    one (Ctrl-C, SIGTERM, a cancelled task) or a bug removes it."""
    options_levels = RETRY_OPTIONS if retry else RETRY_OPTIONS[:1]
    for number, options in enumerate(options_levels, start=1):
        text = _with_options(netlist, options)
        with run_directory("ngspice", keep_dir) as run_dir:
            run, convergence_hits = attempt(text, run_dir, number)
            if run is not None:
                return run
            if number == len(options_levels):
                raise SpiceConvergenceError(
                    f"ngspice did not converge ({convergence_hits[0]}) even with gmin and source stepping "
                    f"(run directory {run_dir}); check for floating nodes or extreme conductances",
                    netlist=text, log=run_dir.joinpath("ngspice.log").read_text(errors="replace"), run_dir=run_dir)
    raise AssertionError("unreachable: the last attempt returns or raises")


def _attempt(exe: str, text: str, run_dir: Path, timeout_s: float, expect_plots: int | None,
             attempt: int) -> tuple[SpiceRun | None, list[str]]:
    """One ngspice run in `run_dir`: (the run, []) on success, (None, hits) on
    a convergence failure; SpiceError on anything else."""
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        (run_dir / "tile.cir").write_text(text)
    except OSError as exc:  # a full or read-only TMPDIR, a file-size limit: one line, not a traceback
        from cosim.core.atomic import write_error

        raise write_error(run_dir / "tile.cir", exc) from exc
    raw = run_dir / RAW_NAME
    raw.unlink(missing_ok=True)
    argv = [exe, "-b", "tile.cir"] if ".control" in text.lower() else [exe, "-b", "-r", RAW_NAME, "tile.cir"]
    code, log, wall, rss = run_process(argv, run_dir, timeout_s, log_name="ngspice.log")
    if code == TIMED_OUT:
        raise SpiceTimeout(f"ngspice ran past its {timeout_s:g} s limit and was killed "
                           f"(run directory {run_dir}); use a smaller tile or raise the timeout",
                           netlist=text, log=log, run_dir=run_dir)
    died = simulator_death(-code) if code < 0 else None
    return classify_run(text, log, run_dir, wall, rss, attempt, expect_plots, died,
                        f"ngspice wrote no results (exit code {code})")


def classify_run(text: str, log: str, run_dir: Path, wall: float, rss: int, attempt: int,
                 expect_plots: int | None, died: str | None, no_results: str
                 ) -> tuple[SpiceRun | None, list[str]]:
    """What one ngspice run (subprocess or in-process) came to, from its log
    and raw file: the run; or (None, the log's convergence lines) to retry with
    more stepping; or a SpiceError (a rejected netlist, a simulator that `died`,
    `no_results`, a wrong number of analyses)."""
    convergence_hits = _scan(log, _CONVERGENCE_PATTERNS)
    fatal = [line for line in _scan(log, _FATAL_PATTERNS) if line not in convergence_hits]
    if fatal:
        raise SpiceError(f"ngspice rejected the netlist: {fatal[0]} (run directory {run_dir})",
                         netlist=text, log=log, run_dir=run_dir)
    if died is not None:
        raise SpiceError(f"ngspice {died} (run directory {run_dir})", netlist=text, log=log, run_dir=run_dir)
    raw = run_dir / RAW_NAME
    if not convergence_hits and raw.is_file():
        plots = read_raw(raw)
        if expect_plots is not None and len(plots) != expect_plots:
            raise SpiceError(f"ngspice wrote {len(plots)} analyses, expected {expect_plots} "
                             f"(run directory {run_dir})", netlist=text, log=log, run_dir=run_dir)
        warnings = [l.strip() for l in log.splitlines() if l.strip().lower().startswith("warning")]
        return SpiceRun(plots, log, text, wall, rss, attempts=attempt, warnings=warnings), []
    if not convergence_hits:
        raise SpiceError(f"{no_results} (run directory {run_dir})", netlist=text, log=log, run_dir=run_dir)
    return None, convergence_hits


def simulator_death(signum: int) -> str:
    """How a simulator killed by signal `signum` ended, in words."""
    if signum == signal.SIGXFSZ:
        return ("was stopped by the file-size limit (SIGXFSZ) while writing its results; "
                "raise `ulimit -f` or free space")
    return f"crashed (signal {signum})"
