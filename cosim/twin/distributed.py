"""A converted model's forward pass over batches, one batch per task, in this
process or on a Dask cluster (`cosim evaluate --executor dask --scheduler ADDR`).

Every task converts the model with the same arguments (`cosim.convert` is
deterministic: the same seed draws the same devices), once per worker thread
and run (`token`), and runs one batch; what forward hooks collect (per-layer
errors, DAC row statistics) comes back per batch with the outputs, the
vectors each tile answered and the ADC full scales, and `BatchRun.merge`
adds them in batch order, so a cluster reproduces the local run exactly:
the same outputs, and the same sums built in the same order.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: Converted models kept on each worker, by (run token, thread): one run at a time is kept.
_TWINS: dict[tuple[str, int], Any] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class BatchTask:
    """One batch of a run: its index, the model and convert() arguments, the inputs,
    and the factories of the hook collectors (`collector(twin, model)`, each with `state()`)."""

    token: str
    index: int
    model: Any
    convert_kwargs: dict
    x: Any
    collectors: tuple[Callable[[Any, Any], Any], ...] = ()


@dataclass
class BatchResult:
    """What one batch returns: outputs, each collector's state, tile vectors, ADC full scales (V)."""

    index: int
    output: Any
    states: list[Any] = field(default_factory=list)
    vectors: dict[str, int] = field(default_factory=dict)
    adc_vfs: dict[str, float] = field(default_factory=dict)


def _twin(task: BatchTask) -> Any:
    """This thread's twin of the run: a converted model runs one forward pass at a
    time, and in-process workers (LocalCluster(processes=False)) share this module."""
    from cosim.twin.convert import convert

    key = (task.token, threading.get_ident())
    with _LOCK:
        twin = _TWINS.get(key)
        if twin is None:
            for old in [k for k in _TWINS if k[0] != task.token]:
                del _TWINS[old]
    if twin is None:
        twin = convert(task.model, **task.convert_kwargs)
        with _LOCK:
            _TWINS[key] = twin
    return twin


def run_batch(task: BatchTask) -> BatchResult:
    """The twin's output for one batch, with what its collectors saw (runs on a worker)."""
    import torch

    from cosim.twin.convert import tile_cache

    twin = _twin(task)
    cache = tile_cache(twin)
    before = {name: record.vectors for name, record in cache.records.items()}
    collectors = [make(twin, task.model) for make in task.collectors]
    try:
        with torch.no_grad():
            out = twin(task.x)
    finally:
        states = [c.state() for c in collectors]
    out = out[0] if isinstance(out, tuple) else out
    vectors = {name: record.vectors - before.get(name, 0) for name, record in cache.records.items()}
    return BatchResult(task.index, out, states, vectors, dict(cache.adc_vfs))


def run_batches(model: Any, convert_kwargs: dict, x: Any, batch_size: int, *, executor: str = "local",
                scheduler: str | None = None, collectors: tuple[Callable[[Any, Any], Any], ...] = (),
                quiet: bool = True) -> list[BatchResult]:
    """Every batch of `x` (batch_size samples each) through the converted model, on
    `executor` ('local' or 'dask' at `scheduler`), results in batch order."""
    from cosim.run.executors import map_tasks

    token = uuid.uuid4().hex
    tasks = [BatchTask(token, k, model, convert_kwargs, x[i:i + batch_size], collectors)
             for k, i in enumerate(range(0, len(x), batch_size))]
    results: dict[int, BatchResult] = {}
    map_tasks(run_batch, tasks, lambda task, result: results.__setitem__(task.index, result), executor=executor,
              scheduler=scheduler, description="batches", quiet=quiet)
    with _LOCK:
        for key in [k for k in _TWINS if k[0] == token]:
            del _TWINS[key]
    return [results[k] for k in range(len(tasks))]
