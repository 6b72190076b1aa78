"""Each column's TIA settling time in a transient read: when its output comes
and stays within half an ADC LSB of its final value, so that `t_read`
(the preset's `energy.t_read`) can be set from a simulation.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from cosim.core import peripherals
from cosim.core.errors import InputError
from cosim.core.tile import TileSpec

#: ADC resolution assumed for the half-LSB band of a tile without ADCs (bits; the seed presets' 8).
DEFAULT_BITS = 8


def settling_times(spec: TileSpec, waveforms: Mapping[str, np.ndarray], t_final: float,
                   bits: int | None = None, vfs: float | None = None) -> np.ndarray:
    """Settling time of each column's TIA output (C,) (s after the DAC step starts).

    The final value is v(tia_c{j}) at `t_final` (s; the ADC sample instant);
    the band is half an LSB of a `bits`-bit converter of full scale `vfs`
    (default the tile's ADC, or DEFAULT_BITS over the tile's ADC full scale).
    A column already inside the band from the step on settles at 0 s; one
    that leaves it after `t_final` gets NaN.
    """
    t = np.asarray(waveforms["time"], dtype=float)
    if not (t[0] <= t_final <= t[-1]):
        raise InputError(f"settling: final time {t_final:g} s lies outside the transient [{t[0]:g}, {t[-1]:g}] s")
    b = bits if bits is not None else (spec.adc.bits if spec.adc.bits is not None else DEFAULT_BITS)
    half_lsb = 0.5 * peripherals.dac_lsb(b, vfs if vfs is not None else spec.adc.vfs)
    start = float(spec.dac.delay)
    out = np.empty(spec.cols)
    window = (t >= start) & (t <= t_final)
    tw = t[window]
    for j in range(spec.cols):
        v = np.asarray(waveforms[f"v(tia_c{j})"], dtype=float)
        final = float(np.interp(t_final, t, v))
        outside = np.abs(v[window] - final) > half_lsb
        if not outside.any():
            out[j] = 0.0
        elif outside[-1]:
            out[j] = np.nan
        else:
            last = int(np.nonzero(outside)[0][-1])
            out[j] = tw[last + 1] - start
    return out


def settling_summary(times: np.ndarray, bits: int) -> str:
    """One line: the slowest column's settling time and the median (ns)."""
    finite = times[np.isfinite(times)]
    if finite.size == 0:
        return "TIA settling: no column settles within half an LSB before the sample instant"
    worst = int(np.nanargmax(np.where(np.isfinite(times), times, -1)))
    unsettled = int(np.sum(~np.isfinite(times)))
    tail = f"; {unsettled} column(s) not settled by the sample" if unsettled else ""
    return (f"TIA settling to half an LSB ({bits}-bit): slowest column {worst} at {times[worst] * 1e9:.4g} ns, "
            f"median {np.median(finite) * 1e9:.4g} ns after the DAC step{tail} (set energy.t_read at least this)")
