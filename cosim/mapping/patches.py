"""Convolution patches in torch for the prepared twin (`cosim.twin.tilecache`):
output size, the input range a kernel actually reads, and im2col in two
layouts (rows of patches, or F.unfold's (B, K, L) columns)."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F


def _covered(size: int, kernel: int, stride: int, dilation: int, padding: int) -> torch.Tensor | None:
    """Indices (along one axis of the unpadded input) that some output window
    reads, or None when every index is read."""
    out = (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    starts = torch.arange(max(out, 0)) * stride - padding
    index = (starts[:, None] + torch.arange(kernel)[None, :] * dilation).reshape(-1)
    index = torch.unique(index[(index >= 0) & (index < size)])
    return None if index.numel() == size else index


def covered_range(x: torch.Tensor, conv: nn.Module) -> float:
    """x_max of a convolution: the largest |value| of its im2col patches
    (`mapping.input_range`), without building them. Strided kernels may skip
    pixels (a 1x1 stride-2 shortcut reads one in four); zero padding adds
    zeros. 1 for an all-zero input."""
    (kh, kw), (sh, sw), (dh, dw), (ph, pw) = conv.kernel_size, conv.stride, conv.dilation, conv.padding
    rows = _covered(x.shape[2], kh, sh, dh, ph)
    cols = _covered(x.shape[3], kw, sw, dw, pw)
    if rows is not None:
        x = x.index_select(2, rows)
    if cols is not None:
        x = x.index_select(3, cols)
    if x.numel() == 0:
        return 1.0
    low, high = torch.aminmax(x)
    return max(-float(low), float(high)) or 1.0


def conv_output_size(x: torch.Tensor, conv: nn.Module) -> tuple[int, int]:
    """H_out, W_out of `conv` on input x (B, C, H, W) (pixels)."""
    (kh, kw), (sh, sw), (dh, dw), (ph, pw) = conv.kernel_size, conv.stride, conv.dilation, conv.padding
    return ((x.shape[2] + 2 * ph - dh * (kh - 1) - 1) // sh + 1,
            (x.shape[3] + 2 * pw - dw * (kw - 1) - 1) // sw + 1)


def im2col_tensor(x: torch.Tensor, conv: nn.Module, columns: bool = False, padded: bool = False,
                  out: Callable[[str, tuple[int, ...]], torch.Tensor] | None = None) -> torch.Tensor:
    """`cosim.run.simulation.im2col` as a torch tensor of x's dtype: patches
    (B * H_out * W_out, C * kh * kw) in F.unfold's order of patch elements,
    or with `columns` F.unfold's layout (B, C * kh * kw, H_out * W_out) (one
    strided copy; its inner loop runs along an image row, ~3x faster).
    `padded`: x already holds the zero padding; `out(name, shape)`: where to
    write the patches (a scratch tensor), else a new tensor."""
    (kh, kw), (sh, sw), (dh, dw), (ph, pw) = conv.kernel_size, conv.stride, conv.dilation, conv.padding
    xp = x if padded else F.pad(x, (pw, pw, ph, ph))
    b, c, h, w = xp.shape
    h_out, w_out = (h - dh * (kh - 1) - 1) // sh + 1, (w - dw * (kw - 1) - 1) // sw + 1
    s = xp.stride()
    if columns:
        shape = (b, c, kh, kw, h_out, w_out)
        windows = xp.as_strided(shape, (s[0], s[1], s[2] * dh, s[3] * dw, s[2] * sh, s[3] * sw))
        final = (b, c * kh * kw, h_out * w_out)
    else:
        shape = (b, h_out, w_out, c, kh, kw)
        windows = xp.as_strided(shape, (s[0], s[2] * sh, s[3] * sw, s[1], s[2] * dh, s[3] * dw))
        final = (b * h_out * w_out, c * kh * kw)
    if out is None:
        return windows.reshape(final)
    patches = out("patches", final)
    patches.view(shape).copy_(windows)
    return patches
