"""Run a PyTorch layer through crossbar tiles: partition, route each tile to
ngspice or the fast solver, apply ADCs, add partial sums digitally, apply
digital steps (activations, pooling) in float.

Analog steps: Linear (y = x W^T + b), Conv2d through im2col, GRU through its
gate matrices with the recurrence run step by step. Biases are added
digitally after the ADC (they are not on the array). The ADC full scale is
calibrated on the batch: the largest |TIA output| of a matrix's tiles.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cosim.core import peripherals
from cosim.core.config import Preset
from cosim.core.drive import dac_output
from cosim.core.errors import InputError
from cosim.core.results import TileResult
from cosim.core.tile import TileSpec, tile_spec
from cosim.engines import solve
from cosim.fast.prepared import FastTile
from cosim.mapping.nonideal import NonIdeal, label_rng
from cosim.mapping.nonideal import apply as apply_nonideal
from cosim.mapping.pairs import (
    MappedMatrix,
    currents_to_outputs,
    deinterleave,
    input_range,
    inputs_to_voltages,
    map_binary,
    map_weights,
    tile_conductance,
)
from cosim.mapping.partition import TileSlice
from cosim.nets.loading import steps
from cosim.run.checkpoint import Checkpoint, task_key
from cosim.run.executors import map_tasks
from cosim.run.plan import PlannedTile, engine_for, matrix_tiles, step_name
from cosim.run.records import LayerRecord, TileRecord, TileTask
from cosim.spice.process import check_timeout

if TYPE_CHECKING:
    from cosim.run.compensation import TileCompensation

ENGINES = ("auto", "spice", "fast", "ideal")
# ngspice seconds per input vector of an N x N 1T1R tile with wires here (bench/spice_tile.py).
SPICE_SECONDS_PER_VECTOR = {4: 0.0015, 8: 0.002, 16: 0.008, 32: 0.11, 64: 4.0, 128: 115.0}
SPICE_WARN_SECONDS = 60.0


@dataclass(frozen=True)
class SimOptions:
    """How a layer is simulated.

    Attributes:
        tile: largest tile, tile x tile devices.
        split: 'fixed' or 'balanced' tile sizes.
        engine: 'auto' (small tiles to ngspice, the rest fast), 'spice', 'fast' or 'ideal'.
        spice_max_tile: with 'auto', tiles of at most this many rows and columns run in ngspice.
        spot_check: run this many random non-ngspice tiles through ngspice as well.
        spot_vectors: input vectors used by each spot check.
        workers: local worker processes.
        executor: 'local' or 'dask'.
        scheduler: Dask scheduler address.
        seed: seed of every random choice (spot-check tiles).
        quiet: no progress bar.
        spice_timeout_s: wall-clock limit of one ngspice run (s).
        calibration: fast-solver access calibration JSON (None: solver default).
        spice: SPICE engine of ngspice tiles and spot checks: 'ngspice' or 'vacask'.
        nonideal: mapping-stage device non-idealities (cosim.mapping.nonideal), drawn per matrix from `seed`.
        keep_details: keep what the report needs: per-layer outputs beside
            their float references, per-tile errors against v @ G, and each
            tile's first `keep_vectors` input vectors.
        keep_vectors: input vectors kept per tile with `keep_details`.
        compensate: 'none' or 'irdrop': program each matrix's tiles so that their
            exact fast-solver transfer matches the weights (`cosim.run.compensation`).
    """

    tile: int = 128
    split: str = "fixed"
    engine: str = "auto"
    spice_max_tile: int = 32
    spot_check: int = 0
    spot_vectors: int = 4
    workers: int = 1
    executor: str = "local"
    scheduler: str | None = None
    seed: int = 0
    quiet: bool = False
    spice_timeout_s: float = 600.0
    calibration: str | None = None
    spice: str = "ngspice"
    nonideal: NonIdeal = NonIdeal()

    keep_details: bool = False
    keep_vectors: int = 1
    compensate: str = "none"

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise InputError(f"engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if self.tile < 2:
            raise InputError(f"tile must be at least 2 devices, got {self.tile}")
        if self.spot_check < 0 or self.workers < 1:
            raise InputError(f"spot_check must be >= 0 and workers >= 1, got {self.spot_check} and {self.workers}")
        if self.keep_vectors < 1:
            raise InputError(f"keep_vectors must be >= 1, got {self.keep_vectors}")
        check_timeout(self.spice_timeout_s, "spice_timeout_s")
        from cosim.run.compensation import check_mode

        check_mode(self.compensate)





def run_tile_task(task: TileTask) -> TileResult:
    """Solve one tile (runs in a worker process): its `TileResult` (current A,
    vout V, wall time s, the netlist of SPICE tiles)."""
    options: dict = {}
    if task.engine == "spice":
        options["timeout_s"] = task.timeout_s
        options["spice"] = task.spice
    if task.engine == "fast" and task.calibration:
        options["calibration"] = task.calibration
    return solve(task.spec, task.voltages, engine=task.engine, **options)


def result_arrays(result: TileResult) -> dict[str, np.ndarray]:
    """What a checkpoint keeps of a tile's result (arrays only, for .npz; `task_layout`)."""
    return {"current": result.current, "vout": result.vout, "wall_s": np.array(result.wall_s),
            "netlist": np.array(result.netlist or "")}


def result_from_arrays(arrays: dict[str, np.ndarray], engine: str) -> TileResult:
    """The TileResult a checkpoint's arrays (`result_arrays`) stand for."""
    return TileResult(arrays["current"], arrays["vout"], None, engine, float(arrays["wall_s"]),
                      netlist=str(arrays["netlist"]) or None)


def task_layout(task: TileTask) -> dict[str, tuple[tuple[int, ...], str]]:
    """What a checkpoint of `task` holds (`result_arrays`: shapes and dtype
    kinds), to check it against before it is reused."""
    shape = (task.voltages.shape[0], task.spec.cols)
    return {"current": (shape, "f"), "vout": (shape, "f"), "wall_s": ((), "f"), "netlist": ((), "U")}


def estimate_spice_seconds(rows: int, cols: int, vectors: int) -> float:
    """Expected ngspice time of a tile (s), interpolated from the bench table."""
    n = max(rows, cols)
    sizes = np.array(sorted(SPICE_SECONDS_PER_VECTOR))
    per_vector = np.exp(np.interp(np.log(n), np.log(sizes),
                                  np.log([SPICE_SECONDS_PER_VECTOR[s] for s in sizes])))
    return float(per_vector * vectors)


class MatrixProducts(Protocol):
    """Where a Simulation's weight matrices are programmed and multiplied: by
    default the Simulation itself (tile tasks on the planned engines); a
    prepared tile cache (`cosim.twin.tilecache.TileCache`) for converted networks."""

    def map(self, label: str, weight: np.ndarray) -> MappedMatrix:
        """Program matrix `label` ((outputs, inputs) weights) as conductance pairs (S)."""

    def matmul(self, label: str, mapped: MappedMatrix, x: np.ndarray, x_max: float | None = None,
               recurrent: bool = False) -> np.ndarray:
        """x @ W.T through the tiles of matrix `label`: (N, inputs) -> (N, outputs)."""


#: How a Linear step runs: (name, layer, input) -> output; default `Simulation.linear`.
LinearStep = Callable[[str, nn.Module, torch.Tensor], torch.Tensor]


class Simulation:
    """One co-simulation of a layer on a preset's hardware.

    What varies is passed in, never subclassed: `products` (where the
    matrices are programmed and multiplied) and `linear_step` (how Linear
    steps run, e.g. the inputs-split calibration of `cosim.twin.insitu`)."""

    def __init__(self, preset: Preset, options: SimOptions, checkpoint: Checkpoint | None = None, *,
                 weight_scale: Mapping[str, float] | None = None, products: MatrixProducts | None = None,
                 linear_step: LinearStep | None = None) -> None:
        """A simulation on `preset`'s hardware with `options`; finished tiles go to
        `checkpoint`; `weight_scale` fixes w_max per matrix label (in-situ
        training keeps the conductance scale of its matrices); `products` and
        `linear_step` default to this Simulation's own tile tasks and `linear`."""
        self.products: MatrixProducts = self if products is None else products
        self.linear_step: LinearStep = self.linear if linear_step is None else linear_step
        self.preset = preset
        self.options = options
        self.checkpoint = checkpoint
        self.records: dict[str, TileRecord] = {}
        self.adc_vfs: dict[str, float] = {}
        self._fast_tiles: dict[str, FastTile] = {}
        self.fault_masks: dict[str, dict[str, np.ndarray]] = {}
        self.weight_scale: dict[str, float] = dict(weight_scale or {})  # label -> fixed w_max
        self.two_level: set[str] = set()  # labels of binarised matrices (cosim.mapping.map_binary)
        self.layers: dict[str, LayerRecord] = {}
        self.compensation: dict[str, "TileCompensation"] = {}  # tile name -> what --compensate programmed

    # ----- routing and tiles -------------------------------------------------
    def engine_for(self, tile: TileSlice) -> str:
        """The engine of one tile under these options (`plan.engine_for`)."""
        return engine_for(tile, self.options.engine, self.options.spice_max_tile)

    def tile_spec(self, g: np.ndarray, name: str) -> TileSpec:
        """The TileSpec of conductances `g` (R, C) (S) on this preset's hardware."""
        return tile_spec(self.preset, g, name)

    def plan_matrix(self, label: str, mapped: MappedMatrix) -> list[PlannedTile]:
        """The tiles of matrix `label` (its conductance pairs `mapped`): where
        each sits, its circuit and its engine, in partition order."""
        n_in, n_out = mapped.g_pos.shape
        return [PlannedTile(t, self.tile_spec(tile_conductance(mapped, t), t.name), self.engine_for(t))
                for t in matrix_tiles(label, n_in, n_out, self.options.tile, self.options.split)]

    # ----- the layer -----------------------------------------------------------
    def forward(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """The layer's output as the hardware computes it (float64 tensor)."""
        out: object = x.double()
        chain: object = x.double()
        for step in steps(module):
            name = step_name(step.name, step.module)
            step_in = out
            if not step.analog:
                out = _float_step(step.module, out)
            elif isinstance(step.module, nn.Linear):
                out = self.linear_step(name, step.module, out)
            elif isinstance(step.module, nn.Conv2d):
                out = self.conv2d(name, step.module, out)
            else:
                out = self.gru(name, step.module, out)
            if self.options.keep_details:
                chain = _float_step(step.module, chain)
                if step.analog:
                    self._keep_layer(name, step.module, step_in, out, chain)
        return out[0] if isinstance(out, tuple) else out

    def _keep_layer(self, name: str, module: nn.Module, step_in: object, out: object, chain: object) -> None:
        """Keep an analog layer's output beside its float references (GRU: the output sequence)."""
        def first(value: object) -> np.ndarray:
            """The first element of a step output (GRU: the output sequence) as numpy."""
            return (value[0] if isinstance(value, tuple) else value).numpy()

        kind = type(module).__name__
        self.layers[name] = LayerRecord(name, kind, first(out), first(_float_step(module, step_in)), first(chain))

    def linear(self, name: str, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """A Linear layer on tiles: (..., in) -> (..., out), bias added digitally."""
        _check_features(name, x.shape[-1], layer.in_features)
        flat = x.reshape(-1, x.shape[-1]).numpy()
        y = self.products.matmul(name, self.products.map(name, self.array_weight(layer, [name])), flat)
        if layer.bias is not None:
            y = y + _np(layer.bias)
        return torch.from_numpy(y).reshape(*x.shape[:-1], -1)

    def conv2d(self, name: str, conv: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """A Conv2d layer on tiles via im2col: (B, C, H, W) -> (B, out, H', W'), per group."""
        if x.dim() != 4 or x.shape[1] != conv.in_channels:
            raise InputError(f"{name}: Conv2d expects input (B, {conv.in_channels}, H, W), got {tuple(x.shape)}")
        if isinstance(conv.padding, str) or conv.padding_mode != "zeros":
            raise InputError(f"{name}: Conv2d padding={conv.padding!r}, padding_mode={conv.padding_mode!r} "
                             "is not supported; use integer zero padding")
        patches, h_out, w_out = im2col(x, conv)
        batch, positions, k_total = x.shape[0], h_out * w_out, patches.shape[1]
        groups, out_per_group = conv.groups, conv.out_channels // conv.groups
        weight = self.array_weight(conv, [name] if groups == 1 else [f"{name}.g{gi}" for gi in range(groups)])
        k_group = k_total // groups
        outputs = []
        for gi in range(groups):
            label = name if groups == 1 else f"{name}.g{gi}"
            w_group = weight[gi * out_per_group:(gi + 1) * out_per_group].reshape(out_per_group, -1)
            mapped = self.products.map(label, w_group)
            outputs.append(self.products.matmul(label, mapped, patches[:, gi * k_group:(gi + 1) * k_group]))
        y = np.concatenate(outputs, axis=1)
        if conv.bias is not None:
            y = y + _np(conv.bias)
        y = y.reshape(batch, positions, conv.out_channels).transpose(0, 2, 1)
        return torch.from_numpy(np.ascontiguousarray(y)).reshape(batch, conv.out_channels, h_out, w_out)

    def gru(self, name: str, gru: nn.Module, x: torch.Tensor,
            h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """GRU output sequence and final hidden states, like nn.GRU; `h0`
        (num_layers, B, hidden) in [-1, 1] (the recurrent DAC range), default zeros."""
        if x.dim() != 3 or x.shape[-1] != gru.input_size:
            order = "(B, T, features)" if gru.batch_first else "(T, B, features)"
            raise InputError(f"{name}: GRU expects input {order} with {gru.input_size} features, "
                             f"got {tuple(x.shape)}")
        seq = x if gru.batch_first else x.transpose(0, 1)
        batch, steps_, _ = seq.shape
        hidden = gru.hidden_size
        if h0 is not None:
            if tuple(h0.shape) != (gru.num_layers, batch, hidden):
                raise InputError(f"{name}: GRU h0 must be (num_layers, B, hidden) = "
                                 f"({gru.num_layers}, {batch}, {hidden}), got {tuple(h0.shape)}")
            if h0.numel() and float(h0.abs().max()) > 1.0:
                raise InputError(f"{name}: GRU h0 must lie in [-1, 1] (the recurrent DAC range, as tanh "
                                 "outputs do); scale it")
        layer_in = seq.numpy()
        finals = []
        for k in range(gru.num_layers):
            w_ih, w_hh = _np(getattr(gru, f"weight_ih_l{k}")), _np(getattr(gru, f"weight_hh_l{k}"))
            b_ih = _np(getattr(gru, f"bias_ih_l{k}")) if gru.bias else np.zeros(3 * hidden)
            b_hh = _np(getattr(gru, f"bias_hh_l{k}")) if gru.bias else np.zeros(3 * hidden)
            gi = self.products.matmul(f"{name}.ih_l{k}", self.products.map(f"{name}.ih_l{k}", w_ih),
                             layer_in.reshape(batch * steps_, -1)).reshape(batch, steps_, 3 * hidden) + b_ih
            mapped_hh = self.products.map(f"{name}.hh_l{k}", w_hh)
            h = np.zeros((batch, hidden)) if h0 is None else _np(h0[k])
            outs = []
            for t in range(steps_):
                # h lies in [-1, 1] (tanh), so the DAC range of the recurrent input is fixed at 1.
                gh = self.products.matmul(f"{name}.hh_l{k}", mapped_hh, h, x_max=1.0, recurrent=True) + b_hh
                r = _sigmoid(gi[:, t, :hidden] + gh[:, :hidden])
                z = _sigmoid(gi[:, t, hidden:2 * hidden] + gh[:, hidden:2 * hidden])
                n = np.tanh(gi[:, t, 2 * hidden:] + r * gh[:, 2 * hidden:])
                h = (1 - z) * n + z * h
                outs.append(h)
            layer_in = np.stack(outs, axis=1)
            finals.append(h)
        output = torch.from_numpy(layer_in)
        if not gru.batch_first:
            output = output.transpose(0, 1)
        return output, torch.from_numpy(np.stack(finals))

    # ----- one matrix on tiles -------------------------------------------------
    def array_weight(self, layer: nn.Module, labels: list[str]) -> np.ndarray:
        """The weight a layer puts on the array: `crossbar_weight()` where the layer has one
        (binarised layers: +-alpha), else `weight`; a layer with `device_levels == 2` marks
        its matrix labels two-level (mapped by `map_binary`)."""
        if getattr(layer, "device_levels", None) == 2:
            self.two_level.update(labels)
        weight = layer.crossbar_weight() if hasattr(layer, "crossbar_weight") else layer.weight
        return _np(weight)

    def map(self, label: str, weight: np.ndarray) -> MappedMatrix:
        """The conductance pairs of matrix `label` (outputs x inputs weights); two-level
        labels (binarised layers) take exactly g_min / g_max pairs."""
        if label in self.two_level:
            mapped = map_binary(weight, self.preset.device)
        else:
            mapped = map_weights(weight, self.preset.device, w_max=self.weight_scale.get(label))
        if self.options.compensate == "irdrop" and self.options.engine != "ideal":  # an ideal array has no IR drop
            mapped = self._compensate(label, mapped)
        if not self.options.nonideal.active:
            return mapped
        mapped, masks = apply_nonideal(mapped, self.options.nonideal, label_rng(self.options.seed, label),
                                       self.preset.device)
        self.fault_masks[label] = masks
        return mapped

    def _compensate(self, label: str, mapped: MappedMatrix) -> MappedMatrix:
        """`mapped` programmed with IR-drop compensation (`cosim.run.compensation`), on the
        device levels when states are quantised; each tile's result kept in `compensation`."""
        from cosim.run.compensation import compensate_matrix

        calibration = getattr(self.products, "calibration", None) or self.options.calibration
        if isinstance(calibration, str):
            from cosim.fast.calibration import load_calibration

            calibration = load_calibration(calibration)
        mapped, done = compensate_matrix(label, mapped, self.preset, self.options.tile, self.options.split,
                                         levels=self.options.nonideal.states, calibration=calibration)
        self.compensation.update(done)
        return mapped

    def matmul(self, label: str, mapped: MappedMatrix, x: np.ndarray, x_max: float | None = None,
               recurrent: bool = False) -> np.ndarray:
        """x @ W.T through the tiles of one matrix: (N, inputs) -> (N, outputs)."""
        n_out = mapped.g_pos.shape[1]
        x_max = input_range(x) if x_max is None else x_max
        v = inputs_to_voltages(x, x_max, self.preset.v_read)
        plan = self.plan_matrix(label, mapped)
        tasks = [self._task(planned, v[:, planned.slice.row_start:planned.slice.row_stop]) for planned in plan]
        results: dict[str, TileResult] = {}
        if recurrent:
            for task in tasks:
                results[task.name] = self._solve_cached(task)
        else:
            self._warn_spice_time(tasks)
            pending = []
            for task in tasks:
                saved = self.checkpoint.load(task.key, task_layout(task)) if self.checkpoint else None
                if saved is None:
                    pending.append(task)
                else:
                    results[task.name] = result_from_arrays(saved, task.engine)
            map_tasks(run_tile_task, pending, lambda task, res: self._finish(task, res, results),
                      executor=self.options.executor, workers=self.options.workers,
                      scheduler=self.options.scheduler, description=label, quiet=self.options.quiet)
        for task in tasks:
            self._record(label, task, results[task.name])
        currents = self.adc_currents(label, {t.name: results[t.name].vout for t in tasks})
        y = np.zeros((x.shape[0], n_out))
        for planned in plan:
            t = planned.slice
            y[:, t.out_start:t.out_stop] += currents_to_outputs(currents[t.name], mapped, x_max,
                                                                self.preset.v_read)
        return y

    def _task(self, planned: PlannedTile, v: np.ndarray) -> TileTask:
        tile, spec, engine = planned.slice, planned.spec, planned.engine
        key = task_key(tile.name, spec.conductance, v, engine, self.preset, self.options.calibration,
                       self.options.spice)
        return TileTask(tile.name, key, tile, spec, v, engine, self.options.spice_timeout_s,
                        self.options.calibration, self.options.spice)

    def _finish(self, task: TileTask, result: TileResult, results: dict[str, TileResult]) -> None:
        results[task.name] = result
        if self.checkpoint:
            self.checkpoint.save(task.key, result_arrays(result))

    def _solve_cached(self, task: TileTask) -> TileResult:
        """Recurrent steps: the fast solver's prepared tile is reused across steps."""
        if task.engine != "fast":
            return run_tile_task(task)
        from cosim.core.drive import dac_output
        from cosim.fast.prepared import prepare
        from cosim.fast.tia import tia_gain

        tile = self._fast_tiles.get(task.name)
        if tile is None:
            tile = self._fast_tiles[task.name] = prepare(task.spec, calibration=task.calibration)
        current = tile.currents(dac_output(task.spec, task.voltages))
        vout = current * task.spec.tia.rs * tia_gain(task.spec)
        return TileResult(current, vout, None, "fast", 0.0)

    def _record(self, layer: str, task: TileTask, result: TileResult) -> None:
        record = self.records.get(task.name)
        if record is None:
            record = self.records[task.name] = TileRecord(
                task.name, layer, task.engine, task.tile, *deinterleave(task.spec.conductance),
                task.spec, netlist=result.netlist or None)
            keep = min(self.options.spot_vectors, task.voltages.shape[0])
            record.sample_voltages = task.voltages[:keep]
            record.sample_current = result.current[:keep]
            if self.options.keep_details:
                record.first_voltages = task.voltages[:self.options.keep_vectors]
                record.ideal_sq = [0.0, 0.0]
            masks = self.fault_masks.get(layer)
            if masks is not None:
                stuck = MappedMatrix(masks["stuck_pos"], masks["stuck_neg"], 1.0)
                record.fault_mask = tile_conductance(stuck, task.tile).astype(np.int8)
            record.compensation = self.compensation.get(task.name)
        record.wall_s += float(result.wall_s)
        record.vectors += task.voltages.shape[0]
        if record.ideal_sq is not None:
            # the ideal array; a compensated tile's is its target transfer (floor + scale * (G_t - g_min))
            ideal_g = record.compensation.target if record.compensation is not None else task.spec.conductance
            ideal = dac_output(task.spec, task.voltages) @ ideal_g
            record.ideal_sq[0] += float(np.sum((result.current - ideal) ** 2))
            record.ideal_sq[1] += float(np.sum(ideal ** 2))

    def adc_currents(self, label: str, vouts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Column currents as the digital side sees them: TIA output through the
        ADC (full scale calibrated on the batch), divided by the nominal rs."""
        rs, bits = self.preset.tia.rs, self.preset.adc_bits
        if bits is None:
            return {name: vout / rs for name, vout in vouts.items()}
        vfs = max(float(np.max(np.abs(vout))) for vout in vouts.values()) or 1.0
        self.adc_vfs[label] = vfs
        lsb = peripherals.dac_lsb(bits, vfs)  # same symmetric mid-tread LSB as circuits/adc.cir
        return {name: peripherals.adc_codes(vout, bits, vfs) * lsb / rs for name, vout in vouts.items()}

    def _warn_spice_time(self, tasks: list[TileTask]) -> None:
        if self.options.spice not in ("ngspice", "ngspice-shared"):
            return  # the bench table is ngspice's (libngspice's solve alike); VACASK is ~100x faster at 128x128
        total = sum(estimate_spice_seconds(t.spec.rows, t.spec.cols, t.voltages.shape[0])
                    for t in tasks if t.engine == "spice")
        if total > SPICE_WARN_SECONDS:
            warnings.warn(f"ngspice tiles of this layer are expected to take about {total:.0f} s "
                          f"(bench/spice_tile.py); use --engine auto or fast for big tiles", stacklevel=3)

    # ----- spot checks -----------------------------------------------------------
    def spot_check(self, names: list[str] | None = None) -> None:
        """Run K random non-SPICE tiles (or the named ones) through SPICE on their first vectors."""
        candidates = sorted(name for name, r in self.records.items() if r.engine != "spice")
        if names:
            unknown = sorted(set(names) - set(self.records))
            if unknown:
                raise InputError(f"no tile named {', '.join(unknown)}; this layer has: "
                                 f"{', '.join(sorted(self.records)[:12])}...")
            chosen = names
        elif not self.options.spot_check or not candidates:
            return
        else:
            rng = np.random.default_rng(self.options.seed)
            chosen = rng.choice(candidates, size=min(self.options.spot_check, len(candidates)), replace=False)
        tasks = [TileTask(name, "", self.records[name].tile, self.records[name].spec,
                          self.records[name].sample_voltages, "spice", self.options.spice_timeout_s,
                          spice=self.options.spice)
                 for name in sorted(chosen)]
        self._warn_spice_time(tasks)

        def compare(task: TileTask, result: TileResult) -> None:
            """Keep one spot check's fast-vs-SPICE current errors (relative to the largest |I|) on its record."""
            record = self.records[task.name]
            diff = np.abs(record.sample_current - result.current)
            scale = float(np.max(np.abs(result.current))) or 1.0
            record.spot = {"max_rel_error": float(diff.max() / scale), "mean_rel_error": float(diff.mean() / scale),
                           "column_rel_error": diff.max(axis=0) / scale, "spice_current": result.current,
                           "netlist": result.netlist or ""}

        map_tasks(run_tile_task, tasks, compare, executor=self.options.executor, workers=self.options.workers,
                  scheduler=self.options.scheduler, description="spot checks", quiet=self.options.quiet)


def im2col(x: torch.Tensor, conv: nn.Module) -> tuple[np.ndarray, int, int]:
    """Conv2d input patches (B * H_out * W_out, C * kh * kw) in F.unfold's
    order, and H_out, W_out: one strided copy (F.unfold in float64 is 3-8x slower)."""
    (kh, kw), (sh, sw), (dh, dw), (ph, pw) = conv.kernel_size, conv.stride, conv.dilation, conv.padding
    xp = F.pad(x, (pw, pw, ph, ph)).contiguous()
    b, c, h, w = xp.shape
    h_out, w_out = (h - dh * (kh - 1) - 1) // sh + 1, (w - dw * (kw - 1) - 1) // sw + 1
    s = xp.stride()
    windows = xp.as_strided((b, h_out, w_out, c, kh, kw), (s[0], s[2] * sh, s[3] * sw, s[1], s[2] * dh, s[3] * dw))
    return windows.reshape(b * h_out * w_out, c * kh * kw).numpy(), h_out, w_out


def _float_step(module: nn.Module, value: object) -> object:
    """One step in float PyTorch (float32, as the float reference), returned as float64."""
    with torch.no_grad():
        arg = tuple(t.float() for t in value) if isinstance(value, tuple) else value.float()
        out = module(arg)
        return tuple(t.double() for t in out) if isinstance(out, tuple) else out.double()


def _np(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().double().cpu().numpy()


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _check_features(name: str, got: int, expected: int) -> None:
    if got != expected:
        raise InputError(f"{name}: Linear expects {expected} input features, got {got}; "
                         "check the input's last dimension")


