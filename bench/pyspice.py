"""PySpice export: time to build a tile's PySpice `Circuit` (`cosim.to_pyspice`)
and to turn it into netlist text, against cosim's own ngspice writer, on NxN tiles.

Usage: python bench/pyspice.py [--sizes 32,64,128] [--access nmos] [--json FILE]

Each tile: seed-000 VTEAM devices at random states, 1 ohm wire segments,
10 ohm drivers, 1T1R access (default), ideal TIAs, one input vector, `.op`.
Seconds of one call each in this process: `to_pyspice` (Circuit objects),
`str(circuit)` (PySpice writing its netlist), and
`cosim.spice.ngspice_netlist.tile_netlist` (text directly).
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
from cosim.spice.ngspice_netlist import tile_netlist
from cosim.spice.pyspice_export import to_pyspice


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="32,64,128", help="comma-separated N (default %(default)s)")
    parser.add_argument("--access", choices=("none", "nmos"), default="nmos")
    parser.add_argument("--json", default="bench/results/pyspice.json", help="JSON output file")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    to_pyspice(TileSpec(np.full((2, 2), 5e-3)), np.zeros(2))  # imports out of the timings
    print(f"{'N':>4} {'elements':>9} | {'to_pyspice s':>12} {'str() s':>8} {'tile_netlist s':>14} {'build/text':>10}")
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        rng = np.random.default_rng(n)
        spec = TileSpec.from_states(rng.uniform(0.05, 0.95, (n, n)), VteamParams(), r_wire=1.0, r_driver=10.0,
                                    access=args.access)
        v = rng.uniform(-0.3, 0.3, n)
        build_s, circuit = timed(lambda: to_pyspice(spec, v))
        str_s, _ = timed(lambda: str(circuit))
        text_s, _ = timed(lambda: tile_netlist(spec, v))
        elements = len(list(circuit.elements))
        rows.append({"n": n, "elements": elements, "to_pyspice_s": build_s, "str_s": str_s, "tile_netlist_s": text_s,
                     "ratio": build_s / text_s})
        print(f"{n:>4} {elements:>9} | {build_s:>12.3f} {str_s:>8.3f} {text_s:>14.3f} {build_s / text_s:>9.1f}x",
              flush=True)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"access": args.access, "rows": rows}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
