"""ngspice vs VACASK vs the fast solver on NxN crossbar tiles: `.op` seconds,
100 ns `.tran` seconds of live VTEAM cells, peak memory, max difference.

Usage: python bench/spice_engines.py [--sizes 16,32,64,128,256] [--access none|nmos]
                                     [--ngspice-op-max 128] [--ngspice-tran-max 64] [--json FILE]

Each tile: seed-000 VTEAM devices (50 ohm..1 kohm) at random states, 1 ohm
wire segments, 10 ohm drivers, ideal TIAs, access none (memristor only:
the read path is linear, so the fast solver is exact) unless --access nmos;
one input vector in +-0.3 V. `.op` freezes the states; `.tran` is a 100 ns
read (DAC step at 1 ns, rise 1 ns, max step 1 ns) with live VTEAM states
(ngspice: the behavioral models/vteam.lib; VACASK: models/vteam.va compiled
by openvaf-r), currents read at 95 ns. Seconds and peak memory are those of
the simulator process (ngspice, vacask), or of the Python call and its heap
peak (tracemalloc) for the fast solver. Differences are max |a - b| / max |b|
over the column currents, VACASK as b. ngspice is time-boxed: `.op` up to
--ngspice-op-max (128: ~2 min), `.tran` up to --ngspice-tran-max (64: ~1
min; above it ngspice takes tens of minutes and is skipped).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

from cosim.core.config import TranSpec, VteamParams
from cosim.core.errors import SpiceError, SpiceTimeout
from cosim.core.tile import TileSpec
from cosim.fast.prepared import solve_fast
from cosim.spice.ngspice import SpiceRun, ngspice_version, run_netlist
from cosim.spice.ngspice_netlist import tile_netlist
from cosim.spice.rawfile import Plot
from cosim.spice.vacask import run_tile, vacask_version

TRAN = TranSpec(t_stop=100e-9, t_step=0.5e-9, t_sample=95e-9, t_max_step=1e-9)
TIMEOUT_S = 600.0


def make_tile(n: int, access: str, seed: int = 0) -> tuple[TileSpec, np.ndarray]:
    rng = np.random.default_rng(seed)
    spec = TileSpec.from_states(rng.uniform(0.05, 0.95, size=(n, n)), VteamParams(), r_wire=1.0,
                                r_driver=10.0, access=access)
    return spec, rng.uniform(-0.3, 0.3, size=(1, n))


def currents(run: SpiceRun, cols: int, t_sample: float | None) -> np.ndarray:
    """Column currents (C,) A of the first analysis, at t_sample in transients."""
    plot: Plot = run.plots[0]
    if t_sample is None:
        return np.array([plot[f"i(vsense_c{j})"][0] for j in range(cols)])
    return np.array([np.interp(t_sample, plot["time"], plot[f"i(vsense_c{j})"]) for j in range(cols)])


def rel_diff(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
    if a is None or b is None:
        return None
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def timed_spice(engine: str, spec: TileSpec, v: np.ndarray, mode: str) -> dict:
    """Run one engine; {'s', 'peak_mb', 'current'} or {'skipped': why}."""
    tran = TRAN if mode == "tran" else None
    try:
        if engine == "ngspice":
            run = run_netlist(tile_netlist(spec, v, mode=mode, tran=tran), timeout_s=TIMEOUT_S, expect_plots=1)
        else:
            run = run_tile(spec, v, mode, tran, timeout_s=TIMEOUT_S)
    except SpiceTimeout:
        return {"skipped": f"timeout {TIMEOUT_S:g} s"}
    except SpiceError as exc:  # a crash or a killed run: record it, keep benchmarking
        return {"skipped": f"failed: {exc}"}
    return {"s": run.wall_s, "peak_mb": run.peak_rss_bytes / 2**20,
            "current": currents(run, spec.cols, TRAN.t_sample if mode == "tran" else None)}


def timed_fast(spec: TileSpec, v: np.ndarray) -> dict:
    """Seconds of one solve_fast call, then its heap peak in a second, traced
    call (tracemalloc slows numpy's allocations down)."""
    start = time.perf_counter()
    result = solve_fast(spec, v)
    seconds = time.perf_counter() - start
    tracemalloc.start()
    solve_fast(spec, v)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"s": seconds, "peak_mb": peak / 2**20, "current": result.current[0]}


def bench_size(n: int, access: str, ngspice_op_max: int, ngspice_tran_max: int) -> dict:
    spec, v = make_tile(n, access)
    skip_op = {"skipped": f"N > {ngspice_op_max}"}
    skip_tran = {"skipped": f"N > {ngspice_tran_max}"}
    cells = {
        "vacask_op": timed_spice("vacask", spec, v, "op"),
        "fast_op": timed_fast(spec, v),
        "ngspice_op": timed_spice("ngspice", spec, v, "op") if n <= ngspice_op_max else skip_op,
        "vacask_tran": timed_spice("vacask", spec, v, "tran"),
        "ngspice_tran": timed_spice("ngspice", spec, v, "tran") if n <= ngspice_tran_max else skip_tran,
    }
    ref_op, ref_tran = cells["vacask_op"].get("current"), cells["vacask_tran"].get("current")
    diffs = {"ngspice_vs_vacask_op": rel_diff(cells["ngspice_op"].get("current"), ref_op),
             "fast_vs_vacask_op": rel_diff(cells["fast_op"].get("current"), ref_op),
             "ngspice_vs_vacask_tran": rel_diff(cells["ngspice_tran"].get("current"), ref_tran)}
    for cell in cells.values():
        cell.pop("current", None)
    return {"n": n, "access": access, **cells, **diffs}


def _s(cell: dict) -> str:
    return f"{cell['s']:>9.3f}" if "s" in cell else f"{'-':>9}"


def _mb(cell: dict) -> str:
    return f"{cell['peak_mb']:>7.0f}" if "peak_mb" in cell else f"{'-':>7}"


def _d(value: float | None) -> str:
    return f"{value:>9.1e}" if value is not None else f"{'-':>9}"


HEADER = (f"{'N':>4} | {'op ngspice':>9} {'vacask':>9} {'fast':>9} | {'tran ngsp':>9} {'vacask':>9} | "
          f"{'MB ngsp':>7} {'vacask':>7} {'v.tran':>7} {'fast':>7} | {'d ng-vk':>9} {'fast-vk':>9} {'tran':>9}")


def row_text(row: dict) -> str:
    return (f"{row['n']:>4} | {_s(row['ngspice_op'])} {_s(row['vacask_op'])} {_s(row['fast_op'])} | "
            f"{_s(row['ngspice_tran'])} {_s(row['vacask_tran'])} | {_mb(row['ngspice_op'])} "
            f"{_mb(row['vacask_op'])} {_mb(row['vacask_tran'])} {_mb(row['fast_op'])} | "
            f"{_d(row['ngspice_vs_vacask_op'])} {_d(row['fast_vs_vacask_op'])} {_d(row['ngspice_vs_vacask_tran'])}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="16,32,64,128,256", help="comma-separated N (default %(default)s)")
    parser.add_argument("--access", choices=("none", "nmos"), default="none", help="cell access (default none)")
    parser.add_argument("--ngspice-op-max", type=int, default=128, help="largest N for ngspice .op (default 128)")
    parser.add_argument("--ngspice-tran-max", type=int, default=64, help="largest N for ngspice .tran (default 64)")
    parser.add_argument("--json", default="bench/results/spice_engines.json", help="JSON output file")
    args = parser.parse_args()
    print(f"SPICE engines: {ngspice_version()} vs VACASK ({vacask_version()}) vs fast; NxN tiles, "
          f"access {args.access}, 1 ohm wires, 10 ohm drivers, 1 input vector")
    print(f"seconds (op; 100 ns tran), peak MB (op; VACASK tran), max rel. difference of the column "
          f"currents vs VACASK; '-': skipped (ngspice .op above N={args.ngspice_op_max}, "
          f".tran above N={args.ngspice_tran_max})")
    print(HEADER)
    timed_fast(*make_tile(4, args.access))  # warm-up: imports and first-call set-up out of the timings
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        row = bench_size(n, args.access, args.ngspice_op_max, args.ngspice_tran_max)
        rows.append(row)
        print(row_text(row), flush=True)
    for row in rows:
        for key, cell in row.items():
            if isinstance(cell, dict) and cell.get("skipped", "").startswith(("failed", "timeout")):
                print(f"N={row['n']} {key}: {cell['skipped']}")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"ngspice": ngspice_version(), "vacask": vacask_version(), "tran": vars(TRAN),
                               "rows": rows}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
