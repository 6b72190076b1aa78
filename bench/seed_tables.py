"""The seed papers' accuracy tables, redone on the digits MLP (64-100-10, Abs)
with `cosim sweep` (fast engine, access none, preset seed001_mlp: 1-12 kohm
devices, 1 ohm wires, 10 ohm drivers, 8-bit DAC/ADC), each with and without
seed 001's calibration + in-situ training (columns none, calibration,
in-situ, calibration + in-situ; `--methods off,both` for the two main ones).

    python bench/seed_tables.py [--draws 5] [--insitu-epochs 10] [--methods off,cal,insitu,both]
                                [--only NAME ...] [--out bench/results/seed_tables] [--dask sigma|none]

First times one table's grid (--dask, default sigma) in this process and on
a 2-worker Dask LocalCluster (`--executor dask`), and checks the rows are identical.

Writes NAME.md/.csv/.png per table and prints the markdown. Every random
point (stuck-at, variability, defects) is averaged over --draws arrays (seed
d = 0..draws-1, the same arrays for every method); points with no random
non-ideality (finite states, ADC bits, IR drop at rate 0) are deterministic
and run once. In-situ training: full-batch Adam (lr 3e-3) on the 1437
training digits for --insitu-epochs epochs, stopping early once the
calibrated output error is below 1e-2 (seed 001); accuracy on the 360 test
digits.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from cosim.results.sweep_outputs import write_outputs
from cosim.twin.sweep import SweepSetup, parse_grid, run_sweep, split
from cosim.core.config import load_preset
from cosim.core.seeds import EXAMPLE_SEED
from cosim.nets.examples import digits_data, make_mlp_digits

TABLES = {
    "stuck_at": ("accuracy vs stuck-at rate (seed 000 Table 1)",
                 ["stuck_at_rate=0,0.05,0.1,0.15,0.2,0.25", "stuck_at=hrs,lrs,both"]),
    "sigma": ("accuracy vs lognormal sigma (seed 001 variability)", ["variability_sigma=0,0.2,0.4,0.6,0.8,1.0"]),
    "states": ("accuracy vs conductance states (seed 000 Fig. 15; 0 = continuous)", ["states=2,4,8,16,32,0"]),
    "adc_bits": ("accuracy vs ADC bits (no device non-idealities; 0 = no ADC)", ["adc_bits=2,3,4,6,8,0"]),
    "ir_drop": ("IR drop on/off with stuck-at HRS", ["stuck_at_rate=0,0.1,0.2", "ir_drop=on,off"]),
    "defect_insitu": ("accuracy vs defect percent (seed 001 Fig. 6)", ["defect_alpha=0,0.05,0.1,0.15,0.2"]),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--insitu-epochs", type=int, default=10)
    parser.add_argument("--methods", default="off,cal,insitu,both",
                        help="methods compared in every table (off/none, cal, insitu, both)")
    parser.add_argument("--only", nargs="*", choices=list(TABLES), default=list(TABLES))
    parser.add_argument("--out", default="bench/results/seed_tables")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--dask", default="sigma", metavar="NAME",
                        help="table timed in-process against a 2-worker Dask LocalCluster (default sigma; "
                             "'none' skips it)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, float_accuracy = make_mlp_digits()
    train, test = split(*digits_data(), EXAMPLE_SEED)
    print(f"digits MLP float test accuracy {100 * float_accuracy:.2f} %")
    setup = SweepSetup(engine="fast", access="none", draws=args.draws, insitu_epochs=args.insitu_epochs)
    preset = load_preset("seed001_mlp")
    if args.dask != "none":
        dask_timing(model, preset, setup, train, test, TABLES[args.dask][1], args.methods)
    for name in args.only:
        title, params = TABLES[name]
        start = time.perf_counter()
        rows = run_sweep(model, parse_grid([*params, f"insitu={args.methods}"]), preset, setup, train, test)
        write_outputs(rows, Path(args.out), name, f"{title} (float {100 * float_accuracy:.2f} %, "
                      f"in-situ {args.insitu_epochs} epochs)")
        print(f"\n### {title}  [{time.perf_counter() - start:.0f} s]\n")
        print((Path(args.out) / f"{name}.md").read_text().split("\n", 2)[2])


def dask_timing(model, preset, setup, train, test, params: list[str], methods: str) -> None:
    """One table's grid in this process and on a 2-worker LocalCluster (2 processes,
    1 thread each): wall times, their ratio, and whether the rows are identical."""
    import os

    from distributed import LocalCluster

    grid = parse_grid([*params, f"insitu={methods}"])
    print(f"load average {os.getloadavg()[0]:.2f} before the Dask timing")
    start = time.perf_counter()
    local = run_sweep(model, grid, preset, setup, train, test)
    local_s = time.perf_counter() - start
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        start = time.perf_counter()
        remote = run_sweep(model, grid, preset, setup, train, test, executor="dask",
                           scheduler=cluster.scheduler_address)
        dask_s = time.perf_counter() - start

    def results(rows: list[dict]) -> str:
        return repr([{k: v for k, v in r.items() if k != "seconds"} for r in rows])

    same = results(local) == results(remote)
    print(f"\n| grid | points x draws | local s | 2-worker LocalCluster s | speed-up | identical rows |\n"
          f"|---|---|---|---|---|---|\n| {' '.join(params)} | {sum(r['draws'] for r in local)} | {local_s:.1f} | "
          f"{dask_s:.1f} | {local_s / dask_s:.2f}x | {same} |")
    print(f"load average {os.getloadavg()[0]:.2f} after")


if __name__ == "__main__":
    main()
