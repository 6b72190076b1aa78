"""`cosim report RUN.h5 -o report.html`: one self-contained HTML page about a run."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `cosim report`'s options."""
    report = sub.add_parser("report", help="one self-contained HTML page about a cosim simulate run")
    report.add_argument("run_file", metavar="RUN.h5", help="a file written by cosim simulate")
    report.add_argument("-o", "--out", metavar="REPORT.html",
                        help="output page (default RUN.report.html in the current directory)")
    report.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run `cosim report` from parsed arguments; returns the exit status."""
    from cosim.results.report import SECTIONS, write_report

    out = args.out or f"{Path(args.run_file).stem}.report.html"
    size = write_report(args.run_file, out)
    print(f"wrote {out} ({len(SECTIONS)} sections, {size / 1024:.0f} KiB, self-contained)")
    return 0
