"""The numpy block sweep's own parts (`cosim.fast.structured`): the split SPD
inverse against LAPACK's, the CBLAS sweep against its numpy fallback, and
the transfer matrix against sparse LU on tiles wide enough for the split."""

from __future__ import annotations

import numpy as np
import pytest

from cosim import fast
from cosim.core.config import VteamParams
from cosim.core.errors import CosimError
from cosim.core.tile import TileSpec
from cosim.fast import openblas, structured
from cosim.fast.chains import _row_blocks, row_vectors


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max |b|."""
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def spd(n: int, seed: int) -> np.ndarray:
    """A random symmetric positive definite matrix (condition ~1e3)."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, n))
    return a @ a.T / n + 1e-2 * np.eye(n)


@pytest.mark.parametrize("n", [openblas.SPLIT_INVERSE_MIN, 65, 127, 128, 201])
def test_split_inverse_equals_the_true_inverse_in_its_upper_triangle(n):
    a = spd(n, n)
    s = a.copy()
    openblas.spd_inverse(s, 0)
    upper = np.triu_indices(n)
    assert rel_err(s[upper], np.linalg.inv(a)[upper]) < 1e-12


@pytest.mark.parametrize("broken", ["first half", "schur complement"])
def test_split_inverse_of_an_indefinite_block_names_its_row(broken):
    """A block that is not positive definite fails in either half's Cholesky:
    one line naming the row, never a wrong inverse."""
    a = spd(128, 1)
    if broken == "first half":
        a[3, 3] = -1.0
    else:  # the first 64 rows are fine; D - B^T A^-1 B is not
        a[100, 100] = -1.0
    with pytest.raises(CosimError, match="not positive definite at row 7"):
        openblas.spd_inverse(a.copy(), 7)


@pytest.mark.parametrize("shape", [(64, 64), (65, 130), (128, 70), (3, 128)])
@pytest.mark.parametrize("r_driver", [10.0, 0.0])
def test_wide_tiles_equal_sparse_lu(shape, r_driver):
    """Tiles with 64 or more columns invert their Schur blocks by halves."""
    rng = np.random.default_rng(shape[0] + shape[1])
    spec = TileSpec.from_states(rng.uniform(0, 1, size=shape), VteamParams(), r_wire=1.0, r_driver=r_driver)
    assert rel_err(fast.transfer_matrix(spec), fast.transfer_matrix(spec, method="splu")) < 1e-12


def test_overflowing_chains_take_the_dense_blocks_and_still_equal_sparse_lu():
    """10 kohm segments against 50 ohm..1 kohm cells over 300 columns: the
    chain inverses overflow their two-exponential form (no row vectors), so
    the sweep subtracts dense blocks, split inverses included."""
    rng = np.random.default_rng(5)
    spec = TileSpec.from_states(rng.uniform(0, 1, size=(4, 300)), VteamParams(), r_wire=1e4, r_driver=10.0)
    assert row_vectors(spec.conductance, 1e-4, 0.1) is None
    assert rel_err(fast.transfer_matrix(spec), fast.transfer_matrix(spec, method="splu")) < 1e-12


@pytest.mark.parametrize("g_driver", [0.1, None])
def test_row_vectors_rebuild_the_row_blocks(g_driver):
    g = 1.0 / np.random.default_rng(2).uniform(50, 1000, (5, 9))
    a, b, diag, u = row_vectors(g, 1.0, g_driver)
    d, u_blocks = _row_blocks(g, 1.0, g_driver)
    rebuilt = np.triu(a[:, :, None] * b[:, None, :], 1)
    rebuilt = rebuilt + rebuilt.transpose(0, 2, 1)
    rebuilt[:, np.arange(9), np.arange(9)] = diag
    assert rel_err(rebuilt, d) < 1e-15 and rel_err(u, u_blocks) < 1e-15


@pytest.mark.parametrize("missing", ["cblas", "lapacke", "both"])
def test_sweep_without_cblas_or_lapacke_gives_the_same_transfer(monkeypatch, missing):
    """Where numpy's OpenBLAS lacks the ctypes entry points (another BLAS),
    the sweep falls back to numpy products and scipy's LAPACK."""
    g = 1.0 / np.random.default_rng(3).uniform(50, 1000, (70, 80))
    fastest = structured.transfer_structured_numpy(g, 1.0, 10.0)
    if missing in ("cblas", "both"):
        monkeypatch.setattr(openblas, "cblas", lambda: None)
        monkeypatch.setattr(structured, "cblas", lambda: None)
    if missing in ("lapacke", "both"):
        monkeypatch.setattr(openblas, "_lapacke", lambda: None)
    assert rel_err(structured.transfer_structured_numpy(g, 1.0, 10.0), fastest) < 1e-13
    inverses = structured.schur_inverses(g, 1.0, 0.1, 1.0)
    assert np.array_equal(inverses, inverses.transpose(0, 2, 1))  # mirrored for the batched solver


def test_a_nan_conductance_is_one_error_not_a_nan_transfer_matrix():
    g = np.full((8, 70), 1e-3)
    g[2, 5] = np.nan
    with pytest.raises(CosimError, match="not finite|not positive definite"):
        structured.transfer_structured_numpy(g, 1.0, 10.0)
