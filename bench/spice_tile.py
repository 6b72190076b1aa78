"""ngspice wall time and peak memory of crossbar tiles, `.op` and `.tran`.

Usage: python bench/spice_tile.py [--sizes 4,8,16,32,64] [--large] [--json FILE]

Each tile: seed-000 VTEAM devices (50 ohm..1 kohm) at random states, 1 ohm
wire segments, 10 ohm drivers, 1T1R access NMOS, ideal TIAs; one input vector
in +-0.3 V. `.tran` is a 20 ns read (DAC step 1 ns, rise 1 ns) with live VTEAM
states. Wall time and peak RSS are those of the ngspice process alone.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from cosim.core import vteam
from cosim.core.config import TranSpec, VteamParams
from cosim.core.tile import TileSpec
from cosim.spice.ngspice import ngspice_version, run_netlist
from cosim.spice.ngspice_netlist import tile_netlist


def bench_tile(n: int, mode: str, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    g = vteam.conductance(rng.uniform(0.05, 0.95, size=(n, n)), VteamParams())
    spec = TileSpec(g, r_wire=1.0, r_driver=10.0, access="nmos")
    v = rng.uniform(-0.3, 0.3, size=(1, n))
    text = tile_netlist(spec, v, mode=mode, tran=TranSpec())
    run = run_netlist(text, timeout_s=3600, expect_plots=1)
    return {"n": n, "mode": mode, "devices": n * n, "ngspice_s": run.wall_s,
            "peak_mb": run.peak_rss_bytes / 2**20, "netlist_kb": len(text) / 1024}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="4,8,16,32,64", help="comma-separated N (default %(default)s)")
    parser.add_argument("--large", action="store_true", help="add N = 128 (.op ~2 min, .tran much longer)")
    parser.add_argument("--modes", default="op,tran", help="comma-separated modes (default %(default)s)")
    parser.add_argument("--json", default="bench/results/spice_tile.json", help="JSON output file")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")] + ([128] if args.large else [])
    rows = []
    print(f"ngspice tile benchmark ({ngspice_version()}), 1T1R, 1 ohm wires, 10 ohm drivers")
    print(f"{'N':>5} {'mode':>5} {'devices':>8} {'ngspice s':>10} {'peak MB':>8} {'netlist KB':>11}")
    for mode in args.modes.split(","):
        for n in sizes:
            row = bench_tile(n, mode)
            rows.append(row)
            print(f"{row['n']:>5} {row['mode']:>5} {row['devices']:>8} {row['ngspice_s']:>10.3f} "
                  f"{row['peak_mb']:>8.1f} {row['netlist_kb']:>11.1f}", flush=True)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"ngspice": ngspice_version(), "rows": rows}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
