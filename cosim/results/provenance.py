"""Versions of the tools a result came from, for HDF5 root attributes."""

from __future__ import annotations

import json
import platform

import h5py
import numpy as np

from cosim.core.version import __version__


def versions(spice: bool = False, torch: bool = False, spice_engine: str = "ngspice") -> str:
    """JSON of cosim, numpy, h5py, Python (and the SPICE engine / torch when used;
    `spice_engine` 'ngspice' or 'vacask')."""
    found = {"cosim": __version__, "numpy": np.__version__, "h5py": h5py.__version__,
             "python": platform.python_version()}
    if spice and spice_engine == "vacask":
        from cosim.spice.vacask import vacask_version

        found["vacask"] = vacask_version()
    elif spice:
        from cosim.spice.ngspice import ngspice_version

        found["ngspice"] = ngspice_version()
    if torch:
        import torch as torch_module

        found["torch"] = torch_module.__version__
    return json.dumps(found)
