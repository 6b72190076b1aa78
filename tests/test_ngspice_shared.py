"""`--spice ngspice-shared`: libngspice through PySpice's NgSpiceShared in a
worker process. Real libngspice (apt-get install libngspice0), no mocks:
results equal the subprocess runner's, a killed worker is one line and the
next run starts a new one, timeouts and Ctrl-C kill the worker, and nothing
of libngspice or PySpice reaches the terminal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from cosim.core.config import AdcSpec, DacSpec, TiaSpec, TranSpec
from cosim.core.errors import SpiceError, SpiceTimeout
from cosim.core.tile import TileSpec
from cosim.engines import solve
from cosim.spice import ngspice_shared
from cosim.spice.ngspice import run_netlist
from cosim.spice.ngspice_shared import WorkerDied, run_netlist_shared, worker_pid
from cosim.spice.process import clear_stop, request_stop

#: A 4x4 1T1R transient that runs about 6 s in libngspice (10 us at 0.1 ns steps): long enough to interrupt.
LONG_TRAN = TranSpec(t_stop=1e-5, t_step=1e-10, t_max_step=1e-10, t_sample=5e-6)


def _tile(rows: int, cols: int, seed: int, access: str = "nmos") -> tuple[TileSpec, np.ndarray]:
    rng = np.random.default_rng(seed)
    spec = TileSpec(rng.uniform(1.1e-3, 1.9e-2, (rows, cols)), r_wire=1.0, r_driver=10.0, access=access,
                    dac=DacSpec(bits=6), adc=AdcSpec(bits=6), tia=TiaSpec(kind="vcvs"), name=f"t{seed}")
    return spec, rng.uniform(-0.3, 0.3, (3, rows))


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[-1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("access", ["none", "nmos"])
def test_shared_equals_the_subprocess_runner(access):
    """Tiles of different sizes one after another (destroy all / remcirc between
    them: no plot or circuit of one run leaks into the next), .op with 3 vectors."""
    for rows, cols, seed in ((6, 5, 1), (3, 7, 2), (6, 5, 3)):
        spec, v = _tile(rows, cols, seed, access)
        ref = solve(spec, v, spice="ngspice")
        got = solve(spec, v, spice="ngspice-shared")
        np.testing.assert_allclose(got.current, ref.current, rtol=0, atol=1e-9 * np.abs(ref.current).max())
        np.testing.assert_allclose(got.vout, ref.vout, rtol=0, atol=1e-9 * np.abs(ref.vout).max())
        np.testing.assert_array_equal(got.adc_code, ref.adc_code)


def test_shared_transient_gives_the_same_vectors():
    spec, v = _tile(3, 3, 4)
    ref = solve(spec, v[:1], spice="ngspice", mode="tran")
    got = solve(spec, v[:1], spice="ngspice-shared", mode="tran")
    assert set(got.waveforms[0]) == set(ref.waveforms[0])
    for name, values in ref.waveforms[0].items():
        np.testing.assert_allclose(got.waveforms[0][name], values, rtol=0, atol=1e-9 * max(np.abs(values).max(), 1e-30))


def test_a_rejected_netlist_is_the_same_one_line_error():
    text = "bad model\nV1 a 0 DC 1\nM1 a a 0 0 nosuchmodel w=1u l=1u\n.control\nop\nwrite tile.raw\nquit 0\n.endc\n.end\n"
    with pytest.raises(SpiceError) as shared:
        run_netlist_shared(text)
    with pytest.raises(SpiceError) as subproc:
        run_netlist(text)
    assert "rejected the netlist" in str(shared.value) and "rejected the netlist" in str(subproc.value)
    assert len(str(shared.value).splitlines()) == 1
    spec, v = _tile(2, 2, 5)
    solve(spec, v, spice="ngspice-shared")  # the worker still serves


def test_a_netlist_without_a_control_block_is_refused_in_one_line():
    with pytest.raises(SpiceError, match="--spice ngspice"):
        run_netlist_shared("no control\nV1 a 0 1\nR1 a 0 1k\n.op\n.end\n")


def test_a_killed_worker_is_one_line_and_the_next_run_starts_a_new_one():
    spec, v = _tile(4, 4, 6)
    solve(spec, v, spice="ngspice-shared")
    pid = worker_pid()
    assert pid is not None and _alive(pid)
    killer = threading.Timer(0.5, os.kill, (pid, signal.SIGKILL))
    killer.start()
    with pytest.raises(WorkerDied) as info:
        solve(spec, v[:1], spice="ngspice-shared", mode="tran", tran=LONG_TRAN)
    killer.join()
    message = str(info.value)
    assert len(message.splitlines()) == 1
    assert f"pid {pid}" in message and "crashed (signal 9)" in message and "tile t6" in message
    ref = solve(spec, v, spice="ngspice")
    again = solve(spec, v, spice="ngspice-shared")
    assert worker_pid() not in (None, pid)
    np.testing.assert_allclose(again.current, ref.current, rtol=0, atol=1e-9 * np.abs(ref.current).max())


def test_a_run_past_its_time_limit_kills_the_worker():
    spec, v = _tile(4, 4, 7)
    solve(spec, v, spice="ngspice-shared")
    pid = worker_pid()
    start = time.perf_counter()
    with pytest.raises(SpiceTimeout, match="limit"):
        solve(spec, v[:1], spice="ngspice-shared", mode="tran", tran=LONG_TRAN, timeout_s=0.5)
    assert time.perf_counter() - start < 4.0
    assert not _alive(pid)
    solve(spec, v, spice="ngspice-shared")


def test_ctrl_c_kills_the_worker_before_it_propagates():
    spec, v = _tile(4, 4, 8)
    solve(spec, v, spice="ngspice-shared")
    pid = worker_pid()
    stopper = threading.Timer(0.5, request_stop, (KeyboardInterrupt,))
    stopper.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            solve(spec, v[:1], spice="ngspice-shared", mode="tran", tran=LONG_TRAN)
    finally:
        stopper.join()
        clear_stop()
    assert not _alive(pid)
    solve(spec, v, spice="ngspice-shared")


def test_a_killed_caller_takes_the_worker_down(tmp_path):
    """PR_SET_PDEATHSIG: SIGKILL of the process that started the worker kills the worker too."""
    script = ("import numpy as np, sys, time\nfrom cosim.core.tile import TileSpec\nfrom cosim.engines import solve\n"
              "from cosim.spice.ngspice_shared import worker_pid\n"
              "solve(TileSpec(np.full((2, 2), 5e-3)), np.full(2, 0.1), spice='ngspice-shared')\n"
              "print(worker_pid(), flush=True)\ntime.sleep(60)\n")
    caller = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        pid = int(caller.stdout.readline())
        assert _alive(pid)
        caller.kill()
        caller.wait()
        deadline = time.monotonic() + 5
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(pid)
    finally:
        caller.kill()


def test_no_ngspice_or_pyspice_noise_reaches_the_user(tmp_path):
    g, v = tmp_path / "G.npy", tmp_path / "V.npy"
    np.save(g, np.full((3, 3), 5e-3))
    np.save(v, np.full((2, 3), 0.1))
    cosim = [sys.executable, "-m", "cosim", "tile", "--conductance", str(g), "--voltage", str(v)]
    out = subprocess.run(cosim + ["--spice", "ngspice-shared"], capture_output=True, text=True, timeout=120)
    ref = subprocess.run(cosim, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""  # no "Unsupported Ngspice version 39", no libngspice notes
    shared_lines = out.stdout.replace("spice (ngspice-shared)", "spice (ngspice)").splitlines()
    assert [l.split(":")[0] for l in shared_lines] == [l.split(":")[0] for l in ref.stdout.splitlines()]
    assert shared_lines[2:] == ref.stdout.splitlines()[2:]  # the same currents, line for line


def test_the_callers_environment_is_left_alone():
    spec, v = _tile(2, 2, 9)
    before = os.environ.get("NGSPICE_LIBRARY_PATH")
    solve(spec, v, spice="ngspice-shared")
    assert os.environ.get("NGSPICE_LIBRARY_PATH") == before


def test_close_workers_stops_them():
    spec, v = _tile(2, 2, 10)
    solve(spec, v, spice="ngspice-shared")
    pid = worker_pid()
    ngspice_shared.close_workers()
    assert not _alive(pid) and worker_pid() is None


def test_a_missing_libngspice_is_one_line_with_an_install_hint(monkeypatch):
    from cosim.core.errors import NgspiceNotFound

    ngspice_shared.close_workers()
    monkeypatch.setenv("NGSPICE_LIBRARY_PATH", "/nonexistent/libngspice.so.0")
    spec, v = _tile(2, 2, 11)
    with pytest.raises(NgspiceNotFound) as info:
        solve(spec, v, spice="ngspice-shared")
    assert len(str(info.value).splitlines()) == 1 and "apt-get install libngspice0" in str(info.value)
    monkeypatch.delenv("NGSPICE_LIBRARY_PATH")
    solve(spec, v, spice="ngspice-shared")


@pytest.mark.slow
def test_simulate_with_ngspice_shared_in_pool_workers_equals_ngspice(tmp_path):
    """`cosim simulate --spice ngspice-shared --workers 2`: every pool worker has its own
    libngspice worker; the layer's outputs equal those of the subprocess runner."""
    import h5py
    import torch

    torch.manual_seed(0)
    torch.save(torch.nn.Linear(6, 4), tmp_path / "lin.pt")
    outs = {}
    for engine in ("ngspice", "ngspice-shared"):
        out = tmp_path / f"{engine}.h5"
        run = subprocess.run([sys.executable, "-m", "cosim", "simulate", str(tmp_path / "lin.pt"), "--tile", "4",
                              "--engine", "spice", "--spice", engine, "--workers", "2", "--batch", "3",
                              "--preset", "seed001_mlp", "--quiet", "--out", str(out)],
                             capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stderr
        with h5py.File(out) as h5:
            outs[engine] = h5["outputs"][()]
    np.testing.assert_allclose(outs["ngspice-shared"], outs["ngspice"], rtol=0,
                               atol=1e-9 * np.abs(outs["ngspice"]).max())


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_sigterm_to_cosim_kills_the_worker_and_leaves_no_run_directory(tmp_path):
    """`cosim tile --spice ngspice-shared` on a 48x48 1T1R tile (seconds of libngspice):
    SIGTERM mid-run exits 143, the worker is gone and so is the run directory."""
    rng = np.random.default_rng(12)
    np.save(tmp_path / "G.npy", rng.uniform(1.1e-3, 1.9e-2, (48, 48)))
    np.save(tmp_path / "V.npy", rng.uniform(-0.3, 0.3, (4, 48)))
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    cosim = subprocess.Popen([sys.executable, "-m", "cosim", "tile", "--conductance", str(tmp_path / "G.npy"),
                              "--voltage", str(tmp_path / "V.npy"), "--access", "nmos", "--r-wire", "1",
                              "--spice", "ngspice-shared"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env={**os.environ, "TMPDIR": str(scratch)})
    try:
        deadline = time.monotonic() + 60
        while not (workers := _children(cosim.pid)) or not list(scratch.glob(f"cosim-ngspice-{cosim.pid}-*")):
            assert cosim.poll() is None and time.monotonic() < deadline, "the tile ended before it could be stopped"
            time.sleep(0.02)
        cosim.send_signal(signal.SIGTERM)
        _, err = cosim.communicate(timeout=30)
    finally:
        cosim.kill()
    assert cosim.returncode == 143 and err.strip() == "cosim: terminated (SIGTERM)"
    assert not any(_alive(pid) for pid in workers)  # killed and reaped by cosim before it exited
    assert not list(scratch.iterdir())
