"""IR-drop maps (cell voltage / applied row voltage) from ngspice and fast-solver node voltages."""

from __future__ import annotations

import numpy as np
import pytest
from nodal_reference import crossbar_node_voltages

from cosim.analysis.irdrop import irdrop_map, node_voltages
from cosim.core.errors import InputError
from cosim.core.tile import TileSpec


@pytest.mark.parametrize("access", ["none", "nmos"])
def test_map_is_one_everywhere_without_wire_or_driver_resistance(access):
    """With r_wire = r_driver = 0 each row is one node at its DAC voltage and
    each column one node at the TIA's virtual ground: every cell sees the
    full input (the 1T1R cell's transistor drop is inside the cell)."""
    rng = np.random.default_rng(11)
    g = 1.0 / rng.uniform(50.0, 1000.0, size=(3, 4))
    v = rng.uniform(0.05, 0.3, size=(2, 3)) * np.array([[1, -1, 1], [-1, 1, 1]])
    ratio = irdrop_map(TileSpec(g, access=access), v)
    assert ratio.shape == (2, 3, 4)
    assert np.allclose(ratio, 1.0, rtol=0, atol=1e-9)


def test_map_with_wires_equals_nodal_solve_and_falls_toward_the_far_corner():
    """Uniform devices, all rows at 0.3 V, 1 ohm wires and 10 ohm drivers: the
    cell voltage equals an independent scipy nodal solve, sags along each row
    away from the driver (column 0) and up each column away from the TIA
    (below the last row), so the worst cell is (row 0, last column)."""
    rows, cols = 5, 6
    g = np.full((rows, cols), 1 / 100.0)
    v = np.full((1, rows), 0.3)
    spec = TileSpec(g, r_wire=1.0, r_driver=10.0)
    ratio = irdrop_map(spec, v)[0]
    row_ref, col_ref = crossbar_node_voltages(g, v, r_wire=1.0, r_driver=10.0)
    assert np.allclose(ratio, (row_ref - col_ref)[0] / 0.3, rtol=1e-9, atol=0)
    assert np.all(np.diff(ratio, axis=1) < 0)      # away from the row driver
    assert np.all(np.diff(ratio, axis=0) > 0)      # towards the column's TIA
    assert np.unravel_index(np.argmin(ratio), ratio.shape) == (0, cols - 1)
    assert ratio.max() < 1.0


def test_node_voltages_of_1t1r_cells_split_memristor_and_transistor():
    """In a 1T1R cell the memristor sees row minus the node before the NMOS:
    less than the whole cell voltage, by the transistor's drop."""
    spec = TileSpec(np.full((2, 2), 1 / 200.0), r_wire=1.0, access="nmos")
    nodes = node_voltages(spec, np.array([0.3, 0.2]))
    assert np.all(nodes.memristor > 0) and np.all(nodes.memristor < nodes.cell)


@pytest.mark.parametrize("access", ["none", "nmos"])
@pytest.mark.parametrize("r_driver", [10.0, 0.0])
def test_fast_node_voltages_equal_ngspice(access, r_driver):
    """The fast solver's node voltages (CG on the chains; the exact Newton
    operating point for 1T1R) equal ngspice's `.op` node by node, row,
    column and memristor-NMOS nodes, to 1e-9 of the input."""
    rng = np.random.default_rng(5)
    g = 1.0 / rng.uniform(50.0, 1000.0, size=(6, 5))
    v = rng.uniform(-0.3, 0.3, size=(2, 6))
    spec = TileSpec(g, r_wire=1.0, r_driver=r_driver, access=access)
    fast, spice = node_voltages(spec, v, engine="fast"), node_voltages(spec, v, engine="spice")
    for name in ("row", "col", "mid"):
        got, want = getattr(fast, name), getattr(spice, name)
        if access == "none":
            assert got is None or name != "mid"
            if name == "mid":
                continue
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9 * 0.3)
    np.testing.assert_allclose(irdrop_map(spec, v, engine="fast"), irdrop_map(spec, v, engine="spice"),
                               rtol=0, atol=1e-8)


def test_fast_map_of_a_large_tile_equals_the_sparse_nodal_solve():
    """A 96x80 map without SPICE: the chain/CG solve against scipy's sparse LU
    of the same network (`cosim.fast.graph_node_voltages`), 1e-11 V."""
    from cosim.fast.nodal import graph_node_voltages

    rng = np.random.default_rng(8)
    g = 1.0 / rng.uniform(1e3, 12e3, size=(96, 80))
    v = rng.uniform(-0.3, 0.3, size=(1, 96))
    spec = TileSpec(g, r_wire=2.0, r_driver=10.0)
    nodes = node_voltages(spec, v, engine="fast")
    row, col, _ = graph_node_voltages(spec, g, v)
    np.testing.assert_allclose(nodes.row, row, rtol=0, atol=1e-11)
    np.testing.assert_allclose(nodes.col, col, rtol=0, atol=1e-11)


def test_fast_map_without_wires_is_one():
    g = np.full((3, 3), 1e-3)
    assert np.allclose(irdrop_map(TileSpec(g), np.array([0.1, -0.2, 0.3]), engine="fast"), 1.0, atol=1e-12)


def test_unknown_engine_is_refused_naming_the_engines():
    with pytest.raises(InputError, match="spice, fast, ideal"):
        irdrop_map(TileSpec(np.full((2, 2), 1e-3)), np.array([0.1, 0.1]), engine="vacask")


def test_tile_command_writes_the_fast_engines_map(tmp_path):
    """`cosim tile --engine fast --irdrop MAP.png` stores the fast map, equal
    to the one `--engine spice` stores, and writes the heatmap."""
    import h5py

    from cosim.cli import main

    rng = np.random.default_rng(3)
    np.save(tmp_path / "G.npy", 1.0 / rng.uniform(1e3, 12e3, size=(5, 4)))
    np.save(tmp_path / "V.npy", rng.uniform(-0.3, 0.3, size=(5,)))
    maps = {}
    for engine in ("fast", "spice"):
        out, png = tmp_path / f"{engine}.h5", tmp_path / f"{engine}.png"
        assert main(["tile", "--conductance", str(tmp_path / "G.npy"), "--voltage", str(tmp_path / "V.npy"),
                     "--r-wire", "2", "--r-driver", "10", "--access", "nmos", "--engine", engine,
                     "--irdrop", str(png), "--out", str(out)]) == 0
        assert png.stat().st_size > 1000
        with h5py.File(out) as h5:
            assert h5["irdrop"].attrs["engine"] == engine
            maps[engine] = h5["irdrop"][()]
    np.testing.assert_allclose(maps["fast"], maps["spice"], rtol=0, atol=1e-8)
