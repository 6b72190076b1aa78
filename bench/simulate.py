"""End-to-end `cosim simulate` cost: time, tiles per second and peak memory.

Usage: python bench/simulate.py [--batch 64] [--access none|nmos] [--json FILE]

Cases (seed-000 preset, 128x128 tiles, fast engine, batch 64):
- Linear 784 -> 100 (the seed MLP's first layer);
- Conv2d 256 -> 256, 3x3, padding 1, on 8x8 inputs (a ResNet-18 stage);
each with IR drop on (1 ohm wires, 10 ohm drivers) and off (ideal wires).
Each case runs in a fresh process so that its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

CASES = ("linear784x100", "conv256x256")


def build(case: str):
    import torch

    torch.manual_seed(0)
    if case == "linear784x100":
        return torch.nn.Linear(784, 100), (784,)
    return torch.nn.Conv2d(256, 256, 3, padding=1), (256, 8, 8)


def run_one(case: str, ir_drop: bool, batch: int, access: str) -> dict:
    """Simulate one case in this process and measure it."""
    import torch

    from cosim.core.config import load_preset
    from cosim.run.records import relative_error
    from cosim.run.simulation import SimOptions, Simulation

    module, shape = build(case)
    x = torch.rand((batch, *shape), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    preset = load_preset("seed000_vteam").with_(access=access)
    if not ir_drop:
        preset = preset.with_(r_wire=0.0, r_driver=0.0)
    sim = Simulation(preset, SimOptions(tile=128, engine="fast", quiet=True))
    start = time.perf_counter()
    out = sim.forward(module, x)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        error = relative_error(out, module(x.float()))
    tiles = len(sim.records)
    return {"case": case, "ir_drop": ir_drop, "access": access, "batch": batch, "tiles": tiles,
            "seconds": seconds, "tiles_per_s": tiles / seconds, "error_vs_float": error,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--access", choices=("none", "nmos"), default="none",
                        help="access device (nmos runs the exact Newton solve without a calibration)")
    parser.add_argument("--json", default="bench/results/simulate.json")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        case, ir = args.one.split(":")
        print(json.dumps(run_one(case, ir == "on", args.batch, args.access)))
        return 0
    rows = []
    print(f"cosim simulate, fast engine, 128x128 tiles, batch {args.batch}, access {args.access}")
    print(f"{'case':>14} {'IR drop':>7} {'tiles':>6} {'seconds':>8} {'tiles/s':>8} {'peak MB':>8} {'err vs float':>12}")
    for case in CASES:
        for ir in ("on", "off"):
            out = subprocess.run([sys.executable, __file__, "--one", f"{case}:{ir}", "--batch", str(args.batch),
                                  "--access", args.access], capture_output=True, text=True, check=True)
            row = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"{case:>14} {ir:>7} {row['tiles']:>6} {row['seconds']:>8.2f} {row['tiles_per_s']:>8.1f} "
                  f"{row['peak_mb']:>8.0f} {row['error_vs_float']:>12.4g}", flush=True)
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
