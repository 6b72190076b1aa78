"""Bundled example layers (Linear, Conv2d, GRU, the digits MLP) and their input files.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from cosim.core.seeds import EXAMPLE_SEED

if TYPE_CHECKING:
    import torch

LAYER_EXAMPLES = ("linear", "conv", "gru", "mlp-digits")

# The seed networks (cosim.nets.networks; `cosim example NAME` writes NAME.pt).
NETWORKS = {
    "resnet18-cbam": "seed 000: ResNet-18 + CBAM, 1x48x48 input, 7 classes; random weights (FER2013 is not "
                     "available here), for timing",
    "binarized-cnn": "seed 002 stand-in: binarized CNN (+-alpha weights) with a dense head, trained on 1x8x8 "
                     "digits; its BinaryConv2d/BinaryLinear layers simulate on two device levels",
    "gru-digits": "seed 004 stand-in: GRU 8 -> 32 over a digit's 8 rows, Linear head, trained on digits",
    "abs-mlp": "seed 001: 64-100-10 MLP with Abs activation trained on digits (same as mlp-digits)",
}


def make_linear() -> "torch.nn.Module":
    """The seed-001 MLP's first layer shape, 784 -> 100, random (seeded) weights."""
    import torch

    torch.manual_seed(EXAMPLE_SEED)
    return torch.nn.Linear(784, 100)


def make_conv() -> "torch.nn.Module":
    """A small 3x3 Conv2d (3 -> 8 channels, padding 1) whose 27 x 16 tile runs in ngspice."""
    import torch

    torch.manual_seed(EXAMPLE_SEED)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU())


def make_gru() -> "torch.nn.Module":
    """A GRU (8 features -> 16 hidden, batch first) with a last-step Linear head (seed 004 style)."""
    import torch

    from cosim.nets.nn import SequenceLast

    torch.manual_seed(EXAMPLE_SEED)
    return torch.nn.Sequential(torch.nn.GRU(8, 16, batch_first=True), SequenceLast(), torch.nn.Linear(16, 4))


def digits_data() -> tuple["torch.Tensor", "torch.Tensor"]:
    """scikit-learn's bundled 8x8 digits: x (1797, 64) in [0, 1], labels (1797,)."""
    import torch
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (torch.tensor(digits.data / 16.0, dtype=torch.float32),
            torch.tensor(digits.target, dtype=torch.long))


def make_mlp_digits(epochs: int = 300) -> tuple["torch.nn.Module", float]:
    """A 64-100-10 MLP with Abs activation (seed 001's 784-100-10 on MNIST,
    which cannot be downloaded here) trained on the bundled digits; returns
    (model, test accuracy) on a fixed 80/20 split."""
    import torch

    from cosim.nets.nn import Abs

    x, y = digits_data()
    generator = torch.Generator().manual_seed(EXAMPLE_SEED)
    order = torch.randperm(len(x), generator=generator)
    train, test = order[: int(0.8 * len(x))], order[int(0.8 * len(x)):]
    torch.manual_seed(EXAMPLE_SEED)
    model = torch.nn.Sequential(torch.nn.Linear(64, 100), Abs(), torch.nn.Linear(100, 10))
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(epochs):
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x[train]), y[train])
        loss.backward()
        optimiser.step()
    model.eval()
    with torch.no_grad():
        accuracy = float((model(x[test]).argmax(1) == y[test]).float().mean())
    return model, accuracy


def write_layer_example(name: str, directory: Path) -> list[Path]:
    """Write example `name` (a LAYER_EXAMPLES entry) as .pt files; returns the paths."""
    import torch

    from cosim.core.atomic import atomic_opens, check_output_dir

    directory = check_output_dir(directory, create=True)
    stem = name.replace("-", "_")
    if name == "mlp-digits":
        model, _ = make_mlp_digits()
        x, y = digits_data()
        objects = {f"{stem}.pt": model, "digits_x.pt": x[:64].clone(), "digits_y.pt": y[:64].clone()}
    else:
        objects = {f"{stem}.pt": {"linear": make_linear, "conv": make_conv, "gru": make_gru}[name]()}
    paths = [directory / file for file in objects]
    with atomic_opens(paths, "wb") as handles:  # all files appear, complete, or none
        for obj, handle in zip(objects.values(), handles):
            torch.save(obj, handle)
    return paths
