"""Load a saved PyTorch layer safely and list its steps.

`torch.load(weights_only=True)` with an allowlist of torch.nn classes: no
pickle code ever runs, and a file that needs another class is refused with a
line naming what is supported. TorchScript files are accepted too.
"""

from __future__ import annotations

import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from cosim.errors import InputError
from cosim.nn import Abs, SequenceLast
from cosim.training import BinaryConv2d, BinaryLinear

ANALOG = (nn.Linear, nn.Conv2d, nn.GRU)
DIGITAL = (nn.ReLU, nn.Sigmoid, nn.Tanh, nn.Flatten, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d,
           nn.Identity, nn.Dropout, nn.BatchNorm1d, nn.BatchNorm2d, nn.Softmax, nn.LogSoftmax, Abs,
           SequenceLast)
CONTAINERS = (nn.Sequential,)
BINARY = (BinaryLinear, BinaryConv2d)  # analog subclasses mapped on two device levels (seed 002)
SUPPORTED = ANALOG + DIGITAL + CONTAINERS + BINARY
SUPPORTED_NAMES = ", ".join(sorted({cls.__name__ for cls in SUPPORTED}))
_ANALOG_NAMES = {cls.__name__ for cls in ANALOG}
_DIGITAL_NAMES = {cls.__name__ for cls in DIGITAL}


@dataclass(frozen=True)
class Step:
    """One step of a layer: `module` is analog (runs on crossbars) or digital."""

    name: str
    module: nn.Module
    analog: bool


def load_layer(path: Path | str) -> nn.Module:
    """The module saved in `path` (torch.save of a module, or TorchScript), in eval mode."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"layer file {p} does not exist; save a module with torch.save(layer, '{p.name}')")
    if _is_torchscript(p):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 deprecates TorchScript loading
            module = torch.jit.load(str(p), map_location="cpu")
    else:
        module = _load_pickled(p)
    if not isinstance(module, (nn.Module, torch.jit.ScriptModule)):
        raise InputError(f"{p} holds a {type(module).__name__}, not a module; save the layer itself "
                         f"(torch.save(layer, path)), one of: {SUPPORTED_NAMES}")
    module.eval()
    steps(module, where=str(p))  # refuse unsupported modules now, in one line
    return module


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("constants.pkl") or "/code/" in name for name in archive.namelist())


def _load_pickled(path: Path) -> object:
    try:
        with torch.serialization.safe_globals(list(SUPPORTED)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, ValueError...
        try:
            unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        except Exception:
            unsafe = []
        if unsafe:
            raise InputError(f"{path} needs {', '.join(unsafe)}, which cosim does not load; "
                             f"supported modules: {SUPPORTED_NAMES}") from None
        raise InputError(f"{path} is not a torch.save'd module ({str(exc).splitlines()[0][:120]}); "
                         f"save one of: {SUPPORTED_NAMES}") from None


def _kind(module: nn.Module) -> str:
    """'analog', 'digital' or 'container' (TorchScript modules by original name)."""
    name = getattr(module, "original_name", type(module).__name__)
    if isinstance(module, ANALOG) or name in _ANALOG_NAMES:
        return "analog"
    if isinstance(module, DIGITAL) or name in _DIGITAL_NAMES:
        return "digital"
    if isinstance(module, CONTAINERS) or name == "Sequential":
        return "container"
    return name


def steps(module: nn.Module, where: str = "layer") -> list[Step]:
    """The layer flattened into steps in forward order (Sequential unrolled)."""
    kind = _kind(module)
    if kind == "container":
        out: list[Step] = []
        for name, child in module.named_children():
            out += [Step(f"{name}.{s.name}" if s.name else name, s.module, s.analog)
                    for s in steps(child, where)]
        return out
    if kind in ("analog", "digital"):
        _check_analog(module, where)
        return [Step("", module, kind == "analog")]
    raise InputError(f"{where}: {kind} is not a supported module; supported: {SUPPORTED_NAMES}")


def _check_analog(module: nn.Module, where: str) -> None:
    if isinstance(module, nn.GRU) or getattr(module, "original_name", "") == "GRU":
        if module.bidirectional:
            raise InputError(f"{where}: bidirectional GRU is not supported; use bidirectional=False")
    for name, tensor in module.state_dict().items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise InputError(f"{where}: {type(module).__name__} parameter {name} has NaN or infinite "
                             "values; retrain or clean the weights")
