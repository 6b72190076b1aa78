"""Energy per operation (J) and latency (s) of one tile read's periphery: the
pure formulas behind `cosim.run.energy`, parameterised by a preset's
`EnergySpec` (`cosim.core.config`; sources in docs/energy.md).

One read of an R x C tile:

- DAC: R inputs of `dac_bits`, each dac_bit_j * bits (J; bit-serial 1-bit DACs as ISAAC's);
- array: the read power from the solved circuit (W; `cosim.core.tile_power`)
  times t_read;
- TIA: C amplifiers, each tia_bias_a * tia_supply_v * t_read (J);
- ADC: C conversions of `adc_bits`, each adc_fom_j * 2^bits (Walden figure
  of merit with ENOB = bits);
- digital: C adds (each column's pair subtraction or its partial-sum
  accumulation into the row-tile sum), each add_j (J).

Latency of the read: t_dac + t_read + columns_per_adc / adc_rate (the ADCs
of a tile work in parallel, each converting its columns one after another).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cosim.core.config import EnergySpec
from cosim.core.errors import InputError

#: The components of a read's energy, in the order every table and plot shows them.
COMPONENTS = ("array", "dac", "tia", "adc", "digital")


def _bits(bits: int | None, what: str) -> int:
    """Converter resolution for the energy models; an exact (None) converter counts as 0 bits."""
    if bits is None:
        return 0
    if isinstance(bits, bool) or not isinstance(bits, int) or bits < 1:
        raise InputError(f"{what} must be a positive integer number of bits or None, got {bits!r}")
    return bits


def adc_conversion_j(spec: EnergySpec, bits: int | None) -> float:
    """Energy of one ADC conversion (J): Walden FOM * 2^ENOB, ENOB = bits (0 J without an ADC)."""
    b = _bits(bits, "adc_bits")
    return 0.0 if b == 0 else spec.adc_fom_j * 2.0 ** b


def dac_conversion_j(spec: EnergySpec, bits: int | None) -> float:
    """Energy of driving one row with one input (J): dac_bit_j per input bit (0 J for exact drive)."""
    return spec.dac_bit_j * _bits(bits, "dac_bits")


def tia_read_j(spec: EnergySpec) -> float:
    """Energy of one column TIA over one read (J): bias current * supply * t_read."""
    return spec.tia_bias_a * spec.tia_supply_v * spec.t_read


def adcs_per_tile(spec: EnergySpec, cols: int) -> int:
    """ADCs of a tile of `cols` columns: ceil(cols / columns_per_adc)."""
    return math.ceil(cols / spec.columns_per_adc)


def read_latency_s(spec: EnergySpec, cols: int) -> float:
    """Latency of one tile read (s): DAC settling + read pulse + the shared
    ADC's conversions, min(columns_per_adc, cols) of them at adc_rate."""
    return spec.t_dac + spec.t_read + min(spec.columns_per_adc, cols) / spec.adc_rate


@dataclass(frozen=True)
class ReadEnergy:
    """Energy of one read of an R x C tile by component (J), without the array
    (its power comes from the solved circuit).

    Attributes:
        dac, tia, adc, digital: J per read.
        latency_s: the read's latency (s).
    """

    dac: float
    tia: float
    adc: float
    digital: float
    latency_s: float


def read_energy(spec: EnergySpec, rows: int, cols: int, dac_bits: int | None, adc_bits: int | None) -> ReadEnergy:
    """Peripheral energy (J) and latency (s) of one read of a rows x cols tile."""
    if rows < 1 or cols < 1:
        raise InputError(f"a tile needs at least one row and one column, got {rows} x {cols}")
    return ReadEnergy(dac=rows * dac_conversion_j(spec, dac_bits), tia=cols * tia_read_j(spec),
                      adc=cols * adc_conversion_j(spec, adc_bits), digital=cols * spec.add_j,
                      latency_s=read_latency_s(spec, cols))
