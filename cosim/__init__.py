"""cosim: SPICE-backed, circuit-level co-simulator for memristor crossbar accelerators."""

__version__ = "0.1.0"

from cosim.errors import CosimError  # noqa: E402

__all__ = ["CosimError", "__version__", "convert"]


def __getattr__(name: str):
    """Lazy exports: `cosim.convert` imports torch only when used."""
    if name == "convert":
        import cosim.convert as module  # a callable module: cosim.convert(model)

        return module
    raise AttributeError(f"module 'cosim' has no attribute {name!r}")
