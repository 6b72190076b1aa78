"""ResNet-18 + CBAM (seed 000 shape, 1x48x48, 7 classes, random weights)
through cosim with IR drop on every tile, against float PyTorch in the same run.

    python bench/networks.py [--batch 64] [--tile 128] [--width 64] [--engine fast|ideal] [--json FILE]

Committed results (2 shared cores, other jobs running): bench/results/networks.json
(`--width 16 --json bench/results/networks.json`: all 133 tiles with IR drop) and
bench/results/networks_full_width_ideal.json (`--engine ideal --json ...`: the
full-width forward path, 1425 tiles, same matrix shapes and converters, no
preparation); the full-width fast preparation (~1425 x 0.4 s) did not fit
the session that wrote this.

Every Conv2d/Linear runs on the fast solver (1 ohm wire segments, 10 ohm
drivers, 1T1R access at its small-signal resistance, 8-bit DAC and ADC of
preset seed000_vteam). Reports the one-time preparation (programming every
tile and computing its transfer matrix), seconds per image of the prepared
twin and of the float model (best of --repeat forward passes of one batch),
tile count and peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path

import torch

import cosim
from cosim.convert import tile_cache
from cosim.networks import RESNET_INPUT, make_resnet18_cbam


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def best_seconds(model: torch.nn.Module, x: torch.Tensor, repeat: int) -> float:
    """Fastest wall time of `repeat` forward passes (s)."""
    times = []
    with torch.no_grad():
        for _ in range(repeat):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    return min(times)


def run(batch: int, tile: int, width: int, repeat: int, preset: str, engine: str = "fast") -> dict:
    torch.manual_seed(0)
    model = make_resnet18_cbam(width=width)
    x = torch.randn(batch, *RESNET_INPUT)
    float_s = best_seconds(model, x, repeat)
    float_rss = peak_rss_mib()
    start = time.perf_counter()
    twin = cosim.convert(model, preset=preset, tile=tile, engine=engine)
    prepare_s = time.perf_counter() - start
    prepared_rss = peak_rss_mib()
    cosim_s = best_seconds(twin, x, repeat)
    cache = tile_cache(twin)
    with torch.no_grad():
        error = float(torch.linalg.vector_norm(twin(x) - model(x)) / torch.linalg.vector_norm(model(x)))
    return {"network": "ResNet-18 + CBAM (seed 000 shape, random weights)", "width": width,
            "input": [batch, *RESNET_INPUT], "tile": tile, "preset": preset, "engine": "fast (IR drop on every tile)" if engine == "fast" else f"{engine} (no IR drop)",
            "tiles": len(cache.records), "matrices": len(cache.banks),
            "parameters": sum(p.numel() for p in model.parameters()),
            "prepare_s": prepare_s, "float_s_per_image": float_s / batch, "cosim_s_per_image": cosim_s / batch,
            "ratio": cosim_s / float_s, "float_peak_rss_mib": float_rss, "prepared_peak_rss_mib": prepared_rss,
            "peak_rss_mib": peak_rss_mib(), "relative_error_vs_float": error,
            "torch_threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine()}


def table(r: dict) -> str:
    rows = [("tiles (matrices)", f"{r['tiles']} ({r['matrices']})"),
            ("one-time preparation", f"{r['prepare_s']:.1f} s"),
            ("float PyTorch, per image", f"{r['float_s_per_image'] * 1e3:.2f} ms"),
            ("cosim twin, per image", f"{r['cosim_s_per_image'] * 1e3:.2f} ms"),
            ("cosim / float", f"{r['ratio']:.1f}x (target <= 10x)"),
            ("peak memory: float / prepared / after twin", f"{r['float_peak_rss_mib']:.0f} / "
             f"{r['prepared_peak_rss_mib']:.0f} / {r['peak_rss_mib']:.0f} MiB"),
            ("relative error of logits vs float", f"{r['relative_error_vs_float']:.3g}")]
    head = (f"{r['network']}, width {r['width']}, batch {r['input'][0]} x {r['input'][1:]}, tile {r['tile']}, "
            f"preset {r['preset']}, {r['engine']}, {r['torch_threads']} threads")
    lines = [head, "", "| quantity | value |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--tile", type=int, default=128)
    parser.add_argument("--width", type=int, default=64, help="stem channels (64 = ResNet-18)")
    parser.add_argument("--repeat", type=int, default=2, help="forward passes timed, best kept")
    parser.add_argument("--preset", default="seed000_vteam")
    parser.add_argument("--engine", choices=("fast", "ideal"), default="fast",
                        help="ideal: same matrix shapes and converters without IR drop (times the forward "
                             "path without the preparation)")
    parser.add_argument("--json", default="bench/results/networks.json")
    args = parser.parse_args()
    result = run(args.batch, args.tile, args.width, args.repeat, args.preset, args.engine)
    print(table(result))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
