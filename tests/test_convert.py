"""cosim.convert: a model's twin equals PyTorch on an ideal array (no wires,
drivers, access devices or converters), prepares each tile once, keeps the
float model's state_dict, and `cosim evaluate` reports accuracies."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
from torch import nn

import cosim
from cosim import fast, peripherals
from cosim.cli import main
from cosim.convert import AnalogConv2d, AnalogGRU, AnalogLinear, dac_levels, tile_cache
from cosim.errors import InputError
from cosim.nn import Abs, SequenceLast

IDEAL = dict(r_wire=0.0, r_driver=0.0, access="none", dac_bits=None, adc_bits=None)


def mlp() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(20, 40), Abs(), nn.Linear(40, 5)).eval()


def cnn() -> nn.Module:
    torch.manual_seed(2)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 6, 3, stride=2, groups=2),
                         nn.BatchNorm2d(6), nn.Flatten(), nn.Linear(6 * 3 * 3, 4)).eval()


def gru() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(nn.GRU(6, 12, batch_first=True), SequenceLast(), nn.Linear(12, 3)).eval()


CASES = {"mlp": (mlp, (7, 20)), "cnn": (cnn, (5, 3, 8, 8)), "gru": (gru, (4, 5, 6))}


@pytest.mark.parametrize("engine", ["fast", "ideal"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_twin_equals_pytorch_on_an_ideal_array(name, engine):
    make, shape = CASES[name]
    model = make()
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    twin = cosim.convert(model, tile=16, engine=engine, **IDEAL)  # tile 16: several tiles per matrix
    with torch.no_grad():
        expected, got = model(x), twin(x)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert len(tile_cache(twin).records) > len(tile_cache(twin).banks)  # really partitioned


def test_only_analog_layers_are_replaced_and_state_dict_is_unchanged():
    model = cnn()
    twin = cosim.convert(model, engine="ideal")
    kinds = [type(m) for m in twin]
    assert kinds[0] is AnalogConv2d and kinds[2] is AnalogConv2d and kinds[5] is AnalogLinear
    assert kinds[3] is nn.BatchNorm2d and isinstance(twin[0], nn.Conv2d)
    assert list(twin.state_dict()) == list(model.state_dict())
    for key, value in model.state_dict().items():
        assert torch.equal(twin.state_dict()[key], value)
    assert type(model[0]) is nn.Conv2d  # the original is untouched
    assert isinstance(cosim.convert(gru(), engine="ideal")[0], AnalogGRU)


def test_repeated_forward_passes_reuse_prepared_tiles(monkeypatch):
    calls = []
    original = fast.prepare
    monkeypatch.setattr(fast, "prepare", lambda *a, **k: calls.append(1) or original(*a, **k))
    model = cnn()
    twin = cosim.convert(model, tile=16, engine="fast", preset="seed001_mlp")
    prepared = len(calls)
    assert prepared == len(tile_cache(twin).records) > 3
    x = torch.rand(3, 3, 8, 8)
    with torch.no_grad():
        first = twin(x)
        for batch in (1, 2, 9):
            twin(torch.rand(batch, 3, 8, 8))
        again = twin(x)
    assert len(calls) == prepared
    torch.testing.assert_close(first, again)
    # New weights (load_state_dict) are re-programmed on the next forward.
    state = {k: v * 2 if k == "0.weight" else v for k, v in model.state_dict().items()}
    twin.load_state_dict(state)
    with torch.no_grad():
        twin(x)
    assert len(calls) > prepared


def test_gru_tiles_are_prepared_once_across_time_steps_and_batches(monkeypatch):
    calls = []
    original = fast.prepare
    monkeypatch.setattr(fast, "prepare", lambda *a, **k: calls.append(1) or original(*a, **k))
    twin = cosim.convert(gru(), tile=8, engine="fast", **IDEAL)
    count = len(calls)  # prepared by convert, before any forward
    assert count > 0
    with torch.no_grad():
        twin(torch.randn(2, 7, 6))
        twin(torch.randn(5, 3, 6))
    assert count == len(calls) == len(tile_cache(twin).records)


@pytest.mark.parametrize("name", sorted(CASES))
def test_twin_equals_cosim_simulate_with_wires_and_converters(name):
    """Same mapping, DAC, IR drop and ADC as `cosim simulate` (Simulation.forward)."""
    from cosim.config import load_preset
    from cosim.orchestrate import SimOptions, Simulation

    make, shape = CASES[name]
    model = make()
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(4)) * 2 - 1
    preset = load_preset("seed001_mlp").with_(access="none")
    twin = cosim.convert(model, preset=preset, tile=16)
    with torch.no_grad():
        got = twin(x).double()
        expected = model(x).double()
    reference = Simulation(preset, SimOptions(tile=16, engine="fast", quiet=True)).forward(model, x.double())
    torch.testing.assert_close(got, reference, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(got, expected, rtol=1e-3, atol=1e-3)  # the hardware shows


def test_inputs_keep_device_and_dtype():
    twin = cosim.convert(mlp(), engine="ideal", **IDEAL)
    with torch.no_grad():
        out = twin(torch.rand(3, 20, dtype=torch.float64))
    assert out.dtype == torch.float64 and out.device.type == "cpu"


def test_dac_levels_equal_the_converter_model():
    v = np.random.default_rng(0).uniform(-0.5, 0.5, size=(50, 40))
    expected = peripherals.dac_voltage(peripherals.dac_codes(v, 6, 0.3), 6, 0.3)
    np.testing.assert_array_equal(dac_levels(v, 6, 0.3), expected)


def test_unknown_option_is_one_line_error():
    with pytest.raises(InputError, match="unknown convert option"):
        cosim.convert(mlp(), r_wires=1.0)
    with pytest.raises(InputError, match="hx"):
        with torch.no_grad():
            cosim.convert(gru(), engine="ideal")[0](torch.randn(2, 3, 6), torch.zeros(1, 2, 12))


def test_evaluate_on_digits_prints_accuracies(tmp_path, capsys):
    from cosim.examples import make_mlp_digits

    model, _ = make_mlp_digits(epochs=40)
    torch.save(model, tmp_path / "mlp.pt")
    out = tmp_path / "eval.h5"
    status = main(["evaluate", str(tmp_path / "mlp.pt"), "--data", "digits", "--limit", "300",
                   "--preset", "seed001_mlp", "--out", str(out)])
    text = capsys.readouterr().out
    assert status == 0
    assert "top-1 accuracy: float" in text and "cosim" in text and "per-layer output error" in text
    with h5py.File(out) as h5:
        assert h5["outputs"].shape == (300, 10) and h5["labels"].shape == (300,)
        assert 0.5 < h5.attrs["float_accuracy"] <= 1.0 and 0.3 < h5.attrs["cosim_accuracy"] <= 1.0
        assert {"config", "versions", "command", "relative_error", "seed"} <= set(h5.attrs)
        assert len(h5["tiles"]) == 3  # 64 -> 100 on two tiles of 64 outputs, 100 -> 10 on one


def test_evaluate_bad_data_is_one_line(tmp_path, capsys):
    torch.save(mlp(), tmp_path / "m.pt")
    assert main(["evaluate", str(tmp_path / "m.pt"), "--data", "nothing_here"]) == 2
    assert "neither 'digits'" in capsys.readouterr().err


def test_calibration_auto_uses_the_sign_split_calibrated_path():
    twin = cosim.convert(mlp(), preset="seed001_mlp", calibration="auto")
    groups = [g for bank in tile_cache(twin).banks.values() for g in bank.groups]
    assert groups and all(g.transfer_neg is not None for g in groups)
    with torch.no_grad():
        assert torch.isfinite(twin(torch.rand(4, 20))).all()
