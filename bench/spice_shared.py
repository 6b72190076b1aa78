"""Tiles per second: `--spice ngspice-shared` (libngspice in a worker process)
against the subprocess runner (`ngspice -b` per tile), on NxN tiles.

Usage: python bench/spice_shared.py [--sizes 4,8,16,32] [--tiles 20] [--access nmos] [--json FILE]

Each tile: seed-000 VTEAM devices at random states, 1 ohm wire segments,
10 ohm drivers, 1T1R access (default), ideal TIAs, 4 input vectors in
+-0.3 V, `.op`; every tile is a new circuit (states and inputs drawn again).
Both runners go through `cosim.engines.solve_spice` (netlist writing, the
circuit check and the raw file read included), one after another in this
process; the worker's start-up is paid once before the timed loop (it is
printed). `max rel diff` is the largest |difference| of the currents over
all tiles, relative to the largest current (equal runs give 0); `worker MiB`
the worker's resident memory after the size, which stays flat when each run
is followed by `destroy all` and `remcirc`. Last, a child process loads one
16x16 netlist 300 times into libngspice with and without that cleanup and
prints its resident memory (the leak the worker avoids).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from cosim.core.config import VteamParams
from cosim.core.tile import TileSpec
from cosim.engines import solve_spice
from cosim.spice.ngspice_shared import worker_pid


def worker_rss_mb() -> float:
    """Resident memory of this thread's libngspice worker (MiB): it must not grow from tile to tile
    (`destroy all` and `remcirc` after each run)."""
    with open(f"/proc/{worker_pid()}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


#: Run in a child process: 300 loads of one 16x16 1T1R netlist into libngspice, with or without the
#: cleanup the worker does after each run; prints the resident memory (MiB) after runs 1, 100 and 300.
LEAK_CHECK = """
import logging, os, sys, tempfile
import numpy as np
logging.getLogger("PySpice").setLevel(100)
from PySpice.Spice.NgSpice.Shared import NgSpiceShared, ffi
from cosim.core.tile import TileSpec
from cosim.spice.ngspice_netlist import tile_netlist
from cosim.spice.ngspice_shared import shared_lines
class Quiet(NgSpiceShared):
    def send_char(self, message, ngspice_id):
        return 0
api = Quiet.new_instance()._ngspice_shared
os.chdir(tempfile.mkdtemp(prefix="cosim-leak-"))
lines = shared_lines(tile_netlist(TileSpec(np.full((16, 16), 5e-3), r_wire=1.0, access="nmos"), np.full((4, 16), 0.1)))
rss = lambda: next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS")) / 1024
out = []
for k in range(1, 301):
    keep = [ffi.new("char[]", l.encode()) for l in lines + [""]] + [ffi.NULL]
    api.ngSpice_Circ(ffi.new("char *[]", keep))
    if sys.argv[1] == "clean":
        for command in (b"destroy all", b"remcirc", b"unset appendwrite"):
            api.ngSpice_Command(command)
    if k in (1, 100, 300):
        out.append(f"{rss():.1f}")
print(" ".join(out))
"""


def leak_check() -> dict[str, list[float]]:
    """Resident MiB after runs 1, 100, 300 of libngspice with and without `destroy all` / `remcirc`."""
    import subprocess

    from cosim.spice.ngspice_shared import LIBRARY

    env = {**os.environ, "NGSPICE_LIBRARY_PATH": os.environ.get("NGSPICE_LIBRARY_PATH") or LIBRARY}
    found = {}
    for mode in ("clean", "no-cleanup"):
        out = subprocess.run([sys.executable, "-c", LEAK_CHECK, mode], capture_output=True, text=True, env=env,
                             timeout=600)
        found[mode] = [float(x) for x in out.stdout.split()]
    return found


def tiles(n: int, count: int, access: str, seed: int) -> list[tuple[TileSpec, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [(TileSpec.from_states(rng.uniform(0.05, 0.95, (n, n)), VteamParams(), r_wire=1.0, r_driver=10.0,
                                  access=access, name=f"bench{n}_{k}"), rng.uniform(-0.3, 0.3, (4, n)))
            for k in range(count)]


def timed(engine: str, batch: list[tuple[TileSpec, np.ndarray]]) -> tuple[float, list[np.ndarray]]:
    start = time.perf_counter()
    out = [solve_spice(spec, v, spice=engine).current for spec, v in batch]
    return time.perf_counter() - start, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="4,8,16,32", help="comma-separated N (default %(default)s)")
    parser.add_argument("--tiles", type=int, default=20, help="tiles per size and runner (default %(default)s)")
    parser.add_argument("--access", choices=("none", "nmos"), default="nmos")
    parser.add_argument("--json", default="bench/results/spice_shared.json", help="JSON output file")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    start = time.perf_counter()
    solve_spice(*tiles(2, 1, args.access, 0)[0], spice="ngspice-shared")
    print(f"worker start-up (Python + PySpice + libngspice, first tile): {time.perf_counter() - start:.3f} s")
    solve_spice(*tiles(2, 1, args.access, 0)[0], spice="ngspice")
    print(f"{args.tiles} tiles per size, access {args.access}, 4 vectors each, .op")
    print(f"{'N':>4} | {'subprocess tiles/s':>18} {'shared tiles/s':>15} {'ratio':>7} | {'max rel diff':>12} | "
          f"{'worker MiB':>10}")
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        batch = tiles(n, args.tiles, args.access, n)
        sub_s, sub = timed("ngspice", batch)
        shared_s, shared = timed("ngspice-shared", batch)
        scale = max(float(np.abs(c).max()) for c in sub)
        diff = max(float(np.abs(a - b).max()) for a, b in zip(sub, shared)) / scale
        row = {"n": n, "tiles": args.tiles, "subprocess_tiles_per_s": args.tiles / sub_s,
               "shared_tiles_per_s": args.tiles / shared_s, "ratio": sub_s / shared_s, "max_rel_diff": diff,
               "worker_rss_mb": worker_rss_mb()}
        rows.append(row)
        print(f"{n:>4} | {row['subprocess_tiles_per_s']:>18.1f} {row['shared_tiles_per_s']:>15.1f} "
              f"{row['ratio']:>6.1f}x | {diff:>12.1e} | {row['worker_rss_mb']:>10.1f}", flush=True)
    again = tiles(rows[0]["n"], args.tiles, args.access, rows[0]["n"])
    timed("ngspice-shared", again)
    print(f"worker after all sizes and {args.tiles} more {rows[0]['n']}x{rows[0]['n']} tiles: "
          f"{worker_rss_mb():.1f} MiB (after the first size: {rows[0]['worker_rss_mb']:.1f} MiB)")
    leaks = leak_check()
    for mode, mib in leaks.items():
        print(f"libngspice, 300 runs of one 16x16 netlist, {mode:>10}: {' -> '.join(f'{m:.0f}' for m in mib)} MiB "
              "(after runs 1, 100, 300)")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"access": args.access, "rows": rows, "leak_check_mib": leaks}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
