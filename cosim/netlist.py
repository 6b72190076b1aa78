"""TileSpec -> ngspice netlist text (a pure function of its inputs).

Two modes:
- 'op': frozen device states (each memristor is its resistance), one `.op`
  per input vector; the inputs are changed with `alter` so ngspice keeps
  the circuit between vectors.
- 'tran': live VTEAM states (models/vteam.lib), DAC step with rise time,
  TIA settling and the ADC sampling instant, one `.tran` per input vector.

Node names tell row and column (see `NODE_LEGEND`). Netlists are written as
text directly: building PySpice Circuit objects is ~30x slower at 128x128.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cosim import device as vteam
from cosim import peripherals
from cosim.config import TranSpec
from cosim.resources import resource_path
from cosim.tile import TileSpec

RAW_NAME = "tile.raw"
MODES = ("op", "tran")

NODE_LEGEND = """\
* Node names (i = row, j = column, 0-based):
*   code_r{i}  digital input code of row i's DAC (1 V per code step; volts when the DAC is ideal)
*   in_r{i}    DAC output of row i (before its driver resistance)
*   r{i}_{j}   row line at cell (i, j)      c{i}_{j}  column line at cell (i, j)
*   o{j}       TIA input of column j (virtual ground), reached through Vsense_c{j}
*   tia_c{j}   TIA output voltage of column j    adc_c{j}  ADC code of column j (1 V per code)
*   x{i}_{j}   normalised VTEAM state of cell (i, j) (tran only; 0 = Ron, 1 = Roff)
*   wl         word line of every access transistor
* With r_wire = 0 a row is one node r{i} and a column one node c{j} = o{j};
* with r_driver = 0 the DAC drives r{i}_0 directly."""


@dataclass(frozen=True)
class Includes:
    """Where the netlist finds the files it includes: absolute paths into the
    installed package (default) or bare names of copies beside the netlist."""

    local: bool = False

    def line(self, folder: str, name: str) -> str:
        path = name if self.local else str(resource_path(folder, name))
        return f".include {path}"


def included_files(spec: TileSpec, mode: str) -> list[tuple[str, str]]:
    """(folder, name) of every file a tile netlist includes, in include order
    (tia.cir includes opamp.cir itself; see `netlist_dir_files`)."""
    files = [("circuits", "dac.cir"), ("circuits", "tia.cir")]
    if spec.adc.bits is not None:
        files.append(("circuits", "adc.cir"))
    if mode == "tran":
        files.append(("models", "vteam.lib"))
    if spec.access == "nmos":
        files += [("circuits", "cell_1t1r.cir"), ("models", "nmos_access.lib")]
    return files


def netlist_dir_files(spec: TileSpec, mode: str) -> list[tuple[str, str]]:
    """Every file a self-contained netlist directory needs (includes of includes too)."""
    return included_files(spec, mode) + [("circuits", "opamp.cir")]


def _g(value: float) -> str:
    """A number written so that it reads back as the same double (shortest round trip)."""
    return repr(float(value))


class _Nodes:
    """Node names of a tile, merging wire nodes whose segments are 0 ohm."""

    def __init__(self, spec: TileSpec) -> None:
        self.wires = spec.r_wire > 0
        self.driver = spec.r_driver > 0

    def row(self, i: int, j: int) -> str:
        return f"r{i}_{j}" if self.wires else f"r{i}"

    def col(self, i: int, j: int) -> str:
        return f"c{i}_{j}" if self.wires else f"c{j}"

    def tia_in(self, j: int, rows: int) -> str:
        return f"o{j}" if self.wires else self.col(rows - 1, j)

    def dac_out(self, i: int) -> str:
        return f"in_r{i}" if self.driver else self.row(i, 0)


def input_codes(spec: TileSpec, voltages: np.ndarray) -> np.ndarray:
    """What each row's code source carries: DAC codes (integers), or the
    voltages themselves when the DAC is ideal (bits None)."""
    v = spec.check_voltages(voltages)
    if spec.dac.bits is None:
        return v
    return peripherals.dac_codes(v, spec.dac.bits, spec.dac.vfs).astype(float)


def dac_output(spec: TileSpec, voltages: np.ndarray) -> np.ndarray:
    """Row voltages the DACs actually apply (V), shape (B, R)."""
    v = spec.check_voltages(voltages)
    if spec.dac.bits is None:
        return v
    codes = peripherals.dac_codes(v, spec.dac.bits, spec.dac.vfs)
    return peripherals.dac_voltage(codes, spec.dac.bits, spec.dac.vfs)


def tile_netlist(spec: TileSpec, voltages: np.ndarray, mode: str = "op",
                 tran: TranSpec | None = None, includes: Includes = Includes(),
                 save_all: bool = False) -> str:
    """ngspice netlist of `spec` driven by `voltages` ((R,) or (B, R) V).

    The `.control` block runs one analysis per input vector and writes them
    all to `tile.raw` (binary) in the working directory.

    Args:
        spec: the tile.
        voltages: row input voltages (V), before DAC quantisation.
        mode: 'op' (frozen states) or 'tran' (live VTEAM states).
        tran: transient settings (mode 'tran'; defaults otherwise).
        includes: absolute include paths, or local names for a netlist directory.
        save_all: save every node voltage (IR-drop maps) instead of the outputs only.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    tran = tran or TranSpec()
    codes = input_codes(spec, voltages)
    nodes = _Nodes(spec)
    rows, cols = spec.rows, spec.cols
    lines = [f"* cosim tile '{spec.name}' {rows}x{cols}, mode {mode}, {codes.shape[0]} input vector(s)"]
    lines += _header_comments(spec, mode, tran)
    lines.append(NODE_LEGEND)
    lines += [includes.line(folder, name) for folder, name in included_files(spec, mode)]
    if mode == "tran":
        lines += _memristor_wrapper(spec)
    lines += _drivers(spec, codes[0], nodes, mode, tran)
    lines += _wires(spec, nodes)
    lines += _cells(spec, nodes, mode)
    lines += _readout(spec, nodes, mode, tran)
    lines += _control(spec, codes, mode, tran, save_all)
    lines.append(".end")
    return "\n".join(lines) + "\n"


def _header_comments(spec: TileSpec, mode: str, tran: TranSpec) -> list[str]:
    access = "none (memristor only)" if spec.access == "none" else (
        f"nmos_access W={_g(spec.nmos.width)} m L={_g(spec.nmos.length)} m, V_wl={_g(spec.nmos.v_wordline)} V")
    dac = "ideal" if spec.dac.bits is None else f"{spec.dac.bits} bit, +-{_g(spec.dac.vfs)} V"
    adc = "none" if spec.adc.bits is None else f"{spec.adc.bits} bit, +-{_g(spec.adc.vfs)} V"
    out = [f"* r_wire {_g(spec.r_wire)} ohm per segment, r_driver {_g(spec.r_driver)} ohm, access {access}",
           f"* TIA {spec.tia.kind} rs={_g(spec.tia.rs)} ohm; DAC {dac}; ADC {adc}"]
    if mode == "tran":
        out.append(f"* transient: DAC step at {_g(spec.dac.delay)} s, rise {_g(spec.dac.rise)} s; "
                   f"ADC samples at {_g(tran.t_sample)} s; stop {_g(tran.t_stop)} s")
    return out


def _memristor_wrapper(spec: TileSpec) -> list[str]:
    """The `memristor` subckt: VTEAM with this tile's device parameters."""
    params = " ".join(f"{k}={_g(v)}" for k, v in vteam.spice_params(spec.device).items() if k != "x0")
    return ["* memristor: VTEAM (models/vteam.lib) with this tile's device parameters",
            ".subckt memristor p n x params: x0=0.5",
            f"Xvteam p n x vteam params: {params} x0={{x0}}",
            ".ends memristor"]


def _drivers(spec: TileSpec, codes: np.ndarray, nodes: _Nodes, mode: str, tran: TranSpec) -> list[str]:
    dac = spec.dac
    if mode == "op":
        enable = "Ven en 0 DC 1"
    else:
        enable = f"Ven en 0 PWL(0 0 {_g(dac.delay)} 0 {_g(dac.delay + dac.rise)} 1)"
    subckt = "dac_ideal" if dac.bits is None else "dac"
    params = "" if dac.bits is None else f" params: bits={dac.bits} vfs={_g(dac.vfs)}"
    out = ["* Row DACs: code sources (changed per input vector by .control), enable step, drivers", enable]
    for i in range(spec.rows):
        out.append(f"Vcode_r{i} code_r{i} 0 DC {_g(codes[i])}")
        out.append(f"Xdac_r{i} code_r{i} en {nodes.dac_out(i)} {subckt}{params}")
        if nodes.driver:
            out.append(f"Rdrv_r{i} in_r{i} {nodes.row(i, 0)} {_g(spec.r_driver)}")
    return out


def _wires(spec: TileSpec, nodes: _Nodes) -> list[str]:
    if not nodes.wires:
        return ["* Wires: ideal (r_wire = 0)"]
    rw = _g(spec.r_wire)
    out = ["* Row wires: one segment between neighbouring cells"]
    for i in range(spec.rows):
        for j in range(spec.cols - 1):
            out.append(f"Rrow_{i}_{j} {nodes.row(i, j)} {nodes.row(i, j + 1)} {rw}")
    out.append("* Column wires: one segment between neighbouring cells, one more into the TIA")
    for j in range(spec.cols):
        for i in range(spec.rows - 1):
            out.append(f"Rcol_{i}_{j} {nodes.col(i, j)} {nodes.col(i + 1, j)} {rw}")
        out.append(f"Rcol_{spec.rows - 1}_{j} {nodes.col(spec.rows - 1, j)} {nodes.tia_in(j, spec.rows)} {rw}")
    return out


def _cells(spec: TileSpec, nodes: _Nodes, mode: str) -> list[str]:
    out = []
    nmos = spec.access == "nmos"
    if nmos:
        out.append(f"Vwl wl 0 DC {_g(spec.nmos.v_wordline)}")
        geometry = f"w={_g(spec.nmos.width)} l={_g(spec.nmos.length)}"
    out.append("* Cells: memristor from row line to column line" + (" through the access NMOS" if nmos else ""))
    frozen = mode == "op"
    # op: each memristor is its resistance; tran: a live VTEAM instance at its state.
    values = 1.0 / spec.conductance if frozen else spec.states
    for i in range(spec.rows):
        for j in range(spec.cols):
            bl, sl, value = nodes.row(i, j), nodes.col(i, j), _g(values[i, j])
            if frozen and nmos:
                out.append(f"Xcell_{i}_{j} {bl} {sl} wl cell_1t1r_frozen params: r={value} {geometry}")
            elif frozen:
                out.append(f"Rm_{i}_{j} {bl} {sl} {value}")
            elif nmos:
                out.append(f"Xcell_{i}_{j} {bl} {sl} wl x{i}_{j} cell_1t1r params: x0={value} {geometry}")
            else:
                out.append(f"Xm_{i}_{j} {bl} {sl} x{i}_{j} memristor params: x0={value}")
    return out


def _readout(spec: TileSpec, nodes: _Nodes, mode: str, tran: TranSpec) -> list[str]:
    tia = spec.tia
    tia_params = {"ideal": f"rs={_g(tia.rs)}",
                  "vcvs": f"rs={_g(tia.rs)} a0={_g(tia.a0)}",
                  "opamp": f"rs={_g(tia.rs)} a0={_g(tia.a0)} gbw={_g(tia.gbw)} vsat={_g(tia.vsat)}"}[tia.kind]
    out = ["* Column readout: current sense (0 V), TIA" + (", ADC" if spec.adc.bits else "")]
    if spec.adc.bits is not None:
        if mode == "op":
            out.append("Vclk clk 0 DC 1")
        else:
            edge = tran.t_sample + min(tran.t_step, 1e-12)
            out.append(f"Vclk clk 0 PWL(0 1 {_g(tran.t_sample)} 1 {_g(edge)} 0)")
    for j in range(spec.cols):
        out.append(f"Vsense_c{j} {nodes.tia_in(j, spec.rows)} t{j} DC 0")
        out.append(f"Xtia_c{j} t{j} tia_c{j} tia_{tia.kind} params: {tia_params}")
        if spec.adc.bits is not None:
            out.append(f"Xadc_c{j} tia_c{j} clk adc_c{j} adc params: bits={spec.adc.bits} "
                       f"vfs={_g(spec.adc.vfs)}")
    return out


def saved_vectors(spec: TileSpec, mode: str) -> list[str]:
    """The vectors a tile run keeps (besides `time` in transients)."""
    cols = range(spec.cols)
    vectors = [f"i(vsense_c{j})" for j in cols] + [f"v(tia_c{j})" for j in cols]
    if spec.adc.bits is not None:
        vectors += [f"v(adc_c{j})" for j in cols]
    if mode == "tran":
        vectors += [f"v(in_r{i})" if spec.r_driver > 0 else f"v({_Nodes(spec).row(i, 0)})"
                    for i in range(spec.rows)]
        vectors += [f"v(x{i}_{j})" for i in range(spec.rows) for j in cols]
    return vectors


def _control(spec: TileSpec, codes: np.ndarray, mode: str, tran: TranSpec, save_all: bool) -> list[str]:
    if mode == "op":
        analysis = "op"
    else:
        max_step = f" {_g(tran.t_max_step)}" if tran.t_max_step else ""
        analysis = f"tran {_g(tran.t_step)} {_g(tran.t_stop)} 0{max_step}"
    out = [".control", "set filetype=binary", "save " + ("all" if save_all else " ".join(saved_vectors(spec, mode)))]
    for b in range(codes.shape[0]):
        if b > 0:
            out += [f"alter vcode_r{i} dc={_g(codes[b, i])}" for i in range(spec.rows)
                    if codes[b, i] != codes[b - 1, i]]
        out += [analysis, f"write {RAW_NAME}"]
        if b == 0:
            out.append("set appendwrite")
    out += ["quit 0", ".endc"]  # ngspice -b exits 1 after a .control block without it
    return out


def write_netlist_dir(spec: TileSpec, voltages: np.ndarray, directory: Path, mode: str = "op",
                      tran: TranSpec | None = None) -> Path:
    """A self-contained netlist directory: tile.cir plus copies of every
    included file; runs as `cd DIR && ngspice -b tile.cir`. Returns tile.cir."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    text = tile_netlist(spec, voltages, mode, tran, includes=Includes(local=True))
    for folder, name in netlist_dir_files(spec, mode):
        (directory / name).write_text(resource_path(folder, name).read_text())
    target = directory / "tile.cir"
    target.write_text(text)
    return target
