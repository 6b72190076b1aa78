"""Read-disturb reports stored in RUN.h5 / RESULT.h5 tile groups (`read_disturb`, (B, R, C) dG/G).
"""

from __future__ import annotations

import h5py
import numpy as np

from cosim.analysis.disturb import DisturbReport


def write_disturb(group: h5py.Group, report: DisturbReport) -> h5py.Dataset:
    """Store a report as `group/read_disturb` (B, R, C) with its figures as attrs."""
    ds = group.create_dataset("read_disturb", data=report.change)
    ds.attrs.update({"units": "1", "description": "dG/G = G(end of read)/G(start) - 1 per input vector",
                     "max_abs": report.max_abs, "mean_abs": report.mean_abs, "t_read": report.t_read,
                     "threshold": report.threshold, "worst_vector_row_col": np.array(report.worst)})
    group.create_dataset("read_disturb_from_spice", data=report.from_spice).attrs["description"] = (
        "True: from ngspice's device states; False: integrated from the DC read voltage")
    return ds
