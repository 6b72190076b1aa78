"""Figures and tables for hardware engineers: waveforms as a matplotlib PNG,
an interactive plotly HTML page or CSV, and heatmaps (IR-drop maps) as PNG.
Every axis carries its units; values are scaled to an SI prefix for display
(CSV keeps plain SI units). Every file is written atomically (`cosim.core.atomic`):
a failed write leaves no file and no temporary, and ends in one line."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cosim.core.atomic import atomic_open, save_figure
from cosim.results.waveforms import Signal

#: Panel order and y-axis quantity of each unit.
QUANTITIES = {"V": "voltage", "A": "current", "LSB": "ADC code", "1": "state x", "S": "conductance"}
_PREFIXES = ((1e-15, "f"), (1e-12, "p"), (1e-9, "n"), (1e-6, "µ"), (1e-3, "m"), (1.0, ""), (1e3, "k"))
#: Legends list at most this many signals per panel.
LEGEND_LIMIT = 16


def si_scale(values: np.ndarray, units: str) -> tuple[float, str]:
    """(factor, label) to show `values` in `units` with an SI prefix, e.g.
    (1e3, 'mA') for currents of a few mA. Units '1' and 'LSB' are not scaled."""
    if units in ("1", "LSB"):
        return 1.0, units
    finite = np.abs(np.asarray(values, dtype=float))
    finite = finite[np.isfinite(finite)]
    peak = float(finite.max()) if finite.size else 0.0
    if peak == 0.0:
        return 1.0, units
    scale, prefix = _PREFIXES[0]
    for candidate, name in _PREFIXES:
        if peak >= candidate * 0.999:
            scale, prefix = candidate, name
    return 1.0 / scale, prefix + units


def _panels(signals: Sequence[Signal]) -> list[tuple[str, list[Signal]]]:
    """Signals grouped by units, in QUANTITIES order (unknown units last)."""
    order = list(QUANTITIES) + sorted({s.units for s in signals} - set(QUANTITIES))
    return [(units, [s for s in signals if s.units == units]) for units in order
            if any(s.units == units for s in signals)]


def _axis_title(units: str, label: str) -> str:
    return f"{QUANTITIES.get(units, units)} ({label})"


def plot_waveforms_png(time: np.ndarray, signals: Sequence[Signal], path: Path | str, title: str = "",
                       t_sample: float | None = None) -> Path:
    """One panel per unit (V, A, LSB, state, S) over a shared time axis, with
    the ADC sample instant dashed; written as PNG (matplotlib, Agg)."""
    from matplotlib.figure import Figure

    panels = _panels(signals)
    t_scale, t_label = si_scale(time, "s")
    fig = Figure(figsize=(9, 2.6 * len(panels) + 0.8), layout="constrained")
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (units, group) in zip(axes, panels):
        scale, label = si_scale(np.concatenate([s.values for s in group]), units)
        for s in group:
            ax.plot(time * t_scale, s.values * scale, label=s.name, linewidth=1.1)
        ax.set_ylabel(_axis_title(units, label))
        ax.grid(True, alpha=0.3)
        if t_sample is not None:
            ax.axvline(t_sample * t_scale, color="0.4", linestyle="--", linewidth=0.8)
        if len(group) <= LEGEND_LIMIT:
            ax.legend(fontsize=7, loc="best", ncol=2 if len(group) > 6 else 1)
        else:
            ax.set_title(f"{len(group)} signals", fontsize=8, loc="right")
    axes[-1].set_xlabel(f"time ({t_label})" + ("; dashed: ADC sample" if t_sample is not None else ""))
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path, dpi=110)


def plot_waveforms_html(time: np.ndarray, signals: Sequence[Signal], path: Path | str, title: str = "",
                        t_sample: float | None = None) -> Path:
    """The same panels as an interactive, self-contained plotly HTML page
    (plotly.js embedded, so it opens without a network)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    panels = _panels(signals)
    t_scale, t_label = si_scale(time, "s")
    fig = make_subplots(rows=len(panels), cols=1, shared_xaxes=True, vertical_spacing=0.06)
    for row, (units, group) in enumerate(panels, start=1):
        scale, label = si_scale(np.concatenate([s.values for s in group]), units)
        for s in group:
            fig.add_trace(go.Scatter(x=time * t_scale, y=s.values * scale, name=s.name, mode="lines",
                                     hovertemplate=f"{s.name}: %{{y:.6g}} {label}<br>t = %{{x:.6g}} {t_label}"
                                                   "<extra></extra>"),
                          row=row, col=1)
        fig.update_yaxes(title_text=_axis_title(units, label), row=row, col=1)
        if t_sample is not None:
            fig.add_vline(x=t_sample * t_scale, line_dash="dash", line_color="gray", row=row, col=1)
    fig.update_xaxes(title_text=f"time ({t_label})", row=len(panels), col=1)
    fig.update_layout(title=title, height=280 * len(panels) + 120, template="plotly_white")
    with atomic_open(path, "w") as handle:
        fig.write_html(handle, include_plotlyjs=True, full_html=True)
    return Path(path)


def write_waveforms_csv(time: np.ndarray, signals: Sequence[Signal], path: Path | str) -> Path:
    """Time and signals as CSV columns in plain SI units; the header names
    each column with its units, e.g. `time (s),col0.vout (V)`."""
    header = ",".join(["time (s)"] + [f"{s.name} ({s.units})" for s in signals])
    table = np.column_stack([time] + [s.values for s in signals])
    with atomic_open(path, "w", newline="") as handle:
        np.savetxt(handle, table, delimiter=",", header=header, comments="", fmt="%.12g")
    return Path(path)


def plot_heatmap_png(values: np.ndarray, path: Path | str, title: str, label: str,
                     cmap: str = "viridis") -> Path:
    """An (R, C) map as a PNG heatmap: rows down, columns across, colour bar
    titled `label` (with units). Row drivers sit at the left (column 0), the
    TIAs below the last row, as in docs/architecture.md."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    values = np.asarray(values, dtype=float)
    rows, cols = values.shape
    fig = Figure(figsize=(min(5.5 + 0.2 * cols, 12), min(4 + 0.2 * rows, 11)), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(values, cmap=cmap, aspect="auto", interpolation="nearest")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    fig.colorbar(image, ax=ax, label=label)
    ax.set_xlabel("column j (row drivers at the left)")
    ax.set_ylabel("row i (TIAs below the last row)")
    ax.set_title(title, fontsize=10)
    return save_figure(fig, path, dpi=110)
