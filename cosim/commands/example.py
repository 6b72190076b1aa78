"""`cosim example NAME`: write a bundled example's input files."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def add_parser(sub: argparse._SubParsersAction) -> None:
    example = sub.add_parser("example", help="write a bundled example's input files")
    example.add_argument("name", choices=("tile4",), help="tile4: a 4x4 VTEAM tile and 2 input vectors")
    example.add_argument("--out-dir", default=".", metavar="DIR")
    example.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from cosim.examples import example_tile4

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    g, v = example_tile4()
    np.save(out / "G.npy", g)
    np.save(out / "V.npy", v)
    print(f"wrote {out / 'G.npy'} (4x4 conductances, S) and {out / 'V.npy'} (2 input vectors, V)")
    return 0
