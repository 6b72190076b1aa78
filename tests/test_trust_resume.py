"""Concurrency and resume: a run killed mid-tile (its ngspice, or cosim
itself) resumes to a RUN.h5 bit-identical to an uninterrupted run; a second
run on the same --out is refused and leaves the first one's checkpoints; a
`RUN.h5.partial` cosim did not make is never removed; corrupt checkpoints are
recomputed with a warning; a lost Dask scheduler ends in one line and a local
--resume finishes the run.

Real `cosim` child processes on real ngspice tiles, real signals
(tests/trust_helpers.py). Compared: every dataset of RUN.h5 byte for byte,
and every attribute except `wall_s` (a tile's wall time) and `command`
(the resumed command line adds --resume) (trust_helpers.VOLATILE_ATTRS).
"""

from __future__ import annotations

import os
import signal
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import trust_helpers
from trust_helpers import assert_same_run, kill_all, new_token, run_cosim, simulators, start_cosim, wait_for

from cosim.cli import main
from cosim.core.atomic import MARKER


@pytest.fixture(scope="module")
def six_tiles(tmp_path_factory):
    """A Linear(144, 12) on 24x24 1T1R tiles: six ngspice tiles of ~1 s each
    (16 input vectors), and the RUN.h5 of an uninterrupted run of it."""
    root = tmp_path_factory.mktemp("six_tiles")
    torch.manual_seed(3)
    torch.save(torch.nn.Linear(144, 12), root / "layer.pt")
    token = new_token()
    done = run_cosim(_args(root, root / "reference.h5"), token, root / "tmp", root)
    assert done.returncode == 0, done.stderr
    return root


def _args(root: Path, out: Path) -> list[str]:
    return ["simulate", str(root / "layer.pt"), "--tile", "24", "--engine", "spice", "--batch", "16",
            "--preset", "seed001_mlp", "--quiet", "--out", str(out)]


def _checkpoints(out: Path) -> list[Path]:
    """Finished tiles in RUN.h5.partial/ (not the hidden temporary of one being written)."""
    return sorted(p for p in Path(f"{out}.partial").glob("*.npz") if not p.name.startswith("."))


def _messages(text: str) -> list[str]:
    return [line for line in text.strip().splitlines() if not line.startswith("cosim: warning: ")]


@pytest.mark.parametrize("victim", ["ngspice", "cosim"])
def test_a_run_killed_mid_tile_then_resumed_is_bit_identical_to_an_uninterrupted_run(six_tiles, tmp_path, victim):
    token, tmpdir = new_token(), tmp_path / "tmp"
    out = tmp_path / "run.h5"
    stderr = tmp_path / "stderr.txt"
    child = start_cosim(_args(six_tiles, out), token, tmpdir, tmp_path, stderr)
    try:
        # Some tiles finished (checkpointed), one in ngspice right now.
        running = wait_for(lambda: _checkpoints(out) and simulators(token), 120)
        assert running, stderr.read_text()
        finished = len(_checkpoints(out))
        assert 1 <= finished < 6
        if victim == "ngspice":
            os.kill(running[0], signal.SIGKILL)
            child.wait(timeout=60)
            lines = _messages(stderr.read_text())
            assert child.returncode == 2 and len(lines) == 1 and "ngspice crashed (signal 9)" in lines[0], lines
        else:
            child.kill()
            child.wait(timeout=10)
            assert wait_for(lambda: not simulators(token), 2), "ngspice outlived a SIGKILLed cosim"
            assert Path(f"{out}.lock").exists(), "a SIGKILLed run leaves its lock file (but no lock)"
        assert not out.exists()
        assert len(_checkpoints(out)) >= finished
    finally:
        child.kill()
        kill_all(token)

    resumed = run_cosim(_args(six_tiles, out) + ["--resume"], token, tmpdir, tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    reused = int(resumed.stdout.split(" reused from an interrupted run")[0].rsplit("(", 1)[1])
    assert reused >= finished
    assert not Path(f"{out}.partial").exists() and not Path(f"{out}.lock").exists()
    assert_same_run(out, six_tiles / "reference.h5")


def test_a_second_run_on_the_same_out_is_refused_in_one_line_and_the_first_ones_checkpoints_stay(
        six_tiles, tmp_path, capsys):
    token, tmpdir = new_token(), tmp_path / "tmp"
    out = tmp_path / "run.h5"
    first = start_cosim(_args(six_tiles, out), token, tmpdir, tmp_path, tmp_path / "stderr.txt")
    try:
        assert wait_for(lambda: _checkpoints(out), 120), (tmp_path / "stderr.txt").read_text()
        before = {p.name: p.read_bytes() for p in _checkpoints(out)}
        for extra in ([], ["--resume"]):
            assert main(_args(six_tiles, out) + extra) == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1, err
            assert f"is being written by another cosim run (process {first.pid})" in err[0]
            assert first.poll() is None, "the refusal came while the first run was still running"
        after = {p.name: p.read_bytes() for p in _checkpoints(out)}
        assert before.items() <= after.items(), "the second run touched the first one's checkpoints"
        assert first.wait(timeout=300) == 0
    finally:
        first.kill()
        kill_all(token)
    assert_same_run(out, six_tiles / "reference.h5")
    assert not Path(f"{out}.lock").exists()


# ----- fast-engine runs in this process (no ngspice needed) ---------------------------
@pytest.fixture
def small(tmp_path):
    """A Linear(40, 6) on 8x8 tiles: 5 x 2 = 10 fast tiles, its input batch in a file."""
    torch.manual_seed(5)
    torch.save(torch.nn.Linear(40, 6), tmp_path / "layer.pt")
    torch.save(torch.rand(7, 40, dtype=torch.float64) * 2 - 1, tmp_path / "x.pt")
    return tmp_path


def _fast(root: Path, out: Path, *extra: str) -> list[str]:
    return ["simulate", str(root / "layer.pt"), "--input", str(root / "x.pt"), "--tile", "8",
            "--engine", "fast", "--preset", "seed001_mlp", "--quiet", "--out", str(out), *extra]


@pytest.mark.parametrize("resume", [False, True])
def test_a_partial_directory_cosim_did_not_make_is_refused_and_never_removed(small, capsys, resume):
    out = small / "run.h5"
    users = small / "run.h5.partial"
    users.mkdir()
    (users / "notes.txt").write_text("mine")
    assert main(_fast(small, out, *(["--resume"] if resume else []))) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "was not made by cosim" in err[0] and MARKER in err[0], err
    assert sorted(p.name for p in users.iterdir()) == ["notes.txt"]
    assert (users / "notes.txt").read_text() == "mine"
    assert not out.exists() and not Path(f"{out}.lock").exists()


def test_a_file_named_like_the_partial_directory_is_refused_and_kept(small, capsys):
    out = small / "run.h5"
    (small / "run.h5.partial").write_text("not a directory")
    assert main(_fast(small, out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a directory cosim made" in err[0], err
    assert (small / "run.h5.partial").read_text() == "not a directory"


def _interrupted_run(root: Path, out: Path) -> list[Path]:
    """The checkpoints that `cosim simulate` (same preset, tile, engine, input)
    leaves when it stops after every tile: a Simulation with the run's Checkpoint."""
    from cosim.core.config import load_preset
    from cosim.run.checkpoint import Checkpoint
    from cosim.run.simulation import SimOptions, Simulation

    module = torch.load(root / "layer.pt", weights_only=False)
    x = torch.load(root / "x.pt")
    with Checkpoint(out, resume=False) as checkpoint:
        with torch.no_grad():
            Simulation(load_preset("seed001_mlp"), SimOptions(tile=8, engine="fast", quiet=True),
                       checkpoint).forward(module, x)
    return _checkpoints(out)


def test_corrupt_checkpoints_are_recomputed_with_a_warning_and_the_run_equals_a_fresh_one(small, capsys):
    out = small / "run.h5"
    saved = _interrupted_run(small, out)
    assert len(saved) == 10
    good = dict(np.load(saved[0]))
    rows, cols = good["current"].shape

    def npz(path: Path, **arrays) -> None:
        with open(path, "wb") as handle:
            np.savez(handle, **arrays)

    broken = {
        "truncated": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
        "empty": lambda p: p.write_bytes(b""),
        "garbage": lambda p: p.write_bytes(os.urandom(300)),
        "a bare .npy": lambda p: p.write_bytes(b"\x93NUMPY" + p.read_bytes()[6:40]),
        "flipped byte": lambda p: p.write_bytes(_flip_last_data_byte(p.read_bytes())),
        "wrong shape": lambda p: npz(p, **{**good, "current": np.zeros((rows + 1, cols))}),
        "NaN": lambda p: npz(p, **{**good, "vout": np.full((rows, cols), np.nan)}),
        "missing array": lambda p: npz(p, current=good["current"], wall_s=good["wall_s"], netlist=good["netlist"]),
        "pickled object": lambda p: npz(p, **{**good, "netlist": np.array([{"a": 1}], dtype=object)}),
    }
    for path, corrupt in zip(saved, broken.values()):
        corrupt(path)
    capsys.readouterr()
    assert main(_fast(small, out, "--resume")) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if "recomputing that tile" in line]
    assert len(warnings) == len(broken), captured.err
    assert all(line.startswith("cosim: warning: checkpoint ") for line in warnings)
    assert f"({10 - len(broken)} reused from an interrupted run)" in captured.out
    assert main(_fast(small, small / "fresh.h5")) == 0
    assert_same_run(out, small / "fresh.h5")


def _flip_last_data_byte(data: bytes) -> bytes:
    """Flip the last data byte of the archive's first member (stored
    uncompressed by np.savez); the zip CRC-32 check catches it."""
    import io
    import struct

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.infolist()[0]
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
    at = info.header_offset + 30 + name_len + extra_len + info.compress_size - 1
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]


# ----- Dask -----------------------------------------------------------------------------------
def test_losing_the_dask_scheduler_ends_in_one_line_and_a_local_resume_is_bit_identical(six_tiles, tmp_path):
    out = tmp_path / "run.h5"
    with trust_helpers.dask_cluster(tmp_path) as cluster:
        token = cluster["token"]
        stderr = tmp_path / "stderr.txt"
        child = start_cosim(_args(six_tiles, out) + ["--executor", "dask", "--scheduler", cluster["address"]],
                            token, cluster["tmpdir"], tmp_path, stderr)
        try:
            assert wait_for(lambda: _checkpoints(out) and simulators(token), 120), stderr.read_text()
            cluster["scheduler"].kill()
            child.wait(timeout=60)
            lines = _messages(stderr.read_text())
            assert child.returncode == 2 and len(lines) == 1, stderr.read_text()
            assert "lost the Dask scheduler" in lines[0] and "--executor local --resume" in lines[0]
            assert wait_for(lambda: not simulators(token), 10), "the worker's ngspice outlived the scheduler"
        finally:
            child.kill()
        resumed = run_cosim(_args(six_tiles, out) + ["--executor", "local", "--resume"], token,
                            cluster["tmpdir"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "reused from an interrupted run" in resumed.stdout
    assert_same_run(out, six_tiles / "reference.h5")


def test_a_stale_lock_file_left_by_a_killed_run_blocks_nothing(small, capsys):
    out = small / "run.h5"
    Path(f"{out}.lock").write_text("4194303\n")  # what a SIGKILLed run leaves: its pid, no flock
    assert main(_fast(small, out)) == 0
    assert out.exists() and not Path(f"{out}.lock").exists()


@pytest.mark.parametrize("kind", ["user file", "symlink"])
def test_a_lock_path_that_is_not_cosims_is_refused_and_left_alone(small, capsys, kind):
    out = small / "run.h5"
    lock = Path(f"{out}.lock")
    target = small / "precious.txt"
    target.write_text("not a pid")
    if kind == "user file":
        lock.write_text("my notes about run.h5")
    else:
        lock.symlink_to(target)
    assert main(_fast(small, out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(lock) in err[0], err
    assert target.read_text() == "not a pid"
    assert lock.is_symlink() if kind == "symlink" else lock.read_text() == "my notes about run.h5"
    assert not out.exists() and not Path(f"{out}.partial").exists()
