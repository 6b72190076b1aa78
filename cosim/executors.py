"""Run independent tile tasks: in-process, in a local process pool, or on a
Dask distributed cluster, with a progress bar on stderr."""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import TypeVar

from tqdm import tqdm

from cosim.errors import CosimError, InputError

EXECUTORS = ("local", "dask")
T = TypeVar("T")
R = TypeVar("R")


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


def _run_pool(fn: Callable[[T], R], tasks: list[T], on_result: Callable[[T, R], None], workers: int,
              bar: tqdm) -> None:
    # Not fork: the parent's BLAS/OpenMP thread pools deadlock in forked children.
    context = multiprocessing.get_context("forkserver" if sys.platform.startswith("linux") else "spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(fn, task): task for task in tasks}
        try:
            for future in as_completed(futures):
                on_result(futures[future], future.result())
                bar.update()
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def _run_dask(fn: Callable[[T], R], tasks: list[T], on_result: Callable[[T, R], None],
              scheduler: str | None, bar: tqdm) -> None:
    try:
        from distributed import Client, as_completed as dask_completed
    except ImportError:
        raise CosimError("the dask executor needs dask.distributed: pip install 'dask[distributed]'") from None
    if not scheduler:
        raise InputError("--executor dask needs --scheduler ADDR (e.g. tcp://127.0.0.1:8786)")
    try:
        client = Client(scheduler, timeout="10s")
    except OSError as exc:
        raise CosimError(f"cannot reach the Dask scheduler at {scheduler} ({exc}); start one with "
                         "`dask scheduler` and `dask worker ADDR`") from None
    try:
        futures = client.map(fn, tasks, pure=False)
        index = {future.key: task for future, task in zip(futures, tasks)}
        for future in dask_completed(futures):
            on_result(index[future.key], future.result())
            bar.update()
    finally:
        client.close()
