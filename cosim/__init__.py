"""cosim: SPICE-backed, circuit-level co-simulator for memristor crossbar accelerators."""

__version__ = "0.1.0"

from cosim.errors import CosimError  # noqa: E402

__all__ = ["CosimError", "__version__"]
