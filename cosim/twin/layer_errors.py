"""Per-layer output error of a converted model against the float model, over
the batches of a run (`cosim evaluate`'s layer_errors; collected per batch on
Dask workers by `cosim.commands.evaluate_remote`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from torch import nn


class LayerErrors:
    """Per analog layer: ||twin output - float layer(same input)|| / ||float layer|| over all batches."""

    def __init__(self, twin: nn.Module, model: nn.Module) -> None:
        from cosim.twin.convert import analog_layers

        named = dict(model.named_modules())
        self.sums: dict[str, list[float]] = {}
        self.handles = []
        for label, module in analog_layers(twin).items():
            reference = named.get(label, model)  # a bare layer's label is its type name
            if reference is None:
                continue
            self.sums[label] = [0.0, 0.0]
            self.handles.append(module.register_forward_hook(self._hook(label, reference)))

    def _hook(self, label: str, reference: nn.Module) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...],
                 output: torch.Tensor | tuple[torch.Tensor, ...]) -> None:
            """Add this batch's squared error against `reference` and the reference's squared norm."""
            ref = reference(inputs[0])
            out, ref = (output[0], ref[0]) if isinstance(output, tuple) else (output, ref)
            self.add(label, float(((out.double() - ref.double()) ** 2).sum()), float((ref.double() ** 2).sum()))
        return hook

    def add(self, label: str, err: float, ref: float) -> None:
        """Add one batch of layer `label`: its squared error and its reference's
        squared norm (a remote batch's sums too); layers this run has no hook on are left out."""
        if label in self.sums:
            self.sums[label][0] += err
            self.sums[label][1] += ref

    def result(self) -> dict[str, float]:
        """Remove the hooks; label -> relative output error (dimensionless) over every batch so far."""
        for handle in self.handles:
            handle.remove()
        return {label: (err / ref) ** 0.5 if ref > 0 else 0.0 for label, (err, ref) in self.sums.items()}
