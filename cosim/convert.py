"""`cosim.convert(model)`: a PyTorch model's hardware twin.

Every nn.Linear, nn.Conv2d and nn.GRU anywhere in the module tree (inside
Sequential, ResNet blocks, attention modules, ...) is replaced by an analog
subclass of the same layer that computes through cosim tiles; every other
module is kept as it is. The analog layers share one `TileCache`, a
`cosim.orchestrate.Simulation` whose mapping (`Simulation.map`), partition,
tile specs, engine routing, ADC (`Simulation._adc`) and layer arithmetic
(`Simulation.linear`, `.conv2d`, `.gru`) are reused unchanged; only
`matmul` differs: each matrix's tiles are prepared once (fast-solver
transfer matrices, `cosim.fast.prepare`) and every forward pass after that is
one matrix multiply per row of tiles, with DAC and ADC applied as in
`cosim simulate`.
"""

from __future__ import annotations

import copy
import sys
import time
import types
from dataclasses import dataclass, field, fields

import numpy as np
import torch
from torch import nn

from cosim import fast, peripherals
from cosim.config import Preset, load_preset
from cosim.engines import solve
from cosim.errors import InputError
from cosim.mapping import MappedMatrix, currents_to_outputs, input_range, inputs_to_voltages, tile_conductance
from cosim.orchestrate import SimOptions, Simulation, TileRecord
from cosim.partition import TileSlice, partition_matrix
from cosim.tile import TileSpec

NONLINEAR = ("linear", "auto", "newton")
_PRESET_FIELDS = {f.name for f in fields(Preset)} - {"name", "description"}
_OPTION_FIELDS = {"split", "spice_max_tile", "calibration", "spice", "spice_timeout_s", "seed"}


@dataclass
class RowGroup:
    """The tiles of one matrix that share input rows (their outputs tile all columns).

    Attributes:
        rows: the matrix inputs on these tiles' rows.
        tiles: the tiles, in output order.
        specs: their TileSpecs.
        transfer: (rows, 2 * outputs) concatenated transfer matrices times
            `gain` (V/V: DAC volts to TIA volts) when every tile is linear, of
            positive reads when `transfer_neg` is set.
        transfer_neg: the same for negative reads (calibrated access), or None.
        solvers: per tile, a prepared FastTile (newton mode), 'spice', or None.
        gain: TIA output per amp of column current, rs times its DC gain factor (V/A).
    """

    rows: slice
    tiles: list[TileSlice]
    specs: list[TileSpec]
    transfer: np.ndarray | None = None
    transfer_neg: np.ndarray | None = None
    solvers: list[object] = field(default_factory=list)
    gain: float = 1.0


@dataclass
class TileBank:
    """One weight matrix on prepared tiles.

    Attributes:
        weight: (outputs, inputs) weights it was programmed with.
        mapped: the conductance pairs (from `Simulation.map`).
        groups: one RowGroup per row of tiles.
        prepare_s: wall time of the preparation (s).
    """

    weight: np.ndarray
    mapped: MappedMatrix
    groups: list[RowGroup]
    prepare_s: float


class TileCache(Simulation):
    """A Simulation whose matrices stay programmed: tiles prepared once per
    matrix label and reused by every later matmul (in this process).

    A label is re-programmed when its weights change (e.g. after
    load_state_dict); `prepare_calls` counts fast-solver preparations.
    """

    def __init__(self, preset: Preset, options: SimOptions, nonlinear: str = "linear",
                 calibration: object = None) -> None:
        super().__init__(preset, options)
        if nonlinear not in NONLINEAR:
            raise InputError(f"nonlinear must be one of {', '.join(NONLINEAR)}, got {nonlinear!r}")
        self.nonlinear = nonlinear
        self.calibration = calibration if calibration is not None else options.calibration
        self.banks: dict[str, TileBank] = {}
        self.prepare_calls = 0

    def map(self, label: str, weight: np.ndarray) -> MappedMatrix:
        bank = self.banks.get(label)
        if bank is not None and bank.weight.shape == weight.shape and np.array_equal(bank.weight, weight):
            return bank.mapped
        mapped = super().map(label, weight)
        start = time.perf_counter()
        groups = self._prepare(label, mapped)
        self.banks[label] = TileBank(np.array(weight, copy=True), mapped, groups, time.perf_counter() - start)
        return mapped

    @property
    def prepare_s(self) -> float:
        """Total preparation wall time of all matrices (s)."""
        return sum(bank.prepare_s for bank in self.banks.values())

    def _prepare(self, label: str, mapped: MappedMatrix) -> list[RowGroup]:
        for name in [n for n, r in self.records.items() if r.layer == label]:
            del self.records[name]
        n_in, n_out = mapped.g_pos.shape
        tiles = partition_matrix(n_in, n_out, self.options.tile, self.options.split, prefix=f"{label}.")
        groups: dict[int, RowGroup] = {}
        for tile in tiles:
            group = groups.setdefault(tile.row_start, RowGroup(slice(tile.row_start, tile.row_stop), [], []))
            spec = self.tile_spec(tile_conductance(mapped, tile), tile.name)
            group.tiles.append(tile)
            group.specs.append(spec)
            engine = self.engine_for(tile)
            start = time.perf_counter()
            group.solvers.append(self._solver(spec, engine))
            self.records[tile.name] = TileRecord(tile.name, label, engine, tile, spec.conductance[:, 0::2],
                                                 spec.conductance[:, 1::2], spec,
                                                 wall_s=time.perf_counter() - start)
        for group in groups.values():
            _concatenate(group)
        return list(groups.values())

    def _solver(self, spec: TileSpec, engine: str) -> object:
        if engine == "ideal":
            return ("ideal", spec.conductance, None)
        if engine == "spice":
            return "spice"
        self.prepare_calls += 1
        tile = fast.prepare(spec, calibration=self.calibration, nonlinear=self.nonlinear)
        if tile.mode == "linear":
            return ("fast", tile.transfer, tile.transfer_neg)
        return tile

    def matmul(self, label: str, mapped: MappedMatrix, x: np.ndarray, x_max: float | None = None,
               recurrent: bool = False) -> np.ndarray:
        """x @ W.T on the prepared tiles of `label`: (N, inputs) -> (N, outputs)."""
        bank = self.banks.get(label)
        if bank is None or bank.mapped is not mapped:
            raise InputError(f"{label}: matrix was not mapped through this simulation; call map() first")
        x_max = input_range(x) if x_max is None else x_max
        v = inputs_to_voltages(x, x_max, self.preset.v_read)
        v_dac = self._dac(v)
        vouts = {f"{label}.row{k}": self._group_vout(group, v[:, group.rows], v_dac[:, group.rows])
                 for k, group in enumerate(bank.groups)}
        for group in bank.groups:
            for tile in group.tiles:
                self.records[tile.name].vectors += x.shape[0]
        currents = self._adc(label, vouts)
        y = np.zeros((x.shape[0], mapped.g_pos.shape[1]))
        for current in currents.values():
            y += currents_to_outputs(current, mapped, x_max, self.preset.v_read)
        return y

    def _dac(self, v: np.ndarray) -> np.ndarray:
        """The voltages the row DACs apply (V): `cosim.netlist.dac_output` of every tile at once."""
        bits = self.preset.dac_bits
        if bits is None:
            return v
        return dac_levels(v, bits, self.preset.v_read)

    def _group_vout(self, group: RowGroup, v: np.ndarray, v_dac: np.ndarray) -> np.ndarray:
        """TIA outputs (N, 2 * outputs) (V) of one row of tiles for target
        voltages `v` and DAC outputs `v_dac` (V)."""
        if group.transfer is not None:  # already scaled by the TIA gain: one multiply gives vout
            if group.transfer_neg is None:
                return v_dac @ group.transfer
            vout = np.maximum(v_dac, 0.0) @ group.transfer
            vout += np.minimum(v_dac, 0.0) @ group.transfer_neg
            return vout
        parts = []
        for spec, solver in zip(group.specs, group.solvers):
            if solver == "spice":
                result = solve(spec, v, engine="spice", spice=self.options.spice,
                               timeout_s=self.options.spice_timeout_s)
                parts.append(result.vout)
            elif isinstance(solver, tuple):
                transfer, transfer_neg = solver[1], solver[2]
                current = (v_dac @ transfer if transfer_neg is None else
                           np.maximum(v_dac, 0.0) @ transfer + np.minimum(v_dac, 0.0) @ transfer_neg)
                parts.append(current * _gain(spec, solver[0]))
            else:
                parts.append(solver.currents(v_dac) * _gain(spec, "fast"))
        return np.concatenate(parts, axis=1)


def dac_levels(v: np.ndarray, bits: int, vfs: float) -> np.ndarray:
    """DAC output voltages (V) for target voltages `v` (V), computed in place
    on a float copy: equal to peripherals.dac_voltage(peripherals.dac_codes(v))
    (tests check it), without the integer round trip."""
    lsb = peripherals.dac_lsb(bits, vfs)
    kmax = 2 ** (bits - 1) - 1
    out = v / lsb
    out += 0.5
    np.floor(out, out=out)
    np.minimum(np.maximum(out, -kmax, out=out), kmax, out=out)
    out *= lsb
    return out


def _gain(spec: TileSpec, engine: str) -> float:
    """TIA volts per amp: rs, times the TIA's DC gain factor on the fast engine."""
    return spec.tia.rs * (fast.tia_gain(spec) if engine == "fast" else 1.0)


def _concatenate(group: RowGroup) -> None:
    """One transfer matrix for the whole row when every tile is linear on one engine."""
    kinds = {s[0] if isinstance(s, tuple) else None for s in group.solvers}
    if None in kinds or len(kinds) != 1:
        return
    split = any(s[2] is not None for s in group.solvers)
    if split and not all(s[2] is not None for s in group.solvers):
        return
    group.gain = _gain(group.specs[0], kinds.pop())
    group.transfer = np.concatenate([s[1] for s in group.solvers], axis=1) * group.gain
    if split:
        group.transfer_neg = np.concatenate([s[2] for s in group.solvers], axis=1) * group.gain
    group.solvers = [None] * len(group.solvers)  # the concatenation holds them now


# ----------------------------------------------------------------- layers


def _run(module: nn.Module, compute, x: torch.Tensor):
    """Call compute(x as float64 CPU) and return float results on x's device and dtype."""
    dtype = x.dtype if x.is_floating_point() else torch.float32
    out = compute(x.detach().to("cpu", torch.float64))
    if isinstance(out, tuple):
        return tuple(t.to(x.device, dtype) for t in out)
    return out.to(x.device, dtype)


class AnalogLinear(nn.Linear):
    """nn.Linear computed on crossbar tiles (same parameters and state_dict keys)."""

    cosim: TileCache
    cosim_label: str

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _run(self, lambda t: self.cosim.linear(self.cosim_label, self, t), x)


class AnalogConv2d(nn.Conv2d):
    """nn.Conv2d computed on crossbar tiles through im2col (same parameters)."""

    cosim: TileCache
    cosim_label: str

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _run(self, lambda t: self.cosim.conv2d(self.cosim_label, self, t), x)


class AnalogGRU(nn.GRU):
    """nn.GRU whose gate matrices run on crossbar tiles (h0 = 0; same parameters)."""

    cosim: TileCache
    cosim_label: str

    def forward(self, x: torch.Tensor, hx: torch.Tensor | None = None):  # type: ignore[override]
        if hx is not None:
            raise InputError(f"{self.cosim_label}: the analog GRU starts from h0 = 0; call it without hx")
        return _run(self, lambda t: self.cosim.gru(self.cosim_label, self, t), x)


def _analog_copy(module: nn.Module, cache: TileCache, label: str) -> nn.Module:
    if isinstance(module, nn.Linear):
        new: nn.Module = AnalogLinear(module.in_features, module.out_features, bias=module.bias is not None)
    elif isinstance(module, nn.Conv2d):
        new = AnalogConv2d(module.in_channels, module.out_channels, module.kernel_size, stride=module.stride,
                           padding=module.padding, dilation=module.dilation, groups=module.groups,
                           bias=module.bias is not None, padding_mode=module.padding_mode)
    else:
        if module.bidirectional:
            raise InputError(f"{label}: bidirectional GRU is not supported; use bidirectional=False")
        new = AnalogGRU(module.input_size, module.hidden_size, module.num_layers, bias=module.bias,
                        batch_first=module.batch_first, dropout=module.dropout)
    new.load_state_dict(module.state_dict())
    for name, tensor in new.state_dict().items():
        if not torch.isfinite(tensor).all():
            raise InputError(f"{label}: parameter {name} has NaN or infinite values; clean the weights")
    new.cosim = cache
    new.cosim_label = label or type(module).__name__.lower()
    first = next(module.parameters(), None)
    return new.to(first.device) if first is not None else new


ANALOG_TYPES = (nn.Linear, nn.Conv2d, nn.GRU)


def _replace(module: nn.Module, cache: TileCache, prefix: str) -> nn.Module:
    if isinstance(module, ANALOG_TYPES):
        return _analog_copy(module, cache, prefix)
    for name, child in list(module.named_children()):
        setattr(module, name, _replace(child, cache, f"{prefix}.{name}" if prefix else name))
    return module


def convert(model: nn.Module, preset: str | Preset = "seed000_vteam", tile: int = 128, engine: str = "fast",
            nonlinear: str = "linear", prepare: bool = True, example_input: torch.Tensor | None = None,
            **options) -> nn.Module:
    """A copy of `model` whose Linear, Conv2d and GRU layers compute on crossbar tiles.

    Args:
        model: any nn.Module (not TorchScript); analog layers are found anywhere in its tree.
        preset: preset name ('seed000_vteam', 'seed001_mlp'), JSON path or Preset.
        tile: largest tile, tile x tile devices (tile inputs, tile / 2 outputs per tile).
        engine: 'fast' (IR-drop-exact fast solver, default), 'ideal' (v @ G, no
            wires), 'auto' (tiles of at most spice_max_tile rows and columns in
            ngspice, the rest fast) or 'spice' (every tile in ngspice on every
            call: slow, for small models).
        nonlinear: fast solver with an access NMOS: 'linear' (transfer matrix
            with the small-signal or calibrated access resistance; forward =
            matrix multiplies), 'auto'/'newton' (exact level-1 NMOS operating
            point by chord Newton on every call).
        prepare: program and prepare every tile now (else on the first forward).
        example_input: optional input batch run once after preparing (warm-up).
        **options: preset overrides: r_wire (ohm per segment), r_driver (ohm),
            access ('none' | 'nmos'), v_read (V, largest DAC voltage),
            dac_bits / adc_bits (bits, None = exact), tia (TiaSpec), device
            (VteamParams), nmos (NmosAccess); and simulation options:
            split ('fixed' | 'balanced'), spice_max_tile (devices per side),
            calibration (path of a `cosim calibrate` JSON, or 'auto': fit one
            in ngspice now for the preset's device and access NMOS, ~1 s; the
            linear path then has ~2 % instead of ~10 % error at 64x64, see
            docs/validation.md), spice ('ngspice' |
            'vacask'), spice_timeout_s (s), seed.

    Returns:
        The twin in eval mode. Its analog layers are subclasses of the
        originals with the same parameters, so `state_dict()` keys and values
        match the float model and `load_state_dict` works: changed weights are
        re-programmed on the next forward. The tiles live on the CPU (float64
        numpy); `.to(device)` moves the parameters, inputs on any device are
        computed on the CPU and returned on the input's device and dtype.
        Inference only: outputs carry no gradient. DAC and ADC ranges are
        calibrated on each batch, as in `cosim simulate`.
    """
    if isinstance(model, torch.jit.ScriptModule):
        raise InputError("convert takes an nn.Module, not TorchScript; save and load the eager model")
    if not isinstance(model, nn.Module):
        raise InputError(f"convert takes an nn.Module, got {type(model).__name__}")
    unknown = set(options) - _PRESET_FIELDS - _OPTION_FIELDS
    if unknown:
        raise InputError(f"unknown convert option(s) {', '.join(sorted(unknown))}; preset fields: "
                         f"{', '.join(sorted(_PRESET_FIELDS))}; options: {', '.join(sorted(_OPTION_FIELDS))}")
    hardware = preset if isinstance(preset, Preset) else load_preset(preset)
    changes = {k: v for k, v in options.items() if k in _PRESET_FIELDS}
    hardware = hardware.with_(**changes) if changes else hardware
    calibration = None
    if options.get("calibration") == "auto":
        options = {**options, "calibration": None}
        if hardware.access == "nmos" and engine in ("fast", "auto"):
            from cosim.calibrate import calibrate

            calibration = calibrate(hardware.device, hardware.nmos, preset=hardware.name,
                                    v_read=(-hardware.v_read, hardware.v_read))
    sim_options = SimOptions(tile=tile, engine=engine, quiet=True,
                             **{k: v for k, v in options.items() if k in _OPTION_FIELDS})
    cache = TileCache(hardware, sim_options, nonlinear, calibration)
    twin = _replace(copy.deepcopy(model), cache, "")
    twin.eval()
    if prepare:
        for module in twin.modules():
            if isinstance(module, (AnalogLinear, AnalogConv2d, AnalogGRU)):
                _program(module)
        if example_input is not None:
            with torch.no_grad():
                twin(example_input)
    return twin


def _program(module: nn.Module) -> None:
    """Map and prepare the tiles of a layer now (labels as Simulation.linear/conv2d/gru use them)."""
    if isinstance(module, nn.GRU):
        for k in range(module.num_layers):
            for part in ("ih", "hh"):
                weight = getattr(module, f"weight_{part}_l{k}").detach().double().cpu().numpy()
                module.cosim.map(f"{module.cosim_label}.{part}_l{k}", weight)
        return
    weight = module.weight.detach().double().cpu().numpy()
    if isinstance(module, nn.Conv2d):
        per_group = module.out_channels // module.groups
        for gi in range(module.groups):
            label = module.cosim_label if module.groups == 1 else f"{module.cosim_label}.g{gi}"
            module.cosim.map(label, weight[gi * per_group:(gi + 1) * per_group].reshape(per_group, -1))
    else:
        module.cosim.map(module.cosim_label, weight)


def tile_cache(twin: nn.Module) -> TileCache:
    """The TileCache (Simulation) behind a converted model: tile records,
    preparation time, prepare_calls, ADC full scales."""
    for module in twin.modules():
        if isinstance(module, (AnalogLinear, AnalogConv2d, AnalogGRU)):
            return module.cosim
    raise InputError("this model has no analog layer; convert it with cosim.convert first")


def analog_layers(twin: nn.Module) -> dict[str, nn.Module]:
    """label -> analog layer of a converted model."""
    return {m.cosim_label: m for m in twin.modules() if isinstance(m, (AnalogLinear, AnalogConv2d, AnalogGRU))}


class _CallableModule(types.ModuleType):
    """Makes `cosim.convert(model)` work even after `import cosim.convert`
    (importing the submodule sets the package attribute to the module)."""

    def __call__(self, *args, **kwargs) -> nn.Module:
        return convert(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
