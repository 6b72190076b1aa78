"""How accurate a polynomial (Volterra) form of a 1T1R tile's column currents
can be: the measurement behind the next step for the corrected path's cost
(issue 17 asks <= 30 ideal matmuls; every per-cell scheme costs ~100).

    python bench/corrected_volterra.py [--sizes 64] [--batch 100] [--probe 0.15]
                                       [--kernels 64,128] [--ranks 8,12,16]
                                       [--json bench/results/corrected_volterra.json]

For seed 000's (50 ohm..1 kohm) and seed 001's (1..12 kohm) devices on 1 ohm
wires and 10 ohm drivers, N x N tiles with random states, B random input
vectors in +-0.3 V, the exact operating point (`cosim.fast.batched_newton`)
against, cumulatively:

1. the small-signal transfer v @ T;
2. + each row's own response to all orders: sum_r [I(v_r e_r) - v_r T_r],
   solved exactly for every vector and row (what per-row polynomials reach);
3. + the pairwise terms a_rk v_r v_k (r < k);
4. + the pairwise terms b_rk v_r^2 v_k (r != k).

The pair coefficients come from probing the exact solver with two rows at
+-h (4 solves per pair, 2 N^2 solves in all): a reference for what a cheap
closed form of them must reproduce, not a way to prepare tiles (22-33 s per
128 x 128 tile). Errors are max |model - exact| / max |exact|.

Table 2 (`--kernels`, sizes) builds the same pair terms from N x 9
single-row solves instead (bench/volterra_kernels.py): the own rows to
degree 7, the kernels of v_i v_k and v_i^2 v_k at full rank and compressed
per column to each of `--ranks`, with the seconds of each phase. Table 3
times that compressed form's evaluation for B = 1000 against the ideal
matmul (the issue's <= 30x).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from cosim.core.config import VteamParams
from cosim.core.tile import TileSpec
from cosim.fast.batched_newton import batched_nodes
from cosim.fast.newton import NEWTON_VTOL
from cosim.fast.prepared import prepare
from volterra_kernels import evaluation_cost, low_rank, probe_kernels, volterra_currents

PRESETS = {"seed000": VteamParams(), "seed001": VteamParams(r_on=1e3, r_off=12e3)}


def exact(factor, v: np.ndarray) -> np.ndarray:
    """Exact TIA currents (B, C) (A) for DAC outputs v (B, R) (V)."""
    return batched_nodes(factor, v, NEWTON_VTOL)[0]


def measure(n: int, preset: str, batch: int, h: float, seed: int = 3) -> dict:
    """One row: the errors of the four cumulative models."""
    rng = np.random.default_rng(seed)
    device = PRESETS[preset]
    g = 1.0 / rng.uniform(device.r_on, device.r_off, (n, n))
    spec = TileSpec(g, r_wire=1.0, r_driver=10.0, access="nmos")
    factor = prepare(spec, nonlinear="newton").factor
    transfer = prepare(spec, nonlinear="linear").transfer  # small-signal access: the same linear network
    v = rng.uniform(-0.3, 0.3, (batch, n))
    reference = exact(factor, v)
    scale = float(np.abs(reference).max())
    start = time.perf_counter()
    alone = np.zeros((batch * n, n))
    alone[np.arange(batch * n), np.tile(np.arange(n), batch)] = v.reshape(-1)
    own = (exact(factor, alone).reshape(batch, n, n) - v[:, :, None] * transfer[None]).sum(axis=1)
    r_i, k_i = np.triu_indices(n, 1)
    pairs = r_i.size
    signs = ((1, 1), (-1, 1), (1, -1), (-1, -1))
    probes = np.zeros((4 * pairs + 2 * n, n))
    for j, (a, b) in enumerate(signs):
        probes[j * pairs + np.arange(pairs), r_i] = a * h
        probes[j * pairs + np.arange(pairs), k_i] = b * h
    probes[4 * pairs + np.arange(n), np.arange(n)] = h
    probes[4 * pairs + n + np.arange(n), np.arange(n)] = -h
    out = exact(factor, probes)
    single = {1: out[4 * pairs:4 * pairs + n], -1: out[4 * pairs + n:]}
    inter = {s: out[j * pairs:(j + 1) * pairs] - single[s[0]][r_i] - single[s[1]][k_i] for j, s in enumerate(signs)}
    quad = (inter[(1, 1)] - inter[(-1, 1)] - inter[(1, -1)] + inter[(-1, -1)]) / (4 * h * h)
    cube_rk = (inter[(1, 1)] + inter[(-1, 1)] - inter[(1, -1)] - inter[(-1, -1)]) / (4 * h ** 3)
    cube_kr = (inter[(1, 1)] - inter[(-1, 1)] + inter[(1, -1)] - inter[(-1, -1)]) / (4 * h ** 3)
    probe_s = time.perf_counter() - start
    linear = v @ transfer
    pair_quad = (v[:, r_i] * v[:, k_i]) @ quad
    pair_cube = (v[:, r_i] ** 2 * v[:, k_i]) @ cube_rk + (v[:, r_i] * v[:, k_i] ** 2) @ cube_kr

    def err(model: np.ndarray) -> float:
        return float(np.abs(model - reference).max()) / scale

    return {"n": n, "preset": preset, "batch": batch, "probe_h": h, "exact_solves": int(batch * n + probes.shape[0]),
            "solve_s": probe_s, "linear": err(linear), "own_rows": err(linear + own),
            "pairs_quadratic": err(linear + own + pair_quad),
            "pairs_cubic": err(linear + own + pair_quad + pair_cube)}


def measure_kernels(n: int, preset: str, batch: int, ranks: list[int], seed: int = 3) -> dict:
    """Table 2's row: own rows + probe-built pair kernels, full and low rank."""
    rng = np.random.default_rng(seed)
    device = PRESETS[preset]
    g = 1.0 / rng.uniform(device.r_on, device.r_off, (n, n))
    spec = TileSpec(g, r_wire=1.0, r_driver=10.0, access="nmos")
    factor = prepare(spec, nonlinear="newton").factor
    transfer = prepare(spec, nonlinear="linear").transfer
    v = rng.uniform(-0.3, 0.3, (batch, n))
    reference = exact(factor, v)
    scale = float(np.abs(reference).max())
    own, pair, cubic, seconds = probe_kernels(factor, transfer)
    zero = np.zeros_like(pair)

    def err(pair_k: np.ndarray, cubic_k: np.ndarray) -> float:
        return float(np.abs(volterra_currents(v, transfer, own, pair_k, cubic_k) - reference).max()) / scale

    row = {"n": n, "preset": preset, "batch": batch, "exact_solves": n * (own.shape[0] + 2),
           "own_rows": err(zero, zero), "full_rank": err(pair, cubic), "seconds": seconds, "ranks": {}}
    for rank in ranks:
        start = time.perf_counter()
        row["ranks"][rank] = {"error": err(low_rank(pair, rank), low_rank(cubic, rank)),
                              "seconds": time.perf_counter() - start}
    return row


def kernel_tables(sizes: list[int], batch: int, ranks: list[int]) -> list[dict]:
    """Print tables 2 and 3; their rows."""
    print("\n| N | preset | + own rows (degree 7) | + pair kernels, full rank | "
          + " | ".join(f"rank {r}" for r in ranks) + " | single-row solves | solves s | derivatives s | kernels s |")
    print("|---|---|---|---|" + "---|" * len(ranks) + "---|---|---|---|")
    rows = []
    for n in sizes:
        for preset in PRESETS:
            r = measure_kernels(n, preset, batch, ranks)
            rows.append(r)
            t = r["seconds"]
            print(f"| {n} | {preset} | {r['own_rows']:.1e} | {r['full_rank']:.1e} | "
                  + " | ".join(f"{r['ranks'][k]['error']:.1e}" for k in ranks)
                  + f" | {r['exact_solves']} | {t['single-row solves']:.1f} | {t['fits and cell derivatives']:.1f} | "
                  f"{t['kernels']:.1f} |", flush=True)
    print("\n| N | rank | form s (B = 1000) | ideal s | form / ideal |")
    print("|---|---|---|---|---|")
    for n in sizes:
        for rank in ranks:
            c = evaluation_cost(n, rank)
            rows.append(c)
            print(f"| {n} | {rank} | {c['form_s']:.2e} | {c['ideal_s']:.2e} | {c['ratio']:.0f} |", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="64", help="tile sizes N (default %(default)s; 128 takes ~2 min)")
    parser.add_argument("--batch", type=int, default=100, help="random input vectors (default %(default)s)")
    parser.add_argument("--probe", type=float, default=0.15, help="probe amplitude h (V) (default %(default)s)")
    parser.add_argument("--kernels", default="", help="sizes N of tables 2 and 3 (e.g. 64,128; 128 takes ~2 min "
                        "and ~4 GB); empty: skip")
    parser.add_argument("--ranks", default="8,12,16", help="per-column kernel ranks of tables 2 and 3")
    parser.add_argument("--skip-probed", action="store_true", help="skip table 1 (the probed pair kernels)")
    parser.add_argument("--json", default="bench/results/corrected_volterra.json")
    args = parser.parse_args()
    print(f"load {os.getloadavg()[0]:.2f}")
    if not args.skip_probed:
        print("| N | preset | linear | + own rows (all orders) | + pairs v_r v_k | + pairs v_r^2 v_k | "
              "exact solves | s |")
        print("|---|---|---|---|---|---|---|---|")
    rows = []
    for n in ([] if args.skip_probed else (int(x) for x in args.sizes.split(","))):
        for preset in PRESETS:
            r = measure(n, preset, args.batch, args.probe)
            rows.append(r)
            print(f"| {n} | {preset} | {r['linear']:.1e} | {r['own_rows']:.1e} | {r['pairs_quadratic']:.1e} | "
                  f"{r['pairs_cubic']:.1e} | {r['exact_solves']} | {r['solve_s']:.1f} |", flush=True)
    if args.kernels:
        rows += kernel_tables([int(x) for x in args.kernels.split(",")], args.batch,
                              [int(x) for x in args.ranks.split(",")])
    print(f"load at end {os.getloadavg()[0]:.2f}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"rows": rows}, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
