"""`cosim waves`: list a transient tile's signals, or plot them to PNG or
interactive HTML, or write them as CSV."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from cosim.core.errors import InputError, first_line

if TYPE_CHECKING:
    import numpy as np

    from cosim.results.waveforms import Signal

FORMATS = (".png", ".html", ".csv")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `cosim waves`'s options."""
    waves = sub.add_parser("waves", help="list, plot or export a transient tile's waveforms")
    waves.add_argument("file", metavar="FILE.h5", help="a file from cosim tile --transient or cosim simulate")
    waves.add_argument("--tile", metavar="NAME",
                       help="tile group under tiles/ (optional for a cosim tile file, or when one tile "
                            "has waveforms)")
    waves.add_argument("--signal", nargs="+", action="append", metavar="PATTERN", default=[],
                       help="signal names or glob patterns, e.g. 'col*.vout' 'row0.*' 'cell2_3.g'; "
                            "repeatable (--signal 'col*.vout' --signal 'cell*.g' plots both)")
    waves.add_argument("--vector", type=int, default=0, metavar="B", help="input vector (default 0)")
    waves.add_argument("-o", "--out", metavar="OUT.png|OUT.html|OUT.csv",
                       help="PNG (matplotlib), interactive HTML (plotly) or CSV, by extension")
    waves.add_argument("--list", action="store_true", help="print the available signals with units")
    waves.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run `cosim waves` from parsed arguments; returns the exit status."""
    import h5py

    from cosim.core.atomic import check_output_file
    from cosim.results.waveforms import find_tile_group, read_signals, sample_time, signal_table, tile_label

    if not args.list and not args.out:
        raise InputError("say what to do: --list to see the signals, "
                         "or --signal PATTERN... -o OUT.png|.html|.csv")
    if args.out:
        if not args.signal:
            raise InputError("give the signals to plot with --signal PATTERN... (see --list)")
        suffix = Path(args.out).suffix.lower()
        if suffix not in FORMATS:
            raise InputError(f"cannot write {args.out}: the output must end in {', '.join(FORMATS)}")
        check_output_file(args.out)  # before reading anything: a directory, a missing or read-only one
    path = Path(args.file)
    if not path.is_file():
        raise InputError(f"{path} does not exist; give an HDF5 file from cosim tile --transient "
                         "or cosim simulate")
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise InputError(f"{path} is not a readable HDF5 file ({first_line(exc, 120)}); give an "
                         "HDF5 file from cosim tile --transient or cosim simulate") from None
    # Every group, dataset and attribute is checked as it is read (cosim.results.waveforms, cosim.results.h5check).
    with h5:
        group = find_tile_group(h5, args.tile)
        if args.list:
            print_table(signal_table(group, args.vector), tile_label(group))
        if args.out:
            patterns = list(dict.fromkeys(p for given in args.signal for p in given))  # every --signal, in order
            time, signals = read_signals(group, patterns, args.vector)
            write_output(time, signals, args.out, title=f"tile {tile_label(group)}, input vector "
                         f"{args.vector}", t_sample=sample_time(group))
            print(f"wrote {len(signals)} signal(s) to {args.out}")
    return 0


def print_table(table: list[tuple[str, str, str]], where: str) -> None:
    """One line per signal: name, units, description."""
    width = max(len(name) for name, _, _ in table)
    print(f"{len(table)} signals of tile {where} (time in s):")
    for name, units, description in table:
        print(f"  {name:<{width}}  {units:<4} {description}")


def write_output(time: np.ndarray, signals: list[Signal], out: str, title: str, t_sample: float | None) -> None:
    """PNG, HTML or CSV by the extension of `out`, written atomically (cosim.results.plots)."""
    from cosim.results import plots

    suffix = Path(out).suffix.lower()
    if suffix == ".csv":
        plots.write_waveforms_csv(time, signals, out)
    elif suffix == ".html":
        import html

        plots.plot_waveforms_html(time, signals, out, html.escape(title), t_sample)  # plotly reads tags in text
    else:
        from cosim.results.waveforms import plain_text

        plots.plot_waveforms_png(time, signals, out, plain_text(title), t_sample)  # no mathtext from names
