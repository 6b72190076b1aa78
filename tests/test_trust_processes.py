"""Clean process trees: Ctrl-C (SIGINT) or SIGTERM of cosim, a killed pool or
Dask worker, a cancelled Dask task and a SIGKILLed cosim each end every
ngspice process cosim started and (where anyone is left to do it) remove its
run directory; --timeout / --spice-timeout are checked and used.

Real `cosim` child processes on real ngspice tiles that take seconds, real
signals, and a /proc scan for the processes they started (tests/trust_helpers.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import trust_helpers
from trust_helpers import child_env, kill_all, new_token, parent_of, processes, simulators, start_cosim, wait_for

from cosim.cli import main
from cosim.spice.process import RunCancelled, cancel_when, run_process

# Gone means gone: once cosim has exited, its simulators must already be dead
# (they are killed and reaped before it exits); python helpers such as the
# forkserver get this long to notice and exit.
HELPERS_GRACE_S = 10.0


@pytest.fixture(scope="module")
def slow_inputs(tmp_path_factory):
    """A 1T1R 48x48 tile with 12 vectors (`cosim tile`: ~5 s in ngspice), a
    Linear(48, 16) (`cosim simulate --tile 48 --batch 12`: one 48x32 tile, ~4 s)
    and a Linear(96, 24) (`--tile 48 --batch 40`: two 48x48 tiles of ~15 s, for
    two pool workers or a Dask worker)."""
    root = tmp_path_factory.mktemp("slow")
    rng = np.random.default_rng(0)
    np.save(root / "G.npy", rng.uniform(1e-4, 1e-3, (48, 48)))
    np.save(root / "V.npy", rng.uniform(0.0, 0.3, (12, 48)))
    torch.manual_seed(0)
    torch.save(torch.nn.Linear(48, 16), root / "one_tile.pt")
    torch.save(torch.nn.Linear(96, 24), root / "two_tiles.pt")
    return root


def _command(kind: str, inputs: Path, out: Path) -> list[str]:
    if kind == "tile":
        return ["tile", "--conductance", str(inputs / "G.npy"), "--voltage", str(inputs / "V.npy"),
                "--access", "nmos", "--r-wire", "1", "--engine", "spice", "--out", str(out)]
    simulate = ["simulate", "--engine", "spice", "--preset", "seed001_mlp", "--quiet", "--out", str(out)]
    if kind == "simulate":
        return simulate + [str(inputs / "one_tile.pt"), "--tile", "48", "--batch", "12"]
    return simulate + [str(inputs / "two_tiles.pt"), "--tile", "48", "--batch", "40", "--workers", "2"]


def _messages(stderr: Path) -> list[str]:
    """cosim's stderr lines other than its warnings (the bench estimate of ngspice time)."""
    return [l for l in stderr.read_text().strip().splitlines() if not l.startswith("cosim: warning: ")]


def _leftovers(tmpdir: Path) -> list[str]:
    return sorted(p.name for p in tmpdir.iterdir() if p.name.startswith("cosim-"))


@pytest.mark.parametrize("kind", ["tile", "simulate", "simulate-pool"])
@pytest.mark.parametrize("signum, status, line", [
    (signal.SIGINT, 130, "cosim: interrupted"),
    (signal.SIGTERM, 143, "cosim: terminated (SIGTERM)"),
])
def test_signal_to_cosim_mid_ngspice_ends_every_ngspice_and_removes_run_dirs(slow_inputs, tmp_path, kind,
                                                                              signum, status, line):
    token, tmpdir = new_token(), tmp_path / "tmp"
    out = tmp_path / "out.h5"
    stderr = tmp_path / "stderr.txt"
    child = start_cosim(_command(kind, slow_inputs, out), token, tmpdir, tmp_path, stderr)
    try:
        wanted = 2 if kind == "simulate-pool" else 1
        running = wait_for(lambda: len(simulators(token)) >= wanted, 120)
        assert running, f"no ngspice started: {stderr.read_text()}"
        assert _leftovers(tmpdir), "ngspice runs in a cosim-ngspice-* directory under TMPDIR"
        child.send_signal(signum)
        child.wait(timeout=30)
        assert child.returncode == status
        assert _messages(stderr) == [line]
        assert simulators(token) == [], "an ngspice outlived cosim"
        assert wait_for(lambda: not processes(token), HELPERS_GRACE_S), processes(token)
        assert _leftovers(tmpdir) == []
        assert not out.exists() and list(tmp_path.glob(".out.h5*")) == []
    finally:
        child.kill()
        kill_all(token)


def test_a_pool_worker_killed_mid_tile_takes_its_ngspice_down_and_the_run_ends_in_one_line(slow_inputs, tmp_path):
    token, tmpdir = new_token(), tmp_path / "tmp"
    stderr = tmp_path / "stderr.txt"
    child = start_cosim(_command("simulate-pool", slow_inputs, tmp_path / "out.h5"), token, tmpdir, tmp_path,
                        stderr)
    try:
        running = wait_for(lambda: simulators(token), 120)
        assert running, stderr.read_text()
        victim = running[0]
        worker = parent_of(victim)
        os.kill(worker, signal.SIGKILL)
        killed = time.monotonic()
        assert wait_for(lambda: victim not in simulators(token), 5), "ngspice outlived its worker"
        child.wait(timeout=60)
        # noticed at once, not when the other worker's ~15 s tile ends (the pool's manager
        # thread must watch every worker: `executors._rescan_workers`)
        assert time.monotonic() - killed < 8.0, "cosim waited for the other tile before it saw the dead worker"
        lines = _messages(stderr)
        assert child.returncode == 2 and len(lines) == 1
        assert "a worker process died" in lines[0] and "--resume" in lines[0]
        assert simulators(token) == []
        assert wait_for(lambda: not processes(token), HELPERS_GRACE_S), processes(token)
        assert _leftovers(tmpdir) == [], "the parent removes the run directories of a killed worker"
    finally:
        child.kill()
        kill_all(token)


def test_sigkill_of_cosim_stops_its_pool_workers_and_their_ngspice(slow_inputs, tmp_path):
    token, tmpdir = new_token(), tmp_path / "tmp"
    child = start_cosim(_command("simulate-pool", slow_inputs, tmp_path / "out.h5"), token, tmpdir, tmp_path,
                        tmp_path / "stderr.txt")
    try:
        assert wait_for(lambda: len(simulators(token)) >= 2, 120)
        child.kill()
        child.wait(timeout=10)
        # Nobody is left to signal them: each worker watches cosim and stops itself.
        assert wait_for(lambda: not simulators(token), 10), "ngspice outlived a SIGKILLed cosim"
        assert wait_for(lambda: not processes(token), HELPERS_GRACE_S), processes(token)
        assert _leftovers(tmpdir) == [], "the stopped workers removed their run directories"
    finally:
        kill_all(token)


def test_sigkill_of_cosim_takes_its_ngspice_down_at_once(slow_inputs, tmp_path):
    """PR_SET_PDEATHSIG: the kernel kills ngspice when cosim dies; nothing can
    clean up after a SIGKILL, so the run directory stays (named cosim-ngspice-<pid>-*)."""
    token, tmpdir = new_token(), tmp_path / "tmp"
    child = start_cosim(_command("tile", slow_inputs, tmp_path / "out.h5"), token, tmpdir, tmp_path,
                        tmp_path / "stderr.txt")
    try:
        assert wait_for(lambda: simulators(token), 120)
        child.kill()
        child.wait(timeout=10)
        assert wait_for(lambda: not simulators(token), 2), "ngspice outlived a SIGKILLed cosim"
        assert [name.startswith(f"cosim-ngspice-{child.pid}-") for name in _leftovers(tmpdir)] == [True]
    finally:
        kill_all(token)


# ----- run_process / run_netlist in this process ------------------------------------
def _interrupt_main_thread_after(seconds: float) -> threading.Timer:
    timer = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    return timer


def test_ctrl_c_while_waiting_kills_the_whole_process_group_before_it_propagates(tmp_path):
    token = new_token()
    script = "sleep 60 & sleep 60 & wait"  # grandchildren too: the group is killed, not just the shell
    timer = _interrupt_main_thread_after(1.0)
    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_process(["sh", "-c", script], tmp_path, 60, env=child_env(token, tmp_path / "tmp"))
    finally:
        timer.cancel()
    assert time.monotonic() - started < 10
    # The shell is reaped before the interrupt propagates; the sleeps got SIGKILL by then too.
    assert wait_for(lambda: not processes(token), 2), processes(token)


def test_ctrl_c_during_an_ngspice_tile_removes_its_run_directory(slow_inputs, tmp_path, monkeypatch):
    from cosim.core.tile import TileSpec
    from cosim.engines import solve_spice

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    spec = TileSpec(np.load(slow_inputs / "G.npy"), r_wire=1.0, access="nmos")
    voltages = np.load(slow_inputs / "V.npy")
    timer = _interrupt_main_thread_after(1.0)  # the tile takes ~5 s
    try:
        with pytest.raises(KeyboardInterrupt):
            solve_spice(spec, voltages, timeout_s=60)
    finally:
        timer.cancel()
    assert [p.name for p in tmp_path.iterdir()] == []


def test_a_cancelled_task_kills_its_simulator(tmp_path):
    token = new_token()
    cancel_at = time.monotonic() + 0.5
    started = time.monotonic()
    with pytest.raises(RunCancelled):
        with cancel_when(lambda: time.monotonic() > cancel_at):
            run_process(["sleep", "60"], tmp_path, 60, env=child_env(token, tmp_path / "tmp"))
    assert time.monotonic() - started < 5
    assert processes(token) == []


# ----- Dask workers ----------------------------------------------------------------------
@pytest.fixture
def dask_cluster(tmp_path):
    with trust_helpers.dask_cluster(tmp_path) as cluster:
        yield cluster


def _dask_simulate(slow_inputs: Path, tmp_path: Path, cluster: dict) -> subprocess.Popen:
    args = ["simulate", str(slow_inputs / "two_tiles.pt"), "--tile", "48", "--batch", "40", "--engine", "spice",
            "--preset", "seed001_mlp", "--quiet", "--executor", "dask", "--scheduler", cluster["address"],
            "--out", str(tmp_path / "dask.h5")]
    return start_cosim(args, cluster["token"], cluster["tmpdir"], tmp_path, tmp_path / "stderr.txt")


def test_ctrl_c_of_a_dask_client_cancels_its_tasks_and_their_ngspice_dies_on_the_live_worker(
        slow_inputs, tmp_path, dask_cluster):
    token = dask_cluster["token"]
    child = _dask_simulate(slow_inputs, tmp_path, dask_cluster)
    try:
        running = wait_for(lambda: simulators(token), 120)
        assert running, (tmp_path / "stderr.txt").read_text()
        child.send_signal(signal.SIGINT)
        child.wait(timeout=30)
        assert child.returncode == 130
        assert _messages(tmp_path / "stderr.txt") == ["cosim: interrupted"]
        # A 24x48 tile of 40 vectors runs for seconds; the cancelled task's ngspice goes within ~1 s.
        assert wait_for(lambda: not simulators(token), 3), "the cancelled task's ngspice kept running"
        assert dask_cluster["worker"].poll() is None, "the worker itself lives on"
        assert wait_for(lambda: not _leftovers(dask_cluster["tmpdir"]), 3), _leftovers(dask_cluster["tmpdir"])
    finally:
        child.kill()


def test_a_killed_dask_worker_takes_its_ngspice_down(slow_inputs, tmp_path, dask_cluster):
    token = dask_cluster["token"]
    child = _dask_simulate(slow_inputs, tmp_path, dask_cluster)
    try:
        running = wait_for(lambda: simulators(token), 120)
        assert running, (tmp_path / "stderr.txt").read_text()
        os.kill(parent_of(running[0]), signal.SIGKILL)  # the worker process (its nanny starts another)
        assert wait_for(lambda: running[0] not in simulators(token), 2), "ngspice outlived its Dask worker"
        child.send_signal(signal.SIGINT)
        child.wait(timeout=30)
        assert child.returncode == 130
    finally:
        child.kill()


# ----- time limits -------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [
    ["tile", "--conductance", "G.npy", "--voltage", "V.npy", "--timeout", "0"],
    ["tile", "--conductance", "G.npy", "--voltage", "V.npy", "--timeout=-3"],
    ["tile", "--conductance", "G.npy", "--voltage", "V.npy", "--timeout", "nan"],
    ["simulate", "one_tile.pt", "--spice-timeout", "0"],
    ["simulate", "one_tile.pt", "--spice-timeout=-1"],
    ["simulate", "one_tile.pt", "--spice-timeout", "inf"],
    ["evaluate", "one_tile.pt", "--data", "digits", "--spice-timeout", "0"],
    ["spotcheck", "--spice-timeout=-2"],
    ["sweep", "mlp-digits", "--param", "stuck_at_rate=0", "--spice-timeout", "0"],
])
def test_a_time_limit_that_is_not_positive_is_refused_in_one_line(slow_inputs, tmp_path, monkeypatch, capsys,
                                                                 argv):
    monkeypatch.chdir(slow_inputs)
    argv = argv + (["--out", str(tmp_path / "x.h5")] if argv[0] in ("simulate", "evaluate") else [])
    try:
        code = main(argv)
    except SystemExit as exit:  # refused by the option parser itself (cosim.commands.argtypes)
        code = exit.code
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cosim: error:"), err
    assert "must be a positive number of seconds" in err[0] or "must be a finite number > 0" in err[0], err
    flag = "--timeout" if argv[0] == "tile" else "--spice-timeout"
    assert flag in err[0]
    assert list(tmp_path.iterdir()) == []


def test_spice_timeout_limits_each_ngspice_run_of_simulate(slow_inputs, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    started = time.monotonic()
    code = main(_command("simulate", slow_inputs, tmp_path / "out.h5") + ["--spice-timeout", "0.5"])
    assert code == 2 and time.monotonic() - started < 30
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ran past its 0.5 s limit" in err[0], err
    assert not (tmp_path / "out.h5").exists()


def test_a_simulator_stopped_by_the_file_size_limit_says_so_in_one_line(tmp_path):
    """ngspice killed by SIGXFSZ (a file-size limit: subprocess gives the child
    the default action) is named as that, not as a bare crash."""
    import resource
    import sys

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # cosim's own writes get EFBIG; ngspice's get the signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))

    out = tmp_path / "cal.json"
    child = subprocess.run([sys.executable, "-m", "cosim", "calibrate", "--devices", "3", "--out", str(out)],
                           cwd=tmp_path, capture_output=True, text=True, timeout=300, preexec_fn=limit,
                           env=dict(os.environ, TMPDIR=str(tmp_path)))
    lines = child.stderr.strip().splitlines()
    assert child.returncode == 2 and len(lines) == 1, child.stderr
    assert "file-size limit (SIGXFSZ)" in lines[0] and "ulimit -f" in lines[0], lines[0]
    assert not out.exists()


def test_a_run_that_fails_before_its_first_tile_leaves_no_partial_directory(tmp_path):
    """A checkpoint directory with no finished tile is removed when the run
    ends: nothing to resume, so nothing is left beside --out."""
    layer = tmp_path / "lin.pt"
    torch.save(torch.nn.Linear(4, 3), layer)
    out = tmp_path / "run.h5"
    env = dict(os.environ, COSIM_NGSPICE=str(tmp_path / "no-such-ngspice"))
    import sys

    child = subprocess.run([sys.executable, "-m", "cosim", "simulate", str(layer), "--engine", "spice", "--batch", "2",
                            "--quiet", "--out", str(out)], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                           env=env)
    assert child.returncode == 2 and "COSIM_NGSPICE" in child.stderr, child.stderr
    assert not out.exists() and not Path(f"{out}.partial").exists() and not Path(f"{out}.lock").exists()
