"""The seed networks as ready PyTorch models, and a safe loader for them.

- seed 000: ResNet-18 with CBAM attention for 48x48 grayscale faces, 7
  classes (FER2013 cannot be downloaded here: random, seeded weights, for
  timing only).
- seed 001: the Abs MLP (`cosim.nets.examples.make_mlp_digits`, digits stand in
  for MNIST).
- seed 002: a binarized CNN with a dense (fully connected) head: every
  Conv2d/Linear weight is +-alpha (one alpha per layer), trained briefly with
  a straight-through estimator on scikit-learn's 8x8 digits (1x8x8 images).
- seed 004: a lightweight GRU classifier reading a digit image row by row
  (8 steps of 8 features), trained briefly on the same digits.

Every class here is built only from torch.nn modules, so `cosim.convert`
replaces their Conv2d/Linear/GRU layers wherever they sit, and
`load_network` loads them with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from cosim.core.errors import InputError
from cosim.core.seeds import EXAMPLE_SEED
from cosim.nets.examples import NETWORKS, digits_data, make_mlp_digits
from cosim.nets.nn import Abs, SequenceLast
from cosim.nets.training import BinaryConv2d, BinaryLinear


class ChannelAttention(nn.Module):
    """CBAM channel attention: shared MLP (1x1 convs) on avg- and max-pooled features."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.avg = nn.AdaptiveAvgPool2d(1)
        self.max = nn.AdaptiveMaxPool2d(1)
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1, bias=False), nn.ReLU(),
                                 nn.Conv2d(hidden, channels, 1, bias=False))
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W): x scaled per channel by the attention gate in (0, 1)."""
        return x * self.gate(self.mlp(self.avg(x)) + self.mlp(self.max(x)))


class SpatialAttention(nn.Module):
    """CBAM spatial attention: 7x7 conv over channel mean and max maps."""

    def __init__(self, kernel: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel, padding=kernel // 2, bias=False)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W): x scaled per pixel by the attention gate in (0, 1)."""
        maps = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * self.gate(self.conv(maps))


class CBAM(nn.Module):
    """Convolutional block attention module: channel, then spatial attention."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.channel = ChannelAttention(channels, reduction)
        self.spatial = SpatialAttention()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W): channel attention, then spatial attention."""
        return self.spatial(self.channel(x))


class BasicBlock(nn.Module):
    """ResNet basic block (two 3x3 convs) with CBAM before the residual add."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.cbam = CBAM(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, c_in, H, W) -> (B, c_out, H / stride, W / stride)."""
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.cbam(self.bn2(self.conv2(out)))
        return F.relu(out + self.shortcut(x))


class ResNet18Cbam(nn.Module):
    """ResNet-18 with CBAM for 48x48 grayscale images, 7 classes (seed 000 shape).

    Stem: 3x3 conv, stride 1, no max pool (48x48 inputs are small), then four
    stages of two basic blocks (64, 128, 256, 512 channels; 48, 24, 12, 6
    pixels), global average pool, Linear 512 -> classes.
    """

    def __init__(self, classes: int = 7, channels: int = 1, width: int = 64) -> None:
        super().__init__()
        widths = [width, 2 * width, 4 * width, 8 * width]
        self.stem = nn.Sequential(nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                                  nn.ReLU())
        blocks, c_in = [], width
        for k, c_out in enumerate(widths):
            stride = 1 if k == 0 else 2
            blocks += [BasicBlock(c_in, c_out, stride), BasicBlock(c_out, c_out)]
            c_in = c_out
        self.layers = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(c_in, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, channels, 48, 48) -> (B, classes) logits."""
        return self.fc(self.flatten(self.pool(self.layers(self.stem(x)))))


NETWORK_CLASSES = (ResNet18Cbam, BasicBlock, CBAM, ChannelAttention, SpatialAttention, nn.AdaptiveMaxPool2d,
                   Abs, SequenceLast)
RESNET_INPUT = (1, 48, 48)


def make_resnet18_cbam(seed: int = EXAMPLE_SEED, width: int = 64) -> nn.Module:
    """Seed 000 shape with random (seeded) weights and BatchNorm statistics
    set so activations keep a unit scale; for timing, not accuracy."""
    torch.manual_seed(seed)
    model = ResNet18Cbam(width=width)
    model.eval()
    return model


def _split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(EXAMPLE_SEED)
    order = torch.randperm(n, generator=generator)
    return order[: int(0.8 * n)], order[int(0.8 * n):]


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def make_binarized_cnn(epochs: int = 60) -> tuple[nn.Module, float]:
    """Seed 002 stand-in: binarized CNN (+-alpha weights) with a dense head on
    1x8x8 digits; returns (model, test accuracy on the 20 % split)."""
    x, y = digits_data()
    x = x.reshape(-1, 1, 8, 8)
    train, test = _split(len(x))
    torch.manual_seed(EXAMPLE_SEED)
    # cosim.nets.training's binarised layers: Simulation maps them on two device levels (g_min / g_max pairs)
    model = nn.Sequential(BinaryConv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                          BinaryConv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), BinaryLinear(32 * 2 * 2, 64), nn.ReLU(), BinaryLinear(64, 10))
    binary = [m for m in model if isinstance(m, (nn.Conv2d, nn.Linear))]
    latent = [m.weight.detach().clone() for m in binary]
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(epochs):
        with torch.no_grad():  # BinaryConnect: forward with sign(latent) * alpha, update the latent weights
            for m, w in zip(binary, latent):
                m.weight.copy_(torch.sign(w) * w.abs().mean())
        optimiser.zero_grad()
        loss = F.cross_entropy(model(x[train]), y[train])
        loss.backward()
        with torch.no_grad():
            for m, w in zip(binary, latent):
                m.weight.copy_(w)
        optimiser.step()
        with torch.no_grad():
            for m, w in zip(binary, latent):
                w.copy_(m.weight.clamp(-1, 1))
    with torch.no_grad():
        for m, w in zip(binary, latent):
            m.weight.copy_(torch.sign(w) * w.abs().mean())
    model.eval()
    return model, _accuracy(model, x[test], y[test])


def make_gru_classifier(epochs: int = 150, hidden: int = 32) -> tuple[nn.Module, float]:
    """Seed 004 stand-in: GRU(8 -> hidden) over the 8 rows of a digit, last
    step -> Linear(hidden -> 10); returns (model, test accuracy)."""
    x, y = digits_data()
    x = x.reshape(-1, 8, 8)
    train, test = _split(len(x))
    torch.manual_seed(EXAMPLE_SEED)
    model = nn.Sequential(nn.GRU(8, hidden, batch_first=True), SequenceLast(), nn.Linear(hidden, 10))
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(epochs):
        optimiser.zero_grad()
        F.cross_entropy(model(x[train]), y[train]).backward()
        optimiser.step()
    model.eval()
    return model, _accuracy(model, x[test], y[test])




def make_network(name: str) -> tuple[nn.Module, float | None]:
    """(model, test accuracy or None) of a NETWORKS entry."""
    if name == "resnet18-cbam":
        return make_resnet18_cbam(), None
    if name == "binarized-cnn":
        return make_binarized_cnn()
    if name == "gru-digits":
        return make_gru_classifier()
    if name == "abs-mlp":
        return make_mlp_digits()
    raise InputError(f"unknown network {name!r}; one of {', '.join(NETWORKS)}")


def write_network(name: str, directory: Path) -> list[Path]:
    """torch.save a NETWORKS entry as NAME.pt in `directory`; returns the path."""
    model, _ = make_network(name)
    from cosim.core.atomic import atomic_open, check_output_dir

    directory = check_output_dir(directory, create=True)
    path = directory / f"{name.replace('-', '_')}.pt"
    with atomic_open(path, "wb") as handle:  # a failed write leaves no file
        torch.save(model, handle)
    return [path]


def load_network(path: Path | str) -> nn.Module:
    """A torch.save'd model built from torch.nn modules and the classes here,
    loaded with weights_only=True (no pickle code runs), in eval mode."""
    from cosim.nets.loading import SUPPORTED, is_torchscript, load_layer

    p = Path(path)
    if not p.is_file():
        raise InputError(f"model file {p} does not exist; save a model with torch.save(model, '{p.name}')")
    if is_torchscript(p):
        return load_layer(p)  # refused in one line, before torch reads the archive
    try:
        with torch.serialization.safe_globals([*SUPPORTED, *NETWORK_CLASSES]):
            model = torch.load(p, map_location="cpu", weights_only=True)
    except Exception:
        return load_layer(p)  # one line saying what is not supported (TorchScript refused)
    if not isinstance(model, nn.Module):
        raise InputError(f"{p} holds a {type(model).__name__}, not a module; save the model itself")
    model.eval()
    return model
