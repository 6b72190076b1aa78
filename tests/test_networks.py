"""The seed networks: built from torch.nn modules, saved and loaded with
weights_only=True, converted by cosim.convert wherever their Conv2d/Linear/GRU
layers sit (ResNet blocks, CBAM attention)."""

from __future__ import annotations

import torch
from torch import nn

import cosim
from cosim.cli import main
from cosim.nets.networks import (
    CBAM,
    ResNet18Cbam,
    load_network,
    make_binarized_cnn,
    make_gru_classifier,
    make_resnet18_cbam,
)
from cosim.twin.convert import AnalogConv2d, tile_cache

IDEAL = dict(r_wire=0.0, r_driver=0.0, access="none", dac_bits=None, adc_bits=None)


def test_resnet18_cbam_has_the_seed_shape():
    model = make_resnet18_cbam()
    assert 11.0e6 < sum(p.numel() for p in model.parameters()) < 11.6e6  # ResNet-18 + CBAM
    with torch.no_grad():
        assert model(torch.randn(2, 1, 48, 48)).shape == (2, 7)
    assert sum(isinstance(m, CBAM) for m in model.modules()) == 8


def test_resnet_cbam_twin_equals_pytorch_on_an_ideal_array():
    model = ResNet18Cbam(width=4).eval()  # same structure, 16x fewer channels
    twin = cosim.convert(model, engine="ideal", tile=32, **IDEAL)
    convs = [m for m in twin.modules() if isinstance(m, AnalogConv2d)]
    assert len(convs) == 1 + 8 * 2 + 3 + 8 * 3  # stem, block convs, shortcuts, CBAM MLP (2) + spatial conv
    x = torch.randn(3, 1, 20, 20)
    with torch.no_grad():
        torch.testing.assert_close(twin(x), model(x), rtol=1e-5, atol=1e-5)


def test_networks_round_trip_through_the_safe_loader(tmp_path):
    model = ResNet18Cbam(width=4).eval()
    torch.save(model, tmp_path / "r.pt")
    loaded = load_network(tmp_path / "r.pt")
    x = torch.randn(1, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))


def test_binarized_cnn_has_two_weight_levels_per_layer():
    model, accuracy = make_binarized_cnn(epochs=5)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            assert len(torch.unique(m.weight.abs())) == 1
    assert 0.0 <= accuracy <= 1.0


def test_gru_classifier_twin_runs_and_keeps_tiles(tmp_path):
    model, _ = make_gru_classifier(epochs=3)
    twin = cosim.convert(model, engine="ideal", **IDEAL)
    x = torch.rand(4, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(twin(x), model(x), rtol=1e-5, atol=1e-5)
    assert len(tile_cache(twin).banks) == 3  # ih, hh, head


def test_example_writes_a_loadable_network(tmp_path, capsys):
    assert main(["example", "resnet18-cbam", "--out-dir", str(tmp_path)]) == 0
    assert "seed 000" in capsys.readouterr().out
    assert isinstance(load_network(tmp_path / "resnet18_cbam.pt"), ResNet18Cbam)
