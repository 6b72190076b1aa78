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
  and first input vector (`cosim.irdrop.irdrop_map`; engine 'spice' for
  ngspice tiles, 'fast' for the others (the exact operating point, Newton
  for 1T1R cells), falling back to 'spice' for tiles of at most 64x64
  should the fast solve fail); rows driven below
  10% of the largest |row voltage| are left blank.
- `spot-checks`: table of fast solver vs ngspice errors.
- `error-histogram`: histogram of outputs - float outputs of the run.
- `waveforms`: transient tiles (`cosim simulate --transient`): row voltages,
  column currents, TIA outputs and device conductances over time, with the
  read-disturb figures.

A section without data says "none in this run" in one line.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np

from cosim.errors import CosimError, InputError
from cosim.store import read_tile_spec

#: Section ids, in page order.
SECTIONS = ("run-config", "layer-errors", "tile-errors", "irdrop", "spot-checks", "error-histogram",
            "waveforms")
#: Tiles up to this many devices get an ngspice IR-drop map should the fast solve fail.
SPICE_IRDROP_MAX_DEVICES = 64 * 64
#: IR-drop maps leave blank the rows driven below this fraction of the largest |row voltage| (1).
IRDROP_MIN_ROW = 0.1
#: Signals per family shown in a transient tile's figure.
WAVE_SIGNALS = 4

CSS = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1100px; color: #222; background: #fff; }
h1 { border-bottom: 3px solid #2a6db0; padding-bottom: .2em; }
h2 { color: #2a6db0; margin-top: 1.6em; }
section { margin-bottom: 1.5em; }
table { border-collapse: collapse; margin: .5em 0; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #e8f0f8; }
td.num { text-align: right; font-family: monospace; }
pre { background: #f4f4f4; padding: .6em; overflow-x: auto; font-size: 0.85em; }
img { max-width: 100%; border: 1px solid #ddd; }
p.none { color: #777; font-style: italic; }
p.note { color: #444; font-size: 0.9em; }
"""


# ------------------------------------------------------------------ input


def open_run(path: Path | str) -> h5py.File:
    """RUN.h5 opened read-only, or one line saying why it is not a cosim run file."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p} does not exist; give a RUN.h5 written by cosim simulate")
    try:
        h5 = h5py.File(p, "r")
    except OSError:
        raise InputError(f"{p} is not an HDF5 file; give a RUN.h5 written by cosim simulate") from None
    missing = [key for key in ("inputs", "outputs", "ideal", "tiles") if key not in h5]
    if missing or "config" not in h5.attrs:
        h5.close()
        what = ", ".join(missing) if missing else "the config attribute"
        raise InputError(f"{p} is not a cosim run file (it lacks {what}); make one with cosim simulate")
    return h5


def run_config(h5: h5py.File) -> dict:
    """The run's config JSON (root attr `config`) as a dict."""
    return json.loads(h5.attrs["config"])


def tile_spec(group: h5py.Group):
    """The TileSpec of a RUN.h5 tile group as the layer has it (`cosim.store.read_tile_spec`)."""
    return read_tile_spec(group, as_run=False)


# ------------------------------------------------------------------ html pieces


def esc(value: object) -> str:
    """Text made safe for HTML."""
    return html.escape(str(value))


def section(sid: str, title: str, body: str) -> str:
    """One `<section id=sid>` with its heading."""
    return f'<section id="{sid}">\n<h2>{esc(title)}</h2>\n{body}\n</section>\n'


def none_line(what: str) -> str:
    """The one line of a section without data."""
    return f'<p class="none">{esc(what)}: none in this run.</p>'


def table(header: list[str] | None, rows: list[list[object]], numeric: set[int] | None = None) -> str:
    """An HTML table (no heading row when `header` is None); columns in
    `numeric` are right-aligned monospace."""
    numeric = numeric or set()
    head = "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>\n" if header else ""
    body = "".join("<tr>" + "".join(f'<td class="num">{esc(c)}</td>' if k in numeric else f"<td>{esc(c)}</td>"
                                    for k, c in enumerate(row)) + "</tr>\n" for row in rows)
    return f"<table>\n{head}{body}</table>"


def png_uri(data: bytes) -> str:
    """PNG bytes as a data URI."""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def figure_png(fig) -> bytes:
    """A matplotlib Figure rendered to PNG bytes (110 dpi)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def img(data: bytes, alt: str) -> str:
    """An inline `<img>` of PNG bytes."""
    return f'<img src="{png_uri(data)}" alt="{esc(alt)}">'


def fmt(value: float | None, digits: int = 3) -> str:
    """A number in `digits` significant digits, '-' for None."""
    return "-" if value is None else f"{float(value):.{digits}g}"


# ------------------------------------------------------------------ sections


def config_section(h5: h5py.File) -> str:
    """Preset, options, layer, command line and tool versions."""
    config = run_config(h5)
    preset = config.get("preset", {})
    versions = json.loads(h5.attrs.get("versions", "{}"))
    summary = [["preset", preset.get("name", "?")], ["layer", config.get("layer", "?")],
               ["input shape (batch first)", config.get("input_shape", "?")],
               ["command", h5.attrs.get("command", "?")], ["seed", h5.attrs.get("seed", "?")],
               ["relative error vs float PyTorch", fmt(h5.attrs.get("relative_error"), 4)],
               ["same converters on an ideal array", fmt(h5.attrs.get("converters_only_relative_error"), 4)]]
    hardware = [[key, json.dumps(value) if isinstance(value, (dict, list)) else value]
                for key, value in preset.items() if key not in ("name", "description")]
    options = [[key, json.dumps(value) if isinstance(value, (dict, list)) else value]
               for key, value in config.get("options", {}).items()]
    if "transient" in config:
        options.append(["transient", json.dumps(config["transient"])])
    body = (table(None, summary) + f'<p class="note">{esc(preset.get("description", ""))}</p>'
            + "<h3>hardware (preset; ohm, V, S, m/s)</h3>" + table(["field", "value"], hardware)
            + "<h3>options</h3>" + table(["option", "value"], options)
            + "<h3>versions</h3>" + table(["tool", "version"], [[k, v] for k, v in versions.items()]))
    return section("run-config", "Run configuration", body)


def layer_rows(h5: h5py.File) -> list[list[object]]:
    """Per analog layer: name, kind, output shape, error vs float on the same
    input, error vs the float chain (both ||.||/||ref||, 1)."""
    layers = h5.get("layers")
    if layers is None:
        return []
    order = json.loads(layers.attrs.get("order", "[]")) or list(layers)
    rows = []
    for name in order:
        group = layers[name.replace("/", "_")]
        rows.append([name, group.attrs["kind"], tuple(group["output"].shape),
                     fmt(group.attrs["relative_error"], 4), fmt(group.attrs["chain_relative_error"], 4)])
    return rows


def layer_section(h5: h5py.File) -> str:
    """Per-layer error table and the run's total error."""
    rows = layer_rows(h5)
    total = (f'<p>whole run: outputs vs float PyTorch {fmt(h5.attrs.get("relative_error"), 4)}; the same '
             f'DAC/ADC on an ideal array {fmt(h5.attrs.get("converters_only_relative_error"), 4)}.</p>')
    if not rows:
        return section("layer-errors", "Per-layer error", none_line("per-layer outputs") + total)
    note = ('<p class="note">relative error ||y - y_float|| / ||y_float||: "this layer" feeds float PyTorch '
            'the same co-simulated input (what this layer\'s hardware costs); "accumulated" compares with '
            'the float chain of every earlier layer.</p>')
    body = table(["layer", "kind", "output shape", "error, this layer", "error, accumulated"], rows, {3, 4})
    return section("layer-errors", "Per-layer error", body + note + total)


def tile_grid(h5: h5py.File, layer: str) -> tuple[np.ndarray, list[list[str | None]]]:
    """One layer's tiles laid out as in its matrix: (row blocks, output blocks)
    of tile errors (NaN where unknown) and the tile group names."""
    tiles = h5["tiles"]
    members = [k for k in tiles if tiles[k].attrs.get("layer") == layer]
    row_starts = sorted({int(tiles[k].attrs["row_start"]) for k in members})
    out_starts = sorted({int(tiles[k].attrs["out_start"]) for k in members})
    errors = np.full((len(row_starts), len(out_starts)), np.nan)
    names: list[list[str | None]] = [[None] * len(out_starts) for _ in row_starts]
    for k in members:
        i = row_starts.index(int(tiles[k].attrs["row_start"]))
        j = out_starts.index(int(tiles[k].attrs["out_start"]))
        errors[i, j] = tiles[k].attrs.get("ideal_rel_error", np.nan)
        names[i][j] = k
    return errors, names


def run_layers(h5: h5py.File) -> list[str]:
    """The layer labels of the run's tiles, in the order their tiles were written."""
    seen: list[str] = []
    for k in h5["tiles"]:
        label = str(h5["tiles"][k].attrs.get("layer", ""))
        if label not in seen:
            seen.append(label)
    return seen


def tile_error_figure(h5: h5py.File, layers: list[str]) -> bytes:
    """One heatmap per layer of its tile grid coloured by tile error (1);
    each cell says its error, engine and spot-check error (s=...)."""
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    grids = {layer: tile_grid(h5, layer) for layer in layers}
    top = max([float(np.nanmax(e)) for e, _ in grids.values() if np.any(np.isfinite(e))] + [1e-12])
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
                    ax.text(j, i, tile_cell_label(h5["tiles"][name]), ha="center", va="center", fontsize=7,
                            color="white" if errors[i, j] > 0.6 * top else "black")
        ax.set_title(f"layer {layer}: {errors.shape[0]} x {errors.shape[1]} tiles", fontsize=9)
        ax.set_xlabel("output block (tile column)")
        ax.set_ylabel("input block (tile row)")
        ax.set_xticks(range(errors.shape[1]))
        ax.set_yticks(range(errors.shape[0]))
    fig.colorbar(image, ax=list(axes), label="tile error ||I - v@G|| / ||v@G|| (1)")
    return figure_png(fig)


def tile_cell_label(group: h5py.Group) -> str:
    """Text in a tile's heatmap cell: error, engine, spot-check error."""
    text = f"{fmt(group.attrs.get('ideal_rel_error'), 2)}\n{group.attrs.get('engine', '?')}"
    if "spot_check" in group:
        text += f"\ns={fmt(group['spot_check'].attrs['max_rel_error'], 2)}"
    return text


def tile_section(h5: h5py.File) -> str:
    """Tile-error heatmaps of every layer."""
    tiles = h5["tiles"]
    if not any("ideal_rel_error" in tiles[k].attrs for k in tiles):
        return section("tile-errors", "Per-tile error", none_line("per-tile errors"))
    layers = run_layers(h5)
    note = ('<p class="note">Each cell is one tile, placed as in its weight matrix (rows: blocks of '
            'inputs, columns: blocks of outputs). Colour and first number: the tile\'s relative error '
            '||I - v_dac @ G|| / ||v_dac @ G|| of its column currents (A) against its ideal array (no '
            'wires, drivers or access devices) over every input vector it answered; then the engine '
            'that ran it; s= the fast-vs-ngspice spot-check error where there is one.</p>')
    return section("tile-errors", "Per-tile error", img(tile_error_figure(h5, layers), "tile errors") + note)


def worst_tile(h5: h5py.File) -> str | None:
    """The tile group with the largest tile error that kept a sample input vector."""
    tiles = h5["tiles"]
    found = [(float(tiles[k].attrs.get("ideal_rel_error", 0.0)), k) for k in tiles
             if "sample_voltage" in tiles[k] or "spot_check" in tiles[k]]
    return max(found)[1] if found else None


def sample_vector(group: h5py.Group) -> np.ndarray:
    """The tile's first stored input vector with a non-zero row voltage (V), (R,)."""
    v = group["sample_voltage"][()] if "sample_voltage" in group else group["spot_check"]["voltage"][()]
    nonzero = [row for row in v if np.any(row != 0)]
    return nonzero[0] if nonzero else v[0]


def irdrop_engine(group: h5py.Group) -> list[str]:
    """Engines to try for a tile's IR-drop map: 'spice' for ngspice tiles,
    'fast' then (small tiles) 'spice' for the others."""
    small = int(group.attrs["rows"]) * int(group.attrs["cols"]) <= SPICE_IRDROP_MAX_DEVICES
    if group.attrs.get("engine") == "spice":
        return ["spice"]
    return ["fast", "spice"] if small else ["fast"]


def compute_irdrop(group: h5py.Group) -> tuple[np.ndarray, str, list[str]]:
    """IR-drop map (R, C) (V/V) of a tile's first input vector, the engine that
    gave it, and notes (engines that could not, rows masked). Rows driven
    below IRDROP_MIN_ROW of the largest |row voltage| are NaN: their ratio
    is the column voltage over a near-zero applied voltage, not IR drop."""
    from cosim.irdrop import irdrop_map
    from cosim.netlist import dac_output

    spec, v = tile_spec(group), sample_vector(group)
    applied = np.abs(dac_output(spec, v[None, :])[0])
    weak = applied < IRDROP_MIN_ROW * applied.max()
    notes = []
    for engine in irdrop_engine(group):
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
    raise InputError("; ".join(notes))


def irdrop_figure(ratio: np.ndarray, title: str) -> bytes:
    """Heatmap PNG of an IR-drop map (cosim.plots.plot_heatmap_png)."""
    from cosim.plots import plot_heatmap_png

    with tempfile.TemporaryDirectory() as tmp:
        path = plot_heatmap_png(ratio, Path(tmp) / "irdrop.png", title, "V_cell / V_row applied (V/V)")
        return path.read_bytes()


def irdrop_section(h5: h5py.File) -> str:
    """IR-drop map of the tile with the largest tile error."""
    name = worst_tile(h5)
    if name is None:
        return section("irdrop", "IR drop of the worst tile", none_line("tiles with a stored input vector"))
    group = h5["tiles"][name]
    try:
        ratio, engine, notes = compute_irdrop(group)
    except CosimError as exc:
        return section("irdrop", "IR drop of the worst tile",
                       f'<p class="none">no IR-drop map of tile {esc(name)}: {esc(exc)}</p>')
    if not np.any(np.isfinite(ratio)):
        return section("irdrop", "IR drop of the worst tile",
                       none_line(f"tile {name}: its first input vector drives no row, so an IR-drop map"))
    i, j = np.unravel_index(int(np.nanargmin(ratio)), ratio.shape)
    title = (f"tile {name} ({ratio.shape[0]}x{ratio.shape[1]}), first input vector, engine {engine}\n"
             f"tile error {fmt(group.attrs.get('ideal_rel_error'))}")
    caption = (f"<p>Tile <b>{esc(name)}</b> (largest tile error, {fmt(group.attrs.get('ideal_rel_error'))}): "
               f"the voltage across each cell over the voltage its row's DAC applies, from {np.nanmax(ratio):.4f} "
               f"down to {ratio[i, j]:.4f} (cell {i},{j}); engine {esc(engine)}, computed now from the stored "
               f"conductances (S) and the tile's first input vector (V).</p>")
    skipped = "".join(f'<p class="note">{esc(n)}</p>' for n in notes)
    return section("irdrop", "IR drop of the worst tile", caption + img(irdrop_figure(ratio, title), "IR drop")
                   + skipped)


def spot_section(h5: h5py.File) -> str:
    """Fast solver vs ngspice on the spot-checked tiles."""
    tiles = h5["tiles"]
    rows = []
    for k in tiles:
        if "spot_check" in tiles[k]:
            spot = tiles[k]["spot_check"]
            rows.append([k, tiles[k].attrs.get("engine"), f"{tiles[k].attrs['rows']}x{tiles[k].attrs['cols']}",
                         spot["voltage"].shape[0], fmt(spot.attrs["max_rel_error"]),
                         fmt(spot.attrs["mean_rel_error"])])
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
    error = (h5["outputs"][()] - h5["ideal"][()]).ravel()
    if error.size == 0:
        return section("error-histogram", "Output error", none_line("outputs"))
    scale = float(np.max(np.abs(h5["ideal"][()]))) or 1.0
    caption = (f"<p>{error.size} outputs: RMS error {np.sqrt(np.mean(error ** 2)):.4g}, largest |error| "
               f"{np.max(np.abs(error)):.4g} ({np.max(np.abs(error)) / scale:.3g} of the largest |float output|), "
               f"mean {np.mean(error):.4g}.</p>")
    return section("error-histogram", "Output error", caption + img(histogram_figure(error), "error histogram"))


def wave_patterns(group: h5py.Group) -> list[list[str]]:
    """Signal name lists per panel: row voltages, column currents, TIA outputs,
    device conductances (at most WAVE_SIGNALS each)."""
    from cosim.waveforms import signal_table

    names = [name for name, _, _ in signal_table(group, 0)]
    panels = [".v_near", ".current", ".vout", ".g"]
    return [[n for n in names if n.endswith(suffix)][:WAVE_SIGNALS] for suffix in panels]


def waveform_figure(group: h5py.Group, vector: int = 0) -> bytes:
    """Transient of one tile: a panel per quantity over time, the ADC sample dashed."""
    from matplotlib.figure import Figure

    from cosim.plots import QUANTITIES, si_scale
    from cosim.waveforms import read_signals

    panels = [p for p in wave_patterns(group) if p]
    fig = Figure(figsize=(9, 2.2 * len(panels) + 0.8), layout="constrained")
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    t_sample = group["waveforms"].attrs.get("t_sample")
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
    fig.suptitle(f"tile {group.name.split('/')[-1]}, input vector {vector}", fontsize=10)
    return figure_png(fig)


def disturb_line(group: h5py.Group) -> str:
    """The read-disturb figures stored beside a transient tile."""
    if "read_disturb" not in group:
        return ""
    a = group["read_disturb"].attrs
    verdict = "ABOVE" if a["max_abs"] > a["threshold"] else "within"
    return (f"read disturb over a {a['t_read'] * 1e9:.4g} ns read: largest |dG/G| {a['max_abs']:.3g}, "
            f"mean {a['mean_abs']:.3g}; {verdict} the {a['threshold']:.3g} limit")


def waveforms_section(h5: h5py.File) -> str:
    """Waveforms of every transient tile."""
    tiles = h5["tiles"]
    names = [k for k in tiles if "waveforms" in tiles[k]]
    if not names:
        return section("waveforms", "Transient waveforms", none_line("transient tiles"))
    parts = []
    for name in names:
        group = tiles[name]
        tia = read_tile_spec(group).tia  # as the transient ran it
        parts.append(f"<h3>tile {esc(name)}</h3><p>{esc(group.attrs['rows'])}x{esc(group.attrs['cols'])} "
                     f"devices, TIA {esc(tia.kind)} (rs {tia.rs:g} ohm), "
                     f"{group['waveforms'].attrs['vectors']} input vector(s); {esc(disturb_line(group))}. "
                     f"All signals: <code>cosim waves {esc(Path(h5.filename).name)} --tile {esc(name)} "
                     f"--list</code></p>" + img(waveform_figure(group), f"waveforms of {name}"))
    return section("waveforms", "Transient waveforms", "\n".join(parts))


# ------------------------------------------------------------------ page


def build_report(h5: h5py.File) -> str:
    """The whole HTML page of an open RUN.h5."""
    config = run_config(h5)
    title = f"cosim report: {Path(str(config.get('layer', h5.filename))).name}"
    body = "".join([config_section(h5), layer_section(h5), tile_section(h5), irdrop_section(h5),
                    spot_section(h5), histogram_section(h5), waveforms_section(h5)])
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{esc(title)}</title>\n'
            f"<style>{CSS}</style>\n</head>\n<body>\n<h1>{esc(title)}</h1>\n"
            f'<p class="note">from {esc(Path(h5.filename).name)}</p>\n{body}</body>\n</html>\n')


@contextmanager
def atomic_text(path: Path | str) -> Iterator[io.TextIOWrapper]:
    """Open `path` for writing text; it appears only if the block completes."""
    from cosim.store import check_output_path

    target = check_output_path(path)
    tmp = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            yield handle
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_report(run: Path | str, out: Path | str) -> int:
    """Render RUN.h5 `run` to the HTML file `out` (atomically); returns its size (bytes)."""
    from cosim.store import check_output_path

    check_output_path(out)
    with open_run(run) as h5:
        page = build_report(h5)
    with atomic_text(out) as handle:
        handle.write(page)
    return len(page.encode("utf-8"))
