"""The ngspice runner: errors carry netlist and log, hangs are killed at the
time limit, non-convergence is retried then reported, raw files parse alike."""

from __future__ import annotations

import time

import numpy as np
import pytest

from cosim.core.errors import SpiceConvergenceError, SpiceError, SpiceTimeout
from cosim.spice.ngspice import run_netlist
from cosim.spice.rawfile import read_raw


def test_unknown_model_is_an_error_carrying_netlist_and_log(tmp_path):
    text = "bad model\nV1 a 0 DC 1\nM1 a a 0 0 nosuchmodel w=1u l=1u\n.op\n.end\n"
    with pytest.raises(SpiceError) as info:
        run_netlist(text, keep_dir=tmp_path)
    assert "nosuchmodel" in info.value.netlist
    assert info.value.log and "rejected" in str(info.value)


def test_a_run_past_its_time_limit_is_killed(tmp_path):
    text = "long rc\nV1 a 0 SIN(0 1 1meg)\nR1 a b 1k\nC1 b 0 1n\n.tran 1p 10m 0 1p\n.end\n"
    start = time.perf_counter()
    with pytest.raises(SpiceTimeout):
        run_netlist(text, timeout_s=1.0, keep_dir=tmp_path)
    assert time.perf_counter() - start < 10.0


def test_no_solution_is_retried_then_reported_as_non_convergence(tmp_path):
    """1 mA forced into a node whose only element sinks 0 or 2 mA: no DC solution."""
    text = ("no solution\nI1 0 a DC 1m\nB1 a 0 I = (V(a) > 0.5) ? 2m : 0\n"
            "R1 a 0 1e15\n.op\n.end\n")
    with pytest.raises(SpiceConvergenceError) as info:
        run_netlist(text, keep_dir=tmp_path)
    assert ".options noopiter" in info.value.netlist  # the last retry level ran


def test_ascii_and_binary_raw_files_read_the_same(tmp_path):
    body = "V1 a 0 SIN(0 1 1meg)\nR1 a b 1k\nC1 b 0 1n\n"
    for kind in ("binary", "ascii"):
        text = (f"rc {kind}\n{body}.control\nset filetype={kind}\ntran 10n 2u\nwrite tile.raw\n"
                "op\nset appendwrite\nwrite tile.raw\nquit 0\n.endc\n.end\n")
        run_netlist(text, keep_dir=tmp_path / kind)
    binary, ascii_ = read_raw(tmp_path / "binary" / "tile.raw"), read_raw(tmp_path / "ascii" / "tile.raw")
    assert [p.name for p in binary] == [p.name for p in ascii_] == ["Transient Analysis", "Operating Point"]
    for b, a in zip(binary, ascii_):
        assert set(b.vectors) == set(a.vectors)
        for name in b.vectors:
            assert np.allclose(b[name], a[name], rtol=1e-8, atol=1e-15)
