"""Sweeps: classification accuracy over a grid of hardware, non-idealities and
methods, averaged over random draws (`cosim sweep`; outputs in
`cosim.results.sweep_outputs`).

Grid axes (`NAME=v1,v2,...`):

- any `cosim.mapping.nonideal.NonIdeal` field (states, stuck_at_rate,
  stuck_at, variability_sigma, defect_alpha, defect_beta);
- `tile` (devices per side) and `compensate` (none / irdrop, `cosim.run.compensation`);
- any preset field, checked by its `cosim.core.config` Rule: top-level ones
  (r_wire, r_driver, v_read, access, adc_bits / dac_bits with 0 = off) and
  the fields of its sections as dotted names (device.r_on, tia.rs,
  nmos.v_wordline, ...); a section field whose name is found in one section
  only may be given bare (r_on, r_off, rs, v_wordline, ...);
- `ir_drop` (on / off: off sets r_wire = r_driver = 0);
- `insitu`, the method (off / cal / insitu / both = none / calibration /
  in-situ / calibration + in-situ, seed 001's, `cosim.twin.insitu`).

Draw d of a point runs with seed = setup.seed + d, so every point sees the
same arrays; a point whose array does not depend on the draw (no stuck-at,
variability or defects) runs once, since every method is deterministic
there. Every (point, draw) is an independent task: `run_sweep` runs them
in-process or over Dask (`executor='dask'`, `cosim.run.executors.map_tasks`)
with the same result, since each task carries everything it computes from.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from cosim.core import config
from cosim.core.config import Preset
from cosim.core.errors import InputError
from cosim.mapping.nonideal import NonIdeal
from cosim.run.compensation import COMPENSATE_MODES

if TYPE_CHECKING:
    import torch
    from torch import nn

NONIDEAL_FIELDS = {f.name: f.type for f in dataclasses.fields(NonIdeal)}
INSITU_MODES = ("off", "cal", "insitu", "both")
#: Method names accepted on the command line -> INSITU_MODES.
METHOD_ALIASES = {"none": "off", "calibration": "cal", "in-situ": "insitu", "cal+insitu": "both"}
#: Column heading of each method.
METHOD_TITLES = {"off": "none", "cal": "calibration", "insitu": "in-situ", "both": "calibration + in-situ"}
#: Result columns of every row (the rest are the grid's axes).
RESULT_KEYS = ("mean", "std", "draws", "seconds", "energy_per_inference_j", "latency_s", "tops_per_w")
#: Axes that are not preset fields.
SPECIAL_AXES = (*NONIDEAL_FIELDS, "tile", "compensate", "ir_drop", "insitu")


def _preset_fields() -> dict[str, tuple[str, ...]]:
    """Every sweepable preset field: dotted name -> path of attribute names."""
    fields: dict[str, tuple[str, ...]] = {}
    for name, rule in config.RULES["Preset"].items():
        if name in ("name", "description"):
            continue
        if rule.kind == "section":
            for sub in config.RULES[rule.section]:
                fields[f"{name}.{sub}"] = (name, sub)
        else:
            fields[name] = (name,)
    return fields


PRESET_FIELDS = _preset_fields()
#: Bare names of section fields found in exactly one section (r_on -> device.r_on).
SHORT_NAMES = {path[-1]: dotted for dotted, path in PRESET_FIELDS.items() if len(path) == 2
               and sum(p[-1] == path[-1] for p in PRESET_FIELDS.values()) == 1 and path[-1] not in PRESET_FIELDS}
AXES = (*SPECIAL_AXES, *PRESET_FIELDS)


@dataclass(frozen=True)
class SweepSetup:
    """Fixed settings of a sweep.

    Attributes:
        engine: 'fast', 'ideal', 'spice' or 'auto'.
        access: access device of every point ('none', 'nmos'), or None: the preset's.
        tile: tile size unless the grid has a `tile` axis (devices per side).
        draws: random draws per stochastic point.
        seed: seed of draw 0.
        insitu_epochs: in-situ training epochs.
        spice_timeout_s: wall-clock limit of one ngspice run (s).
        compensate: 'none' or 'irdrop' unless the grid has a `compensate` axis.
    """

    engine: str = "fast"
    access: str | None = "none"
    tile: int = 128
    draws: int = 5
    seed: int = 0
    insitu_epochs: int = 10
    spice_timeout_s: float = 600.0
    compensate: str = "none"


def axis_name(axis: str) -> str:
    """The canonical name of a grid axis (bare section fields -> dotted), or one InputError line."""
    axis = SHORT_NAMES.get(axis, axis)
    if axis not in AXES:
        raise InputError(f"unknown sweep axis {axis!r}; use one of {', '.join(SPECIAL_AXES)}, a preset field "
                         f"({', '.join(k for k in PRESET_FIELDS if '.' not in k)}) or a dotted section field "
                         f"(device.r_on, tia.rs, nmos.v_wordline, ...)")
    return axis


def _rule(axis: str) -> config.Rule:
    path = PRESET_FIELDS[axis]
    if len(path) == 1:
        return config.RULES["Preset"][path[0]]
    return config.RULES[config.RULES["Preset"][path[0]].section][path[1]]


def parse_value(axis: str, text: str) -> Any:
    """One grid value of `axis` (canonical name) from text."""
    if axis == "insitu":
        text = METHOD_ALIASES.get(text, text)
    choices = {"stuck_at": ("hrs", "lrs", "both"), "insitu": INSITU_MODES, "ir_drop": ("on", "off"),
               "compensate": COMPENSATE_MODES}.get(axis)
    if choices is not None:
        if text not in choices:
            raise InputError(f"--param {axis}: {text!r} is not one of {', '.join(choices)}")
        return text
    if axis in NONIDEAL_FIELDS or axis == "tile":
        integer = axis in ("states", "tile")
    else:
        rule = _rule(axis)
        if rule.kind == "string":
            if rule.choices and text not in rule.choices:
                raise InputError(f"--param {axis}: {text!r} is not one of {', '.join(rule.choices)}")
            return text
        integer = rule.kind == "integer"
    try:
        return int(text) if integer else float(text)
    except ValueError:
        raise InputError(f"--param {axis}: {text!r} is not {'an integer' if integer else 'a number'}") from None


def parse_grid(params: list[str]) -> dict[str, list]:
    """['stuck_at_rate=0,0.1', 'r_wire=0.5,1'] -> {axis: values} (axes canonical, values typed)."""
    grid = {}
    for item in params:
        if "=" not in item:
            raise InputError(f"--param must look like NAME=v1,v2,... got {item!r}")
        name, values = item.split("=", 1)
        axis = axis_name(name.strip())
        grid[axis] = [parse_value(axis, v.strip()) for v in values.split(",") if v.strip()]
        if not grid[axis]:
            raise InputError(f"--param {name.strip()} has no values; give NAME=v1,v2,...")
    return grid


def _with_field(preset: Preset, path: tuple[str, ...], value: Any) -> Preset:
    """`preset` with field `path` set to `value`, checked by the field's Rule (one line if not)."""
    try:
        if len(path) == 1:
            return preset.with_(**{path[0]: value})
        section = getattr(preset, path[0])
        return preset.with_(**{path[0]: dataclasses.replace(section, **{path[1]: value})})
    except InputError as exc:
        raise InputError(f"--param {'.'.join(path)}={value}: {exc}") from None


@dataclass(frozen=True)
class Point:
    """One grid point, resolved: hardware, non-idealities, method, tile size, compensation."""

    preset: Preset
    nonideal: NonIdeal
    mode: str
    tile: int
    compensate: str


def point_config(point: dict, preset: Preset, setup: SweepSetup) -> Point:
    """The resolved `Point` of one grid point {axis: value}."""
    nonideal = NonIdeal(**{k: (None if k == "states" and v == 0 else v) for k, v in point.items()
                           if k in NONIDEAL_FIELDS})
    p = preset if setup.access is None else preset.with_(access=setup.access)
    for axis, value in point.items():
        if axis in PRESET_FIELDS:
            if axis in ("adc_bits", "dac_bits"):
                value = value or None  # 0 = off
            p = _with_field(p, PRESET_FIELDS[axis], value)
    if point.get("ir_drop") == "off":
        p = p.with_(r_wire=0.0, r_driver=0.0)
    tile = int(point.get("tile", setup.tile))
    if tile < 2:
        raise InputError(f"--param tile: tiles need at least 2 devices per side, got {tile}")
    return Point(p, nonideal, point.get("insitu", "off"), tile, point.get("compensate", setup.compensate))


def evaluate(model: nn.Module, point: Point, setup: SweepSetup, seed: int,
             train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor],
             energy: dict | None = None) -> float:
    """Test accuracy (fraction) of one draw of one grid point; train and test are (x (N, ...), labels (N,)).
    A dict `energy` receives the point's energy columns (`cosim.run.energy.energy_per_inference`;
    in-situ modes reprogram the tiles and leave it empty)."""
    from cosim.run.simulation import SimOptions, Simulation
    from cosim.twin.insitu import InsituOptions, accuracy, insitu_train

    options = SimOptions(tile=point.tile, engine=setup.engine, seed=seed, quiet=True, nonideal=point.nonideal,
                         spice_timeout_s=setup.spice_timeout_s, compensate=point.compensate)
    if point.mode == "off":
        from cosim.run.energy import EnergyMeter, energy_per_inference

        sim = Simulation(point.preset, options)
        meter = EnergyMeter(sim)  # each tile's reads, for the energy columns
        sim.products = meter
        acc = accuracy(sim, model, *test)
        if energy is not None:
            energy.update(energy_per_inference(sim.records, meter.tiles, point.preset, len(test[0]), model))
        return acc
    insitu = InsituOptions(calibrate=point.mode in ("cal", "both"),
                           epochs=0 if point.mode == "cal" else setup.insitu_epochs)
    result = insitu_train(model, point.preset, options, train, test, insitu)
    return result.accuracy_after


@dataclass(frozen=True)
class SweepTask:
    """One draw of one grid point, with everything it computes from (it may run on a Dask worker)."""

    index: int
    draw: int
    model: Any
    point: Point
    setup: SweepSetup
    train: tuple
    test: tuple


def run_task(task: SweepTask) -> tuple[float, dict]:
    """(accuracy, energy columns of draw 0) of one task."""
    energy: dict = {}
    acc = evaluate(task.model, task.point, task.setup, task.setup.seed + task.draw, task.train, task.test,
                   energy if task.draw == 0 else None)
    return acc, energy


def run_sweep(model: nn.Module, grid: dict[str, list], preset: Preset, setup: SweepSetup,
              train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor], *,
              executor: str = "local", scheduler: str | None = None, workers: int = 1,
              quiet: bool = True) -> list[dict]:
    """Rows {axis values..., mean, std, draws, seconds, energy columns} over the grid
    (accuracy as fractions), the (point, draw) tasks run by `map_tasks` on `executor`
    ('local': in this process, or `workers` processes; 'dask': on the cluster at `scheduler`).
    `seconds` is each point's summed task time."""
    from cosim.run.executors import map_tasks

    axes = list(grid)
    points = [dict(zip(axes, values)) for values in itertools.product(*(grid[a] for a in axes))]
    resolved = [point_config(point, preset, setup) for point in points]  # every refusal before any work
    tasks = [SweepTask(k, d, model, p, setup, train, test) for k, p in enumerate(resolved)
             for d in range(setup.draws if p.nonideal.stochastic else 1)]
    results: dict[tuple[int, int], tuple[float, dict, float]] = {}

    def keep(task: SweepTask, result: tuple[float, dict, float]) -> None:
        results[(task.index, task.draw)] = result

    map_tasks(_timed_task, tasks, keep, executor=executor,
              workers=workers, scheduler=scheduler, description="sweep points", quiet=quiet)
    rows = []
    for k, point in enumerate(points):
        draws = [results[key] for key in sorted(results) if key[0] == k]
        accs = [acc for acc, _, _ in draws]
        energy = draws[0][1]
        rows.append({**point, "mean": float(np.mean(accs)), "std": float(np.std(accs)), "draws": len(accs),
                     "seconds": float(sum(s for _, _, s in draws)),
                     **{key: energy.get(key, float("nan")) for key in RESULT_KEYS[4:]}})
    return rows


def _timed_task(task: SweepTask) -> tuple[float, dict, float]:
    """`run_task` and its wall time (s): a module-level function, so it pickles to workers."""
    start = time.perf_counter()
    acc, energy = run_task(task)
    return acc, energy, time.perf_counter() - start


def split(x: torch.Tensor, y: torch.Tensor,
          seed: int = 2026) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """The fixed 80/20 split of cosim.nets.examples.make_mlp_digits of x (N, ...) and labels y (N,):
    ((x_train, y_train), (x_test, y_test))."""
    import torch

    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    cut = int(0.8 * len(x))
    return (x[order[:cut]], y[order[:cut]]), (x[order[cut:]], y[order[cut:]])
