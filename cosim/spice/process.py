"""Run an external simulator as a worker process: its own session, a
wall-clock limit, its peak memory sampled, its log captured and scanned.

Shared by the ngspice runner (`cosim.spice`) and the VACASK runner
(`cosim.spice.vacask`): a crash or hang of the simulator never takes the
caller down, and the caller going down always takes the simulator with it:

- any exception in the waiting caller (KeyboardInterrupt from Ctrl-C, the
  SystemExit that `cosim` raises on SIGTERM, a cancelled task) kills the
  simulator's whole process group and reaps it before it propagates;
- the simulator gets SIGKILL from the kernel when the thread that started it
  dies (PR_SET_PDEATHSIG), so a worker killed outright does not leave it running;
- run directories are named `cosim-<engine>-<pid>-*`, so a parent can remove
  those of a worker that was killed (`remove_run_dirs`), and every runner
  makes its own through `run_directory`, which holds SIGINT/SIGTERM while the
  directory is made, so that no signal lands before its clean-up is armed.
"""

from __future__ import annotations

import ctypes
import functools
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from cosim.core.errors import CosimError, InputError, SpiceError

TIMED_OUT = -9999  # status of a run killed at its time limit


def scan_log(log: str, patterns: list[str], benign: list[str] = ()) -> list[str]:
    """Lines of `log` (stripped) matching any regex in `patterns`
    (lower-cased match), except those matching one in `benign`."""
    hits = []
    for line in log.splitlines():
        low = line.strip().lower()
        if any(re.search(b, low) for b in benign):
            continue
        if any(re.search(p, low) for p in patterns):
            hits.append(line.strip())
    return hits


def peak_rss(pid: int, seen: int) -> int:
    """Largest of `seen` and the process's memory high-water mark VmHWM (bytes).

    (ru_maxrss from wait4 is useless here: Linux carries the forking Python's
    peak across exec.)"""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return max(seen, int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    return seen


class RunCancelled(CosimError):
    """The task that started a simulator was cancelled (its executor said so); the simulator was killed."""


PR_SET_PDEATHSIG = 1  # linux/prctl.h


@functools.lru_cache(maxsize=None)
def _prctl() -> Callable[..., int] | None:
    """libc's prctl, or None off Linux (looked up in the parent, never between fork and exec)."""
    if not os.uname().sysname == "Linux":
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.restype = ctypes.c_int
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    return prctl


def set_parent_death_signal(signum: int, parent_pid: int | None = None) -> bool:
    """Ask the kernel to send `signum` to this process when the thread that
    created it dies (Linux PR_SET_PDEATHSIG); if the parent `parent_pid` is
    already gone, exit at once. Returns whether the request was made."""
    prctl = _prctl()
    if prctl is None:
        return False
    prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)  # the parent died before the request: nobody would reap or stop us
    return True


def _child_setup(parent_pid: int) -> None:
    """Runs in the simulator's process between fork and exec (after setsid)."""
    set_parent_death_signal(signal.SIGKILL, parent_pid)


_cancel = threading.local()

# A stop asked for by a signal handler (cosim.cli on SIGINT/SIGTERM, pool
# workers on SIGTERM): the exception to raise, kept so that run_process
# raises it even when the handler's own exception was swallowed (Python
# ignores exceptions raised inside at-fork callbacks, __del__, weakref
# callbacks) and so that no new simulator starts afterwards.
_stop: list[tuple[type[BaseException], tuple]] = []
_waiting_in_main = 0  # run_process calls now waiting in the main thread


def request_stop(exc_type: type[BaseException], *args: object) -> bool:
    """Record that this process must stop by raising `exc_type(*args)`.
    Returns whether the calling signal handler should raise it itself: False
    while the main thread waits in run_process, which raises it (after killing
    its simulator) within 50 ms, from a place where it cannot be swallowed."""
    _stop[:] = [(exc_type, args)]
    return not _waiting_in_main


def clear_stop() -> None:
    """Forget a recorded stop (cosim.cli, when a command has ended)."""
    _stop.clear()


def stop_requested() -> bool:
    """Whether a stop (`request_stop`) has been recorded and not yet cleared."""
    return bool(_stop)


@contextmanager
def waiting_for_simulator() -> Iterator[Callable[[], None]]:
    """For waiters other than `run_process` (the in-process ngspice worker of
    `cosim.spice.ngspice_shared`): while the block runs, a stop is raised by
    the waiter, which calls the yielded function in its poll loop (it raises
    a recorded stop, or RunCancelled when the check of `cancel_when` says so)."""
    global _waiting_in_main
    in_main = threading.current_thread() is threading.main_thread()
    check = getattr(_cancel, "check", None)
    next_check = [time.perf_counter()]

    def poll() -> None:
        _check_stop()
        now = time.perf_counter()
        if check is not None and now >= next_check[0]:
            next_check[0] = now + 0.25
            if check():
                raise RunCancelled("the simulator was stopped: its task was cancelled")

    if in_main:
        _waiting_in_main += 1
    try:
        _check_stop()
        yield poll
    finally:
        if in_main:
            _waiting_in_main -= 1


def _check_stop() -> None:
    if _stop:
        exc_type, args = _stop[0]
        raise exc_type(*args)


@contextmanager
def cancel_when(check: Callable[[], bool] | None) -> Iterator[None]:
    """While the block runs in this thread, `run_process` polls `check()`
    (about 4 times a second) and kills its simulator when it returns True
    (executors use this for cancelled tasks)."""
    previous = getattr(_cancel, "check", None)
    _cancel.check = check
    try:
        yield
    finally:
        _cancel.check = previous


@contextmanager
def signal_handlers(handlers: dict[int, Callable[[int, object], None]]) -> Iterator[None]:
    """Install `handlers` (signal number -> handler) for the block and restore
    the previous ones after it; outside the main thread, where Python cannot
    set handlers, nothing is installed."""
    previous: dict[int, object] = {}
    try:
        for signum, handler in handlers.items():
            previous[signum] = signal.signal(signum, handler)
    except (ValueError, OSError):
        pass
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM while cleanup runs (a second Ctrl-C must not
    cut a kill or an rmtree short); a signal that came in is re-raised after."""
    if threading.current_thread() is not threading.main_thread():
        yield  # Python runs signal handlers in the main thread only
        return
    caught: list[int] = []
    hold = lambda signum, frame: caught.append(signum)  # noqa: E731
    with signal_handlers({signal.SIGINT: hold, signal.SIGTERM: hold}):
        yield
    if caught:
        signal.raise_signal(caught[0])


def kill_group(pid: int) -> None:
    """SIGKILL the process group led by `pid` and reap `pid` (a child of this process)."""
    with signals_deferred():
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


def check_timeout(timeout_s: float, what: str = "timeout") -> float:
    """`timeout_s` as a float, or one line when it is not a positive, finite number of seconds."""
    try:
        value = float(timeout_s)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a positive number of seconds, got {timeout_s!r}") from None
    if not (0 < value < float("inf")):
        raise InputError(f"{what} must be a positive number of seconds, got {timeout_s!r}; "
                         "give e.g. 600")
    return value


def run_dir_prefix(engine: str) -> str:
    """Prefix of this process's temporary run directories: `cosim-<engine>-<pid>-`."""
    return f"cosim-{engine}-{os.getpid()}-"


def make_run_dir(engine: str) -> Path:
    """A fresh temporary run directory (under TMPDIR) named after this process."""
    return Path(tempfile.mkdtemp(prefix=run_dir_prefix(engine)))


def remove_run_dirs(pid: int, engines: tuple[str, ...] = ("ngspice", "vacask", "tran")) -> list[Path]:
    """Remove the temporary run directories of process `pid` (one that was
    killed and could not clean up after itself); returns those removed."""
    removed = []
    root = Path(tempfile.gettempdir())
    for engine in engines:
        for path in root.glob(f"cosim-{engine}-{pid}-*"):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
    return removed


def discard_run_dir(run_dir: Path) -> None:
    """Remove a temporary run directory, holding Ctrl-C until it is gone."""
    with signals_deferred():
        shutil.rmtree(run_dir, ignore_errors=True)


@contextmanager
def run_directory(engine: str, keep_dir: Path | None = None) -> Iterator[Path]:
    """`keep_dir` (the caller's, never removed), or a fresh run directory
    (`make_run_dir`) made with SIGINT and SIGTERM held, so that no signal
    lands between its creation and its clean-up: removed when the block ends
    normally or by anything but a SpiceError (Ctrl-C, SIGTERM, a cancelled
    task, a bug), kept on a SpiceError, which names it."""
    if keep_dir is not None:
        yield Path(keep_dir)
        return
    run_dir: Path | None = None
    try:
        with signals_deferred():  # a signal held here is raised at its end, inside this try
            run_dir = make_run_dir(engine)
        yield run_dir
    except BaseException as exc:
        if run_dir is not None and not isinstance(exc, SpiceError):
            discard_run_dir(run_dir)
        raise
    discard_run_dir(run_dir)


def run_process(argv: list[str], cwd: Path, timeout_s: float, log_name: str = "run.log",
                env: dict[str, str] | None = None) -> tuple[int, str, float, int]:
    """Run argv in its own session in `cwd`, stdout and stderr into `cwd/log_name`.

    Returns (status, log, wall_s, peak_rss_bytes): status is the exit code,
    minus the signal number when killed by one, or TIMED_OUT when it ran past
    `timeout_s` seconds (its whole process group is then killed). Any
    exception while waiting (KeyboardInterrupt, SystemExit, RunCancelled when
    the check of `cancel_when` says so) kills and reaps the process group
    first, then propagates.
    """
    timeout_s = check_timeout(timeout_s)
    global _waiting_in_main
    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        _waiting_in_main += 1
    try:
        _check_stop()
        return _run(argv, Path(cwd), timeout_s, log_name, env)
    finally:
        if in_main:
            _waiting_in_main -= 1


def _run(argv: list[str], cwd: Path, timeout_s: float, log_name: str,
         env: dict[str, str] | None) -> tuple[int, str, float, int]:
    log_path = cwd / log_name
    _prctl()  # look libc's prctl up here: _child_setup must not dlopen between fork and exec
    start = time.perf_counter()
    peak = 0
    check = getattr(_cancel, "check", None)
    next_check = start
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(argv, cwd=cwd, stdout=log_file, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, env=env,
                                preexec_fn=functools.partial(_child_setup, os.getpid()))
        try:
            delay = 0.001
            while True:
                peak = peak_rss(proc.pid, peak)
                pid, status, _ = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    code = os.waitstatus_to_exitcode(status)
                    break
                now = time.perf_counter()
                if now - start > timeout_s:
                    kill_group(proc.pid)
                    code = TIMED_OUT
                    break
                _check_stop()
                if check is not None and now >= next_check:
                    next_check = now + 0.25
                    if check():
                        raise RunCancelled(f"{Path(argv[0]).name} was stopped: its task was cancelled")
                time.sleep(delay)
                delay = min(delay * 1.5, 0.05)
        except BaseException:
            kill_group(proc.pid)
            proc.returncode = -signal.SIGKILL
            raise
        proc.returncode = code
    wall = time.perf_counter() - start
    return code, log_path.read_text(errors="replace"), wall, peak
