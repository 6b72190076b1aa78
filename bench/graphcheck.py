"""What the circuit check before every SPICE run costs: `cosim.spice.graphcheck.check_tile`
against writing the tile's ngspice netlist, on NxN tiles.

Usage: python bench/graphcheck.py [--sizes 32,64,128] [--repeats 3] [--json FILE]

Each tile: seed-000 VTEAM devices at random states, 1 ohm wire segments,
10 ohm drivers, 1T1R access, 8-bit ADCs, one input vector; `.op` (frozen
cells) and `.tran` (live VTEAM cells, one more node per cell). Times are the
best of --repeats calls in this process (s); the check builds the neutral
circuit itself, as `cosim.engines.solve_spice` calls it. For scale: ngspice's
`.op` of a 128x128 1T1R tile takes tens of seconds (bench/spice_engines.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from cosim.core.config import AdcSpec, VteamParams
from cosim.core.tile import TileSpec
from cosim.spice.graphcheck import block_library, check_tile
from cosim.spice.ngspice_netlist import tile_netlist


def best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="32,64,128", help="comma-separated N (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default="bench/results/graphcheck.json", help="JSON output file")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    block_library()  # the shipped subcircuits are read once per process
    print(f"{'N':>4} {'mode':>5} | {'check s':>8} {'netlist s':>9} {'check/netlist':>13} | {'cells':>7}")
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        rng = np.random.default_rng(n)
        spec = TileSpec.from_states(rng.uniform(0.05, 0.95, (n, n)), VteamParams(), r_wire=1.0, r_driver=10.0,
                                    access="nmos", adc=AdcSpec(bits=8))
        v = rng.uniform(-0.3, 0.3, (1, n))
        for mode in ("op", "tran"):
            check_s = best(lambda: check_tile(spec, v, mode), args.repeats)
            text_s = best(lambda: tile_netlist(spec, v, mode=mode), args.repeats)
            rows.append({"n": n, "mode": mode, "check_s": check_s, "netlist_s": text_s, "ratio": check_s / text_s})
            print(f"{n:>4} {mode:>5} | {check_s:>8.3f} {text_s:>9.3f} {check_s / text_s:>12.2f}x | {n * n:>7}",
                  flush=True)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
