"""Weights to conductance pairs, inputs to DAC voltages, column currents back
to the layer's units (the scalings are documented here and nowhere else).

Weights: with w_max = max |W| of the matrix and the device range
[g_min, g_max] = [1/r_off, 1/r_on] S,
    g_pos = g_min + (g_max - g_min) * max(W, 0) / w_max
    g_neg = g_min + (g_max - g_min) * max(-W, 0) / w_max
so g_pos - g_neg = W / weight_per_siemens with weight_per_siemens =
w_max / (g_max - g_min) (seed 000 eq. 6: g_m = g_pos - g_neg).

Binarised weights (seed 002; layers with `device_levels = 2`, see
cosim.nets.training): every W is +-alpha, and each pair takes exactly two device
levels, +alpha -> (g_pos, g_neg) = (g_max, g_min), -alpha -> (g_min, g_max),
so g_pos - g_neg = +-(g_max - g_min) and weight_per_siemens =
alpha / (g_max - g_min) (`map_binary`).

Inputs: with x_max = max |x| over the batch (the DAC range calibrated on the
batch), v = x * v_read / x_max, so |v| <= v_read (seed 000: +-0.3 V).

Outputs: y = (I_pos - I_neg) * weight_per_siemens * x_max / v_read, summed
over the row tiles of an output block; the bias is added digitally.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cosim.core.config import VteamParams
from cosim.mapping.partition import TileSlice


@dataclass(frozen=True)
class MappedMatrix:
    """A weight matrix on conductance pairs.

    Attributes:
        g_pos: (inputs, outputs) conductances of the positive devices (S).
        g_neg: (inputs, outputs) conductances of the negative devices (S).
        weight_per_siemens: W = (g_pos - g_neg).T * weight_per_siemens (weight units / S).
    """

    g_pos: np.ndarray
    g_neg: np.ndarray
    weight_per_siemens: float


def map_weights(weight: np.ndarray, device: VteamParams, w_max: float | None = None) -> MappedMatrix:
    """Map W (outputs, inputs) onto differential pairs in the device's range
    (`w_max`: a fixed scale instead of max |W|; larger |W| saturate)."""
    w = np.asarray(weight, dtype=float).T
    if w_max is None:
        w_max = float(np.max(np.abs(w))) or 1.0
    else:
        w = np.clip(w, -w_max, w_max)
    span = device.g_max - device.g_min
    g_pos = device.g_min + span * np.clip(w, 0, None) / w_max
    g_neg = device.g_min + span * np.clip(-w, 0, None) / w_max
    return MappedMatrix(g_pos, g_neg, w_max / span)


def map_binary(weight: np.ndarray, device: VteamParams) -> MappedMatrix:
    """Map a binarised W (outputs, inputs) onto two device levels: w >= 0 -> (g_max, g_min),
    w < 0 -> (g_min, g_max); alpha = mean |W| (the binarised layer's +-alpha, or the alpha
    of alpha * sign(W) when latent weights are given), weight_per_siemens = alpha / (g_max - g_min)."""
    w = np.asarray(weight, dtype=float).T
    alpha = float(np.mean(np.abs(w))) if w.size else 0.0
    alpha = alpha or 1.0
    positive = w >= 0
    g_pos = np.where(positive, device.g_max, device.g_min)
    g_neg = np.where(positive, device.g_min, device.g_max)
    return MappedMatrix(g_pos, g_neg, alpha / (device.g_max - device.g_min))


def interleave(positive: np.ndarray, negative: np.ndarray) -> np.ndarray:
    """(rows, 2 * outputs) columns of a tile from its pairs' two halves (rows,
    outputs): column 2k holds the positive device of output k, column 2k + 1
    the negative one. The one place of the pair convention (with `deinterleave`)."""
    out = np.empty((positive.shape[0], 2 * positive.shape[1]), dtype=np.result_type(positive, negative))
    out[:, 0::2] = positive
    out[:, 1::2] = negative
    return out


def deinterleave(columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positive, negative) halves (..., outputs) of tile columns (..., 2 * outputs)."""
    return columns[..., 0::2], columns[..., 1::2]


def halves_order(columns: int) -> np.ndarray:
    """Column indices that put every positive device first, then every negative one."""
    return np.r_[0:columns:2, 1:columns:2]


def tile_conductance(mapped: MappedMatrix, tile: TileSlice) -> np.ndarray:
    """(rows, 2 * outputs) device conductances of one tile (S), pairs interleaved (`interleave`)."""
    rows, outs = slice(tile.row_start, tile.row_stop), slice(tile.out_start, tile.out_stop)
    return interleave(mapped.g_pos[rows, outs], mapped.g_neg[rows, outs])


def input_range(x: np.ndarray) -> float:
    """x_max: the largest |input| of the batch (1 for an all-zero batch)."""
    return float(np.max(np.abs(x))) or 1.0


def inputs_to_voltages(x: np.ndarray, x_max: float, v_read: float) -> np.ndarray:
    """DAC input voltages v = x * v_read / x_max (V)."""
    return np.asarray(x, dtype=float) * (v_read / x_max)


def currents_to_outputs(current: np.ndarray, mapped: MappedMatrix, x_max: float, v_read: float) -> np.ndarray:
    """Layer outputs from (N, 2 * outputs) column currents (A) of one tile."""
    positive, negative = deinterleave(current)
    return (positive - negative) * mapped.weight_per_siemens * x_max / v_read
