"""`TileCache`: the prepared tiles behind a `cosim.convert` twin.

The matrix products of a `cosim.run.simulation.Simulation` whose matrices are mapped, partitioned and
prepared once (fast-solver transfer matrices, `cosim.fast.prepare`, on
`workers` threads), so that every forward pass after that is one matrix
multiply per row of tiles, with DAC and ADC applied as in `cosim simulate`.

The prepared forward pass (every tile of a matrix linear: engine 'fast' with
nonlinear='linear', or 'ideal') runs in torch at `precision` ('float32' by
default, 'float64' on request); it computes exactly what `Simulation.matmul`
computes, in a cheaper order:

- DAC once per layer input: the DAC full scale is v_read for every row and
  the input range x_max is one number per matrix, so DAC(im2col(x)) ==
  im2col(DAC(x)); convolutions quantise the feature map (float64, exactly
  `dac_levels`), then copy patches of the DAC levels at `precision`.
- One matrix multiply per row of tiles (transfer matrices concatenated along
  the row and cast to `precision` once at preparation).
- The ADC acts on every physical column (each device of a differential
  pair has its own TIA and ADC), so with an ADC the pair is not folded: the
  TIA outputs of all tiles of the matrix are quantised in one vectorised
  pass (full scale: their largest |value|), and the integer codes of the
  pair and of the row tiles are summed before one scale. Without an ADC
  the chain is linear and the pair and the row tiles fold into one
  (inputs, outputs) matrix: one multiply per matrix.

float32 vs float64: the TIA outputs agree to ~1e-7 relative; a code differs
only where a TIA output lies within that of an ADC decision level (one LSB
on ~5 outputs in 10^5 of a 3x3 conv with 8-bit converters), far below the
ADC's own quantisation error. Through a deep network with 8-bit converters
everywhere such rounding-level differences compound: at full-width
ResNet-18 + CBAM (ideal engine) the float32 and float64 twins' logits differ
by 1.6 % (same top-1 on every image), as much as the float64 twin's own
logits move (1.4 %) when every input moves by one float32 ulp, and as much
as all the converters' error against float (1.3 %). Either precision is one
sample of that rounding-level spread; 'float64' reproduces
`Simulation` (cosim simulate) to ~1e-16.

The prepared path keeps its largest work tensors (TIA outputs, patches) between
forward passes (`TileCache.scratch_mib`): allocating them afresh cost a page
fault per 4 KiB, ~40 % of a full-width forward pass. One forward pass at a
time per converted model.
"""

from __future__ import annotations

import math
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from cosim import fast
from cosim.core import peripherals
from cosim.core.config import Preset
from cosim.core.errors import InputError
from cosim.core.names import NONLINEAR_MODES
from cosim.core.tile import TileSpec
from cosim.engines import solve
from cosim.fast.apply import sign_split_product, split_polarities
from cosim.fast.calibration import Calibration
from cosim.fast.prepared import FastTile, LinearTile
from cosim.fast.structured import SWEEP_THREADS, blas_threads, torch_threads
from cosim.mapping.pairs import (
    MappedMatrix,
    currents_to_outputs,
    deinterleave,
    halves_order,
    input_range,
    inputs_to_voltages,
)
from cosim.mapping.patches import conv_output_size, covered_range, im2col_tensor
from cosim.run.records import TileRecord
from cosim.run.simulation import SimOptions, Simulation
from cosim.twin.tile_banks import (
    CorrectedBudget,
    MatrixSolver,
    PreparedSolver,
    RowGroup,
    SpiceSolver,
    TileBank,
    TileSolver,
)

NONLINEAR = NONLINEAR_MODES
PRECISIONS = {"float32": torch.float32, "float64": torch.float64}
#: float64 elements the DAC quantises at a time (2 MiB: stays in cache).
DAC_CHUNK = 2**18
#: TIA outputs the ADC pass quantises at a time (elements; 4 MiB in float32).
ADC_CHUNK = 2**20
#: convolutions with at least this many output pixels take F.unfold's patch layout.
COLUMNS_MIN = 256






class _Plan(NamedTuple):
    """A matrix being prepared by `TileCache.map_many`: its label, mapping,
    tiles (tile, spec, engine), each tile's (solver, s) or a future of it,
    and the seconds its mapping and planning took."""

    label: str
    mapped: MappedMatrix
    entries: list[tuple]
    results: list
    seconds: float


class TileCache:
    """The matrix products of a Simulation whose matrices stay programmed:
    tiles prepared once per matrix label and reused by every later matmul (in
    this process). It holds that Simulation (`simulation`, built with
    `products=self`), so the Simulation's Linear, Conv2d and GRU steps multiply
    here; records, preset and options are the Simulation's.

    A label is re-programmed when its weights change (e.g. after
    load_state_dict); `prepare_calls` counts fast-solver preparations.
    `precision` ('float32' or 'float64') is the arithmetic of the prepared
    forward pass (see the module docstring); `options.workers` > 1 prepares
    fast tiles on that many threads (`map_many`: all of a model's matrices on
    one pool).
    """

    def __init__(self, preset: Preset, options: SimOptions, nonlinear: str = "linear",
                 calibration: Calibration | str | None = None, precision: str = "float32") -> None:
        if nonlinear not in NONLINEAR:
            raise InputError(f"nonlinear must be one of {', '.join(NONLINEAR)}, got {nonlinear!r}")
        if precision not in PRECISIONS:
            raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.nonlinear = nonlinear
        self.corrected_budget = CorrectedBudget()
        self.precision = precision
        self.dtype = PRECISIONS[precision]
        self.calibration = calibration if calibration is not None else options.calibration
        self.banks: dict[str, TileBank] = {}
        self.prepare_calls = 0
        self._scratch: dict[str, torch.Tensor] = {}
        self.simulation = Simulation(preset, options, products=self)

    # ----- the Simulation it serves --------------------------------------------
    @property
    def preset(self) -> Preset:
        """The hardware (the Simulation's preset)."""
        return self.simulation.preset

    @property
    def options(self) -> SimOptions:
        """The Simulation's options."""
        return self.simulation.options

    @property
    def records(self) -> dict[str, TileRecord]:
        """What the Simulation keeps of each tile, by tile name."""
        return self.simulation.records

    @property
    def adc_vfs(self) -> dict[str, float]:
        """ADC full scale (V) per matrix label, calibrated on the last batch."""
        return self.simulation.adc_vfs

    def linear(self, name: str, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """A Linear layer on the prepared tiles (`Simulation.linear`): (..., in) -> (..., out)."""
        return self.simulation.linear(name, layer, x)

    def conv2d(self, name: str, conv: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """A Conv2d layer via im2col on the prepared tiles (`Simulation.conv2d`): (B, C, H, W) -> (B, out, H', W')."""
        return self.simulation.conv2d(name, conv, x)

    def gru(self, name: str, gru: nn.Module, x: torch.Tensor,
            h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """A GRU on the prepared tiles (`Simulation.gru`): output sequence and final hidden states."""
        return self.simulation.gru(name, gru, x, h0)

    def forward(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """A layer's output on the prepared tiles (`Simulation.forward`, float64)."""
        return self.simulation.forward(module, x)

    def array_weight(self, layer: nn.Module, labels: list[str]) -> np.ndarray:
        """The weight a layer puts on the array (`Simulation.array_weight`)."""
        return self.simulation.array_weight(layer, labels)

    def map(self, label: str, weight: np.ndarray) -> MappedMatrix:
        """The conductance pairs of `label`, mapped and its tiles prepared once per weight matrix."""
        if self._programmed(label, weight) is None:
            self.map_many([(label, weight)])
        return self.banks[label].mapped

    def map_many(self, matrices: list[tuple[str, np.ndarray]]) -> None:
        """Map and prepare the matrices (label, weight) not yet programmed with
        those weights, in order, the fast tiles of all of them on one pool of
        `options.workers` threads, so that later matrices are mapped while
        earlier tiles are prepared (what `cosim.convert` does for a model).
        Each bank's prepare_s is its share of the wall time, in proportion to
        its mapping and tile seconds.

        The pool's threads run the block sweep's C x C work, which releases
        the GIL: 1.9x on 2 cores, against 1.5x for a forkserver process pool
        that pays its start-up and pickling (fork deadlocks on BLAS threads
        here). torch's process-wide thread count is SWEEP_THREADS meanwhile
        (`fast.torch_threads`) and the caller's after; so is the BLAS's of the
        numpy sweeps (`fast.structured.blas_threads`)."""
        todo = {label: weight for label, weight in matrices if self._programmed(label, weight) is None}
        if not todo:
            return
        start = time.perf_counter()
        workers = self.options.workers
        with torch_threads(SWEEP_THREADS), blas_threads(SWEEP_THREADS), \
                ThreadPoolExecutor(workers) if workers > 1 else nullcontext() as pool:
            try:
                built = self._plan_and_finish(todo, pool)
            except BaseException:  # no matrix of this call is left half programmed
                if pool is not None:
                    pool.shutdown(wait=True, cancel_futures=True)
                for name in [n for n, r in self.records.items() if r.layer in todo]:
                    del self.records[name]
                raise
        wall = time.perf_counter() - start
        total = sum(work for _, _, work in built.values()) or 1.0
        for label, weight in todo.items():
            mapped, groups, work = built[label]
            self.banks[label] = TileBank(np.array(weight, copy=True), mapped, groups, wall * work / total,
                                         stacked=_stack(groups))

    def _plan_and_finish(self, todo: dict[str, np.ndarray], pool: ThreadPoolExecutor | None) -> dict[str, tuple]:
        """`_plan` every matrix in order, `_finish` each (in order) as soon as
        its tiles are done, so that its per-tile matrices are freed once
        concatenated: label -> (mapped, row groups, seconds of work)."""
        pending: deque[_Plan] = deque()
        built = {}
        for label, weight in todo.items():
            pending.append(self._plan(label, weight, pool))
            while pending and all(not isinstance(r, Future) or r.done() for r in pending[0].results):
                plan = pending.popleft()
                built[plan.label] = self._finish(plan)
        while pending:
            plan = pending.popleft()
            built[plan.label] = self._finish(plan)
        return built

    def _programmed(self, label: str, weight: np.ndarray) -> TileBank | None:
        """The bank of `label` if it holds exactly `weight`."""
        bank = self.banks.get(label)
        if bank is not None and bank.weight.shape == weight.shape and np.array_equal(bank.weight, weight):
            return bank
        return None

    @property
    def prepare_s(self) -> float:
        """Total preparation wall time of all matrices (s)."""
        return sum(bank.prepare_s for bank in self.banks.values())

    def _plan(self, label: str, weight: np.ndarray, pool: ThreadPoolExecutor | None) -> _Plan:
        """Map `label` and start its tiles (`_Plan`): fast tiles go to the
        pool; the rest are solved now."""
        start = time.perf_counter()
        mapped = self.simulation.map(label, weight)
        for name in [n for n, r in self.records.items() if r.layer == label]:
            del self.records[name]
        entries = [(p.slice, p.spec, p.engine) for p in self.simulation.plan_matrix(label, mapped)]
        nonlinear = self.corrected_budget.mode_for(label, self.nonlinear, [e[1] for e in entries if e[2] == "fast"])
        results = []
        for _, spec, engine in entries:
            if engine == "fast" and pool is not None:
                results.append(pool.submit(_prepare_tile, spec, self.calibration, nonlinear))
            else:
                results.append(self._solve_now(spec, engine, nonlinear))
        return _Plan(label, mapped, entries, results, time.perf_counter() - start)

    def _finish(self, plan: _Plan) -> tuple[MappedMatrix, list[RowGroup], float]:
        """Wait for a planned matrix's tiles, record them and group them by
        row of tiles: (mapped, row groups, seconds of work in all)."""
        label = plan.label
        groups: dict[int, RowGroup] = {}
        work = plan.seconds
        for (tile, spec, engine), result in zip(plan.entries, plan.results):
            solver, wall_s = result.result() if isinstance(result, Future) else result
            work += wall_s
            if engine == "fast":
                self.prepare_calls += 1
            group = groups.setdefault(tile.row_start, RowGroup(slice(tile.row_start, tile.row_stop), [], []))
            group.tiles.append(tile)
            group.specs.append(spec)
            group.solvers.append(solver)
            self.records[tile.name] = TileRecord(tile.name, label, engine, tile, *deinterleave(spec.conductance),
                                                 spec, wall_s=wall_s,
                                                 compensation=self.simulation.compensation.get(tile.name))
        for group in groups.values():
            _concatenate(group, self.dtype)
        return plan.mapped, list(groups.values()), work

    def _solve_now(self, spec: TileSpec, engine: str, nonlinear: str) -> tuple[TileSolver, float]:
        """(solver, s) of `spec` on `engine` ('ideal', 'spice' or 'fast': prepared now)."""
        if engine == "fast":
            return _prepare_tile(spec, self.calibration, nonlinear)
        start = time.perf_counter()
        solver = MatrixSolver("ideal", spec.conductance) if engine == "ideal" else SpiceSolver()
        return solver, time.perf_counter() - start

    def matmul(self, label: str, mapped: MappedMatrix, x: np.ndarray, x_max: float | None = None,
               recurrent: bool = False) -> np.ndarray:
        """x @ W.T on the prepared tiles of `label`: (N, inputs) -> (N, outputs)."""
        bank = self.banks.get(label)
        if bank is None or bank.mapped is not mapped:
            raise InputError(f"{label}: matrix was not mapped through this simulation; call map() first")
        x_max = input_range(x) if x_max is None else x_max
        if bank.linear:
            v_dac = self.dac_tensor(torch.from_numpy(np.asarray(x, dtype=float)), x_max)
            return self.analog_matmul(label, v_dac, x_max).double().numpy()
        v = inputs_to_voltages(x, x_max, self.preset.v_read)
        v_dac = self._dac(v)
        vouts = {f"{label}.row{k}": self._group_vout(group, v[:, group.rows], v_dac[:, group.rows])
                 for k, group in enumerate(bank.groups)}
        for group in bank.groups:
            for tile in group.tiles:
                self.records[tile.name].vectors += x.shape[0]
        currents = self.simulation.adc_currents(label, vouts)
        y = np.zeros((x.shape[0], mapped.g_pos.shape[1]))
        for current in currents.values():
            y += currents_to_outputs(current, mapped, x_max, self.preset.v_read)
        return y

    # ----- the prepared (torch) path ---------------------------------------
    def dac_tensor(self, x: torch.Tensor, x_max: float, out: torch.Tensor | None = None) -> torch.Tensor:
        """DAC output voltages (V) at the cache's precision for layer inputs
        `x` (any shape, any float dtype) with input range `x_max`: exactly
        `dac_levels(inputs_to_voltages(x, x_max, v_read))` (float64 math, in
        cache-sized chunks along the first dimension), then cast; written to
        `out` (x's shape, any strides) when given."""
        bits, v_read = self.preset.dac_bits, self.preset.v_read
        out = torch.empty(x.shape, dtype=self.dtype) if out is None else out
        lsb = peripherals.dac_lsb(bits, v_read) if bits is not None else 1.0
        kmax = peripherals.converter_kmax(bits) if bits is not None else 0
        if x.dim() == 0 or x.numel() == 0:
            return out.copy_(x)
        step = max(1, DAC_CHUNK // max(1, x[0].numel()))
        for start in range(0, x.shape[0], step):
            v = x[start:start + step].to(torch.float64) * (v_read / x_max)
            if bits is not None:
                peripherals.quantize_in_place(v, lsb, kmax).mul_(lsb)
            out[start:start + step] = v
        return out

    def _scratch_tensor(self, name: str, shape: tuple[int, ...]) -> torch.Tensor:
        """A work tensor of the cache's dtype, reused by every forward pass
        (`scratch_mib` of memory stays held): allocating hundreds of MiB
        afresh costs a page fault per 4 KiB on first touch, ~40 % of the
        forward pass at full width."""
        numel = math.prod(shape)
        buffer = self._scratch.get(name)
        if buffer is None or buffer.numel() < numel:
            self._scratch.pop(name, None)
            buffer = self._scratch[name] = torch.empty(numel, dtype=self.dtype)
        return buffer[:numel].view(shape)

    @property
    def scratch_mib(self) -> float:
        """Memory held by the prepared path's reused work tensors (MiB)."""
        return sum(t.numel() * t.element_size() for t in self._scratch.values()) / 2**20

    def analog_matmul(self, label: str, v_dac: torch.Tensor, x_max: float, columns: bool = False) -> torch.Tensor:
        """Layer outputs at the cache's precision of a prepared linear matrix
        for DAC outputs `v_dac` (V): the same TIA, ADC and digital sum as
        `Simulation.matmul`.

        Args:
            label: the matrix (mapped and prepared).
            v_dac: (N, inputs) row voltages, or with `columns` (B, inputs, L):
                each image's input vectors as columns (F.unfold's layout).
            x_max: the input range the voltages were scaled with (input units).
            columns: layout of `v_dac` and of the result.

        Returns:
            (N, outputs), or (B, outputs, L) with `columns` (layer units).
        """
        bank = self.banks[label]
        vectors = v_dac.shape[0] * (v_dac.shape[2] if columns else 1)
        for group in bank.groups:
            for tile in group.tiles:
                self.records[tile.name].vectors += vectors
        rs, bits, n_out = self.preset.tia.rs, self.preset.adc_bits, bank.mapped.g_pos.shape[1]
        to_output = bank.mapped.weight_per_siemens * x_max / self.preset.v_read  # weight units per amp
        if bits is None:  # linear to the digital side: pair and row tiles fold into one matrix
            pos, neg = self._folded(bank)
            return _apply(v_dac, pos, neg, columns).mul_(to_output / rs)
        lead = v_dac.shape[0]
        shape = (lead, 2 * n_out, v_dac.shape[2]) if columns else (lead, 2 * n_out)
        vouts = self._scratch_tensor("vouts", (len(bank.groups), *shape))
        first = 0
        if bank.stacked is not None and not columns:  # equal row tiles: one batched multiply
            count, rows, pos, neg = bank.stacked
            part = v_dac[:, :count * rows].reshape(lead, count, rows).transpose(0, 1)
            _apply(part, pos, neg, batched=True, out=vouts[:count])
            first = count
        for k in range(first, len(bank.groups)):
            group = bank.groups[k]
            _apply(v_dac[:, group.rows], group.transfer_t, group.transfer_neg_t, columns, out=vouts[k])
        low, high = torch.aminmax(vouts)
        vfs = max(-float(low), float(high)) or 1.0
        self.adc_vfs[label] = vfs
        lsb, kmax = peripherals.dac_lsb(bits, vfs), peripherals.converter_kmax(bits)
        codes = torch.empty((lead, n_out, *shape[2:]), dtype=self.dtype)
        step = max(1, ADC_CHUNK // (vouts[0, 0].numel() * len(bank.groups)))
        for start in range(0, lead, step):
            block = vouts[:, start:start + step]
            peripherals.quantize_in_place(block, lsb, kmax)  # the ADC codes, as floats
            summed = block.sum(dim=0)  # integers: exact in float32 below 2**24
            torch.sub(summed[:, :n_out], summed[:, n_out:], out=codes[start:start + step])
        return codes.mul_(lsb / rs * to_output)

    def _folded(self, bank: TileBank) -> tuple[torch.Tensor, torch.Tensor | None]:
        if bank.folded is None:
            n_out = bank.mapped.g_pos.shape[1]
            pos = torch.cat([g.transfer_t[:, :n_out] - g.transfer_t[:, n_out:] for g in bank.groups])
            neg = None
            if bank.groups[0].transfer_neg_t is not None:
                neg = torch.cat([g.transfer_neg_t[:, :n_out] - g.transfer_neg_t[:, n_out:] for g in bank.groups])
            bank.folded = (pos, neg)
        return bank.folded

    def prepared_conv2d(self, name: str, conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor | None:
        """`Simulation.conv2d` on prepared linear tiles with the DAC applied to
        the feature map before im2col; (B, out, H', W') at the cache's
        precision, or None when a matrix is not linear (SPICE or Newton
        tiles: the caller runs `conv2d`). Outputs of at least COLUMNS_MIN
        pixels use F.unfold's patch layout (B, inputs, pixels): a faster copy
        and the result lands in NCHW order."""
        if x.dim() != 4 or x.shape[1] != conv.in_channels or isinstance(conv.padding, str) \
                or conv.padding_mode != "zeros":
            return None  # conv2d raises the one-line error
        groups, out_per_group = conv.groups, conv.out_channels // conv.groups
        labels = [name] if groups == 1 else [f"{name}.g{gi}" for gi in range(groups)]
        weight = self.array_weight(conv, labels)
        for gi, label in enumerate(labels):
            self.map(label, weight[gi * out_per_group:(gi + 1) * out_per_group].reshape(out_per_group, -1))
            if not self.banks[label].linear:
                return None
        x = x.detach().cpu()
        batch, per_group = x.shape[0], conv.in_channels // groups
        h_out, w_out = conv_output_size(x, conv)
        columns = h_out * w_out >= COLUMNS_MIN
        outputs = []
        for gi, label in enumerate(labels):
            part = x[:, gi * per_group:(gi + 1) * per_group]
            x_max = covered_range(part, conv)
            (ph, pw), (h, w) = conv.padding, part.shape[2:]
            padded = self._scratch_tensor("dac", (batch, per_group, h + 2 * ph, w + 2 * pw))
            if ph or pw:
                padded.zero_()
            self.dac_tensor(part, x_max, out=padded[:, :, ph:ph + h, pw:pw + w])
            patches = im2col_tensor(padded, conv, columns, padded=True, out=self._scratch_tensor)
            outputs.append(self.analog_matmul(label, patches, x_max, columns))
        y = outputs[0] if groups == 1 else torch.cat(outputs, dim=1)
        if conv.bias is not None:
            bias = conv.bias.detach().cpu().to(self.dtype)
            y += bias[:, None] if columns else bias
        if columns:
            return y.view(batch, conv.out_channels, h_out, w_out)
        return y.view(batch, h_out, w_out, conv.out_channels).permute(0, 3, 1, 2).contiguous()

    # ----- the general path (SPICE, Newton tiles) ------------------------------
    def _dac(self, v: np.ndarray) -> np.ndarray:
        """The voltages the row DACs apply (V): `cosim.spice.ngspice_netlist.dac_output` of every tile at once."""
        bits = self.preset.dac_bits
        if bits is None:
            return v
        return dac_levels(v, bits, self.preset.v_read)

    def _group_vout(self, group: RowGroup, v: np.ndarray, v_dac: np.ndarray) -> np.ndarray:
        """TIA outputs (N, 2 * outputs) (V) of one row of tiles for target
        voltages `v` and DAC outputs `v_dac` (V)."""
        if group.transfer is not None:  # already scaled by the TIA gain: one multiply gives vout
            return sign_split_product(v_dac, group.transfer, group.transfer_neg)
        parts = []
        for spec, solver in zip(group.specs, group.solvers):
            if isinstance(solver, SpiceSolver):
                result = solve(spec, v, engine="spice", spice=self.options.spice,
                               timeout_s=self.options.spice_timeout_s)
                parts.append(result.vout)
            elif isinstance(solver, MatrixSolver):
                current = sign_split_product(v_dac, solver.transfer, solver.transfer_neg)
                parts.append(current * _gain(spec, solver.engine))
            else:
                parts.append(solver.tile.currents(v_dac) * _gain(spec, "fast"))
        return np.concatenate(parts, axis=1)


def dac_levels(v: np.ndarray, bits: int, vfs: float) -> np.ndarray:
    """DAC output voltages (V) for target voltages `v` (V), on a float copy:
    equal to peripherals.dac_voltage(peripherals.dac_codes(v)) (tests check
    it), without the integer round trip."""
    lsb = peripherals.dac_lsb(bits, vfs)
    out = peripherals.quantize_in_place(np.array(v, dtype=float), lsb, peripherals.converter_kmax(bits))
    out *= lsb
    return out


def _gain(spec: TileSpec, engine: str) -> float:
    """TIA volts per amp: rs, times the TIA's DC gain factor on the fast engine."""
    return spec.tia.rs * (fast.tia_gain(spec) if engine == "fast" else 1.0)


def _solver_of(tile: FastTile) -> TileSolver:
    """What a RowGroup keeps of a prepared fast tile: its transfer matrices
    when it has them (a linear tile), else the tile itself."""
    if isinstance(tile, LinearTile) and tile.transfer is not None:
        return MatrixSolver("fast", tile.transfer, tile.transfer_neg)
    return PreparedSolver(tile)


def _prepare_tile(spec: TileSpec, calibration: Calibration | str | None,
                  nonlinear: str) -> tuple[TileSolver, float]:
    """(solver, preparation s) of one fast tile (`fast.prepare`); runs on a worker thread."""
    start = time.perf_counter()
    solver = _solver_of(fast.prepare(spec, calibration=calibration, nonlinear=nonlinear, threads=None))
    return solver, time.perf_counter() - start


def _apply(v: torch.Tensor, transfer: torch.Tensor, transfer_neg: torch.Tensor | None, columns: bool = False,
           out: torch.Tensor | None = None, batched: bool = False) -> torch.Tensor:
    """v @ T, or max(v, 0) @ T + min(v, 0) @ T_neg for sign-split (calibrated)
    tiles. `columns`: v is (B, rows, L) and the result T^T v (B, cols, L);
    `batched`: v (G, N, rows) and T (G, rows, cols), one product per G."""
    def product(a: torch.Tensor, b: torch.Tensor, dest: torch.Tensor | None) -> torch.Tensor:
        """One matrix product in the layout asked for (columns, batched or plain)."""
        if batched:
            return torch.bmm(a, b, out=dest)
        if columns:
            return torch.matmul(b.T, a, out=dest)
        return torch.mm(a, b, out=dest)

    if transfer_neg is None:
        return product(v, transfer, out)
    positive, negative = split_polarities(v)
    return product(positive, transfer, out).add_(product(negative, transfer_neg, None))


def _stack(groups: list[RowGroup]) -> tuple[int, int, torch.Tensor, torch.Tensor | None] | None:
    """Leading rows of tiles of equal height as one (count, rows, cols) tensor
    (their `transfer_t` become views of it), for one batched multiply; None
    when fewer than two."""
    if not groups or any(g.transfer_t is None for g in groups):
        return None
    rows = groups[0].transfer_t.shape[0]
    count = 0
    while count < len(groups) and groups[count].transfer_t.shape[0] == rows \
            and groups[count].rows.start == count * rows:
        count += 1
    if count < 2:
        return None
    pos = torch.stack([g.transfer_t for g in groups[:count]])
    split = groups[0].transfer_neg_t is not None
    neg = torch.stack([g.transfer_neg_t for g in groups[:count]]) if split else None
    for k, group in enumerate(groups[:count]):
        group.transfer_t = pos[k]
        group.transfer_neg_t = neg[k] if split else None
    return count, rows, pos, neg


def _concatenate(group: RowGroup, dtype: torch.dtype = torch.float64) -> None:
    """One transfer matrix for the whole row when every tile is linear on one
    engine, kept as float64 numpy (columns as on the tiles) and as a torch
    tensor of `dtype` (positive columns first, see RowGroup)."""
    if not all(isinstance(s, MatrixSolver) for s in group.solvers):
        return
    kinds = {s.engine for s in group.solvers}
    if len(kinds) != 1:
        return
    split = any(s.transfer_neg is not None for s in group.solvers)
    if split and not all(s.transfer_neg is not None for s in group.solvers):
        return
    group.gain = _gain(group.specs[0], kinds.pop())
    group.transfer = np.concatenate([s.transfer for s in group.solvers], axis=1) * group.gain
    halves = halves_order(group.transfer.shape[1])
    group.transfer_t = torch.from_numpy(group.transfer[:, halves]).to(dtype)
    if split:
        group.transfer_neg = np.concatenate([s.transfer_neg for s in group.solvers], axis=1) * group.gain
        group.transfer_neg_t = torch.from_numpy(group.transfer_neg[:, halves]).to(dtype)
    group.solvers = []  # the concatenation holds them now
