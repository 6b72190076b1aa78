"""Energy (J per inference), latency (s) and TOPS/W of a simulated network,
per layer and component, from the run's tiles.

Array energy comes from the circuit: every tile's read power summed over
the input vectors it answered, times t_read. Two ways to get it:

- 'exact' (`EnergyMeter`, `cosim simulate`): each tile's input admittance
  matrices Y_part (`cosim.fast.power.admittance_parts`; a 1T1R tile as its
  small-signal linearisation) against the second moment sum_b v_b^T v_b of
  the DAC voltages it was driven with: the exact read power of linear
  tiles, wires and drivers included.
- 'rows' (`RowStats`, `cosim evaluate`): sum_b v_b^2 per row only, and the
  closed form of a tile without wires (`cosim.fast.power.row_model_power`):
  O(R C) per tile, no solve; it leaves out the wires' IR drop. Linear and
  Conv2d layers (a GRU's hidden-matrix inputs are not visible to a hook).

The periphery (DAC, TIA, ADC, digital adds) follows `cosim.core.energy_models`.
Latency: each layer's reads per inference times its slowest tile read (the
tiles of a layer work in parallel), and the network's critical path over the
layer graph (`cosim.nets.layer_graph`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from cosim.core.config import Preset
from cosim.core.energy_models import COMPONENTS, read_energy
from cosim.core.tile_power import PARTS
from cosim.nets.layer_graph import critical_path, layer_graph, layer_of

if TYPE_CHECKING:
    import torch
    from torch import nn

    from cosim.mapping.pairs import MappedMatrix
    from cosim.run.records import TileRecord


@dataclass
class TileReads:
    """What the array energy of one tile needs: its reads and their voltages.

    Attributes:
        reads: input vectors the tile answered.
        moment: (R, R) sum_b v_b^T v_b of its DAC voltages (V^2), mode 'exact'.
        v_sq: (R,) sum_b v_b^2 per row (V^2), mode 'rows'.
    """

    reads: int = 0
    moment: np.ndarray | None = None
    v_sq: np.ndarray | None = None

    def add(self, v: np.ndarray, exact: bool) -> None:
        """Count the reads of DAC voltages v (B, R) (V)."""
        self.reads += v.shape[0]
        if exact:
            m = v.T @ v
            self.moment = m if self.moment is None else self.moment + m
        sq = np.einsum("br,br->r", v, v)
        self.v_sq = sq if self.v_sq is None else self.v_sq + sq


class EnergyMeter:
    """The `products` of a Simulation that also keeps each tile's reads (mode
    'exact'): `sim.products = EnergyMeter(sim)` before `sim.forward`."""

    def __init__(self, simulation: Any) -> None:
        self.simulation = simulation
        self.inner = simulation.products
        self.tiles: dict[str, TileReads] = {}

    def map(self, label: str, weight: np.ndarray) -> "MappedMatrix":
        """Program matrix `label` as the wrapped products do."""
        return self.inner.map(label, weight)

    def matmul(self, label: str, mapped: "MappedMatrix", x: np.ndarray, x_max: float | None = None,
               recurrent: bool = False) -> np.ndarray:
        """x @ W.T through the wrapped products, after counting every tile's reads."""
        from cosim.core.drive import dac_output
        from cosim.mapping.pairs import input_range, inputs_to_voltages

        sim = self.simulation
        scale = input_range(x) if x_max is None else x_max
        v = inputs_to_voltages(x, scale, sim.preset.v_read)
        for planned in sim.plan_matrix(label, mapped):
            t = planned.slice
            v_tile = dac_output(planned.spec, v[:, t.row_start:t.row_stop])
            self.tiles.setdefault(t.name, TileReads()).add(v_tile, exact=True)
        return self.inner.matmul(label, mapped, x, x_max=x_max, recurrent=recurrent)


class RowStats:
    """Forward hooks on a converted model's analog layers that keep, per layer,
    sum_b v_b^2 of every matrix row and the reads per sample (mode 'rows')."""

    def __init__(self, analog: Mapping[str, "nn.Module"], preset: Preset) -> None:
        """Hook every layer of `analog` (label -> module: `cosim.twin.convert.analog_layers(twin)`)."""
        self.preset = preset
        self.layers: dict[str, list[Any]] = {}  # label -> [sum v^2 per row (inputs,), reads, conv groups]
        self.handles = [m.register_forward_hook(self._hook(label, m)) for label, m in analog.items()]

    def _hook(self, label: str, module: "nn.Module"):
        from torch import nn

        def hook(mod: "nn.Module", inputs: tuple, output: object) -> None:
            """Add this batch's per-row sum of squared DAC voltages (V^2) and its reads."""
            if isinstance(mod, nn.GRU):  # its hidden matrix's inputs are not the layer's input
                return
            sq, reads = _row_squares(mod, inputs[0], self.preset)
            self.add(label, sq, reads, int(getattr(mod, "groups", 1)))
        return hook

    def add(self, label: str, sq: np.ndarray, reads: int, groups: int) -> None:
        """Add one batch of layer `label`: its per-row sum of squared DAC voltages
        `sq` (V^2), its reads, and its Conv2d groups (what a remote batch returns too)."""
        entry = self.layers.setdefault(label, [np.zeros_like(sq), 0, groups])
        entry[0] += sq
        entry[1] += reads

    def close(self) -> None:
        """Remove the hooks."""
        for handle in self.handles:
            handle.remove()

    def tile_reads(self, records: Mapping[str, "TileRecord"]) -> dict[str, TileReads]:
        """TileReads of every tile (mode 'rows') from its layer's row sums."""
        out = {}
        for name, record in records.items():
            entry = self.layers.get(layer_of(record.layer))
            if entry is None:
                continue
            sq, reads, groups = entry
            offset = _group_offset(record.layer, sq.size, groups)
            rows = slice(offset + record.tile.row_start, offset + record.tile.row_stop)
            out[name] = TileReads(reads=int(reads), v_sq=sq[rows].copy())
        return out


def _group_offset(label: str, total: int, groups: int) -> int:
    """Row offset of Conv2d group matrix `label` (`NAME.gK`) in its layer's rows (0 for other matrices)."""
    import re

    match = re.search(r"\.g(\d+)$", label)
    return int(match.group(1)) * (total // groups) if match and groups > 1 else 0


def _row_squares(module: "nn.Module", x: "torch.Tensor", preset: Preset) -> tuple[np.ndarray, int]:
    """(sum over reads of v^2 per matrix row (V^2), reads) of one Linear or Conv2d
    layer's input batch: DAC voltages scaled by the batch's largest |x| as the
    twin does, quantised by the preset's DAC; squares summed over the batch
    first, so a convolution's kernel offsets cost a pass over one feature map."""
    import torch
    import torch.nn.functional as F

    from cosim.core import peripherals

    x = x.detach()
    scale = float(x.abs().max()) or 1.0
    v = x.to(torch.float64 if x.dtype == torch.float64 else torch.float32) * (preset.v_read / scale)
    unit = 1.0
    if preset.dac_bits is not None:
        unit = peripherals.dac_lsb(preset.dac_bits, preset.v_read)
        v = peripherals.quantize_in_place(v, unit, peripherals.converter_kmax(preset.dac_bits))  # codes
    v.mul_(v)
    if isinstance(module, torch.nn.Conv2d):
        (kh, kw), (sh, sw) = module.kernel_size, module.stride
        (dh, dw), (ph, pw) = module.dilation, module.padding
        h_out = (v.shape[2] + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        w_out = (v.shape[3] + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        sq = F.pad(v.sum(dim=0, dtype=torch.float64), (pw, pw, ph, ph))  # (C, H, W)
        out = torch.empty(sq.shape[0], kh, kw, dtype=torch.float64)
        for a in range(kh):
            rows = sq[:, a * dh: a * dh + sh * (h_out - 1) + 1: sh, :].sum(dim=1)  # (C, W)
            for b in range(kw):
                out[:, a, b] = rows[:, b * dw: b * dw + sw * (w_out - 1) + 1: sw].sum(dim=1)
        return out.reshape(-1).numpy() * unit * unit, x.shape[0] * h_out * w_out
    flat = v.reshape(-1, v.shape[-1])
    return flat.sum(dim=0, dtype=torch.float64).numpy() * unit * unit, flat.shape[0]


@dataclass
class EnergyReport:
    """Energy and latency of one inference.

    Attributes:
        layers: analog layer names, in forward order.
        components: `COMPONENTS`.
        per_layer: (L, K) J per inference by layer and component.
        array_parts: (L, len(PARTS)) J per inference of the array by part (`PARTS`).
        reads: (L,) reads per inference of each layer (its largest matrix's).
        layer_latency_s: (L,) s per inference of each layer.
        macs: multiply-accumulates per inference (one per weight per read).
        latency_s: the critical path of the layer graph (s).
        path: the layers on it.
        mode: 'exact' or 'rows' (how the array energy was found).
    """

    layers: list[str]
    per_layer: np.ndarray
    array_parts: np.ndarray
    reads: np.ndarray
    layer_latency_s: np.ndarray
    macs: float
    latency_s: float
    path: list[str]
    mode: str
    components: tuple[str, ...] = field(default=COMPONENTS)

    @property
    def energy_per_inference_j(self) -> float:
        """Total energy of one inference (J)."""
        return float(self.per_layer.sum())

    @property
    def tops_per_w(self) -> float:
        """Tera-operations per second per watt (2 operations per MAC)."""
        e = self.energy_per_inference_j
        return 2.0 * self.macs / e / 1e12 if e > 0 else 0.0

    @property
    def pj_per_mac(self) -> float:
        """Energy per multiply-accumulate (pJ)."""
        return self.energy_per_inference_j / self.macs * 1e12 if self.macs else 0.0

    def summary_line(self) -> str:
        """The one stdout line: energy, latency, TOPS/W."""
        shares = self.per_layer.sum(axis=0) / (self.energy_per_inference_j or 1.0)
        split = ", ".join(f"{k} {100 * s:.0f}%" for k, s in zip(self.components, shares))
        return (f"energy {self.energy_per_inference_j * 1e9:.4g} nJ per inference ({split}), latency "
                f"{self.latency_s * 1e6:.4g} us, {self.tops_per_w:.4g} TOPS/W, {self.pj_per_mac:.4g} pJ/MAC "
                f"(array: {self.mode})")


def _array_parts(record: "TileRecord", reads: TileReads, mode: str) -> np.ndarray:
    """Summed read power of a tile over its reads, by part (W summed over vectors)."""
    from cosim.fast.power import row_model_power, summed_power
    from cosim.fast.prepared import cell_conductance

    spec = record.spec
    g_cell = cell_conductance(spec) if spec.access == "nmos" else None
    if mode == "exact" and reads.moment is not None:
        summed = summed_power(spec, reads.moment, g_cell)
    else:
        summed = row_model_power(spec, reads.v_sq, g_cell)
    return np.array([summed[k] for k in PARTS])


def energy_report(records: Mapping[str, "TileRecord"], tile_reads: Mapping[str, TileReads], preset: Preset,
                  inferences: int, model: "nn.Module | None" = None, mode: str = "exact",
                  layer_order: Iterable[str] | None = None) -> EnergyReport:
    """Per-layer, per-component energy (J per inference) and latency of a run.

    Args:
        records: the run's tiles (`Simulation.records` or a TileCache's).
        tile_reads: tile name -> its reads (`EnergyMeter.tiles`, `RowStats.tile_reads`).
        preset: the hardware (its `energy` section, converter bits, t_read).
        inferences: samples in the run (energy is divided by it).
        model: the network, for its layer graph (None: the layers in series).
        mode: 'exact' or 'rows' (see the module docstring).
        layer_order: analog layer names in forward order (default: as the records list them).
    """
    spec = preset.energy
    n = max(int(inferences), 1)
    order = list(dict.fromkeys(layer_order or [])) or list(dict.fromkeys(layer_of(r.layer) for r in records.values()))
    index = {name: k for k, name in enumerate(order)}
    per_layer = np.zeros((len(order), len(COMPONENTS)))
    parts = np.zeros((len(order), len(PARTS)))
    reads = np.zeros(len(order))
    latency = np.zeros(len(order))
    macs = 0.0
    for name, record in records.items():
        layer = layer_of(record.layer)
        if layer not in index or name not in tile_reads:
            continue
        k = index[layer]
        count = tile_reads[name].reads
        rows, cols = record.spec.rows, record.spec.cols
        periphery = read_energy(spec, rows, cols, preset.dac_bits, preset.adc_bits)
        array = _array_parts(record, tile_reads[name], mode) * spec.t_read / n
        parts[k] += array
        per_layer[k] += np.array([array.sum(), periphery.dac * count / n, periphery.tia * count / n,
                                  periphery.adc * count / n, periphery.digital * count / n])
        reads[k] = max(reads[k], count / n)
        latency[k] = max(latency[k], count / n * periphery.latency_s)
        macs += count / n * rows * (cols // 2)
    layer_latency = dict(zip(order, latency))
    if model is not None:
        total, path = critical_path(layer_graph(model), layer_latency)
    else:
        total, path = float(latency.sum()), list(order)
    return EnergyReport(order, per_layer, parts, reads, latency, macs, total, path, mode)


def inferences_in(model: "nn.Module", x: "torch.Tensor") -> int:
    """Samples in input batch x: its first dimension, the second for a model whose
    first analog layer is a GRU without batch_first ((T, B, features))."""
    from torch import nn

    first = next((m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d, nn.GRU))), None)
    if isinstance(first, nn.GRU) and not first.batch_first and x.dim() == 3:
        return int(x.shape[1])
    return int(x.shape[0])


def energy_per_inference(records: Mapping[str, "TileRecord"], tile_reads: Mapping[str, TileReads], preset: Preset,
                         inferences: int, model: "nn.Module | None" = None, mode: str = "exact") -> dict[str, float]:
    """The columns a sweep point adds: energy_per_inference_j (J), latency_s (s), tops_per_w."""
    report = energy_report(records, tile_reads, preset, inferences, model, mode)
    return {"energy_per_inference_j": report.energy_per_inference_j, "latency_s": report.latency_s,
            "tops_per_w": report.tops_per_w}
