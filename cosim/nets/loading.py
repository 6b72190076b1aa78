"""Load a saved PyTorch layer safely and list its steps.

`torch.load(weights_only=True)` with an allowlist of torch.nn classes: no
pickle code ever runs, and a file that needs another class is refused with a
line naming what is supported. TorchScript files are refused without being
opened by torch: loading one runs its code (`forward`, `__setstate__`), so
cosim never calls `torch.jit.load`.
"""

from __future__ import annotations

import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from cosim.core.errors import InputError
from cosim.nets.nn import Abs, SequenceLast
from cosim.nets.training import BinaryConv2d, BinaryLinear

ANALOG = (nn.Linear, nn.Conv2d, nn.GRU)
DIGITAL = (nn.ReLU, nn.Sigmoid, nn.Tanh, nn.Flatten, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d,
           nn.Identity, nn.Dropout, nn.BatchNorm1d, nn.BatchNorm2d, nn.Softmax, nn.LogSoftmax, Abs,
           SequenceLast)
CONTAINERS = (nn.Sequential,)
BINARY = (BinaryLinear, BinaryConv2d)  # analog subclasses mapped on two device levels (seed 002)
SUPPORTED = ANALOG + DIGITAL + CONTAINERS + BINARY
SUPPORTED_NAMES = ", ".join(sorted({cls.__name__ for cls in SUPPORTED}))
#: Where cosim's own layers lived before the subpackages: files saved then name
#: these paths, and still load (the same classes, under their old names).
FORMER_PATHS = ((Abs, "cosim.nn.Abs"), (SequenceLast, "cosim.nn.SequenceLast"),
                (BinaryLinear, "cosim.training.BinaryLinear"), (BinaryConv2d, "cosim.training.BinaryConv2d"))


@dataclass(frozen=True)
class Step:
    """One step of a layer: `module` is analog (runs on crossbars) or digital."""

    name: str
    module: nn.Module
    analog: bool


def load_layer(path: Path | str) -> nn.Module:
    """The module saved in `path` (torch.save of a plain torch.nn module), in eval mode.
    TorchScript archives are refused before torch reads them: their code would run."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"layer file {p} does not exist; save a module with torch.save(layer, '{p.name}')")
    if p.stat().st_size == 0:
        raise InputError(f"layer file {p} is empty (0 bytes); save the layer again with "
                         f"torch.save(layer, '{p.name}')")
    if is_torchscript(p):
        raise InputError(f"{p} is a TorchScript archive, which cosim does not load because loading it "
                         "runs the code it holds; save the plain torch.nn module instead, not scripted: "
                         f"torch.save(module, '{p.name}')")
    module = _load_pickled(p)
    if not isinstance(module, nn.Module):
        raise InputError(f"{p} holds a {type(module).__name__}, not a module; save the layer itself "
                         f"(torch.save(layer, path)), one of: {SUPPORTED_NAMES}")
    module.eval()
    if not steps(module, where=str(p)):  # refuses unsupported modules now, in one line
        raise InputError(f"{p} holds an empty {type(module).__name__}; save a layer with at least one "
                         f"of: {SUPPORTED_NAMES}")
    return module


# Entries only TorchScript (and mobile) archives hold, below the archive's top folder:
# code/ (the module's Python source), constants.pkl, bytecode.pkl, *.debug_pkl.
_TORCHSCRIPT_FILES = {"constants.pkl", "bytecode.pkl"}


def is_torchscript(path: Path | str) -> bool:
    """Whether `path` is a TorchScript archive, from the zip's entry names alone
    (nothing in it is unpickled or run)."""
    try:
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile, ValueError):
        return False  # torch.load reports the broken archive
    for name in names:
        parts = name.replace("\\", "/").split("/")
        inner = parts[1:] if len(parts) > 1 else parts  # parts[0] is the archive's top folder
        if "code" in inner[:-1] or inner[-1] in _TORCHSCRIPT_FILES or name.endswith(".debug_pkl"):
            return True
    return False


def load_error_line(exc: BaseException, limit: int = 120) -> str:
    """The first line of a torch.load error (its type when the message is empty), shortened; torch's
    advice to drop weights_only is replaced by what it refused."""
    message = str(exc)
    if message.startswith("Weights only load failed"):  # skip torch's advice to drop weights_only
        if "WeightsUnpickler error:" in message:
            detail = message.split("WeightsUnpickler error:", 1)[1]
        else:
            paragraphs = [part.strip() for part in message.split("\n\n") if part.strip()]
            detail = paragraphs[1] if len(paragraphs) > 1 else ""
        message = "pickle refused: " + detail.strip()
    lines = message.strip().splitlines()
    text = lines[0].strip() if lines else type(exc).__name__
    if isinstance(exc, KeyError) or text.isdigit():  # str(KeyError(101)) is just '101'
        text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _load_pickled(path: Path) -> object:
    try:
        with torch.serialization.safe_globals([*SUPPORTED, *FORMER_PATHS]), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's own notes on the file are not cosim's errors
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, ValueError, EOFError...
        try:
            unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        except Exception:
            unsafe = []
        if unsafe:
            raise InputError(f"{path} needs {', '.join(unsafe)}, which cosim does not load; "
                             f"supported modules: {SUPPORTED_NAMES}") from None
        with open(path, "rb") as handle:
            head = handle.read(2)
        if head == b"PK" and not zipfile.is_zipfile(path):
            raise InputError(f"{path} is a truncated or damaged torch.save file (its zip archive is "
                             "incomplete); save the layer again with torch.save(layer, path)") from None
        if head != b"PK" and head[:1] != b"\x80":  # neither torch.save's zip nor its legacy pickle
            raise InputError(f"{path} is not a torch.save file (it starts with {head!r}, neither a zip "
                             "archive nor a pickle); save the layer with torch.save(layer, path)") from None
        raise InputError(f"{path} is not a torch.save'd module ({load_error_line(exc)}); "
                         f"save one of: {SUPPORTED_NAMES}") from None


def _kind(module: nn.Module) -> str:
    """'analog', 'digital' or 'container' (else the module's class name)."""
    if isinstance(module, ANALOG):
        return "analog"
    if isinstance(module, DIGITAL):
        return "digital"
    if isinstance(module, CONTAINERS):
        return "container"
    return type(module).__name__


def steps(module: nn.Module, where: str = "layer") -> list[Step]:
    """The layer flattened into steps in forward order (Sequential unrolled)."""
    kind = _kind(module)
    if kind == "container":
        out: list[Step] = []
        for name, child in module.named_children():
            # Any other name is kept as given (netlists carry its safe form, cosim.core.netsafe).
            if not isinstance(name, str) or "\x00" in name:
                raise InputError(f"{where}: child module name {ascii(name)[:60]} is not text without NUL "
                                 "characters, which RUN.h5 cannot store; rename the module")
            out += [Step(f"{name}.{s.name}" if s.name else name, s.module, s.analog)
                    for s in steps(child, where)]
        return out
    if kind in ("analog", "digital"):
        _check_module(module, where, analog=kind == "analog")
        return [Step("", module, kind == "analog")]
    raise InputError(f"{where}: {kind} is not a supported module; supported: {SUPPORTED_NAMES}")


def _check_module(module: nn.Module, where: str, analog: bool) -> None:
    """One line on what cosim cannot map: a bidirectional GRU, an empty weight
    (Linear(0, n), Linear(n, 0)), complex, NaN or infinite parameters."""
    layer = type(module).__name__
    if isinstance(module, nn.GRU) and module.bidirectional:
        raise InputError(f"{where}: bidirectional GRU is not supported; use bidirectional=False")
    for name, tensor in module.state_dict().items():
        if tensor.is_complex():
            raise InputError(f"{where}: {layer} parameter {name} is complex ({tensor.dtype}); "
                             "crossbars map real weights: save a float layer")
        if analog and "weight" in name and tensor.numel() == 0:
            raise InputError(f"{where}: {layer} parameter {name} is empty (shape {tuple(tensor.shape)}); "
                             "a layer needs at least one input and one output (e.g. Linear(4, 2), "
                             "not Linear(0, 2) or Linear(4, 0))")
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise InputError(f"{where}: {layer} parameter {name} has NaN or infinite "
                             "values; retrain or clean the weights")
