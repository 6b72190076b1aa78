"""Run independent tile tasks: in-process, in a local process pool, or on a
Dask distributed cluster, with a progress bar on stderr.

Stopping is clean on every executor: an exception in the caller (Ctrl-C,
SIGTERM, a failed tile) cancels what has not started and stops what has.
Pool workers ignore SIGINT (the parent decides), turn SIGTERM into SystemExit
(so `cosim.spice.process` kills their simulator and removes its run directory), and
get SIGTERM themselves when the pool's parent dies; a worker killed outright
takes its simulator down (PR_SET_PDEATHSIG) and the parent removes its run
directories. Dask tasks poll their own state and kill their simulator once
the task is cancelled; a lost scheduler ends in one line saying how to resume
locally.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, TypeVar

from tqdm import tqdm

from cosim.core.errors import CosimError, InputError, first_line
from cosim.spice.process import (
    cancel_when,
    remove_run_dirs,
    request_stop,
    set_parent_death_signal,
    signals_deferred,
    stop_requested,
)

if TYPE_CHECKING:
    from distributed import Client

EXECUTORS = ("local", "dask")
T = TypeVar("T")
R = TypeVar("R")

#: How long stopped pool workers get to kill their simulator and clean up before SIGKILL (s).
STOP_GRACE_S = 10.0
RESUME_HINT = "rerun the same command with --resume to keep the finished tiles"
DASK_RESUME_HINT = ("rerun the same command with --executor local --resume to finish on this machine "
                    "(finished tiles are kept)")


def map_tasks(fn: Callable[[T], R], tasks: list[T], on_result: Callable[[T, R], None], *,
              executor: str = "local", workers: int = 1, scheduler: str | None = None,
              description: str = "tiles", quiet: bool = False) -> None:
    """Call `fn` on every task and `on_result(task, result)` as each finishes
    (in the calling process, in completion order)."""
    if executor not in EXECUTORS:
        raise InputError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if not tasks:
        return
    bar = tqdm(total=len(tasks), desc=description, unit="tile", file=sys.stderr,
               disable=True if quiet else None,  # None: only on a terminal
               leave=False)
    try:
        if executor == "dask":
            _run_dask(fn, tasks, on_result, scheduler, bar)
        elif workers <= 1 or len(tasks) == 1:
            for task in tasks:
                on_result(task, fn(task))
                bar.update()
        else:
            _run_pool(fn, tasks, on_result, workers, bar)
    finally:
        bar.close()


# ----- local process pool ------------------------------------------------------
class _WorkerStop(SystemExit):
    """SIGTERM in a pool worker: unwinds the task (its simulator killed, its run directory removed)."""


_in_task = False  # in a pool worker: whether a task is running


def _worker_terminate(signum: int, frame: object) -> None:
    if not _in_task:
        os._exit(128 + signum)  # idle: nothing to clean up (and multiprocessing's exit path can hang)
    if request_stop(_WorkerStop, 128 + signum):
        raise _WorkerStop(128 + signum)


def _pool_call(fn: Callable[[T], R], task: T) -> R:
    """Runs in a pool worker: `fn(task)`; a SIGTERM ends the worker once the task has unwound
    (the pool would otherwise send the exception back and wait for more work)."""
    global _in_task
    _in_task = True
    try:
        return fn(task)
    except _WorkerStop as stop:
        sys.stderr.flush()
        os._exit(int(stop.code))
    finally:
        _in_task = False
        if stop_requested():  # the stop came where Python swallowed it; the task has ended all the same
            sys.stderr.flush()
            os._exit(128 + signal.SIGTERM)


def _pool_worker_init(owner: int) -> None:
    """Signals of a pool worker (runs in the worker when it starts); `owner`
    is the pid of the process that made the pool."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal Ctrl-C is the parent's to handle
    signal.signal(signal.SIGTERM, _worker_terminate)  # -> SystemExit: the simulator is killed, its dir removed
    set_parent_death_signal(signal.SIGTERM, os.getppid())  # our parent (the forkserver) gone: stop too
    # The forkserver outlives a killed owner (every worker holds its alive pipe),
    # so each worker watches the owner itself and stops when it is gone.
    threading.Thread(target=_watch_owner, args=(owner,), name="cosim-owner-watch", daemon=True).start()


def _watch_owner(owner: int) -> None:
    """Send this worker SIGTERM once process `owner` has exited."""
    try:
        fd = os.pidfd_open(owner)
    except ProcessLookupError:
        fd = None  # already gone
    except (AttributeError, OSError):  # no pidfd (old kernel): poll
        while True:
            time.sleep(1.0)
            try:
                os.kill(owner, 0)
            except ProcessLookupError:
                break
            except PermissionError:
                pass
    else:
        select.select([fd], [], [])
    os.kill(os.getpid(), signal.SIGTERM)


def _run_pool(fn: Callable[[T], R], tasks: list[T], on_result: Callable[[T, R], None], workers: int,
              bar: tqdm) -> None:
    # Not fork: the parent's BLAS/OpenMP thread pools deadlock in forked children.
    context = multiprocessing.get_context("forkserver" if sys.platform.startswith("linux") else "spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_pool_worker_init,
                               initargs=(os.getpid(),))
    processes: dict = {}
    try:
        call = functools.partial(_pool_call, fn)
        futures = {pool.submit(call, task): task for task in tasks}
        processes = dict(pool._processes or {})  # every worker is started by now
        _rescan_workers(pool)
        for future in as_completed(futures):
            try:
                result = future.result()
            except BrokenProcessPool:
                processes.update(pool._processes or {})
                task = futures[future]
                raise CosimError(f"a worker process died while running {getattr(task, 'name', 'a task')}; "
                                 f"{RESUME_HINT}") from None
            on_result(futures[future], result)
            bar.update()
    except BaseException:
        with signals_deferred():
            _stop_pool(pool, processes)
        raise
    pool.shutdown(wait=True)


def _rescan_workers(pool: ProcessPoolExecutor) -> None:
    """Wake the pool's manager thread once every worker is started, so that it
    watches all of them. `submit` wakes it before it starts a new worker
    (workers start on demand with forkserver), so the manager can go back to
    waiting on the workers it had: one killed after that went unnoticed until
    another task ended (measured: 22 s instead of 0.5 s for a 15 s tile)."""
    wakeup = getattr(pool, "_executor_manager_thread_wakeup", None)
    if wakeup is not None:
        wakeup.wakeup()


def _stop_pool(pool: ProcessPoolExecutor, processes: dict) -> None:
    """Cancel what has not started, SIGTERM every worker (each kills its
    simulator and removes its run directory), SIGKILL those that do not stop
    within STOP_GRACE_S, and remove the run directories of workers that died
    by a signal."""
    processes = {**processes, **(pool._processes or {})}
    for process in processes.values():
        if process.exitcode is None:
            try:
                os.kill(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + STOP_GRACE_S
    for process in processes.values():
        process.join(timeout=max(0.0, deadline - time.monotonic()))
    for process in processes.values():
        if process.exitcode is None:
            process.kill()
            process.join()
    pool.shutdown(wait=True, cancel_futures=True)
    for process in processes.values():
        if process.exitcode is not None and process.exitcode < 0:
            remove_run_dirs(process.pid)


# ----- Dask ----------------------------------------------------------------------
def _dask_cancelled() -> Callable[[], bool] | None:
    """On a Dask worker, a check that says when the running task has been
    cancelled (or the worker is closing); None elsewhere."""
    try:
        from distributed import get_worker
        from distributed.worker import thread_state

        worker = get_worker()
        key = thread_state.key
    except Exception:
        return None

    def cancelled() -> bool:
        """Whether the running task was cancelled or released, or its worker is closing."""
        try:
            state = worker.state.tasks.get(key)
            return (state is None or state.state in ("cancelled", "released", "forgotten")
                    or worker.status.name in ("closing", "closed", "closing_gracefully", "failed"))
        except Exception:
            return False

    return cancelled


def _dask_call(fn: Callable[[T], R], task: T) -> R:
    """Runs on a Dask worker: `fn(task)`, its simulator killed if the task is cancelled."""
    with cancel_when(_dask_cancelled()):
        return fn(task)


def _run_dask(fn: Callable[[T], R], tasks: list[T], on_result: Callable[[T, R], None],
              scheduler: str | None, bar: tqdm) -> None:
    try:
        from distributed import Client
        from distributed import as_completed as dask_completed
    except ImportError:
        raise CosimError("the dask executor needs dask.distributed: pip install 'dask[distributed]'") from None
    if not scheduler:
        raise InputError("--executor dask needs --scheduler ADDR (e.g. tcp://127.0.0.1:8786)")
    try:
        client = Client(scheduler, timeout="10s")
    except (OSError, TimeoutError) as exc:
        reason = first_line(exc)
        raise CosimError(f"cannot reach the Dask scheduler at {scheduler} ({reason}); start one with "
                         "`dask scheduler` and `dask worker ADDR`, or use --executor local") from None
    futures = []
    quiet = _quiet_dask_logs()  # a lost scheduler is one line, not pages of reconnect tracebacks
    try:
        try:
            futures = client.map(functools.partial(_dask_call, fn), tasks, pure=False)
            index = {future.key: task for future, task in zip(futures, tasks)}
            for future in dask_completed(futures):
                result = future.result()
                on_result(index[future.key], result)
                bar.update()
        except CosimError:
            raise
        except Exception as exc:
            if _scheduler_lost(client, exc):
                raise CosimError(f"lost the Dask scheduler at {scheduler} ({type(exc).__name__}); "
                                 f"{DASK_RESUME_HINT}") from None
            raise
    except BaseException:
        with signals_deferred():
            try:
                if futures and client.status == "running":
                    client.cancel(futures)  # running tasks see it and kill their simulator
            except Exception:
                pass
        raise
    finally:
        with signals_deferred():
            try:
                client.close(timeout=5)
            except Exception:
                pass
            quiet.restore()


class _QuietLogs:
    def __init__(self, names: list[str]) -> None:
        self.levels = {name: logging.getLogger(name).level for name in names}
        for name in names:
            logging.getLogger(name).setLevel(logging.CRITICAL + 1)

    def restore(self) -> None:
        """Put the loggers back at the levels they had before."""
        for name, level in self.levels.items():
            logging.getLogger(name).setLevel(level)


def _quiet_dask_logs() -> _QuietLogs:
    """Silence the Dask client's loggers (their errors reach us as exceptions)."""
    names = {"distributed", "tornado"} | {name for name in logging.root.manager.loggerDict
                                          if name.startswith(("distributed.", "tornado."))}
    return _QuietLogs(sorted(names))


def _scheduler_lost(client: Client, exc: BaseException) -> bool:
    """Whether `exc` from a Dask future means the scheduler connection is gone
    (rather than the task itself failing)."""
    if client.status != "running":
        return True
    reason = str(getattr(exc, "reason", ""))
    return "scheduler" in reason or "connection" in reason
