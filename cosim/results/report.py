"""`cosim report`: one self-contained HTML page about a `cosim simulate` run
(RUN.h5). Figures are matplotlib PNGs inlined as base64 data URIs and the
CSS is inline, so the page opens offline and can be mailed as one file.

Sections (each a `<section>` with a stable id, in this order):

- `run-config`: preset, options, layer, input shape, command line, tool versions.
- `layer-errors`: per analog layer, ||y_cosim - y_float|| / ||y_float|| with
  y_float from the same (co-simulated) input, i.e. what this layer's
  hardware costs, and from the float chain of all earlier layers (what has
  accumulated); then the run's total error.
- `tile-errors`: per layer, the grid of its tiles (rows: input blocks,
  columns: output blocks) coloured by each tile's relative error against
  its ideal array, ||I - v_dac @ G|| / ||v_dac @ G|| over every input
  vector the tile answered (column currents before the ADC, so it shows
  what wires, drivers and access devices cost each tile, whatever engine
  ran it); spot-checked tiles are marked with their fast-vs-ngspice error.
- `irdrop`: IR-drop map (V_cell / V_row applied) of the tile with the
  largest tile error, computed at report time from its stored conductances
  and first input vector (`cosim.analysis.irdrop.irdrop_map`; engine 'spice' for
  ngspice tiles, 'fast' for the others (the exact operating point, Newton
  for 1T1R cells), falling back to 'spice' for tiles of at most 64x64
  should the fast solve fail); rows driven below
  10% of the largest |row voltage| are left blank.
- `spot-checks`: table of fast solver vs ngspice errors.
- `error-histogram`: histogram of outputs - float outputs of the run.
- `energy`: a stacked bar per analog layer of its energy per inference by
  component, with the run's latency and TOPS/W (`cosim.results.energy_section`).
- `waveforms`: transient tiles (`cosim simulate --transient`): row voltages,
  column currents, TIA outputs and device conductances over time, with the
  read-disturb figures.

A section without data says "none in this run" in one line.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import h5py
import numpy as np

from cosim.core.errors import CosimError, InputError, first_line
from cosim.results import h5check
from cosim.results.energy_section import energy_section
from cosim.results.html import CSS, _cell, esc, figure_png, fmt, img, none_line, section, table
from cosim.results.run_reader import RUN_FIX, TileInfo, open_run, read_tiles, run_config, run_numbers, tile_spec
from cosim.results.tile_specs import read_tile_spec
from cosim.results.waveforms import plain_text


def check_run(h5: h5py.File) -> dict[str, TileInfo]:
    """Read and check every part of RUN.h5 the page uses before anything is
    drawn or simulated (one line on the first problem); returns the tiles."""
    run_config(h5)
    run_numbers(h5)
    h5check.json_attr(h5, "versions", dict, required=False)
    h5check.text(h5, "command", required=False)
    h5check.number(h5, "seed", required=False, integer=True)
    layer_rows(h5)
    tiles = read_tiles(h5)
    worst = worst_tile(tiles)
    if worst is not None:  # the tile the IR-drop section re-simulates
        tile_spec(worst.group)
        sample_vector(worst)
    for tile in tiles.values():
        if tile.has_waves:
            read_tile_spec(tile.group)
            wave_patterns(tile.group)
            disturb_line(tile.group)
    outputs = h5check.array(h5, "outputs", what="co-simulated outputs")
    h5check.array(h5, "ideal", shape=outputs.shape, what="float PyTorch outputs")
    return tiles


#: Section ids, in page order.
SECTIONS = ("run-config", "layer-errors", "tile-errors", "irdrop", "spot-checks", "error-histogram",
            "energy", "waveforms")
#: Tiles up to this many devices get an ngspice IR-drop map should the fast solve fail.
SPICE_IRDROP_MAX_DEVICES = 64 * 64
#: IR-drop maps leave blank the rows driven below this fraction of the largest |row voltage| (1).
IRDROP_MIN_ROW = 0.1
#: Signals per family shown in a transient tile's figure.
WAVE_SIGNALS = 4


# ------------------------------------------------------------------ input
#
# RUN.h5 is untrusted input: every group, dataset and attribute the page
# uses is read through cosim.results.h5check (kind, dtype, shape, range checked; no
# links or external storage followed) and the tile that is re-simulated for
# the IR-drop map is rebuilt only through cosim.results.store.read_tile_spec, which
# checks every config field. Anything else ends in one line.








# ------------------------------------------------------------------ html pieces




# ------------------------------------------------------------------ sections


def config_section(h5: h5py.File) -> str:
    """Preset, options, layer, command line and tool versions."""
    config = run_config(h5)
    preset = config.get("preset", {})
    versions = h5check.json_attr(h5, "versions", dict, required=False, default={})
    numbers = run_numbers(h5)
    seed = h5check.number(h5, "seed", required=False, integer=True)
    summary = [["preset", _cell(preset.get("name", "?"))], ["layer", _cell(config.get("layer", "?"))],
               ["input shape (batch first)", _cell(config.get("input_shape", "?"))],
               ["command", h5check.text(h5, "command", required=False, default="?")],
               ["seed", "?" if seed is None else seed],
               ["relative error vs float PyTorch", fmt(numbers["relative_error"], 4)],
               ["same converters on an ideal array", fmt(numbers["converters_only_relative_error"], 4)],
               ["absolute error ||y - y_float|| (output units)", fmt(numbers["absolute_error"], 4)]]
    hardware = [[key, _cell(value)] for key, value in preset.items() if key not in ("name", "description")]
    options = [[key, _cell(value)] for key, value in config.get("options", {}).items()]
    if "transient" in config:
        options.append(["transient", json.dumps(config["transient"])])
    body = (table(None, summary) + f'<p class="note">{esc(_cell(preset.get("description", "")))}</p>'
            + "<h3>hardware (preset; ohm, V, S, m/s)</h3>" + table(["field", "value"], hardware)
            + "<h3>options</h3>" + table(["option", "value"], options)
            + "<h3>versions</h3>" + table(["tool", "version"], [[k, _cell(v)] for k, v in versions.items()]))
    return section("run-config", "Run configuration", body)


def layer_rows(h5: h5py.File) -> list[list[object]]:
    """Per analog layer: name, kind, output shape, error vs float on the same
    input, error vs the float chain (both ||.||/||ref||, 1)."""
    layers = h5check.group(h5, "layers", required=False)
    if layers is None:
        return []
    order = h5check.json_attr(layers, "order", list, required=False, default=[])
    if not all(isinstance(name, str) for name in order):
        raise h5check.problem(layers, "attribute 'order' must be a JSON list of layer names (strings)")
    rows = []
    for name in order or h5check.names(layers):
        group = h5check.group(layers, name.replace("/", "_"))
        rows.append([name, h5check.text(group, "kind"), tuple(h5check.member(group, "output", "dataset").shape),
                     fmt(h5check.number(group, "relative_error", finite=False, low=0.0), 4),
                     fmt(h5check.number(group, "chain_relative_error", finite=False, low=0.0), 4)])
    return rows


def layer_section(h5: h5py.File) -> str:
    """Per-layer error table and the run's total error."""
    rows = layer_rows(h5)
    numbers = run_numbers(h5)
    total = (f'<p>whole run: outputs vs float PyTorch {fmt(numbers["relative_error"], 4)}; the same '
             f'DAC/ADC on an ideal array {fmt(numbers["converters_only_relative_error"], 4)}.</p>')
    if not rows:
        return section("layer-errors", "Per-layer error", none_line("per-layer outputs") + total)
    note = ('<p class="note">relative error ||y - y_float|| / ||y_float||: "this layer" feeds float PyTorch '
            'the same co-simulated input (what this layer\'s hardware costs); "accumulated" compares with '
            'the float chain of every earlier layer.</p>')
    body = table(["layer", "kind", "output shape", "error, this layer", "error, accumulated"], rows, {3, 4})
    return section("layer-errors", "Per-layer error", body + note + total)


def tile_grid(tiles: dict[str, TileInfo], layer: str) -> tuple[np.ndarray, list[list[str | None]]]:
    """One layer's tiles laid out as in its matrix: (row blocks, output blocks)
    of tile errors (NaN where unknown) and the tile group names."""
    members = [t for t in tiles.values() if t.layer == layer]
    row_starts = sorted({t.row_start for t in members})
    out_starts = sorted({t.out_start for t in members})
    errors = np.full((len(row_starts), len(out_starts)), np.nan)
    names: list[list[str | None]] = [[None] * len(out_starts) for _ in row_starts]
    for t in members:
        i, j = row_starts.index(t.row_start), out_starts.index(t.out_start)
        errors[i, j] = np.nan if t.error is None else t.error
        names[i][j] = t.name
    return errors, names


def run_layers(tiles: dict[str, TileInfo]) -> list[str]:
    """The layer labels of the run's tiles, in the order their tiles were written."""
    seen: list[str] = []
    for t in tiles.values():
        if t.layer not in seen:
            seen.append(t.layer)
    return seen


def tile_error_figure(tiles: dict[str, TileInfo], layers: list[str]) -> bytes:
    """One heatmap per layer of its tile grid coloured by tile error (1);
    each cell says its error, engine and spot-check error (s=...)."""
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    grids = {layer: tile_grid(tiles, layer) for layer in layers}
    finite = [float(np.nanmax(np.where(np.isfinite(e), e, np.nan))) for e, _ in grids.values()
              if np.any(np.isfinite(e))]
    top = max(finite + [1e-12])
    norm = Normalize(vmin=0.0, vmax=top)
    height = sum(1.2 + 0.55 * e.shape[0] for e, _ in grids.values()) + 0.5
    fig = Figure(figsize=(9, min(height, 30)), layout="constrained")
    axes = fig.subplots(len(layers), 1, squeeze=False)[:, 0]
    image = None
    for ax, layer in zip(axes, layers):
        errors, names = grids[layer]
        image = ax.imshow(errors, cmap="magma_r", norm=norm, aspect="auto", interpolation="nearest")
        if errors.size <= 400:
            for (i, j), name in np.ndenumerate(np.array(names, dtype=object)):
                if name is not None:
                    ax.text(j, i, tile_cell_label(tiles[name]), ha="center", va="center", fontsize=7,
                            color="white" if errors[i, j] > 0.6 * top else "black")
        # Layer labels are user strings: literal text, never mathtext.
        ax.set_title(plain_text(f"layer {layer}: {errors.shape[0]} x {errors.shape[1]} tiles"), fontsize=9)
        ax.set_xlabel("output block (tile column)")
        ax.set_ylabel("input block (tile row)")
        ax.set_xticks(range(errors.shape[1]))
        ax.set_yticks(range(errors.shape[0]))
    fig.colorbar(image, ax=list(axes), label="tile error ||I - v@G|| / ||v@G|| (1)")
    return figure_png(fig)


def tile_cell_label(tile: TileInfo) -> str:
    """Text in a tile's heatmap cell: error, engine, spot-check error."""
    text = f"{fmt(tile.error, 2)}\n{tile.engine}"
    if tile.spot is not None:
        text += f"\ns={fmt(tile.spot[0], 2)}"
    return text


def tile_section(tiles: dict[str, TileInfo]) -> str:
    """Tile-error heatmaps of every layer."""
    if not any(t.error is not None for t in tiles.values()):
        return section("tile-errors", "Per-tile error", none_line("per-tile errors"))
    layers = run_layers(tiles)
    note = ('<p class="note">Each cell is one tile, placed as in its weight matrix (rows: blocks of '
            'inputs, columns: blocks of outputs). Colour and first number: the tile\'s relative error '
            '||I - v_dac @ G|| / ||v_dac @ G|| of its column currents (A) against its ideal array (no '
            'wires, drivers or access devices) over every input vector it answered; then the engine '
            'that ran it; s= the fast-vs-ngspice spot-check error where there is one.</p>')
    return section("tile-errors", "Per-tile error", img(tile_error_figure(tiles, layers), "tile errors") + note)


def worst_tile(tiles: dict[str, TileInfo]) -> TileInfo | None:
    """The tile with the largest tile error that kept a sample input vector (NaN counts as lowest)."""
    found = [t for t in tiles.values() if t.has_sample or t.spot is not None]
    if not found:
        return None

    def error(t: TileInfo) -> float:
        """The tile's error (relative, dimensionless) as a sort key; -inf where unknown or NaN."""
        return -math.inf if t.error is None or math.isnan(t.error) else t.error

    return max(found, key=error)


def sample_vector(tile: TileInfo) -> np.ndarray:
    """The tile's first stored input vector with a non-zero row voltage (V), (R,)."""
    holder, key = (tile.group, "sample_voltage") if tile.has_sample else (
        h5check.group(tile.group, "spot_check"), "voltage")
    v = h5check.array(holder, key, shape=(None, tile.rows), min_size=1, what="V")
    nonzero = [row for row in v if np.any(row != 0)]
    return nonzero[0] if nonzero else v[0]


def irdrop_engine(tile: TileInfo) -> list[str]:
    """Engines to try for a tile's IR-drop map: 'spice' for ngspice tiles,
    'fast' then (small tiles) 'spice' for the others."""
    if tile.engine == "spice":
        return ["spice"]
    return ["fast", "spice"] if tile.rows * tile.cols <= SPICE_IRDROP_MAX_DEVICES else ["fast"]


def compute_irdrop(tile: TileInfo) -> tuple[np.ndarray, str, list[str]]:
    """IR-drop map (R, C) (V/V) of a tile's first input vector, the engine that
    gave it, and notes (engines that could not, rows masked). Rows driven
    below IRDROP_MIN_ROW of the largest |row voltage| are NaN: their ratio
    is the column voltage over a near-zero applied voltage, not IR drop.

    The tile is rebuilt from the file only through `tile_spec` (every field
    checked): a damaged or hostile tile ends in one line (InputError) before
    anything runs; an engine that fails on a valid tile is a note."""
    from cosim.analysis.irdrop import irdrop_map
    from cosim.core.drive import dac_output

    spec, v = tile_spec(tile.group), sample_vector(tile)
    applied = np.abs(dac_output(spec, v[None, :])[0])
    weak = applied < IRDROP_MIN_ROW * applied.max()
    notes = []
    for engine in irdrop_engine(tile):
        try:
            ratio = irdrop_map(spec, v, engine=engine)[0]
        except CosimError as exc:
            notes.append(f"engine {engine}: {exc}")
            continue
        ratio[weak, :] = np.nan
        if weak.any():
            notes.append(f"{int(weak.sum())} of {spec.rows} rows driven below {IRDROP_MIN_ROW:.0%} of the "
                         "largest |row voltage| are left blank (their ratio is the column voltage over a "
                         "near-zero applied voltage).")
        return ratio, engine, notes
    raise SimulationFailed("; ".join(notes))


class SimulationFailed(CosimError):
    """No engine gave an IR-drop map of a (valid) tile; the section says why."""


def irdrop_figure(ratio: np.ndarray, title: str) -> bytes:
    """Heatmap PNG of an IR-drop map (cosim.results.plots.plot_heatmap_png); `title` is literal text."""
    from cosim.results.plots import plot_heatmap_png

    with tempfile.TemporaryDirectory() as tmp:
        path = plot_heatmap_png(ratio, Path(tmp) / "irdrop.png", plain_text(title), "V_cell / V_row applied (V/V)")
        return path.read_bytes()


def irdrop_section(tiles: dict[str, TileInfo]) -> str:
    """IR-drop map of the tile with the largest tile error."""
    tile = worst_tile(tiles)
    if tile is None:
        return section("irdrop", "IR drop of the worst tile", none_line("tiles with a stored input vector"))
    name = tile.name
    try:
        ratio, engine, notes = compute_irdrop(tile)
    except SimulationFailed as exc:
        return section("irdrop", "IR drop of the worst tile",
                       f'<p class="none">no IR-drop map of tile {esc(name)}: {esc(exc)}</p>')
    if not np.any(np.isfinite(ratio)):
        return section("irdrop", "IR drop of the worst tile",
                       none_line(f"tile {name}: its first input vector drives no row, so an IR-drop map"))
    i, j = np.unravel_index(int(np.nanargmin(ratio)), ratio.shape)
    title = (f"tile {name} ({ratio.shape[0]}x{ratio.shape[1]}), first input vector, engine {engine}\n"
             f"tile error {fmt(tile.error)}")
    caption = (f"<p>Tile <b>{esc(name)}</b> (largest tile error, {fmt(tile.error)}): "
               f"the voltage across each cell over the voltage its row's DAC applies, from {np.nanmax(ratio):.4f} "
               f"down to {ratio[i, j]:.4f} (cell {i},{j}); engine {esc(engine)}, computed now from the stored "
               f"conductances (S) and the tile's first input vector (V).</p>")
    skipped = "".join(f'<p class="note">{esc(n)}</p>' for n in notes)
    return section("irdrop", "IR drop of the worst tile", caption + img(irdrop_figure(ratio, title), "IR drop")
                   + skipped)


def spot_section(tiles: dict[str, TileInfo]) -> str:
    """Fast solver vs ngspice on the spot-checked tiles."""
    rows = [[t.name, t.engine, f"{t.rows}x{t.cols}", t.spot[2], fmt(t.spot[0]), fmt(t.spot[1])]
            for t in tiles.values() if t.spot is not None]
    if not rows:
        return section("spot-checks", "Spot checks: fast solver vs ngspice", none_line("spot checks"))
    note = ('<p class="note">errors of the column currents (A) on the tile\'s first input vectors, relative '
            'to the largest ngspice current of the tile.</p>')
    body = table(["tile", "engine", "size", "vectors", "max rel. error", "mean rel. error"], rows, {3, 4, 5})
    return section("spot-checks", "Spot checks: fast solver vs ngspice", body + note)


def histogram_figure(error: np.ndarray) -> bytes:
    """Histogram of output errors (the layer's output units)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.6), layout="constrained")
    ax = fig.subplots()
    ax.hist(error, bins=min(60, max(10, error.size // 4)), color="#2a6db0", edgecolor="white")
    ax.axvline(0.0, color="0.3", linewidth=0.8)
    ax.set_xlabel("co-simulated output - float PyTorch output (layer output units)")
    ax.set_ylabel("outputs")
    ax.grid(True, alpha=0.3)
    return figure_png(fig)


def histogram_section(h5: h5py.File) -> str:
    """Histogram of outputs - ideal over every output of the run."""
    outputs = h5check.array(h5, "outputs", what="co-simulated outputs")
    ideal = h5check.array(h5, "ideal", shape=outputs.shape, what="float PyTorch outputs")
    error = (outputs - ideal).ravel()
    if error.size == 0:
        return section("error-histogram", "Output error", none_line("outputs"))
    scale = float(np.max(np.abs(ideal))) or 1.0
    caption = (f"<p>{error.size} outputs: RMS error {np.sqrt(np.mean(error ** 2)):.4g}, largest |error| "
               f"{np.max(np.abs(error)):.4g} ({np.max(np.abs(error)) / scale:.3g} of the largest |float output|), "
               f"mean {np.mean(error):.4g}.</p>")
    return section("error-histogram", "Output error", caption + img(histogram_figure(error), "error histogram"))


def wave_patterns(group: h5py.Group) -> list[list[str]]:
    """Signal name lists per panel: row voltages, column currents, TIA outputs,
    device conductances (at most WAVE_SIGNALS each)."""
    from cosim.results.waveforms import signal_table

    names = [name for name, _, _ in signal_table(group, 0)]
    panels = [".v_near", ".current", ".vout", ".g"]
    return [[n for n in names if n.endswith(suffix)][:WAVE_SIGNALS] for suffix in panels]


def waveform_figure(group: h5py.Group, vector: int = 0) -> bytes | None:
    """Transient of one tile: a panel per quantity over time, the ADC sample
    dashed; None when its waveforms hold none of those quantities."""
    from matplotlib.figure import Figure

    from cosim.results.plots import QUANTITIES, si_scale
    from cosim.results.waveforms import read_signals, sample_time

    panels = [p for p in wave_patterns(group) if p]
    if not panels:
        return None
    fig = Figure(figsize=(9, 2.2 * len(panels) + 0.8), layout="constrained")
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    t_sample = sample_time(group)
    for ax, names in zip(axes, panels):
        time, signals = read_signals(group, names, vector)
        t_scale, t_label = si_scale(time, "s")
        scale, label = si_scale(np.concatenate([s.values for s in signals]), signals[0].units)
        for s in signals:
            ax.plot(time * t_scale, s.values * scale, label=s.name, linewidth=1.1)
        if t_sample is not None:
            ax.axvline(t_sample * t_scale, color="0.4", linestyle="--", linewidth=0.8)
        ax.set_ylabel(f"{QUANTITIES.get(signals[0].units, signals[0].units)} ({label})")
        ax.legend(fontsize=7, loc="best", ncol=2)
        ax.grid(True, alpha=0.3)
    axes[-1].set_xlabel(f"time ({t_label}); dashed: ADC sample")
    fig.suptitle(plain_text(f"tile {group.name.split('/')[-1]}, input vector {vector}"), fontsize=10)
    return figure_png(fig)


def disturb_line(group: h5py.Group) -> str:
    """The read-disturb figures stored beside a transient tile."""
    ds = h5check.member(group, "read_disturb", "dataset", required=False)
    if ds is None:
        return ""
    t_read = h5check.number(ds, "t_read", low=0.0)
    max_abs = h5check.number(ds, "max_abs", low=0.0)
    mean_abs = h5check.number(ds, "mean_abs", low=0.0)
    threshold = h5check.number(ds, "threshold", low=0.0)
    verdict = "ABOVE" if max_abs > threshold else "within"
    return (f"read disturb over a {t_read * 1e9:.4g} ns read: largest |dG/G| {max_abs:.3g}, "
            f"mean {mean_abs:.3g}; {verdict} the {threshold:.3g} limit")


def waveforms_section(h5: h5py.File, tiles: dict[str, TileInfo]) -> str:
    """Waveforms of every transient tile."""
    from cosim.results.waveforms import vector_count

    names = [t.name for t in tiles.values() if t.has_waves]
    if not names:
        return section("waveforms", "Transient waveforms", none_line("transient tiles"))
    parts = []
    for name in names:
        tile = tiles[name]
        tia = read_tile_spec(tile.group).tia  # as the transient ran it
        figure = waveform_figure(tile.group)
        shown = (img(figure, f"waveforms of {name}") if figure is not None
                 else '<p class="none">no row voltage, column current, TIA output or state stored.</p>')
        parts.append(f"<h3>tile {esc(name)}</h3><p>{tile.rows}x{tile.cols} "
                     f"devices, TIA {esc(tia.kind)} (rs {tia.rs:g} ohm), "
                     f"{vector_count(tile.group)} input vector(s); {esc(disturb_line(tile.group))}. "
                     f"All signals: <code>cosim waves {esc(Path(h5.filename).name)} --tile {esc(name)} "
                     f"--list</code></p>" + shown)
    return section("waveforms", "Transient waveforms", "\n".join(parts))


# ------------------------------------------------------------------ page


def compensation_section(tiles: dict[str, TileInfo]) -> str:
    """Each --compensate irdrop tile's residual against its target transfer."""
    rows = []
    for t in tiles.values():
        comp = h5check.group(t.group, "compensation", required=False)
        if comp is None:
            continue
        rows.append([t.name, f"{t.rows}x{t.cols}", fmt(h5check.number(comp, "uncompensated", low=0.0)),
                     fmt(h5check.number(comp, "residual", finite=False, low=0.0)),
                     fmt(h5check.number(comp, "scale", low=0.0)),
                     h5check.number(comp, "steps", integer=True, low=0)])
    if not rows:
        return section("compensation", "IR-drop compensation", none_line("compensated tiles (--compensate irdrop)"))
    note = ('<p class="note">residual: ||T(G) - T*|| / ||T* - floor|| of the programmed conductances G, T the '
            "tile's exact fast-solver transfer (S) and T* = floor + scale (G_t - g_min) its target (the floor, "
            "per row and differential pair, is the transfer of the pair's device at g_min and cancels in "
            "I_pos - I_neg); "
            'uncompensated: ||T(G_t) - G_t|| / ||G_t - g_min|| of the same tile programmed with its targets '
            'directly; the digital side divides by the scale.</p>')
    body = table(["tile", "size", "uncompensated error", "residual", "scale", "Gauss-Newton steps"], rows,
                 {2, 3, 4, 5})
    return section("compensation", "IR-drop compensation", body + note)


def build_report(h5: h5py.File) -> str:
    """The whole HTML page of an open RUN.h5 (every value it uses is checked first: one line otherwise)."""
    config = run_config(h5)
    tiles = check_run(h5)
    title = f"cosim report: {Path(str(config.get('layer', h5.filename))).name}"
    body = "".join([config_section(h5), layer_section(h5), tile_section(tiles), irdrop_section(tiles),
                    compensation_section(tiles), spot_section(tiles), histogram_section(h5), energy_section(h5),
                    waveforms_section(h5, tiles)])
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{esc(title)}</title>\n'
            f"<style>{CSS}</style>\n</head>\n<body>\n<h1>{esc(title)}</h1>\n"
            f'<p class="note">from {esc(Path(h5.filename).name)}</p>\n{body}</body>\n</html>\n')


def write_report(run: Path | str, out: Path | str) -> int:
    """Render RUN.h5 `run` to the HTML file `out` (atomically); returns its size (bytes)."""
    from cosim.core.atomic import atomic_write_text, check_output_file

    check_output_file(out)
    with open_run(run) as h5:
        try:
            page = build_report(h5)
        except (OSError, RuntimeError) as exc:
            if getattr(exc, "errno", None):  # an OS error of this machine, not of the file
                raise
            detail = first_line(exc, 120)
            raise InputError(f"{run}: HDF5 cannot read part of it ({detail}); the file is damaged or "
                             f"truncated: {RUN_FIX}") from None
    atomic_write_text(out, page)
    return len(page.encode("utf-8"))
