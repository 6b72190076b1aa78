"""Small torch modules that cosim layers use beside torch.nn's own."""

from __future__ import annotations

import torch
from torch import nn


class Abs(nn.Module):
    """|x|: the activation of the seed-001 MLP, realised in analog by the
    precision rectifier of circuits/abs.cir."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Any shape -> the same shape: |x| element-wise."""
        return torch.abs(x)


class SequenceLast(nn.Module):
    """The last time step of a recurrent layer's output sequence, so a GRU can
    feed a Linear classifier inside an nn.Sequential (seed 004).

    Accepts the (output, h_n) tuple of nn.GRU or the output tensor alone;
    `batch_first` says which axis is time."""

    def __init__(self, batch_first: bool = True) -> None:
        super().__init__()
        self.batch_first = batch_first

    def forward(self, x: torch.Tensor | tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """(B, T, H) (batch_first) or (T, B, H), or nn.GRU's (output, h_n) -> (B, H): the last time step."""
        if isinstance(x, tuple):
            x = x[0]
        return x[:, -1] if self.batch_first else x[-1]
