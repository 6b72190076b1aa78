"""The digits MLP (64-100-10, Abs; `cosim example mlp-digits`) on every bundled
preset at tile 32, 64 and 128, with and without `--compensate irdrop`
(README "Choosing hardware"), the issue's targets checked, and the tile-size
against wire-resistance sweep plot of README.

    python bench/accuracy_targets.py [--out bench/results/accuracy_targets.json] [--plot-dir docs]
                                     [--skip-plot]

Accuracy on the 360 test digits of the fixed 80/20 split, `cosim.convert`
(fast engine, access NMOS linearised, the preset's DAC/ADC) as `cosim
evaluate` runs it; beside it the ideal array (v @ G, engine 'ideal') with the
same converters, what the DAC and ADC alone cost. Targets: the default preset loses at most 1 point against
float at tile 128; on every chip preset compensated >= uncompensated; seed
001 reported.

Quantisation noise of that comparison: the same twins also classify
PERTURBED copies of the test digits, each pixel plus N(0, SIGMA) clipped to
[0, 1] (SIGMA = 0.02, a third of one of the digits' 16 grey levels, 1/16 =
0.0625): a read lands on other ADC decision levels, so the spread of the
accuracy over the copies is what converter rounding alone moves it, and the
mean is what a configuration scores beyond the luck of one test set. Printed
as mean (none / irdrop) and the standard deviation of their difference. The sweep: accuracy over tile 16..128 x r_wire on the default
preset (access none, `cosim.twin.sweep`), written as docs/tile_vs_r_wire.*
(markdown, CSV, accuracy plot, Pareto plot).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

CHIPS = ("neurram_wan2022", "taox_hfox_wu2018", "liu2020_isscc")
#: Perturbed copies of the test set, and the pixel noise of each (see the docstring).
PERTURBED = 20
SIGMA = 0.02


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def accuracy_table(model, test) -> list[dict]:
    import cosim
    from cosim.core.config import PRESET_NAMES
    from cosim.twin.convert import tile_cache

    x, y = test
    noise = torch.Generator().manual_seed(0)
    copies = [(x + SIGMA * torch.randn(x.shape, generator=noise)).clamp(0, 1) for _ in range(PERTURBED)]
    rows = []
    print(f"| preset | tile | ideal array, same converters % | uncompensated % | compensated % | largest tile "
          f"residual | {PERTURBED} perturbed test sets: mean % (none / irdrop) | sd of difference | s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for preset in PRESET_NAMES:
        for tile in (32, 64, 128):
            start = time.perf_counter()
            result = {"preset": preset, "tile": tile}
            perturbed = {}
            with torch.no_grad():  # what the converters alone cost: no wires, drivers or access devices
                ideal = cosim.convert(model, preset=preset, tile=tile, engine="ideal")
                result["ideal"] = float((ideal(x).argmax(1) == y).float().mean())
            for mode in ("none", "irdrop"):
                with torch.no_grad():
                    twin = cosim.convert(model, preset=preset, tile=tile, compensate=mode)
                    result[mode] = float((twin(x).argmax(1) == y).float().mean())
                    perturbed[mode] = [float((twin(c).argmax(1) == y).float().mean()) for c in copies]
                if mode == "irdrop":
                    result["residual"] = max(r.compensation.residual for r in tile_cache(twin).records.values())
            diff = [b - a for a, b in zip(perturbed["none"], perturbed["irdrop"])]
            result["perturbed_none"] = sum(perturbed["none"]) / PERTURBED
            result["perturbed_irdrop"] = sum(perturbed["irdrop"]) / PERTURBED
            mean_diff = sum(diff) / PERTURBED
            result["perturbed_diff_sd"] = (sum((d - mean_diff) ** 2 for d in diff) / (PERTURBED - 1)) ** 0.5
            result["seconds"] = time.perf_counter() - start
            rows.append(result)
            print(f"| {preset} | {tile} | {100 * result['ideal']:.2f} | {100 * result['none']:.2f} | {100 * result['irdrop']:.2f} | "
                  f"{result['residual']:.1e} | {100 * result['perturbed_none']:.2f} / "
                  f"{100 * result['perturbed_irdrop']:.2f} | {100 * result['perturbed_diff_sd']:.2f} | "
                  f"{result['seconds']:.1f} |", flush=True)
    return rows


def targets(rows: list[dict], float_acc: float) -> list[str]:
    from cosim.core.config import DEFAULT_PRESET

    lines = []
    default = next(r for r in rows if r["preset"] == DEFAULT_PRESET and r["tile"] == 128)
    lines.append(f"default preset {DEFAULT_PRESET} at tile 128: {100 * default['none']:.2f} % vs float "
                 f"{100 * float_acc:.2f} % (loss {100 * (float_acc - default['none']):.2f} points; target <= 1): "
                 + ("met" if float_acc - default["none"] <= 0.01 else "MISSED"))
    for r in rows:
        if r["preset"] in CHIPS:
            ok = r["irdrop"] >= r["none"]
            noise = (f" (on {PERTURBED} perturbed test sets {100 * r['perturbed_irdrop']:.2f} vs "
                     f"{100 * r['perturbed_none']:.2f} %, sd of the difference "
                     f"{100 * r['perturbed_diff_sd']:.2f} points)")
            lines.append(f"{r['preset']} tile {r['tile']}: compensated {100 * r['irdrop']:.2f} % "
                         f"{'>=' if ok else '<'} uncompensated {100 * r['none']:.2f} %: {'met' if ok else 'MISSED'}"
                         + ("" if ok else noise))
    for r in rows:
        if r["preset"] == "seed001_mlp":
            lines.append(f"seed001_mlp tile {r['tile']}: {100 * r['none']:.2f} % -> {100 * r['irdrop']:.2f} % "
                         "with compensation")
    return lines


def sweep_plot(model, train, test, plot_dir: Path) -> list[dict]:
    from cosim.core.config import DEFAULT_PRESET, load_preset
    from cosim.results.sweep_outputs import markdown, write_outputs
    from cosim.twin.sweep import SweepSetup, parse_grid, run_sweep

    grid = parse_grid(["tile=16,32,64,128", "r_wire=0.6286,2.5,10,40"])
    setup = SweepSetup(engine="fast", access="none", draws=1)
    rows = run_sweep(model, grid, load_preset(DEFAULT_PRESET), setup, train, test)
    write_outputs(rows, plot_dir, "tile_vs_r_wire",
                  f"digits MLP on {DEFAULT_PRESET}: accuracy vs tile size and wire segment (ohm)")
    print(markdown(rows))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="bench/results/accuracy_targets.json")
    parser.add_argument("--plot-dir", default="docs")
    parser.add_argument("--skip-plot", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from cosim.core.seeds import EXAMPLE_SEED
    from cosim.nets.examples import digits_data, make_mlp_digits
    from cosim.twin.sweep import split

    print(load())
    model, _ = make_mlp_digits()
    train, test = split(*digits_data(), EXAMPLE_SEED)
    with torch.no_grad():
        float_acc = float((model(test[0]).argmax(1) == test[1]).float().mean())
    print(f"float test accuracy {100 * float_acc:.2f} %\n")
    rows = accuracy_table(model, test)
    print()
    checks = targets(rows, float_acc)
    print("\n".join(checks))
    sweep = [] if args.skip_plot else sweep_plot(model, train, test, Path(args.plot_dir))
    print(load())
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"float": float_acc, "rows": rows, "targets": checks, "sweep": sweep}, indent=2,
                              default=str) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
