"""One line for every bad input: each case runs the real CLI and must end with
exit 2, exactly one stderr line starting 'cosim: error:', no traceback, and
nothing at the --out path. Inputs that cosim used to accept silently
(complex or bool arrays, values past float32) are refused the same way; an
all-zero layer reports an absolute error instead of a relative error of inf."""

from __future__ import annotations

import re

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch import nn


def cosim(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cosim", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def assert_one_line(run: subprocess.CompletedProcess, *expected: str) -> str:
    assert run.returncode == 2, (run.returncode, run.stdout, run.stderr)
    assert "Traceback" not in run.stderr and "Traceback" not in run.stdout
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cosim: error:"), run.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


def nothing_at(out: Path) -> None:
    leftovers = [p.name for p in out.parent.iterdir() if p.name.startswith(out.name)]
    assert not leftovers, leftovers


# ----------------------------------------------------------------- cosim simulate

def _layer(tmp_path: Path, module: nn.Module, name: str = "layer.pt") -> Path:
    torch.save(module, tmp_path / name)
    return tmp_path / name


def _tensor(tmp_path: Path, x: torch.Tensor, name: str = "x.pt") -> list[str]:
    torch.save(x, tmp_path / name)
    return ["--input", str(tmp_path / name)]


def _empty_pt(tmp_path):
    (tmp_path / "layer.pt").write_bytes(b"")
    return tmp_path / "layer.pt", []


def _truncated_pt(tmp_path):
    whole = _layer(tmp_path, nn.Linear(4, 2), "whole.pt").read_bytes()
    (tmp_path / "layer.pt").write_bytes(whole[:len(whole) // 2])
    return tmp_path / "layer.pt", []


def _not_torch_at_all(tmp_path):
    (tmp_path / "layer.pt").write_bytes(b"hello, not a torch file")
    return tmp_path / "layer.pt", []


def _bad_pickle(tmp_path):
    (tmp_path / "layer.pt").write_bytes(b"\x80\x02garbage")
    return tmp_path / "layer.pt", []


def _complex_weights(tmp_path):
    return _layer(tmp_path, nn.Linear(4, 2, dtype=torch.complex64)), []


def _unbatched_conv_input(tmp_path):
    return _layer(tmp_path, nn.Conv2d(1, 2, 3)), _tensor(tmp_path, torch.ones(1, 5, 5))


def _unbatched_gru_input(tmp_path):
    return _layer(tmp_path, nn.GRU(3, 2)), _tensor(tmp_path, torch.ones(5, 3))


def _linear_0_n(tmp_path):
    return _layer(tmp_path, nn.Linear(0, 3)), []


def _linear_n_0(tmp_path):
    return _layer(tmp_path, nn.Linear(3, 0)), []


def _conv_0_in(tmp_path):
    return _layer(tmp_path, nn.Conv2d(0, 2, 3)), []


def _empty_sequential(tmp_path):
    return _layer(tmp_path, nn.Sequential()), []


def _empty_batch(tmp_path):
    return _layer(tmp_path, nn.Linear(4, 2)), _tensor(tmp_path, torch.zeros(0, 4))


def _scalar_input(tmp_path):
    return _layer(tmp_path, nn.Linear(4, 2)), _tensor(tmp_path, torch.tensor(1.0))


def _sparse_input(tmp_path):
    return _layer(tmp_path, nn.Linear(4, 2)), _tensor(tmp_path, torch.eye(4)[:2].to_sparse())


def _sparse_csr_input(tmp_path):
    return _layer(tmp_path, nn.Linear(4, 2)), _tensor(tmp_path, torch.eye(4)[:2].to_sparse_csr())


def _complex_input(tmp_path):
    return _layer(tmp_path, nn.Linear(4, 2)), _tensor(tmp_path, torch.ones(2, 4, dtype=torch.complex64))


def _int_input(tmp_path):
    return _layer(tmp_path, nn.Linear(4, 2)), _tensor(tmp_path, torch.ones(2, 4, dtype=torch.int64))


def _nan_input(tmp_path):
    return _layer(tmp_path, nn.Linear(4, 2)), _tensor(tmp_path, torch.tensor([[0.0, float("nan"), 0, 0]]))


def _beyond_float32_input(tmp_path):
    return _layer(tmp_path, nn.Linear(4, 2)), _tensor(tmp_path, torch.full((2, 4), 1e39, dtype=torch.float64))


def _overflowing_output(tmp_path):
    layer = nn.Linear(4, 2)
    with torch.no_grad():
        layer.weight.fill_(1.0)
    return _layer(tmp_path, layer), _tensor(tmp_path, torch.full((2, 4), 3e38))


def _empty_input_file(tmp_path):
    (tmp_path / "x.pt").write_bytes(b"")
    return _layer(tmp_path, nn.Linear(4, 2)), ["--input", str(tmp_path / "x.pt")]


def _huge_input_size(tmp_path):
    return _layer(tmp_path, nn.Conv2d(1, 2, 3)), ["--input-size", "100000,100000"]


def _huge_batch(tmp_path):
    return _layer(tmp_path, nn.Linear(4, 2)), ["--batch", str(10**13)]


def _huge_seq_len(tmp_path):
    return _layer(tmp_path, nn.GRU(3, 2)), ["--seq-len", str(10**13)]


def _huge_im2col_of_a_small_input(tmp_path):
    # 2 MB of input, but a 300x300 kernel makes im2col patches of about 1.4 TB.
    return (_layer(tmp_path, nn.Conv2d(1, 1, 300, padding=150)),
            _tensor(tmp_path, torch.zeros(1, 1, 1000, 1000, dtype=torch.float16)))


def _zero_input_size(tmp_path):
    return _layer(tmp_path, nn.Conv2d(1, 2, 3)), ["--input-size", "0,5"]


def _negative_input_size(tmp_path):
    return _layer(tmp_path, nn.Conv2d(1, 2, 3)), ["--input-size=-3,5"]


def _negative_seq_len(tmp_path):
    return _layer(tmp_path, nn.GRU(3, 2)), ["--seq-len", "-1"]


def _zero_seq_len(tmp_path):
    return _layer(tmp_path, nn.GRU(3, 2)), ["--seq-len", "0"]


def _zero_batch(tmp_path):
    return _layer(tmp_path, nn.Linear(4, 2)), ["--batch", "0"]


def _negative_batch(tmp_path):
    return _layer(tmp_path, nn.Linear(4, 2)), ["--batch", "-3"]


SIMULATE_CASES = [
    (_empty_pt, ("empty (0 bytes)",)),
    (_truncated_pt, ("truncated or damaged",)),
    (_not_torch_at_all, ("not a torch.save file", "neither a zip archive nor a pickle")),
    (_bad_pickle, ("pickle refused",)),
    (_complex_weights, ("parameter weight is complex",)),
    (_unbatched_conv_input, ("has shape (1, 5, 5)", "(B, C, H, W)")),
    (_unbatched_gru_input, ("has shape (5, 3)", "(T, B, features)")),
    (_linear_0_n, ("Linear parameter weight is empty (shape (3, 0))",)),
    (_linear_n_0, ("Linear parameter weight is empty (shape (0, 3))",)),
    (_conv_0_in, ("Conv2d parameter weight is empty",)),
    (_empty_sequential, ("empty Sequential",)),
    (_empty_batch, ("holds no input (shape (0, 4))",)),
    (_scalar_input, ("holds no input (shape ())",)),
    (_sparse_input, ("sparse tensor", "to_dense()")),
    (_sparse_csr_input, ("sparse tensor",)),
    (_complex_input, ("real floating-point", "complex64")),
    (_int_input, ("real floating-point", "int64")),
    (_nan_input, ("NaN or infinite",)),
    (_beyond_float32_input, ("beyond float32's range",)),
    (_overflowing_output, ("overflows float32",)),
    (_empty_input_file, ("input file", "empty (0 bytes)")),
    (_huge_input_size, ("(8, 1, 100000, 100000)", "bytes", "of MemAvailable", "--input-size")),
    (_huge_batch, ("bytes", "of MemAvailable", "--batch")),
    (_huge_seq_len, ("bytes", "of MemAvailable", "--seq-len")),
    (_huge_im2col_of_a_small_input, ("(1, 1, 1000, 1000)", "bytes", "of MemAvailable")),
    (_zero_input_size, ("--input-size must be two positive integers",)),
    (_negative_input_size, ("--input-size must be two positive integers",)),
    (_negative_seq_len, ("--seq-len", ">= 1", "-1")),
    (_zero_seq_len, ("--seq-len", ">= 1", "0")),
    (_zero_batch, ("--batch", ">= 1", "0")),
    (_negative_batch, ("--batch", ">= 1", "-3")),
]


@pytest.mark.parametrize("make, expected", SIMULATE_CASES, ids=[m.__name__[1:] for m, _ in SIMULATE_CASES])
def test_simulate_refuses_bad_input_in_one_line(tmp_path, make, expected):
    layer, extra = make(tmp_path)
    out = tmp_path / "run.h5"
    run = cosim("simulate", str(layer), "--engine", "ideal", "--out", str(out), "--quiet", *extra)
    assert_one_line(run, *expected)
    nothing_at(out)


def test_debug_still_shows_the_traceback(tmp_path):
    layer, _ = _empty_pt(tmp_path)
    run = cosim("--debug", "simulate", str(layer), "--out", str(tmp_path / "run.h5"))
    assert run.returncode != 0 and "Traceback" in run.stderr and "InputError" in run.stderr


@pytest.mark.parametrize("bias", [False, True])
def test_all_zero_weights_report_an_absolute_error_not_inf(tmp_path, bias):
    layer = nn.Linear(4, 3, bias=bias)
    with torch.no_grad():
        layer.weight.zero_()
        if bias:
            layer.bias.zero_()
    path = _layer(tmp_path, layer)
    out = tmp_path / "run.h5"
    # The fast solver's wire IR drop leaves a small nonzero output: 0/0 no more.
    run = cosim("simulate", str(path), "--engine", "fast", "--batch", "3", "--out", str(out), "--quiet")
    assert run.returncode == 0, run.stderr
    assert not re.search(r"\binf\b|\bnan\b", run.stdout), run.stdout
    assert "relative error vs float PyTorch" not in run.stdout
    assert "the weights are all zero" in run.stdout and "absolute error" in run.stdout
    with h5py.File(out) as h5:
        assert "relative_error" not in h5.attrs and "converters_only_relative_error" not in h5.attrs
        absolute = float(h5.attrs["absolute_error"])
        expected = float(np.linalg.norm(h5["outputs"][()] - h5["ideal"][()]))
        assert np.isfinite(absolute) and absolute == pytest.approx(expected, rel=1e-12, abs=1e-300)
        assert float(h5.attrs["converters_only_absolute_error"]) == 0.0
        layer_error = float(h5["layers"]["linear"].attrs["absolute_error"])
        assert np.isfinite(layer_error) and layer_error == pytest.approx(absolute, rel=1e-9, abs=1e-300)


def test_nonzero_weights_keep_the_relative_error(tmp_path):
    torch.manual_seed(3)
    path = _layer(tmp_path, nn.Linear(4, 3))
    out = tmp_path / "run.h5"
    run = cosim("simulate", str(path), "--engine", "ideal", "--batch", "3", "--out", str(out), "--quiet")
    assert run.returncode == 0, run.stderr
    assert "relative error vs float PyTorch" in run.stdout
    with h5py.File(out) as h5:
        assert np.isfinite(h5.attrs["relative_error"]) and np.isfinite(h5.attrs["absolute_error"])


def test_input_at_the_edge_of_float32_is_still_accepted(tmp_path):
    """3e38 fits float32 (and a Linear of small weights keeps the output finite): no refusal."""
    layer = nn.Linear(4, 2)
    with torch.no_grad():
        layer.weight.fill_(0.1)
    path = _layer(tmp_path, layer)
    run = cosim("simulate", str(path), "--engine", "ideal", "--out", str(tmp_path / "run.h5"), "--quiet",
                *_tensor(tmp_path, torch.full((2, 4), 3e38)))
    assert run.returncode == 0, run.stderr


# ------------------------------------------------------------ cosim tile / netlist

def _npy(tmp_path: Path, name: str, array: np.ndarray | None, allow_pickle: bool = False) -> Path:
    path = tmp_path / name
    if array is None:
        path.write_bytes(b"")
    else:
        np.save(path, array, allow_pickle=allow_pickle)
    return path


NPY_CASES = [
    ("strings", lambda shape: np.full(shape, "a"), "holds string values (dtype <U1)"),
    ("bytes", lambda shape: np.full(shape, b"a"), "holds byte-string values"),
    ("empty_file", lambda shape: None, "empty (0 bytes)"),
    ("empty_array", lambda shape: np.zeros((0,) + shape[1:]), "holds no values"),
    ("object", lambda shape: np.array([1.0, "x", None], dtype=object), "Object arrays cannot be loaded"),
    ("complex", lambda shape: np.full(shape, 1e-3 + 1e-3j), "holds complex values (dtype complex128)"),
    ("bool", lambda shape: np.ones(shape, dtype=bool), "holds boolean values (dtype bool)"),
    ("beyond_float32", lambda shape: np.full(shape, 1e200), "beyond float32's range"),
    ("structured", lambda shape: np.zeros(shape, dtype=[("a", "f8")]), "holds structured values"),
]
GOOD = {"conductance": np.full((4, 3), 1e-3), "voltage": np.full((2, 4), 0.2)}


def _tile_args(tmp_path: Path, which: str, case: str, make) -> list[str]:
    files = {}
    for what, good in GOOD.items():
        array = make(good.shape) if what == which else good
        files[what] = _npy(tmp_path, f"{what}_{case}.npy", array, allow_pickle=case == "object")
    return ["--conductance", str(files["conductance"]), "--voltage", str(files["voltage"])]


@pytest.mark.parametrize("which", ["conductance", "voltage"])
@pytest.mark.parametrize("case, make, expected", NPY_CASES, ids=[c[0] for c in NPY_CASES])
def test_tile_refuses_bad_npy_in_one_line(tmp_path, which, case, make, expected):
    out = tmp_path / "tile.h5"
    run = cosim("tile", *_tile_args(tmp_path, which, case, make), "--engine", "ideal", "--out", str(out))
    line = assert_one_line(run, expected)
    assert f"{which} file" in line
    nothing_at(out)


NETLIST_CASES = [c for c in NPY_CASES if c[0] in ("strings", "empty_file", "object", "complex", "bool")]


@pytest.mark.parametrize("which", ["conductance", "voltage"])
@pytest.mark.parametrize("case, make, expected", NETLIST_CASES, ids=[c[0] for c in NETLIST_CASES])
def test_netlist_refuses_bad_npy_in_one_line(tmp_path, which, case, make, expected):
    out = tmp_path / "net"
    run = cosim("netlist", *_tile_args(tmp_path, which, case, make), "--out-dir", str(out))
    assert_one_line(run, expected, f"{which} file")
    nothing_at(out)


def test_tile_refuses_an_npz_archive(tmp_path):
    np.savez(tmp_path / "G.npz", g=GOOD["conductance"])
    np.save(tmp_path / "V.npy", GOOD["voltage"])
    (tmp_path / "G.npz").rename(tmp_path / "G.npy")
    out = tmp_path / "tile.h5"
    run = cosim("tile", "--conductance", str(tmp_path / "G.npy"), "--voltage", str(tmp_path / "V.npy"),
                "--engine", "ideal", "--out", str(out))
    assert_one_line(run, "is an .npz archive")
    nothing_at(out)


def test_tilespec_refuses_complex_and_bool_arrays_from_python():
    from cosim.core.errors import InputError
    from cosim.core.tile import TileSpec

    with pytest.raises(InputError, match="complex128"):
        TileSpec(np.full((2, 2), 1e-3 + 0j))
    with pytest.raises(InputError, match="bool"):
        TileSpec(np.ones((2, 2), dtype=bool))
    spec = TileSpec(np.full((2, 2), 1e-3))
    with pytest.raises(InputError, match="complex"):
        spec.check_voltages(np.full((1, 2), 0.1 + 0j))
    with pytest.raises(InputError, match="bool"):
        spec.check_voltages(np.ones((1, 2), dtype=bool))
    assert spec.check_voltages(np.array([1, 2])).dtype == float  # integers are real numbers
