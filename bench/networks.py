"""ResNet-18 + CBAM (seed 000 shape, 1x48x48, 7 classes, random weights)
through cosim with IR drop on every tile, against float PyTorch in the same run.

    python bench/networks.py [--batch 64] [--tile 128] [--width 64] [--engine fast|ideal]
                             [--nonlinear linear|corrected] [--precision float32|float64]
                             [--workers N] [--profile K] [--json FILE]

Committed results (2 shared cores, other jobs running; the load average is
in each JSON): bench/results/networks.json (`--width 16`: 133 tiles) and
bench/results/networks_full_width.json (`--width 64`: all 1425 tiles
prepared with IR drop).

Every Conv2d/Linear runs on the fast solver (1 ohm wire segments, 10 ohm
drivers, 1T1R access at its small-signal resistance (`--nonlinear linear`,
the default here: the corrected path's maps, 42 MiB per 128 x 128 tile,
would need ~60 GB for the 1425 tiles; `cosim.convert` gives them to the
first 2 GiB of matrices only), 8-bit DAC and ADC of preset seed000_vteam).
Reports the one-time preparation (programming every tile and computing its
transfer matrix, on --workers threads), seconds per
image of the prepared twin and of the float model (best of --repeat forward
passes of one batch each, the two models alternating so that both see the
same machine load), tile count, peak resident memory, the relative error of
the logits against float, and with --profile the K operators the twin's
forward spends most time in (torch.profiler, self CPU time).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path

import torch

import cosim
from cosim.nets.networks import RESNET_INPUT, make_resnet18_cbam
from cosim.twin.convert import tile_cache


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def best_seconds(models: list[torch.nn.Module], x: torch.Tensor, repeat: int) -> list[float]:
    """Fastest wall time of `repeat` forward passes of each model (s), the
    models taking turns (one pass each per round) so that a change in
    machine load hits them alike."""
    times: list[list[float]] = [[] for _ in models]
    with torch.no_grad():
        for _ in range(repeat):
            for k, model in enumerate(models):
                start = time.perf_counter()
                model(x)
                times[k].append(time.perf_counter() - start)
    return [min(t) for t in times]


def operator_profile(model: torch.nn.Module, x: torch.Tensor, top: int) -> dict[str, float]:
    """The `top` torch operators of one forward pass by self CPU time (s),
    plus 'python and other' for the rest of the wall time."""
    from torch.profiler import ProfilerActivity, profile

    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        model(x)
        wall = time.perf_counter() - start
    ops = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    result = {e.key: e.self_cpu_time_total / 1e6 for e in ops[:top]}
    result["python and other"] = wall - sum(e.self_cpu_time_total for e in ops) / 1e6
    return result


def run(batch: int, tile: int, width: int, repeat: int, preset: str, engine: str = "fast",
        precision: str = "float32", workers: int = 1, profile_top: int = 0, nonlinear: str = "linear") -> dict:
    """Convert, time and compare one ResNet-18 + CBAM; the result row (s, MiB, 1)."""
    load_before = os.getloadavg()
    torch.manual_seed(0)
    model = make_resnet18_cbam(width=width)
    x = torch.randn(batch, *RESNET_INPUT)
    with torch.no_grad():
        reference = model(x)
    float_rss = peak_rss_mib()
    start = time.perf_counter()
    twin = cosim.convert(model, preset=preset, tile=tile, engine=engine, precision=precision, workers=workers,
                         nonlinear=nonlinear)
    prepare_s = time.perf_counter() - start
    prepared_rss = peak_rss_mib()
    load_prepared = os.getloadavg()
    float_s, cosim_s = best_seconds([model, twin], x, repeat)
    cache = tile_cache(twin)
    with torch.no_grad():
        error = float(torch.linalg.vector_norm(twin(x) - reference) / torch.linalg.vector_norm(reference))
    profile = operator_profile(twin, x, profile_top) if profile_top else {}
    return {"network": "ResNet-18 + CBAM (seed 000 shape, random weights)", "width": width,
            "input": [batch, *RESNET_INPUT], "tile": tile, "preset": preset,
            "engine": "fast (IR drop on every tile)" if engine == "fast" else f"{engine} (no IR drop)",
            "precision": precision, "prepare_workers": workers, "nonlinear": nonlinear,
            "tiles": len(cache.records), "matrices": len(cache.banks),
            "parameters": sum(p.numel() for p in model.parameters()),
            "prepare_s": prepare_s, "float_s_per_image": float_s / batch, "cosim_s_per_image": cosim_s / batch,
            "ratio": cosim_s / float_s, "float_peak_rss_mib": float_rss, "prepared_peak_rss_mib": prepared_rss,
            "peak_rss_mib": peak_rss_mib(), "relative_error_vs_float": error,
            "load_average_1_5_15": {"start": load_before, "prepared": load_prepared, "end": os.getloadavg()},
            "profile_s": profile, "repeat": repeat,
            "torch_threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine()}


def table(r: dict) -> str:
    rows = [("tiles (matrices)", f"{r['tiles']} ({r['matrices']})"),
            ("one-time preparation", f"{r['prepare_s']:.1f} s"),
            ("float PyTorch, per image", f"{r['float_s_per_image'] * 1e3:.2f} ms"),
            ("cosim twin, per image", f"{r['cosim_s_per_image'] * 1e3:.2f} ms"),
            ("cosim / float", f"{r['ratio']:.1f}x (issue 17: <= 3x with 1T1R on the corrected path)"),
            ("peak memory: float / prepared / after twin", f"{r['float_peak_rss_mib']:.0f} / "
             f"{r['prepared_peak_rss_mib']:.0f} / {r['peak_rss_mib']:.0f} MiB"),
            ("relative error of logits vs float", f"{r['relative_error_vs_float']:.3g}"),
            ("load average (1 min): start / prepared / end",
             " / ".join(f"{r['load_average_1_5_15'][k][0]:.2f}" for k in ("start", "prepared", "end")))]
    head = (f"{r['network']}, width {r['width']}, batch {r['input'][0]} x {r['input'][1:]}, tile {r['tile']}, "
            f"preset {r['preset']}, {r['engine']}, nonlinear {r.get('nonlinear', 'linear')}, {r['precision']}, "
            f"{r['torch_threads']} threads, "
            f"preparation on {r['prepare_workers']} threads")
    lines = [head, "", "| quantity | value |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows]
    if r["profile_s"]:
        lines += ["", "| twin forward: operator (self CPU) | s per batch |", "|---|---|"]
        lines += [f"| {name} | {seconds:.3f} |" for name, seconds in r["profile_s"].items()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--tile", type=int, default=128)
    parser.add_argument("--width", type=int, default=64, help="stem channels (64 = ResNet-18)")
    parser.add_argument("--repeat", type=int, default=3, help="forward passes timed per model, best kept")
    parser.add_argument("--preset", default="seed000_vteam")
    parser.add_argument("--engine", choices=("fast", "ideal"), default="fast",
                        help="ideal: same matrix shapes and converters without IR drop (times the forward "
                             "path without the preparation)")
    parser.add_argument("--nonlinear", choices=("linear", "corrected"), default="linear",
                        help="access NMOS on the fast engine (default linear: see the module docstring)")
    parser.add_argument("--precision", choices=("float32", "float64"), default="float32",
                        help="arithmetic of the prepared forward pass")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="threads preparing tiles (default: the CPU count)")
    parser.add_argument("--profile", type=int, default=0, metavar="K",
                        help="also profile one twin forward pass and list its K slowest operators")
    parser.add_argument("--json", default="bench/results/networks.json")
    args = parser.parse_args()
    result = run(args.batch, args.tile, args.width, args.repeat, args.preset, args.engine, args.precision,
                 args.workers, args.profile, args.nonlinear)
    print(table(result))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
