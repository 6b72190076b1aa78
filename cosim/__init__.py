"""cosim: SPICE-backed, circuit-level co-simulator for memristor crossbar accelerators."""

from cosim.core.errors import CosimError
from cosim.core.tile import TileSpec
from cosim.core.version import __version__

__all__ = ["CosimError", "TileSpec", "__version__", "convert", "to_pyspice"]


def __getattr__(name: str):
    """Lazy exports: `cosim.convert` (the function of `cosim.twin.convert`) imports torch only when
    used; `cosim.to_pyspice` (`cosim.spice.pyspice_export.to_pyspice`) imports PySpice only when called."""
    if name == "convert":
        from cosim.twin.convert import convert

        return convert
    if name == "to_pyspice":
        from cosim.spice.pyspice_export import to_pyspice

        return to_pyspice
    raise AttributeError(f"module 'cosim' has no attribute {name!r}")
