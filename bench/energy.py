"""Energy bench: (1) the overhead of cosim's energy accounting on a ResNet-18
evaluate (the twin's forward with and without the per-row hooks, plus the
report over every tile), and (2) fast-engine read power against ngspice and
VACASK `.op` on random 1T1R tiles with wires: time and relative error.

    python bench/energy.py [--part network|tiles|both] [--width 64] [--batch 16] [--tile 128]
                           [--sizes 16,32,64] [--vectors 4] [--nonlinear corrected|linear]
                           [--json FILE]

Ratios are measured within one run; the load average is printed at start and end.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch


def network(width: int, batch: int, tile: int, repeat: int, preset: str, nonlinear: str = "corrected") -> dict:
    """ResNet-18 + CBAM evaluate-style run: preparation, forward without and with
    the energy hooks (`cosim.run.energy.RowStats`), and the energy report."""
    import cosim
    from cosim.core.config import load_preset
    from cosim.nets.networks import RESNET_INPUT, make_resnet18_cbam
    from cosim.run.energy import RowStats, energy_report
    from cosim.twin.convert import analog_layers, tile_cache

    torch.manual_seed(0)
    model = make_resnet18_cbam(width=width)
    x = torch.randn(batch, *RESNET_INPUT)
    start = time.perf_counter()
    twin = cosim.convert(model, preset=preset, tile=tile, nonlinear=nonlinear)
    prepare_s = time.perf_counter() - start
    hooks = RowStats(analog_layers(twin), load_preset(preset))
    hooks.close()
    plain, hooked = [], []
    with torch.no_grad():
        for _ in range(repeat):  # alternate, so that both see the same machine load
            t0 = time.perf_counter()
            twin(x)
            plain.append(time.perf_counter() - t0)
            hooks = RowStats(analog_layers(twin), load_preset(preset))
            t0 = time.perf_counter()
            twin(x)
            hooked.append(time.perf_counter() - t0)
            hooks.close()
    cache = tile_cache(twin)
    t0 = time.perf_counter()
    report = energy_report(cache.records, hooks.tile_reads(cache.records), load_preset(preset), batch, model,
                           mode="rows")
    report_s = time.perf_counter() - t0
    base = prepare_s + min(plain)
    extra = max(0.0, min(hooked) - min(plain)) + report_s
    return {"width": width, "batch": batch, "tile": tile, "tiles": len(cache.records), "prepare_s": prepare_s,
            "forward_s": min(plain), "forward_hooked_s": min(hooked), "report_s": report_s,
            "overhead": extra / base, "energy_per_inference_j": report.energy_per_inference_j,
            "tops_per_w": report.tops_per_w, "latency_s": report.latency_s, "path_layers": len(report.path)}


def tiles(sizes: list[int], vectors: int, preset: str) -> list[dict]:
    """Fast-engine power vs ngspice and VACASK on one random 1T1R tile per size."""
    from cosim.core.config import load_preset
    from cosim.core.drive import dac_output
    from cosim.core.tile import TileSpec
    from cosim.fast.power import tile_power
    from cosim.analysis.read_power import spice_power

    p = load_preset(preset)
    rng = np.random.default_rng(0)
    rows = []
    for n in sizes:
        g = rng.uniform(p.device.g_min, p.device.g_max, (n, n))
        spec = TileSpec(g, r_wire=p.r_wire, r_driver=p.r_driver, access="nmos", nmos=p.nmos, device=p.device)
        v = rng.uniform(-p.v_read, p.v_read, (vectors, n))
        t0 = time.perf_counter()
        fast = tile_power(spec, dac_output(spec, v))
        row = {"size": n, "vectors": vectors, "fast_s": time.perf_counter() - t0}
        for engine in ("ngspice", "vacask"):
            t0 = time.perf_counter()
            ref = spice_power(spec, v, spice=engine)
            row[f"{engine}_s"] = time.perf_counter() - t0
            row[f"{engine}_rel_error"] = float(np.max(np.abs(fast.total / ref.total - 1)))
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("network", "tiles", "both"), default="both")
    parser.add_argument("--width", type=int, default=64, help="stem channels (64 = full-width ResNet-18)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--tile", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", default="16,32,64")
    parser.add_argument("--vectors", type=int, default=4)
    parser.add_argument("--preset", default="seed000_vteam")
    parser.add_argument("--nonlinear", choices=("corrected", "linear"), default="corrected",
                        help="1T1R path of the twin (linear: the small-signal transfer, much faster per image)")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    out: dict = {"load_start": os.getloadavg()}
    if args.part in ("tiles", "both"):
        out["tiles"] = tiles([int(s) for s in args.sizes.split(",")], args.vectors, args.preset)
        print("| tile | fast s | ngspice s | VACASK s | fast vs ngspice | fast vs VACASK |")
        print("|---|---|---|---|---|---|")
        for r in out["tiles"]:
            print(f"| {r['size']}x{r['size']} 1T1R, {r['vectors']} vectors | {r['fast_s']:.3f} | {r['ngspice_s']:.2f} "
                  f"| {r['vacask_s']:.2f} | {r['ngspice_rel_error']:.2g} | {r['vacask_rel_error']:.2g} |")
    if args.part in ("network", "both"):
        r = out["network"] = network(args.width, args.batch, args.tile, args.repeat, args.preset, args.nonlinear)
        print(f"ResNet-18 + CBAM width {r['width']}, batch {r['batch']}, {r['tiles']} tiles of {r['tile']}: "
              f"preparation {r['prepare_s']:.1f} s, forward {r['forward_s']:.2f} s, with energy hooks "
              f"{r['forward_hooked_s']:.2f} s, energy report {r['report_s']:.2f} s -> overhead "
              f"{100 * r['overhead']:.1f}% of the run (target <= 10%)")
        print(f"energy {r['energy_per_inference_j'] * 1e6:.4g} uJ per inference, {r['tops_per_w']:.4g} TOPS/W, "
              f"latency {r['latency_s'] * 1e3:.4g} ms over {r['path_layers']} layers on the critical path")
    out["load_end"] = os.getloadavg()
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
