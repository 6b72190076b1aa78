"""The read disturb of a stored tile: the report its transient wrote, or one
recomputed from its stored waveforms (`cosim waves`, `cosim report`).
"""

from __future__ import annotations

import h5py

from cosim.analysis.disturb import DEFAULT_THRESHOLD, DisturbReport, read_disturb


def group_disturb(group: h5py.Group, threshold: float = DEFAULT_THRESHOLD, timeout_s: float = 600.0,
                  recompute: bool = False) -> DisturbReport:
    """Read disturb of a tile group with waveforms (cosim.results.waveforms layout):
    the stored `read_disturb` (written by `cosim tile --transient` from every
    cell's ngspice state) unless `recompute`, else `read_disturb` from the
    stored states, integrating the cells whose states were not stored."""
    from cosim.results.tile_specs import read_tile_spec
    from cosim.results.waveforms import vector_group

    if "read_disturb" in group and not recompute:
        ds = group["read_disturb"]
        return DisturbReport(ds[()], group["read_disturb_from_spice"][()], float(ds.attrs["t_read"]), threshold)
    spec = read_tile_spec(group)
    count = int(vector_group(group, 0).parent.attrs["vectors"])
    vectors = [vector_group(group, b) for b in range(count)]
    return read_disturb(spec, group["voltage"][()], [vec["time"][()] for vec in vectors],
                        [vec["state"][()] for vec in vectors], group["waveforms"]["state_cells"][()],
                        threshold, timeout_s)
