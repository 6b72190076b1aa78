"""RUN.h5 `energy/`: J per inference by analog layer and component, the
array's parts, reads and latency per layer, and the network's critical path
(written by `cosim simulate`, read back through `cosim.results.h5check` for the report)."""

from __future__ import annotations

from dataclasses import dataclass

import h5py
import numpy as np

from cosim.core.energy_models import COMPONENTS
from cosim.core.tile_power import PARTS


def write_energy(h5: h5py.File, report: object) -> None:
    """`energy/` group and the root attrs energy_per_inference_j (J), latency_s (s), tops_per_w
    from a `cosim.run.energy.EnergyReport`."""
    group = h5.create_group("energy")
    strings = h5py.string_dtype()
    group.create_dataset("layers", data=np.array(report.layers, dtype=object), dtype=strings)
    group.create_dataset("components", data=np.array(COMPONENTS, dtype=object), dtype=strings)
    group.create_dataset("parts", data=np.array(PARTS, dtype=object), dtype=strings)
    group.create_dataset("per_layer", data=report.per_layer).attrs["units"] = "J per inference"
    group.create_dataset("array_parts", data=report.array_parts).attrs["units"] = "J per inference"
    group.create_dataset("reads", data=report.reads).attrs["units"] = "reads per inference"
    group.create_dataset("layer_latency", data=report.layer_latency_s).attrs["units"] = "s"
    group.create_dataset("critical_path", data=np.array(report.path, dtype=object), dtype=strings)
    group.attrs.update({"mode": report.mode, "macs_per_inference": report.macs, "pj_per_mac": report.pj_per_mac})
    h5.attrs.update({"energy_per_inference_j": report.energy_per_inference_j, "latency_s": report.latency_s,
                     "tops_per_w": report.tops_per_w})


@dataclass(frozen=True)
class StoredEnergy:
    """RUN.h5 `energy/` as read back: layer names, (L, K) J per inference, component names."""

    layers: list[str]
    per_layer: np.ndarray
    components: list[str]


def read_energy(h5: h5py.File) -> StoredEnergy | None:
    """The checked `energy/` group of a RUN.h5, or None when the run has none."""
    from cosim.results import h5check

    group = h5check.group(h5, "energy", required=False)
    if group is None:
        return None

    def texts(key: str) -> list[str]:
        values = h5check.array(group, key, kinds="U", shape=(None,))
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values]

    layers, components = texts("layers"), texts("components")
    per_layer = h5check.array(group, "per_layer", shape=(len(layers), len(components)), what="J per inference")
    if np.any(per_layer < 0):
        raise h5check.problem(group, "dataset 'per_layer' holds a negative energy")
    return StoredEnergy(layers, per_layer, components)
