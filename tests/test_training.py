"""Training helpers: fake quantisation is exact on its grid, STE gradients
pass, QAT survives weight quantisation, binarised layers map to two levels."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cosim.config import VteamParams
from cosim.errors import InputError
from cosim.training import (BinaryConv2d, BinaryLinear, QuantLinear, binary_pairs, noisy_weight,
                            quantize_activation, quantize_weight)


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
    from cosim.examples import digits_data

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
