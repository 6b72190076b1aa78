"""Tile engines behind one call: `solve(spec, voltages, engine=...)`.

- 'ideal': current = v @ G with the DAC's voltages (no wires, no access
  device, ideal TIA): the reference every test can lean on.
- 'spice': the tile's netlist run in a SPICE engine (`.op` with frozen
  states, or `.tran` with live VTEAM states): `spice='ngspice'` (default,
  behavioral VTEAM) or `spice='vacask'` (the optional VACASK engine running
  the Verilog-A VTEAM; `pip install 'cosim[vacask]'`) or `spice='ngspice-shared'`
  (libngspice in a long-lived worker process, `cosim.spice.ngspice_shared`).
  Every SPICE run is preceded by the circuit check of `cosim.spice.graphcheck`.
- 'fast': the IR-drop-exact nodal solver of cosim.fast (transfer matrices).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from cosim.core import peripherals
from cosim.core.config import TranSpec
from cosim.core.drive import dac_output
from cosim.core.errors import InputError
from cosim.core.names import SPICE_ENGINES, TILE_ENGINES
from cosim.core.results import TileResult
from cosim.core.tile import TileSpec
from cosim.spice.ngspice import run_netlist
from cosim.spice.ngspice_netlist import tile_netlist
from cosim.spice.rawfile import Plot

ENGINES = TILE_ENGINES



def solve(spec: TileSpec, voltages: np.ndarray, engine: str = "spice", spice: str = "ngspice",
          **options: Any) -> TileResult:
    """Column currents and outputs of `spec` for row voltages (R,) or (B, R) (V);
    `spice` picks the SPICE engine ('ngspice' or 'vacask') when engine='spice'."""
    if engine == "ideal":
        return solve_ideal(spec, voltages)
    if engine == "spice":
        return solve_spice(spec, voltages, spice=spice, **options)
    if engine == "fast":
        from cosim.fast.prepared import solve_fast

        return solve_fast(spec, voltages, **options)
    raise InputError(f"unknown engine {engine!r}; use one of {', '.join(ENGINES)}")


def solve_ideal(spec: TileSpec, voltages: np.ndarray) -> TileResult:
    """current = v_dac @ G; vout = rs * current; codes from the ADC formula."""
    start = time.perf_counter()
    current = dac_output(spec, voltages) @ spec.conductance
    vout = spec.tia.rs * current
    codes = None if spec.adc.bits is None else peripherals.adc_codes(vout, spec.adc.bits, spec.adc.vfs)
    return TileResult(current, vout, codes, "ideal", time.perf_counter() - start)


def solve_spice(spec: TileSpec, voltages: np.ndarray, mode: str = "op", tran: TranSpec | None = None,
                timeout_s: float = 600.0, save_all: bool = False, keep_dir: Path | None = None,
                spice: str = "ngspice") -> TileResult:
    """Run the tile in ngspice or VACASK (`spice`); in transients the outputs
    are read at the ADC sample time.

    `keep_dir` runs the simulator in that directory and keeps it (netlist, log
    and raw files); by default a temporary directory is removed.
    """
    v = spec.check_voltages(voltages)
    tran = tran or TranSpec()
    if spice not in SPICE_ENGINES:
        raise InputError(f"unknown SPICE engine {spice!r}; use one of {', '.join(SPICE_ENGINES)}")
    from cosim.spice.graphcheck import check_tile

    check_tile(spec, v, mode, tran)  # a floating node or a loop of sources: one line now, not "singular matrix"
    if spice == "ngspice":
        text = tile_netlist(spec, v, mode=mode, tran=tran, save_all=save_all)
        run = run_netlist(text, timeout_s=timeout_s, expect_plots=v.shape[0], keep_dir=keep_dir)
    elif spice == "ngspice-shared":
        from cosim.spice.ngspice_shared import run_netlist_shared

        text = tile_netlist(spec, v, mode=mode, tran=tran, save_all=save_all)
        run = run_netlist_shared(text, timeout_s=timeout_s, expect_plots=v.shape[0], keep_dir=keep_dir,
                                 name=spec.netlist_name)
    elif spice == "vacask":
        from cosim.spice.vacask import run_tile

        run = run_tile(spec, v, mode, tran, timeout_s=timeout_s, save_all=save_all, keep_dir=keep_dir)
    else:
        raise InputError(f"unknown SPICE engine {spice!r}; use one of {', '.join(SPICE_ENGINES)}")
    cols = range(spec.cols)

    def at_sample(plot: Plot, name: str) -> float:
        """Vector `name` of one plot (A or V) at the operating point, or at the ADC sample time."""
        values = plot[name]
        return float(values[0]) if mode == "op" else float(np.interp(tran.t_sample, plot["time"], values))

    current = np.array([[at_sample(p, f"i(vsense_c{j})") for j in cols] for p in run.plots])
    vout = np.array([[at_sample(p, f"v(tia_c{j})") for j in cols] for p in run.plots])
    codes = None
    if spec.adc.bits is not None:
        # op: the ADC quantises continuously; tran: the code held after the sample.
        codes = np.array([[p[f"v(adc_c{j})"][-1] for j in cols] for p in run.plots])
        codes = np.rint(codes).astype(np.int64)
    waveforms = [dict(p.vectors) for p in run.plots] if mode == "tran" else None
    vectors = [dict(p.vectors) for p in run.plots] if save_all else None
    return TileResult(current, vout, codes, "spice", run.wall_s, run.netlist, run.log, waveforms, vectors)
