"""cosim.convert: a model's twin equals PyTorch on an ideal array (no wires,
drivers, access devices or converters), prepares each tile once, keeps the
float model's state_dict, and `cosim evaluate` reports accuracies."""

from __future__ import annotations

import time

import h5py
import numpy as np
import pytest
import torch
from torch import nn

import cosim
from cosim import fast
from cosim.cli import main
from cosim.core import peripherals
from cosim.core.errors import InputError
from cosim.nets.nn import Abs, SequenceLast
from cosim.twin.convert import AnalogConv2d, AnalogGRU, AnalogLinear, tile_cache
from cosim.twin.tilecache import dac_levels

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
    from cosim.core.config import load_preset
    from cosim.run.simulation import SimOptions, Simulation

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
    twin_gru = cosim.convert(gru(), engine="ideal")[0]
    with pytest.raises(InputError, match="h0 must be"), torch.no_grad():
        twin_gru(torch.randn(2, 3, 6), torch.zeros(1, 3, 12))
    with pytest.raises(InputError, match=r"\[-1, 1\]"), torch.no_grad():
        twin_gru(torch.randn(2, 3, 6), torch.full((1, 2, 12), 1.5))


def test_evaluate_on_digits_prints_accuracies(tmp_path, capsys):
    from cosim.nets.examples import make_mlp_digits

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


CONVS = {  # (conv, input shape): layouts and coverage cases of the prepared conv path
    "3x3, 400 px (F.unfold layout)": (lambda: nn.Conv2d(8, 16, 3, padding=1), (3, 8, 20, 20)),
    "3x3 stride 2, 49 px (row layout)": (lambda: nn.Conv2d(8, 16, 3, stride=2, padding=1), (3, 8, 13, 13)),
    "1x1 stride 2 (skips pixels)": (lambda: nn.Conv2d(8, 16, 1, stride=2), (3, 8, 33, 33)),
    "dilated, grouped": (lambda: nn.Conv2d(8, 12, 3, padding=2, dilation=2, groups=2), (3, 8, 17, 17)),
}


@pytest.mark.parametrize("case", sorted(CONVS))
def test_prepared_conv_in_float64_equals_cosim_simulate(case):
    """DAC on the feature map before im2col, one multiply per row of tiles and the
    vectorised ADC compute what Simulation.matmul computes tile by tile."""
    from cosim.core.config import load_preset
    from cosim.run.simulation import SimOptions, Simulation

    make, shape = CONVS[case]
    torch.manual_seed(5)
    conv = make().eval()
    x = torch.randn(*shape, dtype=torch.float64)
    x[:, :, 1, 1] = 8.0  # the batch's largest input, on a pixel a 1x1 stride-2 kernel never reads
    preset = load_preset("seed000_vteam").with_(access="none")
    twin = cosim.convert(conv, preset=preset, tile=16, precision="float64")
    with torch.no_grad():
        got = twin(x)
    reference = Simulation(preset, SimOptions(tile=16, engine="fast", quiet=True)).forward(conv, x)
    torch.testing.assert_close(got, reference, rtol=1e-12, atol=1e-15)
    assert len(tile_cache(twin).records) >= 2  # several tiles per matrix


def test_covered_range_is_the_largest_patch_value():
    from cosim.mapping.patches import covered_range
    from cosim.run.simulation import im2col

    x = torch.randn(2, 3, 11, 11, dtype=torch.float64)
    x[0, 1, 10, 10] = -9.0  # read by padded or dense kernels only
    for conv in (nn.Conv2d(3, 4, 1, stride=2), nn.Conv2d(3, 4, 3, stride=3), nn.Conv2d(3, 4, 3, padding=1),
                 nn.Conv2d(3, 4, 2, stride=2, dilation=3), nn.Conv2d(3, 4, 5, stride=4, padding=2)):
        patches, _, _ = im2col(x, conv)
        assert covered_range(x, conv) == float(np.max(np.abs(patches)))
    assert covered_range(torch.zeros(1, 3, 5, 5), nn.Conv2d(3, 4, 3)) == 1.0


def test_float32_path_equals_float64_path():
    """float32 tile multiplies: TIA outputs within ~1e-7 relative of float64. With
    converters, an ADC code can differ by one LSB where a TIA output sits that close to
    a decision level: at most 1 % of the outputs differ by more than 1e-5 of the
    largest output, and the whole output by less than 1e-3 (an 8-bit step is 8e-3)."""
    torch.manual_seed(6)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2, padding=1),
                          nn.ReLU(), nn.Flatten(), nn.Linear(8 * 10 * 10, 5)).eval()
    x = torch.rand(4, 3, 20, 20, dtype=torch.float64) * 2 - 1
    for hardware, strict in ((dict(access="none"), False), (IDEAL, True)):
        twins = [cosim.convert(model, preset="seed001_mlp", tile=16, precision=p, **hardware)
                 for p in ("float32", "float64")]
        with torch.no_grad():
            single, double = (twin(x) for twin in twins)
        for twin in twins:
            assert twin[0].cosim.dtype == (torch.float32 if twin is twins[0] else torch.float64)
        scale = float(double.abs().max())
        if strict:  # linear to the output: float32 rounding only
            torch.testing.assert_close(single, double, rtol=1e-5, atol=1e-6 * scale)
        else:
            differ = (single - double).abs() > 1e-5 * scale
            assert float(differ.double().mean()) <= 0.01
            assert float(torch.linalg.vector_norm(single - double) / torch.linalg.vector_norm(double)) < 1e-3
    with pytest.raises(InputError, match="precision"):
        cosim.convert(model, precision="float16")


def test_parallel_preparation_equals_one_thread():
    model = cnn()
    one, two = (cosim.convert(model, tile=16, preset="seed001_mlp", workers=w) for w in (1, 2))
    caches = tile_cache(one), tile_cache(two)
    assert caches[0].prepare_calls == caches[1].prepare_calls == len(caches[1].records) > 3
    for label, bank in caches[0].banks.items():
        for a, b in zip(bank.groups, caches[1].banks[label].groups):
            np.testing.assert_array_equal(a.transfer, b.transfer)
    x = torch.rand(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(one(x), two(x), rtol=0, atol=0)


def test_matrices_prepared_on_one_pool_are_reused_and_share_the_wall_time(monkeypatch):
    """convert maps every matrix while earlier tiles are prepared (`map_many`):
    each bank's prepare_s is its share of that wall time; unchanged weights
    prepare nothing again, a changed matrix only itself."""
    model = cnn()
    start = time.perf_counter()
    twin = cosim.convert(model, tile=16, preset="seed001_mlp", workers=2)
    wall = time.perf_counter() - start
    cache = tile_cache(twin)
    assert len(cache.banks) >= 2 and all(bank.prepare_s > 0 for bank in cache.banks.values())
    assert cache.prepare_s <= wall
    calls = cache.prepare_calls
    matrices = [(label, bank.weight) for label, bank in cache.banks.items()]
    cache.map_many(matrices)
    assert cache.prepare_calls == calls
    first, weight = matrices[0]
    tiles = sum(len(g.tiles) for g in cache.banks[first].groups)
    cache.map_many([(first, weight * 0.5)] + matrices[1:])
    assert cache.prepare_calls == calls + tiles


def test_a_tile_that_fails_to_prepare_leaves_no_half_programmed_matrix(monkeypatch):
    """A failure on a pool thread reaches the caller as its own error, and none
    of that call's matrices is left programmed."""
    from cosim.core.errors import CosimError
    from cosim.twin import tilecache

    real, seen = tilecache._prepare_tile, []

    def failing(spec, calibration, nonlinear):
        seen.append(spec)
        if len(seen) == 3:
            raise CosimError("tile matrix is not positive definite at row 4")
        return real(spec, calibration, nonlinear)

    monkeypatch.setattr(tilecache, "_prepare_tile", failing)
    with pytest.raises(CosimError, match="not positive definite at row 4"):
        cosim.convert(cnn(), tile=16, preset="seed001_mlp", workers=2)
    twin = cosim.convert(cnn(), tile=16, preset="seed001_mlp", workers=2, prepare=False)
    cache = tile_cache(twin)
    seen.clear()
    with pytest.raises(CosimError, match="not positive definite"):
        cache.map_many([("a", np.ones((4, 20))), ("b", np.ones((4, 20)))])  # 2 tiles each: b's first fails
    assert len(seen) >= 3
    assert cache.banks == {} and not any(r.layer in ("a", "b") for r in cache.records.values())


@pytest.mark.parametrize("batch_first", [True, False])
def test_gru_initial_hidden_state(batch_first):
    torch.manual_seed(7)
    model = nn.GRU(6, 12, num_layers=2, batch_first=batch_first).eval()
    x = torch.randn(4, 5, 6) if batch_first else torch.randn(5, 4, 6)
    h0 = torch.rand(2, 4, 12) * 2 - 1
    twin = cosim.convert(model, tile=8, engine="fast", **IDEAL)
    with torch.no_grad():
        expected, got = model(x, h0), twin(x, h0)
        from_zero = twin(x)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(from_zero[1], got[1], atol=1e-3)  # h0 changes the result


@pytest.mark.parametrize("case", ["3x3, 400 px (F.unfold layout)", "3x3 stride 2, 49 px (row layout)"])
def test_calibrated_and_newton_twins_equal_cosim_simulate(case, tmp_path):
    """1T1R access: the sign-split (calibrated) transfer matrices on the prepared
    path, and Newton tiles on the general path, as `cosim simulate` computes them."""
    from cosim.analysis.nmos_calibration import fit_access_calibration
    from cosim.core.config import load_preset
    from cosim.fast.calibration import save_calibration
    from cosim.run.simulation import SimOptions, Simulation

    preset = load_preset("seed001_mlp")
    assert preset.access == "nmos"
    calibration = fit_access_calibration(preset.device, preset.nmos, preset=preset.name, v_read=(-preset.v_read, preset.v_read))
    path = str(save_calibration(calibration, tmp_path / "cal.json"))
    make, shape = CONVS[case]
    torch.manual_seed(8)
    conv = make().eval()
    x = torch.rand(*shape, dtype=torch.float64) * 2 - 1
    calibrated = cosim.convert(conv, preset=preset, tile=16, precision="float64", calibration=path)
    banks = tile_cache(calibrated).banks.values()
    assert all(bank.linear and bank.groups[0].transfer_neg_t is not None for bank in banks)
    reference = Simulation(preset, SimOptions(tile=16, engine="fast", quiet=True, calibration=path)).forward(conv, x)
    with torch.no_grad():
        torch.testing.assert_close(calibrated(x), reference, rtol=1e-12, atol=1e-15)
    newton = cosim.convert(conv, preset=preset, tile=16, nonlinear="auto")
    assert not any(bank.linear for bank in tile_cache(newton).banks.values())
    reference = Simulation(preset, SimOptions(tile=16, engine="fast", quiet=True)).forward(conv, x)
    with torch.no_grad():
        torch.testing.assert_close(newton(x), reference, rtol=1e-9, atol=1e-12)


def test_binarized_layers_convert_onto_two_device_levels():
    """BinaryLinear / BinaryConv2d holding continuous latent weights: the twin
    computes with alpha * sign(W) on exactly two conductances, like the
    float binarised layers (ideal array, no converters)."""
    from cosim.nets.training import BinaryConv2d, BinaryLinear
    from cosim.twin.convert import AnalogBinaryConv2d, AnalogBinaryLinear

    torch.manual_seed(4)
    model = nn.Sequential(BinaryConv2d(2, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          BinaryLinear(4 * 5 * 5, 3)).eval()
    x = torch.randn(3, 2, 5, 5, generator=torch.Generator().manual_seed(1))
    twin = cosim.convert(model, preset="seed001_mlp", tile=16, engine="ideal", **IDEAL)
    assert isinstance(twin[0], AnalogBinaryConv2d) and isinstance(twin[3], AnalogBinaryLinear)
    with torch.no_grad():
        torch.testing.assert_close(twin(x), model(x), rtol=1e-5, atol=1e-5)
    levels = np.unique(np.concatenate([np.concatenate([r.g_pos.ravel(), r.g_neg.ravel()])
                                       for r in tile_cache(twin).records.values()]))
    assert levels.size == 2  # g_min and g_max only
