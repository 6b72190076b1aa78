"""The golden 4x4 netlists under netlists/: the generator must not drift from
them, and each one runs as-is with `ngspice -b`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from cosim.engines import solve
from cosim.spice.goldens import golden_cases, write_golden_netlists
from cosim.spice.ngspice import ngspice_executable
from cosim.spice.rawfile import read_raw

GOLDEN = Path(__file__).resolve().parent.parent / "netlists"
REGENERATE = "make netlists  (or: cosim netlist --golden netlists)"


def test_generator_output_matches_committed_golden_netlists(tmp_path):
    write_golden_netlists(tmp_path)
    for name in golden_cases():
        fresh = sorted(p.name for p in (tmp_path / name).iterdir())
        committed = sorted(p.name for p in (GOLDEN / name).iterdir() if p.suffix != ".raw")
        assert fresh == committed, f"{name}: file list drifted; review and run {REGENERATE}"
        for file in fresh:
            assert (tmp_path / name / file).read_text() == (GOLDEN / name / file).read_text(), (
                f"netlists/{name}/{file} drifted from the generator; review and run {REGENERATE}")


@pytest.mark.parametrize("name", list(golden_cases()))
def test_golden_netlist_runs_with_ngspice_batch(tmp_path, name):
    work = tmp_path / name
    shutil.copytree(GOLDEN / name, work)
    out = subprocess.run([ngspice_executable(), "-b", "tile.cir"], cwd=work, capture_output=True,
                         text=True, timeout=300)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log
    assert "error" not in log.lower(), log
    spec, voltages, mode, tran = golden_cases()[name]
    plots = read_raw(work / "tile.raw")
    assert len(plots) == voltages.shape[0]
    # Same numbers as the spice engine on the same spec (which uses absolute includes).
    result = solve(spec, voltages, mode=mode, tran=tran)
    for b, plot in enumerate(plots):
        currents = np.array([plot[f"i(vsense_c{j})"] for j in range(spec.cols)])
        if mode == "op":
            assert np.array_equal(currents[:, 0], result.current[b])
        else:
            final = np.array([result.waveforms[b][f"i(vsense_c{j})"][-1] for j in range(spec.cols)])
            assert np.array_equal(currents[:, -1], final)
