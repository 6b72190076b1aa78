"""`cosim.convert(model)`: a PyTorch model's hardware twin.

Every nn.Linear, nn.Conv2d and nn.GRU anywhere in the module tree (inside
Sequential, ResNet blocks, attention modules, ...) is replaced by an analog
subclass of the same layer that computes through cosim tiles; every other
module is kept as it is. The analog layers share one `TileCache`, a
`cosim.run.simulation.Simulation` whose mapping (`Simulation.map`), partition,
tile specs, engine routing, ADC (`Simulation._adc`) and layer arithmetic
(`Simulation.linear`, `.conv2d`, `.gru`) are reused unchanged; only
`matmul` differs: each matrix's tiles are prepared once (fast-solver
transfer matrices, `cosim.fast.prepare`) and every forward pass after that is
one matrix multiply per row of tiles, with DAC and ADC applied as in
`cosim simulate`.

The tiles and the prepared forward pass live in `cosim.twin.tilecache`.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from dataclasses import fields
from typing import Any

import numpy as np
import torch
from torch import nn

from cosim.core.config import DEFAULT_PRESET, Preset, load_preset
from cosim.core.errors import InputError
from cosim.nets.training import TwoLevel
from cosim.run.simulation import SimOptions
from cosim.twin.tilecache import TileCache

_PRESET_FIELDS = {f.name for f in fields(Preset)} - {"name", "description"}
_OPTION_FIELDS = {"split", "spice_max_tile", "calibration", "spice", "spice_timeout_s", "seed", "workers", "compensate"}


def _run(module: nn.Module, compute: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
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
        """The layer's forward pass on its prepared tiles (same shapes as the torch layer)."""
        return _run(self, lambda t: self.cosim.linear(self.cosim_label, self, t), x)


class AnalogConv2d(nn.Conv2d):
    """nn.Conv2d computed on crossbar tiles through im2col (same parameters)."""

    cosim: TileCache
    cosim_label: str

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The layer's forward pass on its prepared tiles (same shapes as the torch layer)."""
        with torch.no_grad():
            out = self.cosim.prepared_conv2d(self.cosim_label, self, x)
        if out is not None:
            return out.to(x.device, x.dtype if x.is_floating_point() else torch.float32)
        return _run(self, lambda t: self.cosim.conv2d(self.cosim_label, self, t), x)


class AnalogBinaryLinear(TwoLevel, AnalogLinear):
    """cosim.nets.training.BinaryLinear on crossbar tiles: alpha * sign(W) on two device levels."""


class AnalogBinaryConv2d(TwoLevel, AnalogConv2d):
    """cosim.nets.training.BinaryConv2d on crossbar tiles, on two device levels."""


class AnalogGRU(nn.GRU):
    """nn.GRU whose gate matrices run on crossbar tiles (same parameters).

    `hx` (num_layers, B, hidden), default zeros, must lie in [-1, 1]: the
    recurrent inputs' DAC range is fixed at 1 (a GRU's own states are tanh
    mixtures and never leave it)."""

    cosim: TileCache
    cosim_label: str

    def forward(self, x: torch.Tensor, hx: torch.Tensor | None = None):  # type: ignore[override]
        """The layer's forward pass on its prepared tiles (same shapes as the torch layer)."""
        h0 = None if hx is None else hx.detach().to("cpu", torch.float64)
        return _run(self, lambda t: self.cosim.gru(self.cosim_label, self, t, h0), x)


def _analog_copy(module: nn.Module, cache: TileCache, label: str) -> nn.Module:
    binary = getattr(module, "device_levels", None) == 2  # cosim.nets.training.BinaryLinear / BinaryConv2d
    if isinstance(module, nn.Linear):
        new: nn.Module = (AnalogBinaryLinear if binary else AnalogLinear)(
            module.in_features, module.out_features, bias=module.bias is not None)
    elif isinstance(module, nn.Conv2d):
        new = (AnalogBinaryConv2d if binary else AnalogConv2d)(module.in_channels, module.out_channels, module.kernel_size, stride=module.stride,
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


def convert(model: nn.Module, preset: str | Preset = DEFAULT_PRESET, tile: int = 128, engine: str = "fast",
            nonlinear: str = "corrected", prepare: bool = True, example_input: torch.Tensor | None = None,
            precision: str = "float32", **options: Any) -> nn.Module:
    """A copy of `model` whose Linear, Conv2d and GRU layers compute on crossbar tiles.

    Args:
        model: any nn.Module (not TorchScript); analog layers are found anywhere in its tree.
        preset: preset name (`cosim.core.config.PRESET_NAMES`; default the NeuRRAM chip,
            'neurram_wan2022'), JSON path or Preset.
        tile: largest tile, tile x tile devices (tile inputs, tile / 2 outputs per tile).
        engine: 'fast' (IR-drop-exact fast solver, default), 'ideal' (v @ G, no
            wires), 'auto' (tiles of at most spice_max_tile rows and columns in
            ngspice, the rest fast) or 'spice' (every tile in ngspice on every
            call: slow, for small models).
        nonlinear: fast solver with an access NMOS: 'corrected' (default:
            the small-signal transfer plus batched correction terms,
            `cosim.fast.corrected`, within 1e-4 of the exact operating point;
            its maps take 42 MiB per 128 x 128 tile, and matrices beyond
            2 GiB of them in one twin fall back to 'linear' with a warning,
            `cosim.twin.tile_banks.CorrectedBudget`), 'linear' (transfer
            matrix with the small-signal or calibrated access resistance;
            forward = matrix multiplies; what a calibration selects),
            'auto'/'newton' (exact level-1 NMOS operating point on every call).
        prepare: program and prepare every tile now (else on the first forward).
        example_input: optional input batch run once after preparing (warm-up).
        precision: arithmetic of the prepared forward pass, 'float32'
            (default: transfer matrices cast once; TIA outputs within ~1e-7
            relative of float64, an ADC code off by one LSB only where a TIA
            output sits that close to a decision level) or 'float64'.
        **options: preset overrides: r_wire (ohm per segment), r_driver (ohm),
            access ('none' | 'nmos'), v_read (V, largest DAC voltage),
            dac_bits / adc_bits (bits, None = exact), tia (TiaSpec), device
            (VteamParams), nmos (NmosAccess); and simulation options:
            split ('fixed' | 'balanced'), spice_max_tile (devices per side),
            calibration (path of a `cosim calibrate` JSON, or 'auto': fit one
            in ngspice now for the preset's device and access NMOS, ~1 s; the
            linear path then has ~2 % instead of ~10 % error at 64x64, see
            docs/validation.md), spice ('ngspice' |
            'vacask'), spice_timeout_s (s), seed, workers (threads that
            prepare the fast tiles of all matrices, the next matrix mapped
            meanwhile, `TileCache.map_many`; default: the CPU count),
            compensate ('none' | 'irdrop': program each tile so
            that its exact fast-solver transfer matches the weights,
            `cosim.run.compensation`; the residual of every tile is in
            `tile_cache(twin).records[name].compensation`).

    Returns:
        The twin in eval mode. Its analog layers are subclasses of the
        originals with the same parameters, so `state_dict()` keys and values
        match the float model and `load_state_dict` works: changed weights are
        re-programmed on the next forward. The tiles live on the CPU (float64
        numpy); `.to(device)` moves the parameters, inputs on any device are
        computed on the CPU and returned on the input's device and dtype.
        Prepared linear tiles compute at `precision` in torch; SPICE and
        Newton tiles in float64 numpy.
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
            from cosim.analysis.nmos_calibration import fit_access_calibration

            calibration = fit_access_calibration(hardware.device, hardware.nmos, preset=hardware.name,
                                    v_read=(-hardware.v_read, hardware.v_read))
    options.setdefault("workers", os.cpu_count() or 1)
    sim_options = SimOptions(tile=tile, engine=engine, quiet=True,
                             **{k: v for k, v in options.items() if k in _OPTION_FIELDS})
    cache = TileCache(hardware, sim_options, nonlinear, calibration, precision)
    twin = _replace(copy.deepcopy(model), cache, "")
    twin.eval()
    if prepare:  # every matrix on one pool of workers: the next is mapped while tiles are prepared
        analog = (AnalogLinear, AnalogConv2d, AnalogGRU)
        cache.map_many([matrix for module in twin.modules() if isinstance(module, analog)
                        for matrix in _matrices(module)])
        if example_input is not None:
            with torch.no_grad():
                twin(example_input)
    return twin


def _matrices(module: nn.Module) -> list[tuple[str, np.ndarray]]:
    """(label, weight) of every matrix a layer programs (labels as
    Simulation.linear/conv2d/gru use them)."""
    if isinstance(module, nn.GRU):
        return [(f"{module.cosim_label}.{part}_l{k}",
                 getattr(module, f"weight_{part}_l{k}").detach().double().cpu().numpy())
                for k in range(module.num_layers) for part in ("ih", "hh")]
    if isinstance(module, nn.Conv2d):
        per_group = module.out_channels // module.groups
        labels = [module.cosim_label if module.groups == 1 else f"{module.cosim_label}.g{gi}"
                  for gi in range(module.groups)]
        weight = module.cosim.array_weight(module, labels)  # as Simulation.conv2d programs it
        return [(label, weight[gi * per_group:(gi + 1) * per_group].reshape(per_group, -1))
                for gi, label in enumerate(labels)]
    return [(module.cosim_label, module.cosim.array_weight(module, [module.cosim_label]))]


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
