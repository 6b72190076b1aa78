"""Partition and mapping are pure functions: tiles cover every weight once,
fit tile x tile devices, and conductance pairs reproduce the weights exactly."""

from __future__ import annotations

import numpy as np
import pytest

from cosim.core.config import VteamParams
from cosim.core.errors import InputError
from cosim.mapping.pairs import currents_to_outputs, inputs_to_voltages, map_weights, tile_conductance
from cosim.mapping.partition import partition_matrix, split_sizes


@pytest.mark.parametrize("n, size", [(1, 4), (7, 4), (8, 4), (784, 128), (100, 64), (129, 128)])
def test_split_sizes_cover_n_within_the_limit(n, size):
    for split in ("fixed", "balanced"):
        sizes = split_sizes(n, size, split)
        assert sum(sizes) == n and max(sizes) <= size and len(sizes) == -(-n // size)
    balanced = split_sizes(n, size, "balanced")
    assert max(balanced) - min(balanced) <= 1
    fixed = split_sizes(n, size, "fixed")
    assert all(s == size for s in fixed[:-1])


@pytest.mark.parametrize("split", ["fixed", "balanced"])
def test_tiles_cover_every_weight_once_and_fit_the_tile(split):
    n_in, n_out, tile = 300, 70, 64
    covered = np.zeros((n_in, n_out), dtype=int)
    tiles = partition_matrix(n_in, n_out, tile, split, prefix="fc.")
    for t in tiles:
        assert t.rows <= tile and t.cols <= tile and t.cols == 2 * t.outputs
        covered[t.row_start:t.row_stop, t.out_start:t.out_stop] += 1
    assert np.all(covered == 1)
    assert len({t.name for t in tiles}) == len(tiles) and tiles[0].name == "fc.r0c0"


def test_seed_mlp_layer_needs_784_by_200_devices():
    """Seed 001/000: differential pairs, so a 784x100 layer uses 784x200 devices."""
    tiles = partition_matrix(784, 100, 128)
    assert sum(t.rows * t.cols for t in tiles) == 784 * 200


def test_partition_refuses_a_tile_without_room_for_a_pair():
    with pytest.raises(InputError, match="at least 2"):
        partition_matrix(4, 4, 1)


def test_conductance_pairs_reproduce_the_weights_within_the_device_range():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(5, 7))
    device = VteamParams()
    mapped = map_weights(w, device)
    for g in (mapped.g_pos, mapped.g_neg):
        assert g.min() >= device.g_min - 1e-15 and g.max() <= device.g_max + 1e-15
    assert np.allclose((mapped.g_pos - mapped.g_neg).T * mapped.weight_per_siemens, w, rtol=0, atol=1e-12)
    assert np.all(np.minimum(mapped.g_pos, mapped.g_neg) == device.g_min)  # one device of each pair off


def test_ideal_currents_map_back_to_x_times_w_transposed():
    rng = np.random.default_rng(1)
    w, x = rng.normal(size=(6, 10)), rng.normal(size=(3, 10))
    mapped = map_weights(w, VteamParams())
    tile = partition_matrix(10, 6, 16)[0]
    g = tile_conductance(mapped, tile)
    assert np.array_equal(g[:, 0::2], mapped.g_pos) and np.array_equal(g[:, 1::2], mapped.g_neg)
    x_max = np.abs(x).max()
    v = inputs_to_voltages(x, x_max, 0.3)
    assert np.abs(v).max() == pytest.approx(0.3)
    y = currents_to_outputs(v @ g, mapped, x_max, 0.3)
    assert np.allclose(y, x @ w.T, rtol=1e-12, atol=1e-12)
