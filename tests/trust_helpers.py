"""Helpers of the fault-injection tests (test_trust_processes.py,
test_trust_resume.py): real `cosim` child processes, real signals, and a
/proc scan that finds every process a child started.

Every child runs with COSIM_TRUST_TOKEN=<fresh uuid> in its environment;
ngspice, pool workers and Dask workers inherit it, so "a process left
behind" is exactly "a live process whose environment carries the token"
(no psutil, no process names guessed). Each child also gets its own
TMPDIR, so a leftover run directory is exactly an entry of that folder.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np

TOKEN_VAR = "COSIM_TRUST_TOKEN"


def new_token() -> str:
    return uuid.uuid4().hex


def child_env(token: str, tmpdir: Path) -> dict[str, str]:
    tmpdir.mkdir(parents=True, exist_ok=True)
    return {**os.environ, TOKEN_VAR: token, "TMPDIR": str(tmpdir), "PYTHONUNBUFFERED": "1"}


def processes(token: str) -> list[tuple[int, str]]:
    """(pid, comm) of every live process whose environment holds the token (zombies have none)."""
    found = []
    needle = f"{TOKEN_VAR}={token}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as handle:
                environ = handle.read().split(b"\0")
            with open(f"/proc/{entry}/comm") as handle:
                comm = handle.read().strip()
        except OSError:
            continue
        if needle in environ:
            found.append((int(entry), comm))
    return found


def simulators(token: str) -> list[int]:
    """pids of the live ngspice/VACASK simulations carrying the token (not a `ngspice --version`)."""
    found = []
    for pid, comm in processes(token):
        if comm in ("ngspice", "vacask"):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as handle:
                    argv = handle.read().split(b"\0")
            except OSError:
                continue
            if b"--version" not in argv:
                found.append(pid)
    return found


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as handle:
        return int(handle.read().rsplit(")", 1)[1].split()[1])


def wait_for(predicate: Callable[[], object], timeout: float, step: float = 0.01):
    """Poll `predicate` until it returns something true or `timeout` s pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


def start_cosim(args: list[str], token: str, tmpdir: Path, cwd: Path, stderr_path: Path) -> subprocess.Popen:
    """`python -m cosim ARGS` as a child with the token and its own TMPDIR; stderr to a file
    (workers inherit it, so a pipe would stay open after cosim itself is gone)."""
    return subprocess.Popen([sys.executable, "-m", "cosim", *args], cwd=cwd, env=child_env(token, tmpdir),
                            stdout=subprocess.DEVNULL, stderr=open(stderr_path, "w"))


def run_cosim(args: list[str], token: str, tmpdir: Path, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cosim", *args], cwd=cwd, env=child_env(token, tmpdir),
                          capture_output=True, text=True, timeout=timeout)


def kill_all(token: str, signum: int = 9) -> None:
    """Teardown: SIGKILL whatever still carries the token (only processes this test started)."""
    for pid, _ in processes(token):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def dask_cluster(tmp_path: Path) -> Iterator[dict]:
    """A real `dask scheduler` and one real `dask worker` (nanny, 1 thread), as
    separate processes carrying a fresh token and TMPDIR tmp_path/tmp."""
    token, tmpdir = new_token(), tmp_path / "tmp"
    env = child_env(token, tmpdir)
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = str(Path(sys.executable).parent / "dask")
    logs = open(tmp_path / "dask.log", "w")
    scheduler = subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                  "--no-dashboard"], env=env, cwd=tmp_path, stdout=logs, stderr=logs)
    worker = subprocess.Popen([dask, "worker", address, "--nthreads", "1", "--nworkers", "1",
                               "--no-dashboard"], env=env, cwd=tmp_path, stdout=logs, stderr=logs)
    try:
        from distributed import Client

        with Client(address, timeout="60s") as client:
            client.wait_for_workers(1, timeout=60)
        yield {"address": address, "token": token, "tmpdir": tmpdir, "scheduler": scheduler, "worker": worker}
    finally:
        for process in (worker, scheduler):
            process.terminate()
        for process in (worker, scheduler):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        kill_all(token)
        logs.close()


#: Attributes that differ between two runs of the same command by design:
#: a tile's wall time (s) and the command line (the resumed run adds --resume).
VOLATILE_ATTRS = {"wall_s", "command"}


def h5_contents(path: Path) -> dict[str, tuple[str, object]]:
    """Every dataset (dtype, shape, raw bytes or values) and every attribute of an HDF5 file."""
    items: dict[str, tuple[str, object]] = {}
    with h5py.File(path, "r") as h5:
        def visit(name: str, obj) -> None:
            for key, value in obj.attrs.items():
                if key not in VOLATILE_ATTRS:
                    items[f"{name}@{key}"] = ("attr", _plain(value))
            if isinstance(obj, h5py.Dataset):
                data = obj[()]
                raw = data.tobytes() if isinstance(data, np.ndarray) and data.dtype.kind in "biufc" else _plain(data)
                items[name] = (f"dataset {obj.dtype} {obj.shape}", raw)

        visit("/", h5)
        h5.visititems(visit)
    return items


def _plain(value: object) -> object:
    if isinstance(value, np.ndarray):
        return (value.dtype.str, value.shape, value.tobytes()) if value.dtype.kind in "biufc" \
            else [_plain(v) for v in value.tolist()]
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, np.generic):
        return value.item()
    return value


def assert_same_run(a: Path, b: Path) -> None:
    """Every dataset of RUN.h5 `a` bit-identical to `b`'s, and every attribute
    equal except VOLATILE_ATTRS."""
    left, right = h5_contents(a), h5_contents(b)
    assert sorted(left) == sorted(right), set(left) ^ set(right)
    differ = [name for name in left if left[name] != right[name]]
    assert not differ, f"differ: {differ[:10]}"
    assert any(kind.startswith("dataset") for kind, _ in left.values())


def cli_in_process(args: list[str], capsys) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of `cosim ARGS` run in-process (argparse's SystemExit caught)."""
    from cosim.cli import main

    try:
        rc = main(args)
    except SystemExit as exc:
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line(rc: int, err: str, *expected: str) -> None:
    """Exit 2 with exactly one `cosim: error:` line on stderr, no traceback, holding each `expected` text."""
    assert rc == 2, err
    assert err.startswith("cosim: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for text in expected:
        assert text in err, err
