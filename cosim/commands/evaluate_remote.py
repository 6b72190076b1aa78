"""`cosim evaluate --executor dask`: the twin's batches on a Dask cluster
(`cosim.twin.distributed`), merged into the local run's per-layer errors,
DAC row statistics, tile vectors and ADC full scales in batch order, so the
run file and summary are those of a local run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn


class LayerSums:
    """Collector (on a worker): `cosim.twin.layer_errors.LayerErrors` sums of one batch."""

    def __init__(self, twin: "nn.Module", model: "nn.Module") -> None:
        from cosim.twin.layer_errors import LayerErrors

        self.errors = LayerErrors(twin, model)

    def state(self) -> dict[str, list[float]]:
        """label -> [sum |out - ref|^2, sum |ref|^2] of this batch; removes the hooks."""
        self.errors.result()
        return self.errors.sums


class RowSums:
    """Collector (on a worker): `cosim.run.energy.RowStats` of one batch."""

    def __init__(self, twin: "nn.Module", model: "nn.Module") -> None:
        from cosim.run.energy import RowStats
        from cosim.twin.convert import analog_layers, tile_cache

        self.rows = RowStats(analog_layers(twin), tile_cache(twin).preset)

    def state(self) -> dict[str, list[Any]]:
        """label -> [sum v^2 per row, reads, groups] of this batch; removes the hooks."""
        self.rows.close()
        return self.rows.layers


def remote_outputs(model: "nn.Module", convert_kwargs: dict, x: "torch.Tensor", batch_size: int, scheduler: str,
                   layers: Any, rows: Any, cache: Any, quiet: bool = True) -> "torch.Tensor":
    """The twin's outputs for x, batch by batch on the cluster at `scheduler`, with
    `layers` (LayerErrors), `rows` (RowStats) and `cache` (the local TileCache:
    tile vectors, ADC full scales) updated as a local run updates them."""
    import torch

    from cosim.twin.distributed import run_batches

    results = run_batches(model, convert_kwargs, x, batch_size, executor="dask", scheduler=scheduler,
                          collectors=(LayerSums, RowSums), quiet=quiet)
    for result in results:  # batch order: the sums add up as in a local run
        sums, row_layers = result.states
        for label, (err, ref) in sums.items():
            layers.add(label, err, ref)
        for label, (sq, reads, groups) in row_layers.items():
            rows.add(label, sq, reads, groups)
        for name, vectors in result.vectors.items():
            if name in cache.records:
                cache.records[name].vectors += vectors
        cache.adc_vfs.update(result.adc_vfs)
    return torch.cat([r.output for r in results])
