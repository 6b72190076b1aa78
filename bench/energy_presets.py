"""One network's energy per inference, latency and TOPS/W on every bundled
preset (docs/energy.md): the 784-100-10 MLP of Liu et al., ISSCC 2020 (random
weights, torch seed 0), fed scikit-learn's 8x8 digits upsampled to 28x28
(a stand-in for MNIST, which is not bundled), simulated on the fast engine
with the exact array energy of every tile (`cosim.run.energy`, mode 'exact').

    python bench/energy_presets.py [--batch 64] [--json FILE]

Tiles: 784 rows (the chip's fully parallel read) on liu2020_isscc, 128 on the
others (seed 000's 128x128 arrays), 256 on neurram_wan2022 (its 256x256 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
import torch.nn.functional as F
from torch import nn

TILES = {"liu2020_isscc": 784, "neurram_wan2022": 256}


def network_and_inputs(batch: int) -> tuple[nn.Module, torch.Tensor]:
    """The 784-100-10 MLP and `batch` digit images of 28 x 28 in [0, 1]."""
    from cosim.nets.examples import digits_data

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 100), nn.ReLU(), nn.Linear(100, 10))
    x, _ = digits_data()
    images = x[:batch].reshape(-1, 1, 8, 8).float()
    images = F.interpolate(images / images.max(), size=(28, 28), mode="bilinear", align_corners=False)
    return model, images.reshape(batch, 784).clamp(0, 1).double()


def run(preset_name: str, batch: int) -> dict:
    """Simulate the MLP on one preset; its energy report as a row."""
    from cosim.core.config import load_preset
    from cosim.run.energy import EnergyMeter, energy_report
    from cosim.run.simulation import SimOptions, Simulation

    preset = load_preset(preset_name)
    model, x = network_and_inputs(batch)
    tile = TILES.get(preset_name, 128)
    sim = Simulation(preset, SimOptions(tile=tile, engine="fast", quiet=True))
    meter = EnergyMeter(sim)
    sim.products = meter
    start = time.perf_counter()
    sim.forward(model, x)
    report = energy_report(sim.records, meter.tiles, preset, batch, model)
    parts = dict(zip(report.components, report.per_layer.sum(axis=0)))
    return {"preset": preset_name, "tile": tile, "tiles": len(sim.records), "seconds": time.perf_counter() - start,
            "energy_per_inference_j": report.energy_per_inference_j, "parts_j": parts,
            "tops_per_w": report.tops_per_w, "pj_per_mac": report.pj_per_mac, "latency_s": report.latency_s,
            "macs": report.macs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--json")
    args = parser.parse_args()
    from cosim.core.config import PRESET_NAMES

    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    rows = [run(name, args.batch) for name in PRESET_NAMES]
    print("| preset | tile | nJ/inference | array | DAC | TIA | ADC | digital | TOPS/W | pJ/MAC | latency us |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        share = " | ".join(f"{100 * v / r['energy_per_inference_j']:.1f}%" for v in r["parts_j"].values())
        print(f"| {r['preset']} | {r['tile']} | {r['energy_per_inference_j'] * 1e9:.4g} | {share} | "
              f"{r['tops_per_w']:.4g} | {r['pj_per_mac']:.4g} | {r['latency_s'] * 1e6:.4g} |")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
