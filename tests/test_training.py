"""Training helpers: fake quantisation is exact on its grid, STE gradients
pass, QAT survives weight quantisation, binarised layers map to two levels
(in `binary_pairs` and when Simulation maps them: exactly g_min / g_max pairs
whose outputs equal the float binarised layer on an ideal array)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cosim.cli import main
from cosim.core.config import VteamParams, load_preset
from cosim.core.errors import InputError
from cosim.nets.training import (
    BinaryConv2d,
    BinaryLinear,
    QuantLinear,
    binary_pairs,
    noisy_weight,
    quantize_activation,
    quantize_weight,
)
from cosim.run.records import relative_error
from cosim.run.simulation import SimOptions, Simulation


@pytest.mark.parametrize("bits", [2, 4, 8, 16])
def test_weight_quantisation_is_symmetric_exact_on_the_grid_and_has_2b_minus_1_levels(bits):
    levels = 2 ** (bits - 1) - 1
    grid = torch.arange(-levels, levels + 1, dtype=torch.float64) * (0.25 / levels)  # on the grid, max 0.25
    assert torch.equal(quantize_weight(grid, bits), grid)
    w = torch.randn(2000, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert len(torch.unique(quantize_weight(w, bits))) <= 2 * levels + 1


@pytest.mark.parametrize("bits", [2, 3, 6])
def test_activation_quantisation_is_asymmetric_with_2b_levels(bits):
    x = torch.linspace(-0.3, 1.7, 5000, dtype=torch.float64)
    q = quantize_activation(x, bits)
    assert len(torch.unique(q)) == 2 ** bits and q.min() == -0.3 and abs(float(q.max()) - 1.7) < 1e-12
    assert torch.allclose(quantize_activation(q, bits), q)


def test_straight_through_gradients_pass_unchanged_and_stop_outside_the_clip_range():
    w = torch.randn(50, requires_grad=True, dtype=torch.float64)
    quantize_weight(w, 3).sum().backward()
    assert torch.equal(w.grad, torch.ones_like(w))
    x = torch.linspace(-2, 2, 9, dtype=torch.float64, requires_grad=True)
    quantize_activation(x, 4, lo=-1.0, hi=1.0).sum().backward()
    assert torch.equal(x.grad, ((x.detach() >= -1) & (x.detach() <= 1)).double())


def test_bad_bits_and_noise_draws_are_seeded():
    with pytest.raises(InputError):
        quantize_weight(torch.ones(3), 1)
    w = torch.ones(1000, dtype=torch.float64)
    a = noisy_weight(w, 0.3, torch.Generator().manual_seed(1))
    b = noisy_weight(w, 0.3, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and abs(float(torch.log(a).std()) - 0.3) < 0.03


def _train(model, x, y, epochs=60):
    opt = torch.optim.Adam(model.parameters(), lr=2e-2)
    for _ in range(epochs):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return model


def test_qat_model_survives_2_bit_weights_better_than_a_plain_one():
    from cosim.nets.examples import digits_data

    x, y = digits_data()
    x, y = x[:500], y[:500]
    torch.manual_seed(0)
    qat = _train(torch.nn.Sequential(QuantLinear(64, 10, weight_bits=2)), x, y)
    torch.manual_seed(0)
    plain = _train(torch.nn.Sequential(torch.nn.Linear(64, 10)), x, y)
    with torch.no_grad():
        plain[0].weight.copy_(quantize_weight(plain[0].weight, 2))
        acc_qat = float((qat[0].to_linear()(x).argmax(1) == y).float().mean())
        acc_plain = float((plain(x).argmax(1) == y).float().mean())
    assert acc_qat > acc_plain


def test_binarised_layers_have_two_weight_values_on_two_level_devices():
    torch.manual_seed(0)
    layer = BinaryLinear(8, 4)
    plain = layer.to_linear()
    assert len(torch.unique(plain.weight)) == 2
    device = VteamParams(r_on=1000.0, r_off=12000.0)
    g_pos, g_neg = binary_pairs(plain.weight, device)
    assert set(torch.unique(torch.cat([g_pos.ravel(), g_neg.ravel()])).tolist()) == {device.g_min, device.g_max}
    assert torch.all((g_pos - g_neg > 0) == (plain.weight.T > 0))
    conv = BinaryConv2d(3, 4, 3)
    out = conv(torch.randn(1, 3, 5, 5))
    out.sum().backward()
    assert out.shape == (1, 4, 3, 3) and conv.weight.grad is not None


IDEAL_ARRAY = load_preset("seed001_mlp").with_(access="none", dac_bits=None, adc_bits=None)  # 1 k .. 12 kohm


def _two_level_pairs(sim: Simulation) -> tuple[np.ndarray, np.ndarray]:
    """Every tile's (g_pos, g_neg), flattened; asserts each pair is (g_max, g_min) or (g_min, g_max)."""
    g_pos = np.concatenate([r.g_pos.ravel() for r in sim.records.values()])
    g_neg = np.concatenate([r.g_neg.ravel() for r in sim.records.values()])
    device = IDEAL_ARRAY.device
    assert set(np.unique(np.r_[g_pos, g_neg])) == {device.g_min, device.g_max}
    assert np.all(g_pos + g_neg == device.g_min + device.g_max)
    return g_pos, g_neg


@pytest.mark.parametrize("engine", ["ideal", "fast"])
def test_binary_linear_maps_onto_exactly_two_levels_and_matches_the_float_layer(engine):
    torch.manual_seed(1)
    layer = BinaryLinear(40, 12).double()  # latent weights: continuous, only their sign and mean|w| count
    x = torch.rand(16, 40, dtype=torch.float64) - 0.3
    preset = IDEAL_ARRAY if engine == "ideal" else IDEAL_ARRAY.with_(r_wire=0.0, r_driver=0.0)
    sim = Simulation(preset, SimOptions(engine=engine, tile=16, quiet=True))  # 3 row tiles x 2 output tiles
    out = sim.forward(layer, x)
    with torch.no_grad():
        assert relative_error(out, layer(x)) < 1e-6
    g_pos, _ = _two_level_pairs(sim)
    assert len(sim.records) == 6 and sim.two_level == {"binarylinear"}
    # tile k holds rows of its row block and columns of its output block: compare signs tile by tile
    for record in sim.records.values():
        t = record.tile
        w = layer.weight.detach()[t.out_start:t.out_stop, t.row_start:t.row_stop].T.numpy()
        assert np.array_equal(record.g_pos == preset.device.g_max, w >= 0)
    plain = Simulation(preset, SimOptions(engine=engine, tile=16, quiet=True))
    plain.forward(nn.Linear(40, 12).double(), x)  # an ordinary layer keeps a continuum of levels
    assert len(np.unique(np.concatenate([r.g_pos.ravel() for r in plain.records.values()]))) > 2


def test_binary_conv2d_with_groups_maps_onto_two_levels_and_matches_the_float_layer():
    torch.manual_seed(2)
    conv = BinaryConv2d(4, 6, 3, padding=1, groups=2).double()
    x = torch.rand(3, 4, 6, 6, dtype=torch.float64)
    sim = Simulation(IDEAL_ARRAY, SimOptions(engine="ideal", tile=32, quiet=True))
    out = sim.forward(conv, x)
    with torch.no_grad():
        assert relative_error(out, conv(x)) < 1e-6
    _two_level_pairs(sim)
    assert sim.two_level == {"binaryconv2d.g0", "binaryconv2d.g1"}


def test_saved_binarised_model_loads_and_simulate_writes_two_level_tiles(tmp_path):
    torch.manual_seed(3)
    torch.save(nn.Sequential(BinaryLinear(16, 8), nn.ReLU(), BinaryLinear(8, 4)), tmp_path / "bin.pt")
    out = tmp_path / "run.h5"
    assert main(["simulate", str(tmp_path / "bin.pt"), "--tile", "8", "--engine", "ideal", "--quiet",
                 "--preset", "seed001_mlp", "--out", str(out)]) == 0
    device = load_preset("seed001_mlp").device
    with h5py.File(out) as h5:
        g = np.concatenate([np.r_[h5["tiles"][n]["g_pos"][()].ravel(), h5["tiles"][n]["g_neg"][()].ravel()]
                            for n in h5["tiles"]])
    assert set(np.unique(g)) == {device.g_min, device.g_max}


def test_binarized_cnn_example_simulates_on_two_levels():
    from cosim.nets.networks import make_binarized_cnn

    model, _ = make_binarized_cnn(epochs=2)
    x = torch.rand(4, 1, 8, 8)
    sim = Simulation(IDEAL_ARRAY, SimOptions(engine="ideal", tile=64, quiet=True))
    out = sim.forward(model, x)
    with torch.no_grad():
        assert relative_error(out, model(x)) < 1e-5  # float32 reference (BatchNorm, pooling)
    _two_level_pairs(sim)
    assert sim.two_level == {"0", "4", "9", "11"}
