"""Locate the SPICE files shipped with cosim (circuits/, models/, presets),
from a checkout and from an installed wheel alike (importlib.resources)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from cosim.core.errors import CosimError

_PACKAGES = {"circuits": "cosim.circuits", "models": "cosim.models", "presets": "cosim.presets"}


def resource_path(folder: str, name: str) -> Path:
    """Absolute path of `name` in `folder` ('circuits', 'models' or 'presets')."""
    try:
        package = _PACKAGES[folder]
    except KeyError:
        raise CosimError(f"unknown resource folder {folder!r}; use one of {sorted(_PACKAGES)}") from None
    try:
        path = Path(str(resources.files(package).joinpath(name)))
    except ModuleNotFoundError:
        # Running from a checkout without the install's package mapping:
        # circuits/, models/ sit beside cosim/, presets/ inside it.
        here = Path(__file__).resolve().parents[1]  # cosim/
        path = (here / folder if folder == "presets" else here.parent / folder) / name
    if not path.is_file():
        raise CosimError(f"cosim file {folder}/{name} is missing: reinstall cosim (pip install .)")
    return path

