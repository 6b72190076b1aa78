"""PySpice export (`cosim.to_pyspice`, `cosim netlist --pyspice`): PySpice's own
simulator (the NgSpiceShared backend, real libngspice) run on the exported
Circuit reproduces cosim's currents to 1e-9, in .op and .tran; the written
script builds the same circuit and carries no user text unescaped."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import cosim
from cosim.core.config import AdcSpec, DacSpec, TiaSpec, TranSpec
from cosim.core.errors import InputError
from cosim.core.netsafe import netlist_name
from cosim.core.tile import TileSpec
from cosim.engines import solve
from cosim.spice.pyspice_export import pyspice_script, simulator, transient_args


def _tile(access: str, tia: str, seed: int, rows: int = 5, cols: int = 4) -> tuple[TileSpec, np.ndarray]:
    rng = np.random.default_rng(seed)
    spec = TileSpec(rng.uniform(1.1e-3, 1.9e-2, (rows, cols)), r_wire=1.0, r_driver=10.0, access=access,
                    dac=DacSpec(bits=6), adc=AdcSpec(bits=6), tia=TiaSpec(kind=tia))
    return spec, rng.uniform(-0.3, 0.3, rows)


def _close(got: np.ndarray, ref: np.ndarray) -> None:
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-9 * np.abs(ref).max())


@pytest.mark.parametrize("access", ["none", "nmos"])
@pytest.mark.parametrize("tia", ["ideal", "vcvs", "opamp"])
def test_pyspice_operating_point_reproduces_cosim(access, tia):
    spec, v = _tile(access, tia, seed=len(access) + len(tia))
    ref = solve(spec, v, engine="spice")
    analysis = simulator(cosim.to_pyspice(spec, v)).operating_point()
    current = np.array([float(analysis.branches[f"vsense_c{j}"][0]) for j in range(spec.cols)])
    vout = np.array([float(analysis.nodes[f"tia_c{j}"][0]) for j in range(spec.cols)])
    codes = np.array([float(analysis.nodes[f"adc_c{j}"][0]) for j in range(spec.cols)])
    _close(current, ref.current[0])
    _close(vout, ref.vout[0])
    np.testing.assert_array_equal(np.rint(codes), ref.adc_code[0])


@pytest.mark.parametrize("access", ["none", "nmos"])
def test_pyspice_transient_reproduces_cosim(access):
    spec, v = _tile(access, "opamp", seed=3, rows=3, cols=3)
    tran = TranSpec()
    ref = solve(spec, v, engine="spice", mode="tran", tran=tran)
    analysis = simulator(cosim.to_pyspice(spec, v, mode="tran", tran=tran)).transient(**transient_args(tran))
    time = np.array(analysis.time)
    current = np.array([np.interp(tran.t_sample, time, np.array(analysis.branches[f"vsense_c{j}"]))
                        for j in range(spec.cols)])
    _close(current, ref.current[0])
    states = np.array(analysis.nodes["x1_2"])
    _close(np.interp(ref.waveforms[0]["time"], time, states), ref.waveforms[0]["v(x1_2)"])


def test_more_than_one_input_vector_is_refused_in_one_line():
    spec, _ = _tile("none", "ideal", 0)
    with pytest.raises(InputError, match="one input vector"):
        cosim.to_pyspice(spec, np.zeros((2, spec.rows)))


def test_import_cosim_does_not_import_pyspice():
    code = "import sys, cosim; assert 'PySpice' not in sys.modules; f = cosim.to_pyspice; print(f.__module__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "cosim.spice.pyspice_export"


def test_the_script_builds_the_same_circuit(tmp_path):
    for mode in ("op", "tran"):
        spec, v = _tile("nmos", "vcvs", 1, rows=3, cols=2)
        path = tmp_path / f"tile_{mode}.py"
        path.write_text(pyspice_script(spec, v, mode, script_name=path.name))
        out = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == str(cosim.to_pyspice(spec, v, mode)).strip()


def test_cosim_netlist_pyspice_writes_a_safe_script(tmp_path):
    """A conductance file whose name tries to close the docstring and run code: the
    name reaches the script only in its netlist-safe form, and running it runs nothing else."""
    hostile = tmp_path / 'g"""; import os; os.system("touch PWNED") #.npy'
    np.save(hostile, np.full((2, 3), 5e-3))
    np.save(tmp_path / "v.npy", np.full((2, 2), 0.1))
    script = tmp_path / 'out"""x.py'
    run = subprocess.run([sys.executable, "-m", "cosim", "netlist", "--conductance", str(hostile),
                          "--voltage", str(tmp_path / "v.npy"), "--access", "nmos", "--pyspice", str(script)],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "input vector 0 of 2" in run.stdout
    text = script.read_text()
    assert "import os" not in text and 'out"""x' not in text
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert not (tmp_path / "PWNED").exists()
    assert out.stdout.startswith(f".title cosim tile '{netlist_name(hostile.stem)}' 2x3")


def test_cosim_netlist_pyspice_needs_a_py_name(tmp_path):
    np.save(tmp_path / "g.npy", np.full((2, 2), 5e-3))
    np.save(tmp_path / "v.npy", np.full(2, 0.1))
    run = subprocess.run([sys.executable, "-m", "cosim", "netlist", "--conductance", str(tmp_path / "g.npy"),
                          "--voltage", str(tmp_path / "v.npy"), "--pyspice", str(tmp_path / "x.txt")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "must end in .py" in run.stderr
