"""Applying transfer matrices to batches of input vectors in chunks (numpy or
torch): current = v @ T (A), sign-split for calibrated tiles.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import matmul
from typing import Any, TypeVar

import numpy as np

from cosim.core.errors import InputError

#: numpy arrays or torch tensors (the functions below take either).
ArrayLike = TypeVar("ArrayLike")

BACKENDS = ("numpy", "torch")

#: Bytes of input and output a batch chunk may hold (sets the default chunk).
CHUNK_BYTES = 64 * 2**20

#: Bytes of work arrays a Newton chunk may hold.
NEWTON_CHUNK_BYTES = 256 * 2**20


def split_polarities(v: ArrayLike) -> tuple[ArrayLike, ArrayLike]:
    """(max(v, 0), min(v, 0)) of row voltages v (V), numpy arrays or torch
    tensors: the one place of the sign split of calibrated 1T1R reads, whose
    currents are max(v, 0) @ T + min(v, 0) @ T_neg (`sign_split_product`)."""
    if isinstance(v, np.ndarray):
        return np.maximum(v, 0.0), np.minimum(v, 0.0)
    return v.clamp(min=0.0), v.clamp(max=0.0)


def sign_split_product(v: ArrayLike, transfer: ArrayLike, transfer_neg: ArrayLike | None,
                       product: Callable[[ArrayLike, ArrayLike], ArrayLike] = matmul,
                       out: np.ndarray | None = None) -> ArrayLike:
    """v @ T, or max(v, 0) @ T + min(v, 0) @ T_neg when `transfer_neg` is
    given (calibrated reads: each polarity sees its own access resistance);
    `product` multiplies (default the @ operator). With `out` (numpy), the
    result is written there without a temporary of its size."""
    first = v
    if transfer_neg is not None:
        first, negative = split_polarities(v)
    if out is None:
        result = product(first, transfer)
    else:
        result = np.matmul(first, transfer, out=out)
    if transfer_neg is not None:
        result += product(negative, transfer_neg)
    return result


def default_chunk(rows: int, cols: int) -> int:
    """Input vectors per chunk so that inputs and outputs stay under CHUNK_BYTES."""
    return max(1, CHUNK_BYTES // (8 * (rows + cols)))


def _torch_device(device: str | None) -> Any:
    import torch

    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def apply_transfer(v: np.ndarray, transfer: np.ndarray, backend: str = "numpy", chunk: int | None = None,
                   device: str | None = None, transfer_neg: np.ndarray | None = None) -> np.ndarray:
    """current = v @ T, (B, C) (A), in chunks of `chunk` input vectors; with
    `transfer_neg`, current = max(v, 0) @ T + min(v, 0) @ T_neg.

    Args:
        v: (B, R) row voltages (V).
        transfer: (R, C) transfer matrix (S) (of positive reads when split).
        backend: 'numpy' or 'torch' (float64; CUDA when available unless
            `device` says otherwise).
        chunk: input vectors per chunk (default: `default_chunk`).
        device: torch device name ('cpu', 'cuda:0'), torch backend only.
        transfer_neg: (R, C) transfer matrix of negative reads (S), or None.
    """
    if backend not in BACKENDS:
        raise InputError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    rows, cols = transfer.shape
    chunk = chunk or default_chunk(rows, cols)
    if chunk < 1:
        raise InputError(f"chunk must be >= 1 input vector, got {chunk}")
    if backend == "numpy" and transfer_neg is None and v.shape[0] <= chunk:
        return v @ transfer
    out = np.empty((v.shape[0], cols))
    if backend == "numpy":
        for start in range(0, v.shape[0], chunk):
            part, target = v[start:start + chunk], out[start:start + chunk]
            sign_split_product(part, transfer, transfer_neg, out=target)
        return out
    import torch

    dev = _torch_device(device)
    t = torch.from_numpy(np.ascontiguousarray(transfer)).to(dev)
    t_neg = None if transfer_neg is None else torch.from_numpy(np.ascontiguousarray(transfer_neg)).to(dev)
    with torch.no_grad():
        for start in range(0, v.shape[0], chunk):
            part = torch.from_numpy(np.ascontiguousarray(v[start:start + chunk])).to(dev)
            out[start:start + chunk] = sign_split_product(part, t, t_neg).cpu().numpy()
    return out


def default_newton_chunk(rows: int, cols: int) -> int:
    """Input vectors per Newton chunk: its ~20 (B, R, C) work arrays stay
    under NEWTON_CHUNK_BYTES."""
    return max(1, NEWTON_CHUNK_BYTES // (8 * 20 * rows * cols))
