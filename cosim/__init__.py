"""cosim: SPICE-backed, circuit-level co-simulator for memristor crossbar accelerators."""

from cosim.core.errors import CosimError
from cosim.core.tile import TileSpec
from cosim.core.version import __version__

__all__ = ["CosimError", "TileSpec", "__version__", "convert"]


def __getattr__(name: str):
    """Lazy export: `cosim.convert` (the function of `cosim.twin.convert`) imports torch only when used."""
    if name == "convert":
        from cosim.twin.convert import convert

        return convert
    raise AttributeError(f"module 'cosim' has no attribute {name!r}")
