"""Training helpers for networks that survive the array (seeds 004, 000, 002).

* fake quantisation with a straight-through estimator (STE): symmetric for
  weights (levels k * s, k in [-(2^(b-1) - 1), 2^(b-1) - 1], s = max|w| / (2^(b-1) - 1)),
  asymmetric for activations (levels lo + k * s, k in [0, 2^b - 1],
  s = (hi - lo) / (2^b - 1)), 2..16 bits (seed 004);
* weight-noise injection during training: w * exp(theta), theta ~ N(0, sigma^2),
  the lognormal variability of cosim.mapping.nonideal (seed 004 "权值加噪");
* sign-binarised Linear / Conv2d (seed 002, BinaryConnect-style with STE and
  a per-layer scale alpha = mean|w|) whose weights map onto two-level devices
  (`binary_pairs`: g_pos, g_neg in {g_min, g_max}); `cosim simulate` and
  `Simulation.forward` map them that way (`device_levels = 2`,
  `crossbar_weight()`, `cosim.mapping.map_binary`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cosim.core.config import VteamParams
from cosim.core.errors import InputError


def _check_bits(bits: int) -> None:
    if not (isinstance(bits, int) and 2 <= bits <= 16):
        raise InputError(f"quantisation bits must be an integer from 2 to 16, got {bits}")


class _StraightThrough(torch.autograd.Function):
    """Forward: exactly q. Backward: the gradient goes to x unchanged."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor,  # noqa: ARG004
                q: torch.Tensor) -> torch.Tensor:
        """A copy of q (x's shape), detached: the forward value."""
        return q.detach().clone()

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        """The output gradient passed to x unchanged; none to q."""
        return grad, None


def _ste(x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """q in the forward pass (bit-exact), identity gradient to x in the backward pass."""
    return _StraightThrough.apply(x, q)


def quantize_weight(w: torch.Tensor, bits: int) -> torch.Tensor:
    """Symmetric fake quantisation of weights (STE), scale max|w| / (2^(bits-1) - 1)."""
    _check_bits(bits)
    levels = 2 ** (bits - 1) - 1
    scale = w.detach().abs().max().clamp_min(1e-12) / levels
    return _ste(w, torch.round(w / scale).clamp(-levels, levels) * scale)


def quantize_activation(x: torch.Tensor, bits: int, lo: float | None = None, hi: float | None = None) -> torch.Tensor:
    """Asymmetric fake quantisation of activations on [lo, hi] (batch min/max when None),
    STE inside the range and zero gradient where clipped."""
    _check_bits(bits)
    lo = float(x.detach().min()) if lo is None else lo
    hi = float(x.detach().max()) if hi is None else hi
    scale = max(hi - lo, 1e-12) / (2 ** bits - 1)
    clipped = x.clamp(lo, hi)
    return _ste(clipped, lo + torch.round((clipped - lo) / scale) * scale)


def noisy_weight(w: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """w * exp(theta), theta ~ N(0, sigma^2) (lognormal device variability), gradient through w."""
    if sigma <= 0:
        return w
    theta = torch.randn(w.shape, generator=generator, dtype=w.dtype) * sigma
    return w * torch.exp(theta)


class QuantLinear(nn.Linear):
    """Linear with fake-quantised weights and inputs, and optional weight noise in training.

    weight_bits / act_bits: 2..16 (None: float). noise_sigma: lognormal sigma in training."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, weight_bits: int | None = 6,
                 act_bits: int | None = None, noise_sigma: float = 0.0, seed: int = 0) -> None:
        super().__init__(in_features, out_features, bias)
        self.weight_bits, self.act_bits, self.noise_sigma = weight_bits, act_bits, noise_sigma
        self.generator = torch.Generator().manual_seed(seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_features) -> (B, out_features) with quantised (and, in training, noisy) weights."""
        w = self.weight
        if self.training and self.noise_sigma > 0:
            w = noisy_weight(w, self.noise_sigma, self.generator)
        if self.weight_bits is not None:
            w = quantize_weight(w, self.weight_bits)
        if self.act_bits is not None:
            x = quantize_activation(x, self.act_bits)
        return F.linear(x, w, self.bias)

    def to_linear(self) -> nn.Linear:
        """A plain nn.Linear holding the quantised weights (what gets mapped onto the array)."""
        out = nn.Linear(self.in_features, self.out_features, self.bias is not None)
        with torch.no_grad():
            out.weight.copy_(quantize_weight(self.weight, self.weight_bits) if self.weight_bits else self.weight)
            if self.bias is not None:
                out.bias.copy_(self.bias)
        return out


def binarize(w: torch.Tensor) -> torch.Tensor:
    """alpha * sign(w) with alpha = mean|w| (per tensor); STE clipped to |w| <= 1."""
    alpha = w.detach().abs().mean()
    q = alpha * torch.where(w >= 0, torch.ones_like(w), -torch.ones_like(w))
    return _ste(w.clamp(-1, 1), q)


class TwoLevel:
    """Mixin of layers whose array holds alpha * sign(W) on two device levels:
    `cosim.run.simulation.Simulation` (and the `cosim.convert` twin) maps them with
    `cosim.mapping.map_binary` from `crossbar_weight()`."""

    device_levels = 2
    weight: torch.Tensor

    def crossbar_weight(self) -> torch.Tensor:
        """The weight the array holds: alpha * sign(W) (the layer's weight shape), no gradient."""
        return binarize(self.weight).detach()


class BinaryLinear(TwoLevel, nn.Linear):
    """Sign-binarised Linear (seed 002): forward with alpha * sign(W); on two device levels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_features) -> (B, out_features) with weights alpha * sign(W)."""
        return F.linear(x, binarize(self.weight), self.bias)

    def to_linear(self) -> nn.Linear:
        """Plain nn.Linear with the binarised weights (two weight values: +-alpha)."""
        out = nn.Linear(self.in_features, self.out_features, self.bias is not None)
        with torch.no_grad():
            out.weight.copy_(binarize(self.weight))
            if self.bias is not None:
                out.bias.copy_(self.bias)
        return out


class BinaryConv2d(TwoLevel, nn.Conv2d):
    """Sign-binarised Conv2d (seed 002); on two device levels like BinaryLinear."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, H, W) -> (B, out_channels, H_out, W_out) with weights alpha * sign(W)."""
        return self._conv_forward(x, binarize(self.weight), self.bias)


def binary_pairs(weight: torch.Tensor, device: VteamParams) -> tuple[torch.Tensor, torch.Tensor]:
    """Two-level device pairs of a binarised weight (outputs, inputs): +alpha -> (g_max, g_min),
    -alpha -> (g_min, g_max); returns (g_pos, g_neg) as (inputs, outputs) in S
    (`cosim.mapping.map_binary`, as tensors)."""
    from cosim.mapping.pairs import map_binary

    mapped = map_binary(weight.detach().double().cpu().numpy(), device)
    return torch.from_numpy(mapped.g_pos), torch.from_numpy(mapped.g_neg)
