"""Seed 001's combined method: inputs-split calibration of the array outputs,
then in-situ (chip-in-the-loop) training until the calibrated outputs are
within a threshold of the standard outputs.

Calibration (seed 001 step 2, V_cal = V_std + V'_out - delta'; the
inputs-split method of its ref. [16]), per Linear matrix W:
  * K standard inputs S (k-means centroids of the layer's inputs on calibration
    data, float path) whose standard outputs V_std = S W^T are kept digitally
    (recomputed from the target weights whenever they change);
  * an input x is split into its nearest standard input s and the residual
    x' = x - s; only x' goes through the array: V'_out = array(x');
  * delta' (per output column) is the array's mean error on the residuals of
    the calibration data, mean(array(x') - x' W^T);
  * V_cal = V_std(s) + V'_out - delta' (+ bias, digital).
  The array's error then scales with |x'| instead of |x|.

In-situ training (seed 001 step 3): forward passes run through the simulated
array (calibrated), the gradient of the cross-entropy reaches the target
weights straight through the array (y = y_float + (y_array - y_float).detach()),
the weights are re-mapped onto the same devices (same faults: the draws
depend on seed and label only), and the loop stops once the relative output
error |V_cal - V_std| / |V_std| (mean over the batch, network outputs, V_std
the float network with the current target weights) is below the threshold,
or after `epochs`. A device write is a device whose conductance changes by
more than `write_tolerance` of the device span between consecutive mappings
(stuck devices never change, so never count).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cosim.core.config import Preset
from cosim.mapping.pairs import MappedMatrix
from cosim.nets.loading import steps
from cosim.run.simulation import SimOptions, Simulation


@dataclass(frozen=True)
class InsituOptions:
    """Calibration and in-situ training settings.

    Attributes:
        threshold: stop when the relative output error is below this (seed 001: 1e-2).
        epochs: most in-situ training epochs (full-batch updates).
        lr: Adam learning rate of the target weights.
        standards: standard inputs per matrix (k-means centroids).
        write_tolerance: |delta G| above this fraction of g_max - g_min is a device write
            (default: any change; with finite states, any change of level).
        calibrate: use the inputs-split calibration (False: in-situ training alone).
        seed: seed of the k-means initialisation.
    """

    threshold: float = 1e-2
    epochs: int = 20
    lr: float = 3e-3
    standards: int = 16
    write_tolerance: float = 1e-9
    calibrate: bool = True
    seed: int = 0


@dataclass
class InsituResult:
    """Accuracies (fractions), device writes and the error history of one run."""

    accuracy_before: float
    accuracy_calibrated: float
    accuracy_after: float
    writes: int
    epochs: int
    converged: bool
    errors: list[float] = field(default_factory=list)
    model: nn.Module | None = None


@dataclass
class Standard:
    """Standard inputs (K, inputs) of one matrix and its residual offset delta' (outputs,)."""

    inputs: np.ndarray
    delta: np.ndarray


class CalibratedSimulation:
    """A Simulation whose Linear matrices listed in `standards` run
    inputs-split calibrated (seed 001): it holds the Simulation and is its
    `linear_step`; programming, products and records are the Simulation's."""

    def __init__(self, preset: Preset, options: SimOptions, *,
                 weight_scale: Mapping[str, float] | None = None) -> None:
        """A Simulation (`weight_scale`: fixed w_max per Linear label) with no standards yet."""
        self.standards: dict[str, Standard] = {}
        self.simulation = Simulation(preset, options, weight_scale=weight_scale, linear_step=self.linear)

    @property
    def fault_masks(self) -> dict[str, dict[str, np.ndarray]]:
        """The Simulation's stuck-device masks per matrix label."""
        return self.simulation.fault_masks

    def map(self, label: str, weight: np.ndarray) -> MappedMatrix:
        """Matrix `label` programmed as conductance pairs (`Simulation.map`)."""
        return self.simulation.map(label, weight)

    def matmul(self, label: str, mapped: MappedMatrix, x: np.ndarray) -> np.ndarray:
        """x @ W.T through the tiles of matrix `label` (`Simulation.matmul`): (N, inputs) -> (N, outputs)."""
        return self.simulation.matmul(label, mapped, x)

    def forward(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """The model's output on the array, Linear steps calibrated (float64 tensor)."""
        return self.simulation.forward(module, x)

    def linear(self, name: str, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """A Linear layer, inputs-split calibrated when it has standards: (..., in) -> (..., out)."""
        std = self.standards.get(name)
        if std is None:
            return self.simulation.linear(name, layer, x)
        flat = x.reshape(-1, x.shape[-1]).numpy()
        weight = layer.weight.detach().double().numpy()
        nearest = _nearest(flat, std.inputs)
        residual = flat - std.inputs[nearest]
        y = (std.inputs @ weight.T)[nearest] + self.matmul(name, self.map(name, weight), residual) - std.delta
        if layer.bias is not None:
            y = y + layer.bias.detach().double().numpy()
        return torch.from_numpy(y).reshape(*x.shape[:-1], -1)


def _nearest(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    d = (x * x).sum(1)[:, None] - 2 * x @ centres.T + (centres * centres).sum(1)[None, :]
    return np.argmin(d, axis=1)


def linear_inputs(model: nn.Module, x: torch.Tensor) -> dict[str, np.ndarray]:
    """Each Linear step's float input on batch x: step name -> (N, inputs)."""
    out, found = x.double(), {}
    with torch.no_grad():
        for step in steps(model):
            if isinstance(step.module, nn.Linear):
                found[step.name] = out.reshape(-1, out.shape[-1]).numpy().copy()
            out = _run(step.module, out)
    return found


def _run(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    if isinstance(module, nn.Linear):
        return F.linear(x, module.weight.double(), None if module.bias is None else module.bias.double())
    return module(x)


def calibrate_outputs(sim: CalibratedSimulation, model: nn.Module, x_cal: torch.Tensor, k: int, seed: int = 0) -> None:
    """Choose standard inputs (k-means, k centres) and measure delta' of every Linear of `model`."""
    from sklearn.cluster import KMeans

    for name, inputs in linear_inputs(model, x_cal).items():
        centres = KMeans(n_clusters=min(k, len(inputs)), n_init=1, random_state=seed).fit(inputs).cluster_centers_
        sim.standards[name] = Standard(centres, np.zeros(0))
    refresh_offsets(sim, model, x_cal)


def refresh_offsets(sim: CalibratedSimulation, model: nn.Module, x_cal: torch.Tensor) -> None:
    """delta' of every calibrated matrix: the array's mean error on calibration residuals."""
    layers = {s.name: s.module for s in steps(model)}
    for name, inputs in linear_inputs(model, x_cal).items():
        std = sim.standards[name]
        residual = inputs - std.inputs[_nearest(inputs, std.inputs)]
        weight = layers[name].weight.detach().double().numpy()
        array = sim.matmul(name, sim.map(name, weight), residual)
        std.delta = (array - residual @ weight.T).mean(axis=0)


def accuracy(sim: Simulation | CalibratedSimulation, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of x classified as y when the model runs on the simulated array."""
    return float((sim.forward(model, x).argmax(1) == y).double().mean())


def _array_forward(sim: CalibratedSimulation, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Network output (float64) that equals the array's in value and has the float
    network's gradient with respect to the target weights (straight through)."""
    out = x.double()
    for step in steps(model):
        module = step.module
        if isinstance(module, nn.Linear):
            ideal = F.linear(out, module.weight.double(), None if module.bias is None else module.bias.double())
            array = sim.linear(step.name, module, out.detach())
            out = ideal + (array - ideal).detach()
        else:
            out = module(out)
    return out


def _conductances(sim: Simulation | CalibratedSimulation, model: nn.Module) -> dict[str, np.ndarray]:
    maps = {}
    for step in steps(model):
        if isinstance(step.module, nn.Linear):
            m = sim.map(step.name, step.module.weight.detach().double().numpy())
            maps[step.name] = np.stack([m.g_pos, m.g_neg])
    return maps


def insitu_train(model: nn.Module, preset: Preset, options: SimOptions, train: tuple[torch.Tensor, torch.Tensor],
                 test: tuple[torch.Tensor, torch.Tensor], insitu: InsituOptions = InsituOptions()) -> InsituResult:
    """Calibrate `model` (a Sequential of Linear and digital steps) on the array of
    (preset, options) and train it in situ; the caller's model is not changed."""
    model = copy.deepcopy(model).double()
    for p in model.parameters():
        p.requires_grad_(True)
    x_train, y_train = train
    x_test, y_test = test
    linears = [s for s in steps(model) if isinstance(s.module, nn.Linear)]
    # A fixed weight scale: updates re-program devices, not the whole range.
    sim = CalibratedSimulation(preset, options, weight_scale={s.name: float(s.module.weight.detach().abs().max())
                                                              for s in linears})
    acc_before = accuracy(sim, model, x_test, y_test)
    if insitu.calibrate:
        calibrate_outputs(sim, model, x_train, insitu.standards, insitu.seed)
    acc_cal = accuracy(sim, model, x_test, y_test)
    optimiser = torch.optim.Adam([s.module.weight for s in linears] + [s.module.bias for s in linears
                                                                       if s.module.bias is not None], lr=insitu.lr)
    span = preset.device.g_max - preset.device.g_min
    g_prev = _conductances(sim, model)
    writes, errors, converged, epoch = 0, [], False, 0
    for epoch in range(1, insitu.epochs + 1):
        out = _array_forward(sim, model, x_train)
        with torch.no_grad():
            ref = _run_float(model, x_train)
            error = float((out - ref).abs().mean() / ref.abs().mean())
        errors.append(error)
        if error < insitu.threshold:
            converged, epoch = True, epoch - 1
            break
        optimiser.zero_grad()
        F.cross_entropy(out, y_train).backward()
        optimiser.step()
        g_now = _conductances(sim, model)
        writes += int(sum((np.abs(g_now[k] - g_prev[k]) > insitu.write_tolerance * span).sum() for k in g_now))
        g_prev = g_now
        if insitu.calibrate:
            refresh_offsets(sim, model, x_train)
    model.eval()
    return InsituResult(acc_before, acc_cal, accuracy(sim, model, x_test, y_test), writes, epoch, converged,
                        errors, model)


def _run_float(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = x.double()
    for step in steps(model):
        out = _run(step.module, out)
    return out
