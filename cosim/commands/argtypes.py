"""Numeric option types for argparse (`type=`), and a parser whose errors are one line.

Every count, size and resistance option of `cosim simulate`, `evaluate`,
`sweep` (and the tile commands) is checked here, when the command line is
parsed, before any file is read or any tile runs:

    run.add_argument("--spice-max-tile", type=int_at_least(0), ...)

A bad value ends in one line, exit status 2:
`cosim: error: argument --spice-max-tile: must be an integer >= 0, got '-1' (see cosim simulate --help)`.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import NoReturn

#: Converter resolutions an override may give; 0 means exact (no converter).
BITS_LOW, BITS_HIGH = 2, 24


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one `cosim: error:` line (exit 2),
    pointing at `--help` instead of printing the usage block."""

    def error(self, message: str) -> NoReturn:
        """Exit with status 2 after one `cosim: error:` line naming `--help`."""
        self.exit(2, f"cosim: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def _typed(name: str, parse: Callable[[str], float], check: Callable[[float], bool], wanted: str):
    def convert(text: str) -> float:
        """The option's value parsed from `text`, or argparse.ArgumentTypeError saying what was wanted."""
        try:
            value = parse(text)
        except (TypeError, ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}") from None
        if not check(value):
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}")
        return value

    convert.__name__ = name  # argparse names the type in some messages
    return convert


def _int(text: str) -> int:
    return int(text.strip())


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def int_at_least(low: int):
    """An integer >= low (`--tile`, `--workers`, `--spot-check`, ...)."""
    return _typed(f"int>={low}", _int, lambda v: v >= low, f"an integer >= {low}")


def int_between(low: int, high: int):
    """An integer from low to high."""
    return _typed(f"int{low}..{high}", _int, lambda v: low <= v <= high, f"an integer from {low} to {high}")


def float_at_least(low: float, unit: str = ""):
    """A finite number >= low (`--r-wire`, `--r-driver`: 0 allowed)."""
    suffix = f" ({unit})" if unit else ""
    return _typed(f"float>={low:g}", _float, lambda v: v >= low, f"a finite number >= {low:g}{suffix}")


def float_above(low: float, unit: str = ""):
    """A finite number > low (`--rs`, `--dac-vfs`, `--t-stop`, ...)."""
    suffix = f" ({unit})" if unit else ""
    return _typed(f"float>{low:g}", _float, lambda v: v > low, f"a finite number > {low:g}{suffix}")


def finite_float(unit: str = ""):
    """Any finite number (`--v-wordline`: its own range is checked later)."""
    suffix = f" ({unit})" if unit else ""
    return _typed("float", _float, lambda v: True, f"a finite number{suffix}")


def converter_bits(zero_means: str = "exact"):
    """Converter resolution: 0 ({zero_means}) or an integer from 2 to 24."""
    return _typed("bits", _int, lambda v: v == 0 or BITS_LOW <= v <= BITS_HIGH,
                  f"0 ({zero_means}) or an integer from {BITS_LOW} to {BITS_HIGH}")


def bits_or_none():
    """Converter resolution of the tile commands: an integer from 2 to 24 (omit the option for none)."""
    return _typed("bits", _int, lambda v: BITS_LOW <= v <= BITS_HIGH,
                  f"an integer from {BITS_LOW} to {BITS_HIGH} (leave the option out for no converter)")


POSITIVE_INT = int_at_least(1)
NON_NEGATIVE_INT = int_at_least(0)
#: Seeds of every random draw: numpy's and torch's generators take 0 .. 2**63 - 1.
SEED = int_between(0, 2**63 - 1)
RESISTANCE = float_at_least(0.0, "ohm")
POSITIVE_RESISTANCE = float_above(0.0, "ohm")
