"""LAPACK and CBLAS of the OpenBLAS numpy ships (numpy.libs/
libscipy_openblas64_*.so), through ctypes: the SPD block inverse of the
structured sweep (`spd_inverse`) and its per-row products (`Cblas`). ctypes
releases the GIL for every call, which numpy's elementwise operations and
scipy's f2py wrappers hold; where numpy brings another BLAS, each entry
point is None and the callers use numpy and scipy instead.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from cosim.core.errors import CosimError


@functools.lru_cache(maxsize=1)
def _openblas():
    """numpy's bundled OpenBLAS (numpy.libs/libscipy_openblas64_*.so) by
    ctypes, or None."""
    import ctypes
    import glob
    import os

    folder = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
    found = sorted(glob.glob(os.path.join(folder, "libscipy_openblas64_*.so")))
    try:
        return ctypes.CDLL(found[0])
    except (IndexError, OSError):
        return None


@functools.lru_cache(maxsize=1)
def _lapacke() -> tuple | None:
    """(dpotrf, dpotri) of LAPACKE in the OpenBLAS numpy ships, through
    ctypes, or None. ctypes releases the GIL for the call, which scipy's f2py
    wrappers of the same routines do not: with them, tiles prepared on two
    threads serialise on their Cholesky factors. The `_work` entry points:
    LAPACKE's NaN scan of the input costs 8 % of a 128 x 128 block, and a
    non-finite transfer matrix is caught once at its end instead."""
    import ctypes

    lib = _openblas()
    try:
        routines = (lib.scipy_LAPACKE_dpotrf_work64_, lib.scipy_LAPACKE_dpotri_work64_)
    except AttributeError:
        return None
    for routine in routines:
        routine.restype = ctypes.c_int64
        routine.argtypes = [ctypes.c_int, ctypes.c_char, ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64]
    return routines


@dataclass(frozen=True)
class Cblas:
    """CBLAS routines of numpy's OpenBLAS through ctypes: what the numpy sweep
    does per row besides potrf and potri. Each call releases the GIL, which
    numpy's small elementwise operations hold: with tiles prepared on two
    threads, the GIL time of every row is time the other thread may wait.
    Arguments are addresses of C-ordered float64 arrays (`ndarray.ctypes.data`)."""

    dsymm: object
    dger: object
    dscal: object
    daxpy: object
    dcopy: object
    dgemm: object

    def upper_times(self, z: int, n: int, y: int, ld: int, k: int, out: int, alpha: float = 1.0) -> None:
        """out[:, :k] = alpha * Z @ y[:, :k] for symmetric Z (n, n) given by
        its upper triangle, y and out (n, ld): as fast as dgemm here, and
        potri's output needs no mirror copy."""
        self.dsymm(101, 141, 121, n, k, alpha, z, n, y, ld, 0.0, out, ld)

    def negate_plus_outer(self, z: int, n: int, a: int, b: int) -> None:
        """z = a b^T - z in place (z (n, n), a and b (n,))."""
        self.dscal(n * n, -1.0, z, 1)
        self.dger(101, n, n, 1.0, a, 1, b, 1, z, n)

    def add_to_diagonal(self, z: int, n: int, d: int) -> None:
        """z[j, j] += d[j] (z (n, n), d (n,))."""
        self.daxpy(n, 1.0, d, 1, z, n + 1)

    def put_column(self, y: int, ld: int, column: int, u: int, n: int) -> None:
        """y[:, column] = u (y (n, ld), u (n,))."""
        self.dcopy(n, u, 1, y + 8 * column, ld)


@functools.lru_cache(maxsize=1)
def cblas() -> Cblas | None:
    """`Cblas` of numpy's bundled OpenBLAS, or None (the sweeps then use numpy)."""
    import ctypes

    lib = _openblas()
    names = ("dsymm", "dger", "dscal", "daxpy", "dcopy", "dgemm")
    try:
        routines = {name: getattr(lib, f"scipy_cblas_{name}64_") for name in names}
    except AttributeError:
        return None
    i64, f64, ptr, enum = ctypes.c_int64, ctypes.c_double, ctypes.c_void_p, ctypes.c_int
    arguments = {"dsymm": [enum, enum, enum, i64, i64, f64, ptr, i64, ptr, i64, f64, ptr, i64],
                 "dger": [enum, i64, i64, f64, ptr, i64, ptr, i64, ptr, i64],
                 "dscal": [i64, f64, ptr, i64],
                 "daxpy": [i64, f64, ptr, i64, ptr, i64],
                 "dcopy": [i64, ptr, i64, ptr, i64],
                 "dgemm": [enum, enum, enum, i64, i64, i64, f64, ptr, i64, ptr, i64, f64, ptr, i64]}
    for name, routine in routines.items():
        routine.restype = None
        routine.argtypes = arguments[name]
    return Cblas(**routines)


#: Smallest block `spd_inverse` splits in two (potrf + potri of the halves
#: and four BLAS-3 products: 13 % faster than potri at 128 here; at 32 the
#: calls' overhead wins).
SPLIT_INVERSE_MIN = 64


def spd_inverse(s: np.ndarray, row: int, scratch: np.ndarray | None = None) -> np.ndarray:
    """Upper triangle of s^{-1} for a symmetric positive definite C-ordered
    s (C, C) of which only the upper triangle is read (ohm for S); s is
    overwritten. LAPACK potrf + potri (LAPACKE by ctypes where numpy's
    OpenBLAS has it, else scipy's wrappers), from SPLIT_INVERSE_MIN up by
    halves (`_split_inverse`, `scratch` from `inverse_scratch(C)`, or None
    for a new one); `row` names the block in errors."""
    n = s.shape[0]
    routines, blas = _lapacke(), cblas()
    if routines is not None:
        if blas is not None and n >= SPLIT_INVERSE_MIN:
            scratch = inverse_scratch(n) if scratch is None else scratch
            _split_inverse(routines, blas, s.ctypes.data, n, scratch.ctypes.data, row)
        else:
            _potrf_potri(routines, s.ctypes.data, n, n, row)
        return s
    from scipy.linalg import lapack  # only here: importing scipy.linalg costs ~0.1-0.2 s of start-up

    factor, info = lapack.dpotrf(s, lower=0, overwrite_a=1)
    if info != 0:
        raise CosimError(f"tile matrix is not positive definite at row {row}; check for "
                         "extreme conductances or use method='splu'")
    inverse, info = lapack.dpotri(factor, lower=0, overwrite_c=1)
    if info != 0:
        raise CosimError(f"tile Schur block {row} could not be inverted (potri info {info})")
    np.copyto(s, inverse)  # f2py worked on a Fortran copy of s
    return s


def inverse_scratch(n: int) -> np.ndarray:
    """Work array of `spd_inverse` for n x n blocks (X = A^{-1} B of the halves),
    to reuse across a sweep."""
    return np.empty((n // 2) * (n - n // 2))


def _potrf_potri(routines: tuple, address: int, n: int, ld: int, row: int) -> None:
    """Invert in place the n x n SPD block at `address` of a C-ordered float64
    array with row stride `ld` (upper triangle read and written; column-major
    'L' on a C-ordered array is its upper triangle)."""
    if routines[0](102, b"L", n, address, ld) != 0:
        raise CosimError(f"tile matrix is not positive definite at row {row}; check for "
                         "extreme conductances or use method='splu'")
    if routines[1](102, b"L", n, address, ld) != 0:
        raise CosimError(f"tile Schur block {row} could not be inverted (potri)")


def _split_inverse(routines: tuple, blas: Cblas, s: int, n: int, xp: int, row: int) -> None:
    """s = [[A, B], [B^T, D]] (n, n) at address s -> the upper triangle of
    s^{-1} in place: A^{-1}, X = A^{-1} B (at xp), E = D - B^T X (SPD exactly
    when s is), then [[A^{-1} + X E^{-1} X^T, -X E^{-1}], [., E^{-1}]] (symm
    and gemm, row-major)."""
    h, m = n // 2, n - n // 2
    top, right, bottom = s, s + 8 * h, s + 8 * (h * n + h)
    row_major, left_side, right_side, upper, plain, transposed = 101, 141, 142, 121, 111, 112
    _potrf_potri(routines, top, h, n, row)
    blas.dsymm(row_major, left_side, upper, h, m, 1.0, top, n, right, n, 0.0, xp, m)
    blas.dgemm(row_major, transposed, plain, m, m, h, -1.0, right, n, xp, m, 1.0, bottom, n)
    _potrf_potri(routines, bottom, m, n, row)
    blas.dsymm(row_major, right_side, upper, h, m, -1.0, bottom, n, xp, m, 0.0, right, n)
    blas.dgemm(row_major, plain, transposed, h, h, m, -1.0, right, n, xp, m, 1.0, top, n)
