"""IR-drop-compensated programming (`--compensate irdrop`): time and residual per
tile, the error cut on a wire- and driver-dominated layer, and ngspice spot
checks of compensated tiles.

    python bench/compensation.py [--sizes 32 64 128 256] [--repeat 2] [--out bench/results/compensation.json]

1. Per tile: `compensate_tile` on random NeuRRAM-range tiles (1-40 uS, the
   default preset's 0.6286 ohm wires, 10 ohm drivers, 1T1R access linearised),
   wall time (best of --repeat), Gauss-Newton steps, residual, and the same
   tile's uncompensated error. Target: <= 1 s at 128x128.
2. A layer whose error is mainly wire and driver loss (seed 001's 1-12 kohm
   devices, Linear 64->32 on one 64x64 tile, converters off): output error
   against the ideal array with and without compensation. Target: >= 10x cut.
3. ngspice spot checks of compensated tiles (16x16 and 32x32, 1T1R, level-1
   access NMOS): the fast solver's exact (Newton) currents of the programmed
   conductances against ngspice `.op`. Target: <= 1e-6 relative.

The machine is shared: the load average is printed at start and end.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def per_tile(sizes: list[int], repeat: int) -> list[dict]:
    from cosim.core.config import load_preset
    from cosim.fast.compensate import compensate_tile
    from cosim.core.tile import tile_spec

    preset = load_preset("neurram_wan2022")
    dev = preset.device
    rows = []
    for n in sizes:
        g = np.random.default_rng(n).uniform(dev.g_min, dev.g_max, (n, n))
        spec = tile_spec(preset, g, f"t{n}")
        best, result = float("inf"), None
        for _ in range(repeat):
            start = time.perf_counter()
            result = compensate_tile(spec)
            best = min(best, time.perf_counter() - start)
        tight = compensate_tile(spec, rtol=1e-10)
        rows.append({"size": n, "seconds": best, "steps": result.steps, "residual": result.residual,
                     "residual_rtol_1e-10": tight.residual, "steps_rtol_1e-10": tight.steps,
                     "uncompensated": result.uncompensated, "scale": result.scale})
        print(f"| {n}x{n} | {best:.3f} | {result.steps} | {result.residual:.2e} | {tight.steps} | "
              f"{tight.residual:.1e} | {result.uncompensated:.4f} | {result.scale:.3f} |", flush=True)
    return rows


def layer_cut() -> dict:
    from cosim.core.config import load_preset
    from cosim.run.simulation import SimOptions, Simulation

    torch.manual_seed(0)
    layer = torch.nn.Linear(64, 32)
    preset = load_preset("seed001_mlp").with_(access="none", dac_bits=None, adc_bits=None)
    x = torch.rand(64, 64)
    ideal = Simulation(preset, SimOptions(tile=64, engine="ideal", quiet=True)).forward(layer, x)
    out = {}
    for mode in ("none", "irdrop"):
        sim = Simulation(preset, SimOptions(tile=64, engine="fast", quiet=True, compensate=mode))
        y = sim.forward(layer, x)
        out[mode] = float((y - ideal).norm() / ideal.norm())
    out["cut"] = out["none"] / out["irdrop"]
    print(f"| seed001 Linear 64->32, tile 64, converters off | {out['none']:.4f} | {out['irdrop']:.2e} | "
          f"{out['cut']:.0f}x |", flush=True)
    return out


def spot_checks() -> list[dict]:
    from cosim.core.config import load_preset
    from cosim.engines import solve
    from cosim.fast.compensate import compensate_tile
    from cosim.core.tile import tile_spec

    preset = load_preset("neurram_wan2022")
    dev = preset.device
    rows = []
    for n in (16, 32):
        g = np.random.default_rng(100 + n).uniform(dev.g_min, dev.g_max, (n, n))
        spec = tile_spec(preset, g, f"s{n}").with_(dac=spec_dac(preset))
        result = compensate_tile(spec)
        programmed = spec.with_(conductance=result.conductance)
        v = np.random.default_rng(n).uniform(-preset.v_read, preset.v_read, (2, n))
        start = time.perf_counter()
        spice = solve(programmed, v, engine="spice").current
        spice_s = time.perf_counter() - start
        fast = solve(programmed, v, engine="fast", nonlinear="newton").current
        scale = float(np.abs(spice).max())
        vs_fast = float(np.abs(fast - spice).max() / scale)
        vs_target = float(np.abs(spice - v @ result.target).max() / scale)
        rows.append({"size": n, "fast_vs_ngspice": vs_fast, "ngspice_vs_target": vs_target,
                     "residual": result.residual, "ngspice_s": spice_s})
        print(f"| {n}x{n} | {vs_fast:.1e} | {vs_target:.1e} | {result.residual:.1e} | {spice_s:.1f} |", flush=True)
    return rows


def spec_dac(preset):
    """Exact row voltages in the spot checks (the DAC is not what is checked)."""
    from cosim.core.config import DacSpec

    return DacSpec(bits=None, vfs=preset.v_read)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[32, 64, 128, 256])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", default="bench/results/compensation.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(load())
    print("\n| tile | s (best) | GN steps | residual (rtol 1e-4) | steps to 1e-10 | residual | uncompensated | scale |")
    print("|---|---|---|---|---|---|---|---|")
    tiles = per_tile(args.sizes, args.repeat)
    print("\n| layer | error vs ideal array, uncompensated | compensated | cut |\n|---|---|---|---|")
    cut = layer_cut()
    print("\n| tile (NeuRRAM, 1T1R) | fast (Newton) vs ngspice | ngspice vs target T* | residual | ngspice s |")
    print("|---|---|---|---|---|")
    spots = spot_checks()
    print(load())
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"tiles": tiles, "layer": cut, "spot_checks": spots}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
