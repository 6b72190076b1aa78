"""Fast tile solver against ngspice: precompute, apply, speed-up, error; and scaling.

Usage: python bench/fast_solver.py [--sizes 16,32,64,128,256,512] [--spice-max 64]
                                   [--spice-128] [--no-nmos] [--no-scaling] [--json FILE]

Table 1 (linear read path, exact): seed-000 VTEAM devices (50 ohm..1 kohm)
at random states, 1 ohm wire segments, 10 ohm drivers, no access device,
ideal TIAs. Per N: ngspice `.op` seconds (one input vector; the ngspice
process alone), fast precompute seconds (transfer matrix), fast apply
seconds for B = 1 and B = 1000 input vectors (numpy; torch CPU for
B = 1000 too), the ideal matmul v @ G for the same B, the speed-up over
ngspice including precompute (ngspice / (precompute + apply B=1)), apply
time / ideal matmul time, and the max error against ngspice (relative to
the largest current). All ratios come from timings taken in this run.
`speedup` compares one input vector (ngspice / (precompute + apply B=1));
`x B=1k` 1000 vectors, ngspice counted as 1000 x its one-vector time (it
redoes the `.op` for every vector). `iter B=1` is the other way to answer one
vector: no transfer matrix, the chains factored and the network solved by
CG (`prepare(method='iterative')`, what `solve_fast` picks for <= 4
vectors), set-up included; `speedup it` = ngspice / that.

Table 2 (1T1R, access NMOS): both device presets, ngspice `.op` vs the
exact Newton (chord iteration, batched) and the calibrated linear model
(sign-split), with the uncalibrated small-signal model for reference.

Table 3 (1T1R in batches): both device presets at N = 128, 256, 512, the
exact operating point of a whole batch by the batched solver
(`cosim.fast.batched_newton`: factor + solve, seconds and ms per vector,
mean steps per vector), its error against the full Newton (sparse LU per
vector, on 2 vectors), the chord iteration it replaces (CG on the chains,
timed on 4 vectors and scaled to the batch), the corrected path
(`cosim.fast.corrected`: maps + apply, apply alone, error against exact)
and the ideal matmul v @ G on the same batch (best of 20), with the ratios
corrected apply / ideal and exact / ideal. Batches: 1000 vectors at 128,
250 at 256, 50 at 512 (the exact solver costs ~R C^2 per vector).

Table 4 (preparation of many tiles): the transfer matrices of --prep-tiles
random 128 x 128 1T1R tiles (seed-000 devices, small-signal access) on 2
worker threads, the numpy/LAPACK sweep (`transfer_matrix`, what
`cosim.convert` uses) against the torch sweep it replaced
(`structured.transfer_structured`), taking turns so both see the same load;
the ratio scales the 1425 tiles of ResNet-18 (bench/networks.py).

Scaling: time and peak memory (RSS above the interpreter's baseline, each
N in its own process) of the transfer matrix (N = 64..512), and of one input
vector without it: the linear network by CG, and a 1T1R tile's exact
operating point (chord Newton on the chains), up to N = 1024.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from cosim.analysis.nmos_calibration import fit_access_calibration
from cosim.core.config import VteamParams
from cosim.core.tile import TileSpec
from cosim.engines import solve_spice
from cosim.fast.calibration import save_calibration
from cosim.fast.prepared import prepare
from cosim.spice.ngspice import ngspice_version

PRESETS = {"seed000": VteamParams(), "mlp": VteamParams(r_on=1e3, r_off=12e3)}
R_WIRE, R_DRIVER = 1.0, 10.0


def best_time(fn, repeats: int) -> float:
    """Smallest wall time of `repeats` calls (s)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def random_tile(n: int, device: VteamParams, seed: int, **settings) -> tuple[TileSpec, np.random.Generator]:
    rng = np.random.default_rng(seed)
    return TileSpec.from_states(rng.uniform(0, 1, size=(n, n)), device, r_wire=R_WIRE, r_driver=R_DRIVER,
                                **settings), rng


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def bench_linear(n: int, run_spice: bool, seed: int = 0) -> dict:
    """One row of table 1."""
    spec, rng = random_tile(n, PRESETS["seed000"], seed)
    v1 = rng.uniform(-0.3, 0.3, size=(1, n))
    v1000 = rng.uniform(-0.3, 0.3, size=(1000, n))
    g = spec.conductance
    repeats = 5 if n <= 128 else 2
    precompute = best_time(lambda: prepare(spec), repeats)
    tile = prepare(spec)
    row = {"n": n, "precompute_s": precompute,
           "apply_b1_s": best_time(lambda: tile.currents(v1), 50),
           "apply_b1000_s": best_time(lambda: tile.currents(v1000), 20),
           "apply_b1000_torch_s": best_time(lambda: tile.currents(v1000, backend="torch"), 20),
           "ideal_b1_s": best_time(lambda: v1 @ g, 50),
           "ideal_b1000_s": best_time(lambda: v1000 @ g, 20)}
    row["iterative_b1_s"] = best_time(lambda: prepare(spec, method="iterative").currents(v1), 20)
    row["apply_over_ideal_b1"] = row["apply_b1_s"] / row["ideal_b1_s"]
    row["apply_over_ideal_b1000"] = row["apply_b1000_s"] / row["ideal_b1000_s"]
    row["ngspice_s"] = row["speedup"] = row["speedup_b1000"] = row["max_rel_err"] = None
    row["speedup_iterative"] = row["iterative_max_rel_err"] = None
    if run_spice:
        ref = solve_spice(spec, v1, timeout_s=3600)
        row["ngspice_s"] = ref.wall_s
        row["speedup"] = ref.wall_s / (row["precompute_s"] + row["apply_b1_s"])
        # ngspice redoes each `.op` per input vector (3.5 s marginal vs 3.9 s
        # for the first at 64x64 here), so 1000 vectors take ~1000 x one.
        row["speedup_b1000"] = 1000 * ref.wall_s / (row["precompute_s"] + row["apply_b1000_s"])
        row["max_rel_err"] = rel_err(tile.currents(v1), ref.current)
        row["speedup_iterative"] = ref.wall_s / row["iterative_b1_s"]
        row["iterative_max_rel_err"] = rel_err(prepare(spec, method="iterative").currents(v1), ref.current)
    return row


def bench_nmos(n: int, preset: str, calibration: str, batch: int = 2, seed: int = 1) -> dict:
    """One row of table 2."""
    spec, rng = random_tile(n, PRESETS[preset], seed, access="nmos")
    v = rng.uniform(-0.3, 0.3, size=(batch, n))
    ref = solve_spice(spec, v, timeout_s=3600)
    start = time.perf_counter()
    newton = prepare(spec, nonlinear="newton").currents(v)
    newton_s = time.perf_counter() - start
    start = time.perf_counter()
    calibrated = prepare(spec, calibration=calibration).currents(v)
    calibrated_s = time.perf_counter() - start
    small_signal = prepare(spec, nonlinear="linear").currents(v)
    return {"n": n, "preset": preset, "batch": batch, "ngspice_s": ref.wall_s,
            "newton_s": newton_s, "newton_err": rel_err(newton, ref.current),
            "calibrated_s": calibrated_s, "calibrated_err": rel_err(calibrated, ref.current),
            "small_signal_err": rel_err(small_signal, ref.current)}


def bench_batched(n: int, preset: str, batch: int, seed: int = 3) -> dict:
    """One row of table 3."""
    from cosim.fast.newton import newton_currents

    spec, rng = random_tile(n, PRESETS[preset], seed, access="nmos")
    v = rng.uniform(-0.3, 0.3, size=(batch, n))
    start = time.perf_counter()
    tile = prepare(spec, nonlinear="newton")
    factor_s = time.perf_counter() - start
    from cosim.fast.batched_newton import batched_nodes
    from cosim.fast.newton import NEWTON_VTOL

    start = time.perf_counter()
    exact, _, steps = batched_nodes(tile.factor, v, NEWTON_VTOL)
    solve_s = time.perf_counter() - start
    full = newton_currents(spec, v[:2])
    few = min(batch, 4)
    start = time.perf_counter()
    prepare(spec, nonlinear="newton", method="iterative").currents(v[:few])
    chord_s = (time.perf_counter() - start) * batch / few
    start = time.perf_counter()
    corrected = prepare(spec, nonlinear="corrected")
    maps_s = time.perf_counter() - start
    apply_s = best_time(lambda: corrected.currents(v), 3)
    g = spec.conductance
    ideal_s = best_time(lambda: v @ g, 20)
    return {"n": n, "preset": preset, "batch": batch, "factor_s": factor_s, "exact_s": factor_s + solve_s,
            "exact_ms_per_vector": 1e3 * (factor_s + solve_s) / batch, "mean_steps": float(steps.mean()),
            "exact_err_vs_full_newton": rel_err(exact[:2], full), "chord_cg_s_scaled": chord_s,
            "corrected_maps_s": maps_s, "corrected_apply_s": apply_s,
            "corrected_err": rel_err(corrected.currents(v), exact), "linear_err": rel_err(v @ corrected.transfer, exact),
            "ideal_s": ideal_s, "corrected_over_ideal": apply_s / ideal_s,
            "exact_over_ideal": (factor_s + solve_s) / ideal_s}


BATCHED_HEADER = (f"{'N':>5} {'preset':>8} {'B':>5} {'exact s':>8} {'ms/vec':>7} {'steps':>6} {'err vs Newton':>13} "
                  f"{'CG chord s':>10} {'corr maps s':>11} {'corr apply s':>12} {'corr err':>9} {'linear err':>10} "
                  f"{'ideal s':>9} {'corr/ideal':>10} {'exact/ideal':>11}")


def batched_line(r: dict) -> str:
    return (f"{r['n']:>5} {r['preset']:>8} {r['batch']:>5} {r['exact_s']:>8.3f} {r['exact_ms_per_vector']:>7.3f} "
            f"{r['mean_steps']:>6.2f} {r['exact_err_vs_full_newton']:>13.1e} {r['chord_cg_s_scaled']:>10.1f} "
            f"{r['corrected_maps_s']:>11.3f} {r['corrected_apply_s']:>12.4f} {r['corrected_err']:>9.1e} "
            f"{r['linear_err']:>10.1e} {r['ideal_s']:>9.2e} {r['corrected_over_ideal']:>10.0f} "
            f"{r['exact_over_ideal']:>11.0f}")


def bench_prep(count: int, workers: int = 2) -> dict:
    """Table 4: seconds to prepare `count` 128 x 128 transfer matrices on
    `workers` threads, numpy sweep vs torch sweep (best of 2 rounds each)."""
    from concurrent.futures import ThreadPoolExecutor

    from cosim.fast.prepared import cell_conductance
    from cosim.fast.structured import blas_threads, torch_threads, transfer_structured

    cells = [cell_conductance(random_tile(128, PRESETS["seed000"], 100 + k, access="nmos")[0])
             for k in range(count)]

    def numpy_sweep(g: np.ndarray) -> np.ndarray:
        return prepare(TileSpec(g, r_wire=R_WIRE, r_driver=R_DRIVER), threads=None).transfer

    def torch_sweep(g: np.ndarray) -> np.ndarray:
        return transfer_structured(g, R_WIRE, R_DRIVER, threads=None)

    times = {"numpy": float("inf"), "torch": float("inf")}
    with torch_threads(1), blas_threads(1), ThreadPoolExecutor(workers) as pool:
        for _ in range(2):
            for name, fn in (("numpy", numpy_sweep), ("torch", torch_sweep)):
                start = time.perf_counter()
                list(pool.map(fn, cells))
                times[name] = min(times[name], time.perf_counter() - start)
    return {"tiles": count, "workers": workers, "numpy_s": times["numpy"], "torch_s": times["torch"],
            "ratio": times["numpy"] / times["torch"], "load": os.getloadavg()[0]}


def _status_kib(field: str) -> int:
    """A memory field of /proc/self/status (KiB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def scaling_one(n: int, what: str) -> dict:
    """Precompute time and peak RSS above the RSS just before it, for one N
    (run in a fresh process; the peak is reset through /proc/self/clear_refs;
    best of 2-3 runs)."""
    spec, rng = random_tile(n, PRESETS["seed000"], 2, access="nmos" if what == "newton" else "none")
    v1 = rng.uniform(-0.3, 0.3, size=(1, n))
    prepare(TileSpec(spec.conductance[:4, :4], r_wire=R_WIRE, r_driver=R_DRIVER))  # load torch, BLAS
    best, peak = float("inf"), 0.0
    for _ in range(3 if n <= 256 else 2):  # the smallest time: other processes share the cores
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        base = _status_kib("VmRSS")
        start = time.perf_counter()
        if what == "iterative":  # one vector, no transfer matrix
            prepared = prepare(spec, method="iterative").currents(v1)
        elif what == "newton":  # one vector, exact 1T1R operating point (chord Newton on the chains)
            prepared = prepare(spec, nonlinear="newton").currents(v1)
        else:
            prepared = prepare(spec)
        best = min(best, time.perf_counter() - start)
        peak = max(peak, (_status_kib("VmHWM") - base) / 1024)
        del prepared
    return {"n": n, "what": what, "precompute_s": best, "peak_extra_mb": peak}


def run_scaling(sizes: list[int], what: str) -> list[dict]:
    rows = []
    for n in sizes:
        out = subprocess.run([sys.executable, __file__, "--scaling-one", str(n), what],
                             capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout))
    return rows


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


LINEAR_HEADER = (f"{'N':>5} {'ngspice s':>10} {'precomp s':>10} {'apply B=1':>10} {'apply B=1k':>10} "
                 f"{'torch B=1k':>10} {'ideal B=1':>10} {'ideal B=1k':>10} {'speedup':>9} {'x B=1k':>9} "
                 f"{'apply/ideal B=1, 1k':>20} {'max err':>9} {'iter B=1':>10} {'speedup it':>10} {'iter err':>9}")


def linear_line(r: dict) -> str:
    return (f"{r['n']:>5} {_fmt(r['ngspice_s'], '10.3f')} {r['precompute_s']:>10.4f} {r['apply_b1_s']:>10.2e} "
            f"{r['apply_b1000_s']:>10.2e} {r['apply_b1000_torch_s']:>10.2e} {r['ideal_b1_s']:>10.2e} "
            f"{r['ideal_b1000_s']:>10.2e} {_fmt(r['speedup'], '9.0f')} {_fmt(r['speedup_b1000'], '9.0f')} "
            f"{r['apply_over_ideal_b1']:>12.1f}, {r['apply_over_ideal_b1000']:<5.2f} "
            f"{_fmt(r['max_rel_err'], '9.1e')} {r['iterative_b1_s']:>10.2e} {_fmt(r['speedup_iterative'], '10.0f')} "
            f"{_fmt(r['iterative_max_rel_err'], '9.1e')}")


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--scaling-one":
        print(json.dumps(scaling_one(int(sys.argv[2]), sys.argv[3])))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="16,32,64,128,256,512", help="N of table 1 (default %(default)s)")
    parser.add_argument("--spice-max", type=int, default=64, help="largest N run in ngspice (default %(default)s)")
    parser.add_argument("--spice-128", action="store_true", help="run ngspice at 128 too (~2 min)")
    parser.add_argument("--no-nmos", action="store_true", help="skip table 2 (1T1R)")
    parser.add_argument("--no-scaling", action="store_true", help="skip the scaling measurements")
    parser.add_argument("--prep-tiles", type=int, default=64, help="tiles of table 4 (0 skips it)")
    parser.add_argument("--batched-sizes", default="128,256,512",
                        help="N of table 3 (1T1R in batches; empty to skip) (default %(default)s)")
    parser.add_argument("--scaling-sizes", default="64,128,256,512", help="N of the scaling runs (default %(default)s)")
    parser.add_argument("--iterative-max", type=int, default=1024,
                        help="also time one vector by CG at this N (default %(default)s)")
    parser.add_argument("--json", default="bench/results/fast_solver.json", help="JSON output file")
    args = parser.parse_args()
    import torch

    spice_max = max(args.spice_max, 128 if args.spice_128 else 0)
    env = {"ngspice": ngspice_version(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
           "load_avg_at_start": os.getloadavg(), "numpy": np.__version__, "torch": torch.__version__}
    print(f"fast solver vs {env['ngspice']}: seed-000 devices, {R_WIRE:g} ohm wires, {R_DRIVER:g} ohm drivers; "
          f"{env['cpus']} CPUs, torch threads {env['torch_threads']}, load {env['load_avg_at_start'][0]:.2f}")
    print("\nTable 1: linear read path (access none), exact; times in s, errors relative to max |current|")
    print(LINEAR_HEADER)
    linear = []
    for n in [int(s) for s in args.sizes.split(",")]:
        linear.append(bench_linear(n, run_spice=n <= spice_max))
        print(linear_line(linear[-1]), flush=True)
    nmos = []
    if not args.no_nmos:
        print("\nTable 2: 1T1R (level-1 access NMOS, W/L 3.1u/0.1u, V_wl 1.8 V), 2 input vectors per tile")
        print(f"{'N':>5} {'preset':>8} {'ngspice s':>10} {'newton s':>9} {'newton err':>11} "
              f"{'calib s':>8} {'calib err':>10} {'small-sig err':>14}")
        with tempfile.TemporaryDirectory() as folder:
            for preset, device in PRESETS.items():
                path = str(save_calibration(fit_access_calibration(device, preset=preset), Path(folder) / f"{preset}.json"))
                for n in (16, 32, 64):
                    r = bench_nmos(n, preset, path)
                    nmos.append(r)
                    print(f"{n:>5} {preset:>8} {r['ngspice_s']:>10.3f} {r['newton_s']:>9.4f} "
                          f"{r['newton_err']:>11.1e} {r['calibrated_s']:>8.4f} {r['calibrated_err']:>10.1e} "
                          f"{r['small_signal_err']:>14.1e}", flush=True)
    batched = []
    sizes3 = [int(s) for s in args.batched_sizes.split(",") if s.strip()]
    if sizes3:
        print(f"\nTable 3: 1T1R in batches (exact batched solver, corrected path, ideal matmul); "
              f"load {os.getloadavg()[0]:.2f}")
        print(BATCHED_HEADER)
        for n in sizes3:
            for preset in PRESETS:
                batched.append(bench_batched(n, preset, {128: 1000, 256: 250}.get(n, 50)))
                print(batched_line(batched[-1]), flush=True)
        print(f"load {os.getloadavg()[0]:.2f}")
    prep = None
    if args.prep_tiles:
        prep = bench_prep(args.prep_tiles)
        print(f"\nTable 4: {prep['tiles']} transfer matrices of 128 x 128 on {prep['workers']} threads: numpy "
              f"sweep {prep['numpy_s']:.2f} s, torch sweep {prep['torch_s']:.2f} s, numpy / torch "
              f"{prep['ratio']:.2f} (load {prep['load']:.2f}); ResNet-18's 1425 tiles at this rate: "
              f"{1425 / prep['tiles'] * prep['numpy_s']:.1f} s (numpy), {1425 / prep['tiles'] * prep['torch_s']:.1f} s "
              "(torch)", flush=True)
    scaling = []
    if not args.no_scaling:
        sizes = [int(s) for s in args.scaling_sizes.split(",")]
        print("\nScaling (each N in a fresh process): precompute s and peak memory above baseline (MiB)")
        print(f"{'N':>5} {'transfer s':>11} {'transfer MiB':>13} {'iter 1 vec s':>13} {'iter MiB':>9} "
              f"{'1T1R 1 vec s':>13} {'1T1R MiB':>9}")
        for n in sizes + [args.iterative_max]:
            done = [run_scaling([n], "transfer")[0]] if n in sizes else []
            others = [run_scaling([n], what)[0] for what in ("iterative", "newton")]
            scaling += done + others
            cells = (f"{done[0]['precompute_s']:>11.3f} {done[0]['peak_extra_mb']:>13.1f}" if done
                     else f"{'-':>11} {'-':>13}")
            print(f"{n:>5} {cells} " + " ".join(f"{r['precompute_s']:>13.3f} {r['peak_extra_mb']:>9.1f}"
                                                 for r in others), flush=True)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    env["load_avg_at_end"] = os.getloadavg()
    print(f"load at end {env['load_avg_at_end'][0]:.2f}")
    out.write_text(json.dumps({"env": env, "linear": linear, "nmos": nmos, "batched": batched, "prep": prep,
                               "scaling": scaling},
                              indent=2))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
