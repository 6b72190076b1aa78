"""In-process ngspice (`--spice ngspice-shared`): libngspice through PySpice's
`NgSpiceShared`, in one long-lived worker process per calling thread.

For many small tiles, where starting `ngspice -b` dominates. The worker is a
fresh Python interpreter (`python -m cosim.spice.ngspice_shared`, the spawn
start method: nothing is inherited from the caller's threads or BLAS pools;
started with `subprocess` rather than `multiprocessing`, which daemonic Dask
worker processes may not use) that loads libngspice once and then runs one
netlist after another; it obeys the rules of the subprocess runner
(`cosim.spice.ngspice`, `cosim.spice.process`):

- It takes the very netlist text `ngspice -b` would get (same `.control`
  block, same `write tile.raw`, minus its final `quit`), runs it in a run
  directory like the subprocess runner's, and the caller reads the same raw
  file with the same reader: the same vectors in the same structure, so
  anything a writer adds to the netlist flows through unchanged.
- The same log scan, the same retries with gmin and source stepping, the same
  errors; `--spice-timeout` bounds each run (the worker is killed past it).
- A crash of libngspice kills only the worker: the caller gets one line
  (SpiceError) and the next run starts a fresh worker.
- Ctrl-C, SIGTERM and cancelled tasks kill the worker before they propagate
  (`cosim.spice.process.waiting_for_simulator`); the worker runs in its own
  session (a terminal's Ctrl-C is the caller's) and gets SIGKILL from the
  kernel when the thread that started it dies (PR_SET_PDEATHSIG).
- `destroy all` and `remcirc` after every run (libngspice keeps every plot
  and circuit otherwise); `unset appendwrite` so the next run starts clean.
- Noise stays away from users: the worker's stdout and stderr go to
  /dev/null, PySpice's logger (its "Unsupported Ngspice version 39"
  warning) is silenced, and libngspice's output is captured through its
  callback into the run's `ngspice.log`, where real errors are found as
  the subprocess runner finds them.

`NGSPICE_LIBRARY_PATH` is set (to `libngspice.so.0`, which the
`libngspice0` package installs) in the worker's environment only, unless
the user set it; the caller's environment is left alone.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from cosim.core.errors import CosimError, NgspiceNotFound, SpiceError, SpiceTimeout, first_line
from cosim.spice.ngspice import (
    RAW_NAME,
    SpiceRun,
    classify_run,
    run_with_retries,
    simulator_death,
)
from cosim.spice.process import (
    check_timeout,
    peak_rss,
    signals_deferred,
    waiting_for_simulator,
)

ENGINE = "ngspice-shared"
LIBRARY = "libngspice.so.0"
INSTALL_HINT = ("install it with `apt-get install libngspice0` (or set NGSPICE_LIBRARY_PATH to the "
                "libngspice shared library), or use --spice ngspice")
#: How long a new worker may take to load Python, PySpice and libngspice (s).
START_TIMEOUT_S = 60.0
_POLL_S = 0.02


class WorkerDied(SpiceError):
    """The libngspice worker process died during a run (a crash of libngspice, or it was killed)."""


def _quit_line(line: str) -> bool:
    words = line.strip().lower().split()
    return bool(words) and words[0] in ("quit", "exit")


def shared_lines(netlist: str) -> list[str]:
    """The lines libngspice gets: the netlist without its `.control` block's
    `quit`/`exit` (which would unload the library). A netlist without a
    `.control` block that writes tile.raw is refused in one line."""
    low = netlist.lower()
    if ".control" not in low or f"write {RAW_NAME}" not in low:
        raise SpiceError(f"{ENGINE} runs netlists whose .control block writes {RAW_NAME} (as cosim's "
                         "tile netlists do); run this one with --spice ngspice", netlist=netlist)
    out, in_control = [], False
    for line in netlist.splitlines():
        word = line.strip().lower()
        if word.startswith(".control"):
            in_control = True
        elif word.startswith(".endc"):
            in_control = False
        elif in_control and _quit_line(line):
            continue
        out.append(line)
    return out


@dataclass
class _Worker:
    """One worker process and the two pipes to it (owned by one thread of one process)."""

    proc: subprocess.Popen
    send: Connection
    recv: Connection
    owner: int

    @property
    def alive(self) -> bool:
        return self.owner == os.getpid() and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the worker (its own session, so its group too) and reap it."""
        with signals_deferred():
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.wait()
            except ChildProcessError:
                pass
            for conn in (self.send, self.recv):
                conn.close()
        _all[:] = [w for w in _all if w is not self]


_local = threading.local()
_all: list[_Worker] = []


def _library() -> str:
    return os.environ.get("NGSPICE_LIBRARY_PATH") or LIBRARY


def _start() -> _Worker:
    """A fresh worker that has loaded libngspice (NgspiceNotFound when it cannot)."""
    env = dict(os.environ, NGSPICE_LIBRARY_PATH=_library())
    worker = None
    try:
        with signals_deferred():  # a Ctrl-C or SIGTERM now is raised once the worker is ours to kill
            to_child_r, to_child_w = os.pipe()
            from_child_r, from_child_w = os.pipe()
            argv = [sys.executable, "-m", "cosim.spice.ngspice_shared", str(to_child_r), str(from_child_w),
                    str(os.getpid())]
            try:
                proc = subprocess.Popen(argv, pass_fds=(to_child_r, from_child_w), stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True, env=env, cwd="/")
            except BaseException:
                for fd in (to_child_w, from_child_r):
                    os.close(fd)
                raise
            finally:
                os.close(to_child_r)
                os.close(from_child_w)
            worker = _Worker(proc, Connection(to_child_w, readable=False), Connection(from_child_r, writable=False),
                             os.getpid())
            _all.append(worker)
        deadline = time.perf_counter() + START_TIMEOUT_S
        while not worker.recv.poll(_POLL_S):
            if proc.poll() is not None or time.perf_counter() > deadline:
                break
        if worker.recv.poll(0):
            reply = worker.recv.recv()
        elif proc.poll() is None:
            reply = ("failed", f"it did not start within {START_TIMEOUT_S:g} s")
        else:
            reply = ("failed", f"it exited while starting (status {proc.poll()})")
    except (EOFError, OSError) as exc:
        if worker is None:
            raise NgspiceNotFound(f"{ENGINE}: could not start its worker ({first_line(exc, 120)}); "
                                  f"{INSTALL_HINT}") from None
        reply = ("failed", f"it exited while starting (status {worker.proc.poll()})")
    except BaseException:
        if worker is not None:
            worker.kill()
        raise
    if reply[0] != "ready":
        worker.kill()
        raise NgspiceNotFound(f"{ENGINE}: could not load libngspice ({_library()}: {reply[1]}); {INSTALL_HINT}")
    return worker


def _worker() -> _Worker:
    """This thread's worker, started (or restarted after a death) when needed."""
    worker = getattr(_local, "worker", None)
    if worker is None or not worker.alive:
        if worker is not None and worker.owner == os.getpid():
            worker.kill()  # reap a dead one
        worker = _local.worker = _start()
    return worker


def worker_pid() -> int | None:
    """The pid of this thread's worker while it runs, else None (tests kill it on purpose)."""
    worker = getattr(_local, "worker", None)
    return worker.proc.pid if worker is not None and worker.alive else None


@atexit.register
def close_workers() -> None:
    """Stop every worker this process started (also called at interpreter exit)."""
    for worker in list(_all):
        if worker.owner == os.getpid():
            worker.kill()
    _all.clear()


def run_netlist_shared(netlist: str, *, timeout_s: float = 600.0, expect_plots: int | None = None,
                       retry: bool = True, keep_dir: Path | None = None, name: str | None = None) -> SpiceRun:
    """Run `netlist` (ngspice text with a `.control` block that writes tile.raw)
    in this thread's libngspice worker; the arguments and the result are those
    of `cosim.spice.ngspice.run_netlist`. `name` (the tile's) goes into the
    line that reports a dead worker."""
    timeout_s = check_timeout(timeout_s)
    shared_lines(netlist)  # refuse early what shared mode cannot run
    return run_with_retries(netlist, retry, keep_dir,
                            lambda text, run_dir, attempt: _attempt(text, run_dir, timeout_s, expect_plots, attempt,
                                                                    name))


def _attempt(text: str, run_dir: Path, timeout_s: float, expect_plots: int | None, attempt: int,
             name: str | None) -> tuple[SpiceRun | None, list[str]]:
    """One run in the worker, classified by `cosim.spice.ngspice.classify_run` as a subprocess run is."""
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        (run_dir / "tile.cir").write_text(text)
    except OSError as exc:
        from cosim.core.atomic import write_error

        raise write_error(run_dir / "tile.cir", exc) from exc
    raw = run_dir / RAW_NAME
    raw.unlink(missing_ok=True)
    log, wall, rss = _run_in_worker(shared_lines(text), run_dir, timeout_s, name)
    (run_dir / "ngspice.log").write_text(log)
    return classify_run(text, log, run_dir, wall, rss, attempt, expect_plots, None, f"{ENGINE} wrote no results")


def _run_in_worker(lines: list[str], run_dir: Path, timeout_s: float, name: str | None) -> tuple[str, float, int]:
    """Send one netlist to the worker and wait: (log, wall_s, worker's peak RSS bytes)."""
    worker = _worker()
    what = f"tile {name}" if name else "a netlist"
    start = time.perf_counter()
    with waiting_for_simulator() as poll:
        try:
            worker.send.send(("run", lines, str(run_dir)))
            while not worker.recv.poll(_POLL_S):
                if worker.proc.poll() is not None:
                    break
                if time.perf_counter() - start > timeout_s:
                    worker.kill()
                    raise SpiceTimeout(f"{ENGINE} ran past its {timeout_s:g} s limit and its worker was killed "
                                       f"(run directory {run_dir}); use a smaller tile or raise the timeout",
                                       netlist="\n".join(lines), run_dir=run_dir)
                poll()
            reply = worker.recv.recv()
        except (EOFError, OSError, BrokenPipeError):
            reply = None
        except BaseException:
            worker.kill()  # Ctrl-C, SIGTERM, a cancelled task: no worker outlives its run
            raise
    wall = time.perf_counter() - start
    if reply is None:
        status = worker.proc.wait()
        worker.kill()
        how = simulator_death(-status) if status < 0 else f"exited (status {status})"
        raise WorkerDied(f"{ENGINE}: the libngspice worker (pid {worker.proc.pid}) {how} while running {what} "
                         f"(run directory {run_dir}); the next run starts a new worker",
                         netlist="\n".join(lines), run_dir=run_dir)
    kind, log, exited = reply
    if exited:  # libngspice asked to unload itself (a fatal error): start afresh next time
        worker.kill()
    if kind == "error":
        raise SpiceError(f"{ENGINE} failed on {what}: {log} (run directory {run_dir})", netlist="\n".join(lines),
                         run_dir=run_dir)
    return log, wall, peak_rss(worker.proc.pid, 0) if worker.alive else 0


# ----- the worker process -----------------------------------------------------------
def _silence() -> None:
    """No output of libngspice or PySpice reaches the terminal (the run's log keeps it)."""
    import logging

    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    os.close(null)
    logger = logging.getLogger("PySpice")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    logger.setLevel(logging.CRITICAL + 1)


def _serve(recv: Connection, send: Connection) -> None:
    """The worker's loop: load libngspice, then run netlists until the pipe closes."""
    _silence()
    log: list[str] = []
    exited = [False]
    try:
        from PySpice.Spice.NgSpice.Shared import NgSpiceShared, ffi

        class _Shared(NgSpiceShared):
            def send_char(self, message: str, ngspice_id: int) -> int:
                prefix, _, content = message.partition(" ")
                log.append(content if prefix in ("stdout", "stderr") else message)
                return 0

            @staticmethod
            def _exit(exit_status, immediate_unloading, quit_exit, ngspice_id, user_data):  # noqa: ANN001
                exited[0] = True
                return exit_status

        ng = _Shared.new_instance()
        api = ng._ngspice_shared
    except BaseException as exc:  # noqa: BLE001 - reported to the caller in one line
        text = first_line(exc, 200, fallback="").split("  Additionally")[0]  # cffi appends a ctypes note
        send.send(("failed", f"{type(exc).__name__}: {text}"))
        return
    send.send(("ready", ng.ngspice_version))
    while True:
        try:
            message = recv.recv()
        except (EOFError, OSError):
            return
        _, lines, run_dir = message
        log.clear()
        kind = "done"
        try:
            os.chdir(run_dir)
            keep = [ffi.new("char[]", line.encode("utf-8", "replace")) for line in [*lines, ""]] + [ffi.NULL]
            if api.ngSpice_Circ(ffi.new("char *[]", keep)):
                log.append("error: libngspice refused the circuit (ngSpice_Circ failed)")
        except Exception as exc:  # noqa: BLE001
            kind, log[:] = "error", [f"{type(exc).__name__}: {exc}"]
        finally:
            for command in (b"destroy all", b"remcirc", b"unset appendwrite"):
                api.ngSpice_Command(command)
            os.chdir("/")
        send.send((kind, "\n".join(log) if kind == "done" else log[0], exited[0]))
        if exited[0]:
            return


def _main(argv: list[str]) -> None:
    """`python -m cosim.spice.ngspice_shared IN_FD OUT_FD PARENT_PID` (started by `_start`)."""
    from cosim.spice.process import set_parent_death_signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the caller decides; it kills us when it must
    in_fd, out_fd, parent = (int(a) for a in argv)
    set_parent_death_signal(signal.SIGKILL, parent)
    _serve(Connection(in_fd, writable=False), Connection(out_fd, readable=False))


if __name__ == "__main__":
    try:
        _main(sys.argv[1:])
    except CosimError:
        sys.exit(1)
