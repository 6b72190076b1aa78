"""`cosim example NAME`: write a bundled example's input files."""

from __future__ import annotations

import argparse

import numpy as np

from cosim.nets.examples import LAYER_EXAMPLES, NETWORKS

DESCRIPTIONS = {
    "tile4": "a 4x4 VTEAM tile (G.npy, S) and 2 input vectors (V.npy, V) for `cosim tile`",
    "linear": "Linear 784 -> 100 (the seed MLP's first layer), random weights",
    "conv": "Conv2d 3 -> 8, 3x3, padding 1, then ReLU (its 27x16 tile runs in ngspice)",
    "gru": "GRU 8 -> 16 with a last-step Linear head (seed 004 style)",
    "mlp-digits": "64-100-10 MLP with Abs activation trained on scikit-learn's digits, plus 64 test inputs",
    **NETWORKS,
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `cosim example`'s options."""
    example = sub.add_parser("example", help="write a bundled example's files",
                             description="\n".join(f"{k}: {v}" for k, v in DESCRIPTIONS.items()),
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    example.add_argument("name", choices=("tile4", *LAYER_EXAMPLES, *NETWORKS), help="which example")
    example.add_argument("--out-dir", default=".", metavar="DIR")
    example.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run `cosim example` from parsed arguments; returns the exit status."""
    from cosim.core.atomic import atomic_opens, check_output_dir
    from cosim.nets.examples import write_layer_example
    from cosim.spice.goldens import example_tile4

    out = check_output_dir(args.out_dir, create=True)
    if args.name == "tile4":
        g, v = example_tile4()
        paths = [out / "G.npy", out / "V.npy"]
        with atomic_opens(paths, "wb") as (g_file, v_file):
            np.save(g_file, g)
            np.save(v_file, v)
    elif args.name in NETWORKS:
        from cosim.nets.networks import write_network

        paths = write_network(args.name, out)
    else:
        paths = write_layer_example(args.name, out)
    print(f"{args.name}: {DESCRIPTIONS[args.name]}")
    for path in paths:
        print(f"wrote {path}")
    return 0
