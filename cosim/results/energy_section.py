"""The report's `energy` section: a stacked bar per analog layer of its energy
per inference by component (array, DAC, TIA, ADC, digital), with the run's
totals, from RUN.h5 `energy/` (`cosim.results.energy_io`)."""

from __future__ import annotations

import h5py
import numpy as np

from cosim.results import h5check
from cosim.results.energy_io import StoredEnergy, read_energy
from cosim.results.html import figure_png, fmt, img, none_line, section, table

#: One colour per component, in `cosim.core.energy_models.COMPONENTS` order.
COLOURS = ("#2a6db0", "#e08a1e", "#5aa45a", "#c2452d", "#8867b5")


def energy_figure(stored: StoredEnergy) -> bytes:
    """Stacked bars: J per inference (nJ) of each layer, one segment per component."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.6), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(stored.layers))
    bottom = np.zeros(len(stored.layers))
    for k, name in enumerate(stored.components):
        values = stored.per_layer[:, k] * 1e9
        ax.bar(x, values, bottom=bottom, color=COLOURS[k % len(COLOURS)], label=name)
        bottom += values
    ax.set_xticks(x, stored.layers, rotation=45 if len(stored.layers) > 8 else 0, ha="right")
    ax.set_ylabel("energy per inference (nJ)")
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    return figure_png(fig)


def energy_section(h5: h5py.File) -> str:
    """Energy per inference by layer and component, with latency and TOPS/W."""
    stored = read_energy(h5)
    if stored is None or not stored.layers:
        return section("energy", "Energy and latency", none_line("energy results"))
    total = h5check.number(h5, "energy_per_inference_j", required=False, low=0.0)
    latency = h5check.number(h5, "latency_s", required=False, low=0.0)
    tops = h5check.number(h5, "tops_per_w", required=False, low=0.0)
    head = (f"<p>{fmt((total or 0.0) * 1e9, 4)} nJ per inference, latency {fmt((latency or 0.0) * 1e6, 4)} us "
            f"(critical path of the layer graph), {fmt(tops or 0.0, 4)} TOPS/W. The array's share comes from the "
            "solved tile circuits; DAC, TIA, ADC and digital adds from the preset's energy models "
            "(docs/energy.md).</p>")
    rows = [[layer, *[fmt(v * 1e9, 4) for v in stored.per_layer[i]], fmt(stored.per_layer[i].sum() * 1e9, 4)]
            for i, layer in enumerate(stored.layers)]
    body = table(["layer", *[f"{c} nJ" for c in stored.components], "total nJ"], rows,
                 numeric=set(range(1, len(stored.components) + 2)))
    return section("energy", "Energy and latency", head + img(energy_figure(stored), "energy per layer") + body)
