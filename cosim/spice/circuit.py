"""The tile circuit described once, as plain data: `tile_circuit(spec, voltages, mode)`.

A `TileCircuit` is a list of parts (comments, voltage sources, banks of
resistors, banks of subcircuit instances) with node and element names, plus
the per-vector input codes, the analysis and the device parameters of the
memristor. It knows nothing about any simulator's syntax: the ngspice writer
(`cosim.spice.ngspice_netlist`) and the VACASK writer (`cosim.spice.vacask_netlist`) turn the
same parts into their own text, so geometry, node names and signs live here
only.

Names are the element names both simulators see (`Vcode_r0`, `Rrow_0_1`,
`Xcell_2_3`; VACASK gets them lower-cased); blocks are the subcircuit names
that circuits/ (ngspice) and circuits/vacask/ (VACASK) both define with the
same pins and parameters: dac, dac_ideal, tia_ideal, tia_vcvs, tia_opamp,
adc, cell_1t1r, cell_1t1r_frozen, and `memristor` (the VTEAM with the tile's
device parameters, which each writer defines in the netlist itself).

Numbers: an `int` is written as an integer, a `float` as its shortest
round-trip repr (`number`), so both dialects read back the very same double;
a NaN or infinity is refused. Names: the title carries the tile's name in
its netlist-safe form (`TileSpec.netlist_name`, `cosim.core.netsafe`); every
other name here is built from integers. Both writers pass every line
through their final check (`cosim.core.netsafe.check_ngspice` / `check_vacask`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Union

import numpy as np

from cosim.core import netsafe, vteam
from cosim.core.config import TranSpec
from cosim.core.drive import input_codes
from cosim.core.tile import TileSpec

MODES = ("op", "tran")

Value = Union[int, float]

#: The node legend of every tile netlist (comment text, one line each).
LEGEND = (
    "Node names (i = row, j = column, 0-based):",
    "  code_r{i}  digital input code of row i's DAC (1 V per code step; volts when the DAC is ideal)",
    "  in_r{i}    DAC output of row i (before its driver resistance)",
    "  r{i}_{j}   row line at cell (i, j)      c{i}_{j}  column line at cell (i, j)",
    "  o{j}       TIA input of column j (virtual ground), reached through Vsense_c{j}",
    "  tia_c{j}   TIA output voltage of column j    adc_c{j}  ADC code of column j (1 V per code)",
    "  x{i}_{j}   normalised VTEAM state of cell (i, j) (tran only; 0 = Ron, 1 = Roff)",
    "  wl         word line of every access transistor",
    "With r_wire = 0 a row is one node r{i} and a column one node c{j} = o{j};",
    "with r_driver = 0 the DAC drives r{i}_0 directly.",
)


def number(value: Value, what: str = "a value") -> str:
    """An int as an integer; a float so that it reads back as the same double;
    NaN, infinities and non-numbers refused (`cosim.core.netsafe.number`, the one
    number formatter of every netlist writer)."""
    return netsafe.number(value, what)


@dataclass(frozen=True)
class Comment:
    """A comment line (text without the dialect's comment marker)."""

    text: str


@dataclass(frozen=True)
class Source:
    """Independent voltage source from `p` to `n` (V): a DC value, or a
    piecewise-linear waveform of (time s, value V) points for transients."""

    name: str
    p: str
    n: str
    dc: Value = 0
    pwl: tuple[tuple[Value, Value], ...] | None = None


@dataclass(frozen=True, eq=False)
class Resistors:
    """A bank of resistors, written in this order: names[k] from p[k] to n[k], ohms[k] (ohm)."""

    names: list[str]
    p: list[str]
    n: list[str]
    ohms: np.ndarray

    def __iter__(self) -> Iterator[tuple[str, str, str, float]]:
        return zip(self.names, self.p, self.n, (float(r) for r in self.ohms))


@dataclass(frozen=True, eq=False)
class Instances:
    """A bank of instances of one block, written in this order.

    Attributes:
        block: subcircuit name (see the module docstring).
        names: instance names.
        nodes: each instance's nodes, in the block's pin order.
        params: parameter -> one value for every instance, or an array with
            one float per instance; written in this order.
    """

    block: str
    names: list[str]
    nodes: list[tuple[str, ...]]
    params: dict[str, np.ndarray | Value] = field(default_factory=dict)

    def __iter__(self) -> Iterator[tuple[str, tuple[str, ...], str]]:
        """(name, nodes, 'key=value key=value ...') of each instance; '' without params."""
        count = len(self.names)
        columns = [[f"{key}={number(float(x))}" for x in v] if isinstance(v, np.ndarray)
                   else [f"{key}={number(v)}"] * count for key, v in self.params.items()]
        texts = [" ".join(items) for items in zip(*columns)] if columns else [""] * count
        return zip(self.names, self.nodes, texts)

    @classmethod
    def one(cls, block: str, name: str, nodes: tuple[str, ...], **params: Value) -> "Instances":
        """A single instance of `block` on `nodes`, with its parameters (in their models' units)."""
        return cls(block, [name], [nodes], dict(params))


Part = Union[Comment, Source, Resistors, Instances]


@dataclass(frozen=True, eq=False)
class TileCircuit:
    """A tile's circuit and analysis, independent of any simulator.

    Attributes:
        spec: the tile it describes.
        mode: 'op' (frozen states, memristors are resistors) or 'tran' (live VTEAM).
        tran: transient settings (used in mode 'tran').
        title: one-line title.
        header: comment lines describing the settings.
        parts: the circuit, in writing order.
        codes: (B, R) value of each row's code source per input vector.
        code_sources: names of the R code sources, in row order.
        device: VTEAM parameters of the `memristor` block except x0
            (models' names and units, floats), or None in mode 'op'.
    """

    spec: TileSpec
    mode: str
    tran: TranSpec
    title: str
    header: list[str]
    parts: list[Part]
    codes: np.ndarray
    code_sources: list[str]
    device: dict[str, float] | None


class Nodes:
    """Node names of a tile, merging wire nodes whose segments are 0 ohm."""

    def __init__(self, spec: TileSpec) -> None:
        self.wires = spec.r_wire > 0
        self.driver = spec.r_driver > 0

    def row(self, i: int, j: int) -> str:
        """Row line i's node at cell (i, j) (one node per row when r_wire is 0)."""
        return f"r{i}_{j}" if self.wires else f"r{i}"

    def col(self, i: int, j: int) -> str:
        """Column line j's node at cell (i, j) (one node per column when r_wire is 0)."""
        return f"c{i}_{j}" if self.wires else f"c{j}"

    def tia_in(self, j: int, rows: int) -> str:
        """Column j's node at its TIA input, past the last wire segment."""
        return f"o{j}" if self.wires else self.col(rows - 1, j)

    def dac_out(self, i: int) -> str:
        """Row i's DAC output node, before r_driver (the row's first node when r_driver is 0)."""
        return f"in_r{i}" if self.driver else self.row(i, 0)


def tile_circuit(spec: TileSpec, voltages: np.ndarray, mode: str = "op",
                 tran: TranSpec | None = None) -> TileCircuit:
    """The circuit of `spec` driven by `voltages` ((R,) or (B, R) V, before DAC
    quantisation) in `mode` 'op' or 'tran'."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    tran = tran or TranSpec()
    codes = input_codes(spec, voltages)
    nodes = Nodes(spec)
    # The name in its netlist-safe form (cosim.core.netsafe.netlist_name); the original stays in spec.name.
    title = (f"cosim tile '{spec.netlist_name}' {number(spec.rows)}x{number(spec.cols)}, mode {mode}, "
             f"{number(codes.shape[0])} input vector(s)")
    parts = (_drivers(spec, codes[0], nodes, mode) + _wires(spec, nodes) + _cells(spec, nodes, mode)
             + _readout(spec, nodes, mode, tran))
    device = None
    if mode == "tran":
        device = {k: float(v) for k, v in vteam.spice_params(spec.device).items() if k != "x0"}
    return TileCircuit(spec, mode, tran, title, _header(spec, mode, tran), parts, codes,
                       [f"Vcode_r{i}" for i in range(spec.rows)], device)


def _header(spec: TileSpec, mode: str, tran: TranSpec) -> list[str]:
    g = number
    access = "none (memristor only)" if spec.access == "none" else (
        f"nmos_access W={g(float(spec.nmos.width))} m L={g(float(spec.nmos.length))} m, "
        f"V_wl={g(float(spec.nmos.v_wordline))} V")
    dac = "ideal" if spec.dac.bits is None else f"{g(int(spec.dac.bits))} bit, +-{g(float(spec.dac.vfs))} V"
    adc = "none" if spec.adc.bits is None else f"{g(int(spec.adc.bits))} bit, +-{g(float(spec.adc.vfs))} V"
    out = [f"r_wire {g(float(spec.r_wire))} ohm per segment, r_driver {g(float(spec.r_driver))} ohm, "
           f"access {access}",
           f"TIA {spec.tia.kind} rs={g(float(spec.tia.rs))} ohm; DAC {dac}; ADC {adc}"]
    if mode == "tran":
        out.append(f"transient: DAC step at {g(float(spec.dac.delay))} s, rise {g(float(spec.dac.rise))} s; "
                   f"ADC samples at {g(float(tran.t_sample))} s; stop {g(float(tran.t_stop))} s")
    return out


def _drivers(spec: TileSpec, codes: np.ndarray, nodes: Nodes, mode: str) -> list[Part]:
    """Row DACs: one code source per row (changed per input vector), the
    shared enable (1 in op, a step in tran), the DACs and driver resistors."""
    dac = spec.dac
    if mode == "op":
        enable = Source("Ven", "en", "0", dc=1)
    else:
        delay = float(dac.delay)
        enable = Source("Ven", "en", "0", pwl=((0, 0), (delay, 0), (float(dac.delay + dac.rise), 1)))
    block = "dac_ideal" if dac.bits is None else "dac"
    params: dict[str, Value] = {} if dac.bits is None else {"bits": int(dac.bits), "vfs": float(dac.vfs)}
    out: list[Part] = [Comment("Row DACs: code sources (changed per input vector by .control), "
                               "enable step, drivers"), enable]
    for i in range(spec.rows):
        out.append(Source(f"Vcode_r{i}", f"code_r{i}", "0", dc=float(codes[i])))
        out.append(Instances.one(block, f"Xdac_r{i}", (f"code_r{i}", "en", nodes.dac_out(i)), **params))
        if nodes.driver:
            out.append(Resistors([f"Rdrv_r{i}"], [f"in_r{i}"], [nodes.row(i, 0)],
                                 np.array([float(spec.r_driver)])))
    return out


def _wires(spec: TileSpec, nodes: Nodes) -> list[Part]:
    """Row and column wire segments (one bank each); none when r_wire = 0."""
    if not nodes.wires:
        return [Comment("Wires: ideal (r_wire = 0)")]
    rows, cols = spec.rows, spec.cols
    row_ij = [(i, j) for i in range(rows) for j in range(cols - 1)]
    row_wires = Resistors([f"Rrow_{i}_{j}" for i, j in row_ij], [nodes.row(i, j) for i, j in row_ij],
                          [nodes.row(i, j + 1) for i, j in row_ij], np.full(len(row_ij), float(spec.r_wire)))
    col_ij = [(i, j) for j in range(cols) for i in range(rows)]
    col_wires = Resistors([f"Rcol_{i}_{j}" for i, j in col_ij], [nodes.col(i, j) for i, j in col_ij],
                          [nodes.col(i + 1, j) if i < rows - 1 else nodes.tia_in(j, rows) for i, j in col_ij],
                          np.full(len(col_ij), float(spec.r_wire)))
    return [Comment("Row wires: one segment between neighbouring cells"), row_wires,
            Comment("Column wires: one segment between neighbouring cells, one more into the TIA"), col_wires]


def _cells(spec: TileSpec, nodes: Nodes, mode: str) -> list[Part]:
    """The crossbar: op freezes each memristor at its resistance; tran gives
    each a live VTEAM instance at its state (node x{i}_{j})."""
    out: list[Part] = []
    nmos = spec.access == "nmos"
    if nmos:
        out.append(Source("Vwl", "wl", "0", dc=float(spec.nmos.v_wordline)))
    out.append(Comment("Cells: memristor from row line to column line" + (" through the access NMOS" if nmos else "")))
    ij = [(i, j) for i in range(spec.rows) for j in range(spec.cols)]
    bl = [nodes.row(i, j) for i, j in ij]
    sl = [nodes.col(i, j) for i, j in ij]
    state = [f"x{i}_{j}" for i, j in ij]
    geometry: dict[str, Value] = {"w": float(spec.nmos.width), "l": float(spec.nmos.length)}
    if mode == "op":
        r = (1.0 / spec.conductance).ravel()
        if nmos:
            out.append(Instances("cell_1t1r_frozen", [f"Xcell_{i}_{j}" for i, j in ij],
                                 list(zip(bl, sl, ["wl"] * len(ij))), {"r": r, **geometry}))
        else:
            out.append(Resistors([f"Rm_{i}_{j}" for i, j in ij], bl, sl, r))
    else:
        x0 = spec.states.ravel()
        if nmos:
            out.append(Instances("cell_1t1r", [f"Xcell_{i}_{j}" for i, j in ij],
                                 list(zip(bl, sl, ["wl"] * len(ij), state)), {"x0": x0, **geometry}))
        else:
            out.append(Instances("memristor", [f"Xm_{i}_{j}" for i, j in ij], list(zip(bl, sl, state)),
                                 {"x0": x0}))
    return out


def _readout(spec: TileSpec, nodes: Nodes, mode: str, tran: TranSpec) -> list[Part]:
    """Per column: a 0 V current sense into the TIA (whose current is the
    column current), the TIA, and the ADC with its sample clock."""
    tia = spec.tia
    tia_params: dict[str, Value] = {"rs": float(tia.rs)}
    if tia.kind in ("vcvs", "opamp"):
        tia_params["a0"] = float(tia.a0)
    if tia.kind == "opamp":
        tia_params.update(gbw=float(tia.gbw), vsat=float(tia.vsat))
    adc = spec.adc.bits is not None
    out: list[Part] = [Comment("Column readout: current sense (0 V), TIA" + (", ADC" if adc else ""))]
    if adc:
        if mode == "op":
            out.append(Source("Vclk", "clk", "0", dc=1))
        else:
            t_sample = float(tran.t_sample)
            edge = float(tran.t_sample + min(tran.t_step, 1e-12))
            out.append(Source("Vclk", "clk", "0", pwl=((0, 1), (t_sample, 1), (edge, 0))))
    for j in range(spec.cols):
        out.append(Source(f"Vsense_c{j}", nodes.tia_in(j, spec.rows), f"t{j}", dc=0))
        out.append(Instances.one(f"tia_{tia.kind}", f"Xtia_c{j}", (f"t{j}", f"tia_c{j}"), **tia_params))
        if adc:
            out.append(Instances.one("adc", f"Xadc_c{j}", (f"tia_c{j}", "clk", f"adc_c{j}"),
                                     bits=int(spec.adc.bits), vfs=float(spec.adc.vfs)))
    return out
