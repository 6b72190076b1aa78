"""Spot checks: the fast solver against ngspice on K random tiles.

Each tile gets random VTEAM states (uniform in [0, 1], so conductances span
the preset's range) and a batch of random row voltages in +-v_max; both
engines solve it and the report gives, per tile and over all tiles, the
largest and the mean relative error |fast - ngspice| / max |ngspice| (the
tile's largest column current sets the scale), the error of every column,
and the wall time of each engine. `plot_spotcheck` draws it as a PNG
(matplotlib, Agg backend, no global pyplot state).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cosim.core.config import VteamParams
from cosim.core.errors import InputError
from cosim.core.tile import TileSpec
from cosim.engines import solve_spice
from cosim.fast.calibration import Calibration
from cosim.fast.prepared import solve_fast


@dataclass
class TileCheck:
    """One checked tile.

    Attributes:
        index: tile number (0..K-1).
        rows, cols: tile shape.
        max_rel: largest |fast - ngspice| / max |ngspice| over the batch.
        mean_rel: mean of the same over all outputs.
        per_column: (C,) largest relative error of each column.
        spice_s: ngspice wall time (s).
        fast_s: fast solver wall time, preparation included (s).
        fast_current: (B, C) fast currents (A).
        spice_current: (B, C) ngspice currents (A).
    """

    index: int
    rows: int
    cols: int
    max_rel: float
    mean_rel: float
    per_column: np.ndarray
    spice_s: float
    fast_s: float
    fast_current: np.ndarray = field(repr=False)
    spice_current: np.ndarray = field(repr=False)


@dataclass
class SpotcheckReport:
    """Fast vs ngspice on K tiles.

    Attributes:
        tiles: one TileCheck per tile.
        max_rel: largest relative error over all tiles.
        mean_rel: mean relative error over all outputs of all tiles.
        per_column: (C,) largest relative error of each column over the tiles.
        settings: how the tiles were drawn and solved (seed, size, engine options).
        plot: the PNG written, if any.
    """

    tiles: list[TileCheck]
    max_rel: float
    mean_rel: float
    per_column: np.ndarray
    settings: dict[str, Any]
    plot: Path | None = None

    def summary(self) -> str:
        """A few lines for a terminal: one per tile, then the totals."""
        lines = [f"{'tile':>4} {'shape':>9} {'max rel':>10} {'mean rel':>10} {'ngspice s':>10} {'fast s':>9}"]
        for t in self.tiles:
            lines.append(f"{t.index:>4} {f'{t.rows}x{t.cols}':>9} {t.max_rel:>10.3e} {t.mean_rel:>10.3e} "
                         f"{t.spice_s:>10.3f} {t.fast_s:>9.4f}")
        worst = int(np.argmax(self.per_column))
        lines.append(f"all {len(self.tiles)} tiles: max rel {self.max_rel:.3e}, mean rel {self.mean_rel:.3e}, "
                     f"worst column {worst} ({self.per_column[worst]:.3e})")
        if self.plot:
            lines.append(f"plot: {self.plot}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (per-tile currents left out)."""
        tiles = []
        for t in self.tiles:
            row = {k: v for k, v in asdict(t).items() if k not in ("fast_current", "spice_current")}
            row["per_column"] = t.per_column.tolist()
            tiles.append(row)
        return {"max_rel": self.max_rel, "mean_rel": self.mean_rel, "per_column": self.per_column.tolist(),
                "settings": self.settings, "plot": str(self.plot) if self.plot else None, "tiles": tiles}


def relative_errors(fast: np.ndarray, spice: np.ndarray) -> np.ndarray:
    """|fast - spice| / max |spice| elementwise (B, C); the scale is the
    tile's largest current magnitude (A/A)."""
    scale = np.max(np.abs(spice))
    if scale == 0:
        return np.abs(fast - spice)
    return np.abs(fast - spice) / scale


def random_tile(rng: np.random.Generator, shape: tuple[int, int], device: VteamParams,
                **spec_kwargs: Any) -> TileSpec:
    """A tile of random VTEAM states (uniform in [0, 1]) with the given settings."""
    return TileSpec.from_states(rng.uniform(0.0, 1.0, size=shape), device, **spec_kwargs)


def check_tile(index: int, spec: TileSpec, v: np.ndarray, *, calibration: Calibration | str | None = None, nonlinear: str = "auto",
               timeout_s: float = 600.0, spice: str = "ngspice") -> TileCheck:
    """Solve one tile with both engines (SPICE: 'ngspice' or 'vacask') and compare."""
    ref = solve_spice(spec, v, timeout_s=timeout_s, spice=spice)
    got = solve_fast(spec, v, calibration=calibration, nonlinear=nonlinear)
    err = relative_errors(got.current, ref.current)
    return TileCheck(index=index, rows=spec.rows, cols=spec.cols, max_rel=float(err.max()),
                     mean_rel=float(err.mean()), per_column=err.max(axis=0), spice_s=ref.wall_s,
                     fast_s=got.wall_s, fast_current=got.current, spice_current=ref.current)


def spotcheck(k: int, size: int | tuple[int, int], *, seed: int = 0, batch: int = 4, v_max: float = 0.3,
              device: VteamParams | None = None, calibration: Any = None, nonlinear: str = "auto",
              plot: str | Path | None = None, timeout_s: float = 600.0, spice: str = "ngspice",
              **spec_kwargs: Any) -> SpotcheckReport:
    """Compare the fast solver with ngspice on `k` random tiles.

    Args:
        k: number of tiles.
        size: N (N x N tiles) or (rows, cols).
        seed: seed of the numpy Generator that draws states and inputs.
        batch: input vectors per tile.
        v_max: inputs are uniform in [-v_max, v_max] (V).
        device: VTEAM preset whose range the states span (default seed 000).
        calibration: access calibration (object or JSON path) for nmos tiles.
        nonlinear: fast solver mode ('auto', 'newton', 'linear').
        plot: write a PNG here (None: no plot).
        timeout_s: SPICE limit per tile (s).
        spice: SPICE engine, 'ngspice' or 'vacask'.
        **spec_kwargs: TileSpec settings (r_wire, r_driver, access, nmos, tia, dac, adc).
    """
    if k < 1:
        raise InputError(f"spot check needs at least one tile, got k={k}")
    shape = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    if len(shape) != 2 or min(shape) < 1:
        raise InputError(f"tile size must be N or (rows, cols) >= 1, got {size!r}")
    device = device or VteamParams()
    rng = np.random.default_rng(seed)
    tiles = []
    for index in range(k):
        spec = random_tile(rng, shape, device, name=f"spot{index}", **spec_kwargs)
        v = rng.uniform(-v_max, v_max, size=(batch, shape[0]))
        tiles.append(check_tile(index, spec, v, calibration=calibration, nonlinear=nonlinear,
                                timeout_s=timeout_s, spice=spice))
    errs = np.concatenate([relative_errors(t.fast_current, t.spice_current).ravel() for t in tiles])
    settings = {"k": k, "shape": list(shape), "seed": seed, "spice": spice, "batch": batch, "v_max": v_max,
                "device": asdict(device), "nonlinear": nonlinear,
                "calibration": str(calibration) if isinstance(calibration, (str, Path)) else
                ("given" if calibration is not None else None),
                "spec": {key: (asdict(val) if hasattr(val, "__dataclass_fields__") else val)
                         for key, val in spec_kwargs.items()}}
    report = SpotcheckReport(tiles=tiles, max_rel=float(errs.max()), mean_rel=float(errs.mean()),
                             per_column=np.max([t.per_column for t in tiles], axis=0), settings=settings)
    if plot is not None:
        report.plot = plot_spotcheck(report, plot)
    return report


def plot_spotcheck(report: SpotcheckReport, path: str | Path) -> Path:
    """PNG: fast vs ngspice currents (left), per-column relative error of each tile (right)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.2), dpi=110)
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    for t in report.tiles:
        left.plot(t.spice_current.ravel() * 1e3, t.fast_current.ravel() * 1e3, ".", ms=3,
                  label=f"tile {t.index}")
        right.semilogy(np.arange(t.cols), np.maximum(t.per_column, 1e-17), "-o", ms=2.5, lw=0.8,
                       label=f"tile {t.index}")
    lo = min(t.spice_current.min() for t in report.tiles) * 1e3
    hi = max(t.spice_current.max() for t in report.tiles) * 1e3
    left.plot([lo, hi], [lo, hi], "k-", lw=0.6)
    left.set_xlabel("ngspice column current (mA)")
    left.set_ylabel("fast column current (mA)")
    left.set_title("fast vs ngspice")
    right.set_xlabel("column")
    right.set_ylabel("max |fast - ngspice| / max |ngspice|")
    right.set_title(f"max {report.max_rel:.2e}, mean {report.mean_rel:.2e}")
    if len(report.tiles) <= 8:
        right.legend(fontsize=7)
    fig.tight_layout()
    from cosim.core.atomic import check_output_dir, save_figure

    out = Path(path)
    check_output_dir(out.parent, create=True)
    fmt = out.suffix.lstrip(".").lower()
    return save_figure(fig, out, dpi=110, format=fmt if fmt in PLOT_FORMATS else "png")


#: Figure formats `plot_spotcheck` writes, by the file's suffix (others: PNG).
PLOT_FORMATS = ("png", "pdf", "svg")
