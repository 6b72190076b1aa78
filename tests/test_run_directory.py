"""`cosim.spice.process.run_directory`: a simulator's temporary run directory
is removed on every way out but a simulator failure, including a SIGTERM
that arrives while the directory is being made (the window a killed pool's
other worker can hit)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from cosim.core.errors import SpiceError
from cosim.spice import process


class Stop(SystemExit):
    """What cosim's SIGTERM handler raises (a SystemExit)."""


@pytest.fixture
def tmpdir_env(tmp_path, monkeypatch):
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(process.tempfile, "tempdir", str(root))
    return root


def _raise_stop(signum, frame):
    raise Stop(128 + signum)


def test_a_sigterm_while_the_directory_is_made_removes_it(tmpdir_env, monkeypatch):
    made = process.make_run_dir

    def make_then_signal(engine: str) -> Path:
        path = made(engine)
        os.kill(os.getpid(), signal.SIGTERM)  # lands right after mkdtemp, before any clean-up is armed
        return path

    monkeypatch.setattr(process, "make_run_dir", make_then_signal)
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    try:
        with pytest.raises(Stop):
            with process.run_directory("ngspice"):
                pytest.fail("the held SIGTERM must end the block before it runs")
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert list(tmpdir_env.iterdir()) == []


def test_an_interrupt_removes_the_directory_and_a_simulator_failure_keeps_it(tmpdir_env):
    with pytest.raises(KeyboardInterrupt):
        with process.run_directory("ngspice") as run_dir:
            (run_dir / "tile.cir").write_text("* netlist\n")
            raise KeyboardInterrupt
    assert not run_dir.exists()
    with pytest.raises(SpiceError):
        with process.run_directory("vacask") as kept:
            raise SpiceError(f"failed (run directory {kept})")
    assert kept.is_dir() and kept.name.startswith(f"cosim-vacask-{os.getpid()}-")


def test_a_given_directory_is_the_callers_and_is_never_removed(tmp_path):
    keep = tmp_path / "keep"
    keep.mkdir()
    with pytest.raises(RuntimeError):
        with process.run_directory("tran", keep) as run_dir:
            assert run_dir == keep
            raise RuntimeError("a bug")
    assert keep.is_dir()
