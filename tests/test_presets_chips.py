"""Presets of published chips (cosim/presets/*.json, docs/presets.md): each loads
cleanly with its sources in its description, its wire resistance is the one
derived from its metal layer, it is the default everywhere a preset is
chosen, and the digits MLP on the default preset scores what float does."""

from __future__ import annotations

import argparse

import pytest
import torch

from cosim.commands import evaluate, simulate, sweep
from cosim.core import config
from cosim.core.config import DEFAULT_PRESET, load_preset
from cosim.core.resources import resource_path
from cosim.core.wires import cell_segments

CHIPS = ("neurram_wan2022", "taox_hfox_wu2018")
# DNN+NeuroSim V1.3, Inference_pytorch/NeuroSIM/Param.cpp: wire width (m), aspect ratio, rho (ohm m) by node,
# and its 1T1R cell of 4 x 12 feature sizes.
NEUROSIM = {130: (175e-9, 1.60, 2.20e-8), 32: (56e-9, 1.80, 3.70e-8)}
NODE = {"neurram_wan2022": 130, "taox_hfox_wu2018": 32}


def test_every_preset_loads_without_defaulted_fields(capsys):
    for name in config.PRESET_NAMES:
        preset = load_preset(name)
        assert preset.name == name
    assert capsys.readouterr().err == ""  # no 'does not set ...; using defaults' line
    assert {"seed000_vteam", "seed001_mlp"} <= set(config.PRESET_NAMES)  # the seeds keep their names


@pytest.mark.parametrize("name", CHIPS)
def test_chip_presets_cite_their_sources_and_device_range(name):
    preset = load_preset(name)
    text = preset.description
    assert "docs/presets.md" in text and ("Table" in text or "github" in text)
    readme = resource_path("presets", "README.md").read_text()
    assert name in readme
    if name == "neurram_wan2022":  # 1 to 40 uS (the authors' deployment notebook)
        assert preset.device.g_min == pytest.approx(1e-6) and preset.device.g_max == pytest.approx(40e-6)
    else:  # Ron 6 kohm, on/off 17 (DNN+NeuroSim Table 1)
        assert preset.device.r_on == 6e3 and preset.device.r_off / preset.device.r_on == pytest.approx(17)


@pytest.mark.parametrize("name", CHIPS)
def test_wire_resistance_is_the_metal_layer_derivation(name):
    width, aspect, rho = NEUROSIM[NODE[name]]
    row, col, mean = cell_segments(rho, width, aspect, 4, 12)
    assert row < mean < col
    assert load_preset(name).r_wire == pytest.approx(mean, abs=1e-4)


def test_the_default_preset_is_a_chip_everywhere():
    from cosim.twin.convert import convert

    assert DEFAULT_PRESET in CHIPS
    assert convert.__defaults__[0] == DEFAULT_PRESET
    for module in (simulate, evaluate, sweep):
        parser = argparse.ArgumentParser()
        module.add_parser(parser.add_subparsers())
        sub = parser._subparsers._group_actions[0].choices
        (command,) = sub.values()
        preset_action = next(a for a in command._actions if a.dest == "preset")
        assert preset_action.default == DEFAULT_PRESET


def test_digits_mlp_on_the_default_preset_matches_float_at_tile_128(digits_split):
    """The issue's target: the bundled digits MLP (`cosim example mlp-digits`, 300 epochs)
    at most 1 point below float on the test split. (The 80-epoch MLP of the other tests
    loses 1.1 points to NeuRRAM's 4-bit DACs alone, wires or not.)"""
    import cosim
    from cosim.nets.examples import make_mlp_digits

    model, _ = make_mlp_digits()
    _, (x, y) = digits_split
    with torch.no_grad():
        float_acc = float((model(x).argmax(1) == y).float().mean())
        twin = cosim.convert(model, tile=128)
        acc = float((twin(x).argmax(1) == y).float().mean())
    assert acc >= float_acc - 0.01
