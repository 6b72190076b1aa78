"""`cosim sweep`: classification accuracy over a grid of non-idealities and
hardware options, averaged over random draws -> markdown, CSV and PNG.

Grid axes (`--param NAME=v1,v2,...`, repeatable): any cosim.mapping.nonideal.NonIdeal
field (states, stuck_at_rate, stuck_at, variability_sigma, defect_alpha,
defect_beta), preset fields adc_bits / dac_bits (0 = off), ir_drop (on/off:
off sets r_wire = r_driver = 0), and insitu, the method (off / cal / insitu /
both = none / calibration / in-situ / calibration + in-situ: seed 001's
inputs-split calibration and in-situ training, see cosim.twin.insitu;
`--methods none,both` is short for `--param insitu=off,both`). Draw d of a
point runs with seed = --seed + d, so every point sees the same arrays; a
point whose array does not depend on the draw (no stuck-at, variability or
defects: finite states, ADC bits, IR drop alone) runs once, since every
method is deterministic there. With a method axis the markdown has one
column per method.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import itertools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cosim.commands import argtypes
from cosim.commands.common import add_spice_timeout
from cosim.core.config import PRESET_NAMES, Preset, load_preset
from cosim.core.errors import InputError
from cosim.mapping.nonideal import NonIdeal
from cosim.spice.process import check_timeout

if TYPE_CHECKING:
    import torch
    from torch import nn

NONIDEAL_FIELDS = {f.name: f.type for f in dataclasses.fields(NonIdeal)}
INSITU_MODES = ("off", "cal", "insitu", "both")
# Method names accepted on the command line -> INSITU_MODES, and the column heading of each mode.
METHOD_ALIASES = {"none": "off", "calibration": "cal", "in-situ": "insitu", "cal+insitu": "both"}
METHOD_TITLES = {"off": "none", "cal": "calibration", "insitu": "in-situ", "both": "calibration + in-situ"}
RESULT_KEYS = ("mean", "std", "draws", "seconds")
AXES = (*NONIDEAL_FIELDS, "adc_bits", "dac_bits", "ir_drop", "insitu")


@dataclass(frozen=True)
class SweepSetup:
    """Fixed settings of a sweep: engine, access, draws, seed, in-situ epochs."""

    engine: str = "fast"
    access: str = "none"
    tile: int = 128
    draws: int = 5
    seed: int = 0
    insitu_epochs: int = 10
    spice_timeout_s: float = 600.0


def parse_value(axis: str, text: str):
    """One grid value of `axis` from text."""
    if axis not in AXES:
        raise InputError(f"unknown sweep axis {axis!r}; use one of {', '.join(AXES)}")
    if axis == "insitu":
        text = METHOD_ALIASES.get(text, text)
    if axis == "stuck_at" or axis == "insitu":
        choices = ("hrs", "lrs", "both") if axis == "stuck_at" else INSITU_MODES
        if text not in choices:
            raise InputError(f"--param {axis}: {text!r} is not one of {', '.join(choices)}")
        return text
    if axis == "ir_drop":
        if text not in ("on", "off"):
            raise InputError(f"--param ir_drop takes on,off; got {text!r}")
        return text
    try:
        return int(text) if axis in ("states", "adc_bits", "dac_bits") else float(text)
    except ValueError:
        raise InputError(f"--param {axis}: {text!r} is not a number") from None


def parse_grid(params: list[str]) -> dict[str, list]:
    """['stuck_at_rate=0,0.1', 'stuck_at=hrs,lrs'] -> {axis: values}."""
    grid = {}
    for item in params:
        if "=" not in item:
            raise InputError(f"--param must look like NAME=v1,v2,... got {item!r}")
        axis, values = item.split("=", 1)
        grid[axis.strip()] = [parse_value(axis.strip(), v.strip()) for v in values.split(",") if v.strip()]
    return grid


def point_config(point: dict, preset: Preset, setup: SweepSetup) -> tuple[Preset, NonIdeal, str]:
    """(preset, non-ideality, insitu mode) of one grid point."""
    nonideal = NonIdeal(**{k: (None if k == "states" and v == 0 else v) for k, v in point.items()
                           if k in NONIDEAL_FIELDS})
    changes: dict = {"access": setup.access}
    for key in ("adc_bits", "dac_bits"):
        if key in point:
            changes[key] = point[key] or None
    if point.get("ir_drop") == "off":
        changes.update(r_wire=0.0, r_driver=0.0)
    return preset.with_(**changes), nonideal, point.get("insitu", "off")


def evaluate(model: nn.Module, preset: Preset, nonideal: NonIdeal, mode: str, setup: SweepSetup, seed: int,
             train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor]) -> float:
    """Test accuracy (fraction) of one draw of one grid point; train and test are (x (N, ...), labels (N,))."""
    from cosim.run.simulation import SimOptions, Simulation
    from cosim.twin.insitu import InsituOptions, accuracy, insitu_train

    options = SimOptions(tile=setup.tile, engine=setup.engine, seed=seed, quiet=True, nonideal=nonideal,
                         spice_timeout_s=setup.spice_timeout_s)
    if mode == "off":
        return accuracy(Simulation(preset, options), model, *test)
    insitu = InsituOptions(calibrate=mode in ("cal", "both"), epochs=0 if mode == "cal" else setup.insitu_epochs)
    result = insitu_train(model, preset, options, train, test, insitu)
    return result.accuracy_after


def run_sweep(model: nn.Module, grid: dict[str, list], preset: Preset, setup: SweepSetup,
              train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor]) -> list[dict]:
    """Rows {axis values..., mean, std, draws, seconds} over the grid (accuracy as fractions)."""
    axes = list(grid)
    rows = []
    for values in itertools.product(*(grid[a] for a in axes)):
        point = dict(zip(axes, values))
        p, nonideal, mode = point_config(point, preset, setup)
        random = nonideal.stochastic
        start = time.perf_counter()
        accs = [evaluate(model, p, nonideal, mode, setup, setup.seed + d, train, test)
                for d in range(setup.draws if random else 1)]
        rows.append({**point, "mean": float(np.mean(accs)), "std": float(np.std(accs)), "draws": len(accs),
                     "seconds": time.perf_counter() - start})
    return rows


def write_csv(rows: list[dict], path: Path) -> None:
    """The rows as CSV at `path` (a temporary of `write_outputs`, or any path)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _axes(rows: list[dict]) -> list[str]:
    return [k for k in rows[0] if k not in RESULT_KEYS]


def markdown(rows: list[dict]) -> str:
    """Markdown table: axes, accuracy mean ± std (%) over the draws, draws. With an `insitu`
    (method) axis of several values, one accuracy column per method, rows over the other axes."""
    axes = _axes(rows)
    methods = list(dict.fromkeys(r["insitu"] for r in rows)) if "insitu" in axes else []
    if len(methods) < 2:
        lines = ["| " + " | ".join(axes) + " | accuracy % (mean ± std) | draws |",
                 "|" + "---|" * (len(axes) + 2)]
        for r in rows:
            lines.append("| " + " | ".join(str(r[a]) for a in axes)
                         + f" | {100 * r['mean']:.2f} ± {100 * r['std']:.2f} | {r['draws']} |")
        return "\n".join(lines) + "\n"
    others = [a for a in axes if a != "insitu"]
    table: dict[tuple, dict[str, dict]] = {}
    for r in rows:
        table.setdefault(tuple(r[a] for a in others), {})[r["insitu"]] = r
    lines = ["| " + " | ".join(others) + " | "
             + " | ".join(f"{METHOD_TITLES[m]} % (mean ± std)" for m in methods) + " | draws |",
             "|" + "---|" * (len(others) + len(methods) + 1)]
    for key, by_method in table.items():
        cells = [f"{100 * by_method[m]['mean']:.2f} ± {100 * by_method[m]['std']:.2f}" if m in by_method else "–"
                 for m in methods]
        draws = max(r["draws"] for r in by_method.values())
        lines.append("| " + " | ".join(str(v) for v in key) + " | " + " | ".join(cells) + f" | {draws} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path, title: str = "") -> None:
    """Accuracy vs the first axis with std error bars: one colour per value of the other
    axes, one line style per method (`insitu` axis)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes = _axes(rows)
    x_axis, others = axes[0], [a for a in axes[1:] if a != "insitu"]
    styles = {"off": "-", "cal": ":", "insitu": "-.", "both": "--"}
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((*(r[a] for a in others), r.get("insitu", "")), []).append(r)
    by_method = len({k[:-1] for k in groups}) == 1  # a single curve per method: colour the methods
    colours = {key: f"C{i}" for i, key in enumerate(dict.fromkeys(k[-1:] if by_method else k[:-1] for k in groups))}
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, items in groups.items():
        xs = [str(r[x_axis]) if isinstance(r[x_axis], str) else r[x_axis] for r in items]
        label = ", ".join([f"{a}={v}" for a, v in zip(others, key)] + ([METHOD_TITLES[key[-1]]] if key[-1] else []))
        ax.errorbar(xs, [100 * r["mean"] for r in items], yerr=[100 * r["std"] for r in items], marker="o",
                    capsize=3, color=colours[key[-1:] if by_method else key[:-1]], linestyle=styles.get(key[-1], "-"), label=label or None)
    ax.set_xlabel(x_axis)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    if len(groups) > 1:
        ax.legend(fontsize=6, ncol=2 if len(groups) > 6 else 1)
    fig.tight_layout()
    try:
        fig.savefig(path, format="png", dpi=120)  # explicit: `path` may be a temporary name
    finally:
        plt.close(fig)


def split(x: torch.Tensor, y: torch.Tensor,
          seed: int = 2026) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """The fixed 80/20 split of cosim.nets.examples.make_mlp_digits of x (N, ...) and labels y (N,):
    ((x_train, y_train), (x_test, y_test))."""
    import torch

    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    cut = int(0.8 * len(x))
    return (x[order[:cut]], y[order[:cut]]), (x[order[cut:]], y[order[cut:]])


def load_model_and_data(args: argparse.Namespace):
    """(model, train, test) from the CLI arguments."""
    import torch

    from cosim.core.seeds import EXAMPLE_SEED
    from cosim.nets.examples import digits_data, make_mlp_digits
    from cosim.nets.loading import load_layer

    if args.model == "mlp-digits":
        model, _ = make_mlp_digits()
    else:
        model = load_layer(args.model)
    if args.data:
        x = torch.load(args.data, map_location="cpu", weights_only=True)
        y = torch.load(args.labels, map_location="cpu", weights_only=True) if args.labels else None
        if y is None or len(x) != len(y):
            raise InputError("--data needs --labels with one label per sample")
    else:
        x, y = digits_data()
    train, test = split(x, y, EXAMPLE_SEED)
    return model, train, test


def output_paths(out_dir: Path, name: str) -> dict[str, Path]:
    """{'md', 'csv', 'png'}: NAME.md, NAME.csv and NAME.png under out_dir."""
    return {ext: Path(out_dir) / f"{name}.{ext}" for ext in ("md", "csv", "png")}


def check_outputs(out_dir: Path, name: str) -> dict[str, Path]:
    """Refuse (one line, before any simulation) outputs that cannot be written:
    out_dir a file or read-only, NAME.* a directory; creates out_dir."""
    from cosim.core.atomic import check_output_dir, check_output_file

    check_output_dir(out_dir, create=True)
    paths = output_paths(out_dir, name)
    for path in paths.values():
        check_output_file(path)
    return paths


def write_outputs(rows: list[dict], out_dir: Path, name: str, title: str = "") -> dict[str, Path]:
    """NAME.md, NAME.csv and NAME.png under out_dir (created), all three
    atomically: they appear together when complete, or none does."""
    from cosim.core.atomic import atomic_paths

    paths = check_outputs(out_dir, name)
    with atomic_paths(list(paths.values())) as (md, table, png):
        md.write_text((f"### {title}\n\n" if title else "") + markdown(rows), encoding="utf-8")
        write_csv(rows, table)
        plot(rows, png, title)
    return paths


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `cosim sweep`'s options."""
    p = sub.add_parser("sweep", help="accuracy over a grid of non-idealities (markdown, CSV, PNG)")
    p.add_argument("model", metavar="MODEL.pt|mlp-digits", help="a saved classifier, or the bundled digits MLP")
    p.add_argument("--param", action="append", default=[], metavar="NAME=v1,v2",
                   help=f"grid axis (repeatable): {', '.join(AXES)}")
    p.add_argument("--data", metavar="X.pt", help="labelled data (default: sklearn digits), split 80/20")
    p.add_argument("--labels", metavar="Y.pt", help="labels of --data")
    p.add_argument("--preset", default="seed001_mlp", help=f"{', '.join(PRESET_NAMES)} or JSON (default seed001_mlp)")
    p.add_argument("--engine", choices=("fast", "ideal", "spice", "auto"), default="fast")
    add_spice_timeout(p)
    p.add_argument("--access", choices=("none", "nmos"), default="none",
                   help="access device (default none: the fast solver's exact linear path)")
    p.add_argument("--tile", type=argtypes.int_at_least(2), default=128)
    p.add_argument("--draws", type=argtypes.POSITIVE_INT, default=5, help="random draws per grid point (default 5)")
    p.add_argument("--seed", type=argtypes.SEED, default=0, help="seed of draw 0 (draw d uses seed + d)")
    p.add_argument("--methods", metavar="M1,M2",
                   help="compare methods: none, calibration, insitu, both (calibration + in-situ); "
                        "short for --param insitu=...")
    p.add_argument("--insitu-epochs", type=argtypes.NON_NEGATIVE_INT, default=10,
                   help="in-situ training epochs (default 10)")
    p.add_argument("--out-dir", default="sweep", help="directory of NAME.md/.csv/.png (default ./sweep)")
    p.add_argument("--name", default="sweep", help="file stem (default sweep)")
    p.set_defaults(run=run_sweep_command)


def run_sweep_command(args: argparse.Namespace) -> int:
    """Run `cosim sweep` from parsed arguments; returns the exit status."""
    grid = parse_grid(args.param + ([f"insitu={args.methods}"] if args.methods else []))
    if not grid:
        raise InputError("give at least one --param NAME=v1,v2,...")
    if args.draws < 1:
        raise InputError(f"--draws must be >= 1, got {args.draws}")
    check_timeout(args.spice_timeout, "--spice-timeout")
    check_outputs(Path(args.out_dir), args.name)
    model, train, test = load_model_and_data(args)
    setup = SweepSetup(engine=args.engine, access=args.access, tile=args.tile, draws=args.draws,
                       seed=args.seed, insitu_epochs=args.insitu_epochs,
                       spice_timeout_s=check_timeout(args.spice_timeout, "--spice-timeout"))
    rows = run_sweep(model, grid, load_preset(args.preset), setup, train, test)
    paths = write_outputs(rows, Path(args.out_dir), args.name)
    print(markdown(rows), end="")
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0
