"""Compatibility import path of `TileSpec` (README: `from cosim.core.tile import TileSpec`);
the class lives in `cosim.core.tile`."""

from cosim.core.tile import TileSpec

__all__ = ["TileSpec"]
