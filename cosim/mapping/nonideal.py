"""Device non-idealities applied where weights become conductances (mapping
stage), so every engine sees the same devices.

Order of application to each device of a differential pair (seeds 000, 001):
  1. finite states: the target conductance snaps to the nearest of `states`
     levels spaced evenly in conductance over [g_min, g_max] (seed 000, Fig. 15);
  2. variability: G <- G * exp(theta), theta ~ N(0, sigma^2) on every device
     (seed 001: "G_ij <- G_ij * exp(theta_ij)");
  3. defect percent alpha (seed 001, Fig. 6): round(alpha * n) devices chosen at
     random without replacement; the first round(alpha * beta * n) of them are
     stuck (single-bit failure: at HRS in the seed, here at `stuck_at`), the
     remaining round(alpha * n) - round(alpha * beta * n) get variability
     exp(theta) with theta ~ N(0, s^2), s drawn per device uniformly in
     [0.6, 1.0] (the seed: "sigma drawn at random between 0.6 and 1.0");
  4. clip to the device range [g_min, g_max];
  5. stuck-at faults: round(stuck_at_rate * n) further devices chosen at random
     are set to g_min ('hrs'), g_max ('lrs'), or either with probability 1/2
     ('both') (seed 000, Table 1), whatever was programmed.
n counts every device of the matrix, positive and negative columns together.

All draws come from one numpy Generator and depend only on the matrix shape,
never on the weights, so re-mapping new weights onto the same array (in-situ
training) hits the same faulty devices.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from cosim.core.config import VteamParams
from cosim.core.errors import InputError
from cosim.mapping.pairs import MappedMatrix

STUCK_KINDS = ("hrs", "lrs", "both")

OK, STUCK_HRS, STUCK_LRS = 0, 1, 2

DEFECT_SIGMA_RANGE = (0.6, 1.0)


@dataclass(frozen=True)
class NonIdeal:
    """Mapping-stage non-idealities (all off by default).

    Attributes:
        states: conductance levels per device, 2..64 (None: continuous).
        stuck_at_rate: fraction of devices stuck, 0..0.25.
        stuck_at: where stuck devices sit: 'hrs' (g_min), 'lrs' (g_max) or 'both'.
        variability_sigma: sigma of the lognormal spread, 0..1 (1, in ln G).
        defect_alpha: defect percent alpha of seed 001 as a fraction, 0..1.
        defect_beta: share of defective devices that are stuck (seed 001: 0.5).
    """

    states: int | None = None
    stuck_at_rate: float = 0.0
    stuck_at: str = "hrs"
    variability_sigma: float = 0.0
    defect_alpha: float = 0.0
    defect_beta: float = 0.5

    def __post_init__(self) -> None:
        if self.states is not None and not (isinstance(self.states, (int, np.integer)) and 2 <= self.states <= 64):
            raise InputError(f"--states must be an integer from 2 to 64, got {self.states}")
        if not 0.0 <= self.stuck_at_rate <= 0.25:
            raise InputError(f"--stuck-at-rate must lie in [0, 0.25], got {self.stuck_at_rate}")
        if self.stuck_at not in STUCK_KINDS:
            raise InputError(f"--stuck-at must be one of {', '.join(STUCK_KINDS)}, got {self.stuck_at!r}")
        if not 0.0 <= self.variability_sigma <= 1.0:
            raise InputError(f"--variability-sigma must lie in [0, 1], got {self.variability_sigma}")
        if not 0.0 <= self.defect_alpha <= 1.0:
            raise InputError(f"--defect-alpha must lie in [0, 1] (a fraction), got {self.defect_alpha}")
        if not 0.0 <= self.defect_beta <= 1.0:
            raise InputError(f"--defect-beta must lie in [0, 1], got {self.defect_beta}")

    @property
    def stochastic(self) -> bool:
        """True when the array depends on the random draw (stuck-at, variability or defects);
        finite states alone are deterministic."""
        return self.stuck_at_rate > 0 or self.variability_sigma > 0 or self.defect_alpha > 0

    @property
    def active(self) -> bool:
        """True when any non-ideality is switched on."""
        return (self.states is not None or self.stuck_at_rate > 0 or self.variability_sigma > 0
                or self.defect_alpha > 0)


def label_rng(seed: int, label: str) -> np.random.Generator:
    """The generator of matrix `label` in a run seeded `seed`: independent of the
    order in which matrices are mapped (CRC-32 of the label, stable across runs)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(label.encode())]))


def quantize_states(g: np.ndarray, states: int, device: VteamParams) -> np.ndarray:
    """Snap conductances (S) to `states` evenly spaced levels in [g_min, g_max]."""
    step = (device.g_max - device.g_min) / (states - 1)
    k = np.clip(np.rint((g - device.g_min) / step), 0, states - 1)
    return device.g_min + k * step


def _pick(rng: np.random.Generator, n: int, count: int) -> np.ndarray:
    """`count` distinct flat indices out of n (always consumes one permutation)."""
    return rng.permutation(n)[:count]


def apply(mapped: MappedMatrix, nonideal: NonIdeal, rng: np.random.Generator,
          device: VteamParams) -> tuple[MappedMatrix, dict[str, np.ndarray]]:
    """The conductances an array really holds, and its masks.

    Returns (mapped', masks) with masks 'stuck_pos', 'stuck_neg' (int8 codes:
    0 ok, 1 stuck at HRS, 2 stuck at LRS) and 'varied_pos', 'varied_neg'
    (bool: a defect-percent variability device), each (inputs, outputs).
    """
    shape = mapped.g_pos.shape
    g = np.stack([mapped.g_pos, mapped.g_neg]).astype(float)  # (2, inputs, outputs)
    n = g.size
    if nonideal.states is not None:
        g = quantize_states(g, nonideal.states, device)
    theta = rng.standard_normal(g.shape)
    if nonideal.variability_sigma > 0:
        g = g * np.exp(nonideal.variability_sigma * theta)
    stuck = np.zeros(n, dtype=np.int8)
    varied = np.zeros(n, dtype=bool)
    flat = g.reshape(-1)
    # defect percent (seed 001)
    order = rng.permutation(n)
    n_defect = int(round(nonideal.defect_alpha * n))
    n_fault = int(round(nonideal.defect_alpha * nonideal.defect_beta * n))
    sigmas = rng.uniform(*DEFECT_SIGMA_RANGE, size=n)
    theta_defect = rng.standard_normal(n)
    lrs_defect = rng.random(n) < 0.5
    faulty, variable = order[:n_fault], order[n_fault:n_defect]
    flat[variable] *= np.exp(sigmas[variable] * theta_defect[variable])
    varied[variable] = True
    stuck[faulty] = _codes(nonideal.stuck_at, lrs_defect[faulty])
    # explicit stuck-at rate (seed 000)
    chosen = _pick(rng, n, int(round(nonideal.stuck_at_rate * n)))
    lrs = rng.random(n) < 0.5
    stuck[chosen] = _codes(nonideal.stuck_at, lrs[chosen])
    flat = np.clip(flat, device.g_min, device.g_max)
    flat[stuck == STUCK_HRS] = device.g_min
    flat[stuck == STUCK_LRS] = device.g_max
    g = flat.reshape(g.shape)
    stuck, varied = stuck.reshape(g.shape), varied.reshape(g.shape)
    masks = {"stuck_pos": stuck[0], "stuck_neg": stuck[1], "varied_pos": varied[0], "varied_neg": varied[1]}
    assert g[0].shape == shape
    return MappedMatrix(g[0], g[1], mapped.weight_per_siemens), masks


def _codes(kind: str, lrs: np.ndarray) -> np.ndarray:
    if kind == "hrs":
        return np.full(lrs.shape, STUCK_HRS, dtype=np.int8)
    if kind == "lrs":
        return np.full(lrs.shape, STUCK_LRS, dtype=np.int8)
    return np.where(lrs, STUCK_LRS, STUCK_HRS).astype(np.int8)
