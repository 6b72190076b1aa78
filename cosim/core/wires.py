"""Wire segment resistance of a crossbar from its metal layer and cell size
(the derivation of the chip presets' r_wire, docs/presets.md).

A line of resistivity rho (ohm m), width w (m) and thickness AR * w (aspect
ratio AR) has R' = rho / (AR w^2) per metre; one segment spans one cell
pitch. A 1T1R cell of height_f x width_f feature sizes F = w (DNN+NeuroSim's
convention: wireLengthRow = F * heightInFeatureSize1T1R, wireLengthCol =
F * widthInFeatureSize1T1R) has row segments R' F height_f and column
segments R' F width_f; the preset's single r_wire is their mean, which keeps
a cell's average total path (C/2 row plus R/2 column segments) of a square tile.
"""

from __future__ import annotations


def resistance_per_metre(rho: float, width: float, aspect_ratio: float) -> float:
    """R' = rho / (AR w^2) (ohm/m) of a line of resistivity rho (ohm m), width w (m)."""
    return rho / (aspect_ratio * width * width)


def cell_segments(rho: float, width: float, aspect_ratio: float, height_f: float,
                  width_f: float) -> tuple[float, float, float]:
    """(row, column, mean) segment resistance (ohm) of a height_f x width_f cell
    (in feature sizes F = width) on lines of resistivity rho (ohm m) and aspect ratio AR."""
    per_metre = resistance_per_metre(rho, width, aspect_ratio)
    row, col = per_metre * width * height_f, per_metre * width * width_f
    return row, col, 0.5 * (row + col)
