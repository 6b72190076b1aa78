"""TileSpec -> VACASK netlist text: the VACASK writer of `cosim.spice.circuit`.

The same circuit as `cosim.spice.ngspice_netlist.tile_netlist` (same parts, node names and
element names, lower-cased), in VACASK's Spectre-like dialect:

- `name (node node ...) master p=v ...`; `//` comments; the first line is
  the title; `ground 0` names the reference node.
- Blocks are the subcircuits of circuits/vacask/*.inc (same pins and
  parameters as the ngspice circuits/*.cir). Their behavioral parts are
  Verilog-A (circuits/vacask/blocks.va); the memristor is models/vteam.va
  itself; both are compiled by openvaf-r and `load`ed by absolute path
  (`VacaskModules`). The access NMOS is SPICE level 1 (`sp_mos1` of
  VACASK's spice/mos1.osdi) with the card of models/nmos_access.lib.
- A Verilog-A parameter is a model parameter, so the `memristor` subckt
  holds a model of its own, `model dev vteam ... x0=x0`, one per instance.
- The control block runs one analysis per input vector (`vec0`, `vec1`, ...,
  each writing `<name>.raw`), with `alter instance("vcode_rI") dc=...`
  between them, like ngspice's `alter`.

Names and numbers reach the text only through `cosim.core.netsafe`, and
`vacask_netlist` returns only text that passed `cosim.core.netsafe.check_vacask`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cosim.core import netsafe
from cosim.core.config import TranSpec
from cosim.core.errors import InputError
from cosim.core.peripherals import read_model_card
from cosim.core.resources import resource_path
from cosim.core.tile import TileSpec
from cosim.spice.circuit import LEGEND, Comment, Instances, Part, Resistors, Source, TileCircuit, number, tile_circuit
from cosim.spice.ngspice_netlist import saved_vectors

#: Verilog-A sources a VACASK tile may load: name -> (folder, file).
VA_SOURCES = {"blocks": ("circuits", "vacask/blocks.va"), "vteam": ("models", "vteam.va")}
#: Model parameters of the level-1 card that sp_mos1 does not take (it is level 1 by construction).
_CARD_ONLY = ("level",)


@dataclass(frozen=True)
class VacaskModules:
    """Absolute paths of the compiled OSDI files a tile netlist loads
    (`cosim.spice.osdi.compile_va` of each `VA_SOURCES` entry)."""

    blocks: Path
    vteam: Path


def analysis_names(count: int) -> list[str]:
    """Names of the analyses (and of their raw files, `<name>.raw`), one per input vector."""
    return [f"vec{b}" for b in range(count)]


def include_files(spec: TileSpec) -> list[str]:
    """circuits/vacask/ files a tile netlist includes, in order."""
    files = ["primitives.inc", "dac.inc", "opamp.inc", "tia.inc"]
    if spec.adc.bits is not None:
        files.append("adc.inc")
    if spec.access == "nmos":
        files.append("cell_1t1r.inc")
    return files


def vacask_netlist(spec: TileSpec, voltages: np.ndarray, modules: VacaskModules, mode: str = "op",
                   tran: TranSpec | None = None, save_all: bool = False) -> str:
    """VACASK netlist of `spec` driven by `voltages` ((R,) or (B, R) V).

    Args:
        spec: the tile.
        voltages: row input voltages (V), before DAC quantisation.
        modules: the compiled Verilog-A to load.
        mode: 'op' (frozen states) or 'tran' (live VTEAM states).
        tran: transient settings (mode 'tran'; defaults otherwise).
        save_all: save every unknown (node voltages and source currents)
            instead of the outputs only.
    """
    circuit = tile_circuit(spec, voltages, mode, tran)
    lines = [circuit.title] + [f"// {text}" for text in circuit.header] + [f"// {line}" for line in LEGEND]
    lines += ["", "ground 0", f'load "{modules.blocks}"']
    if circuit.device is not None:
        lines.append(f'load "{modules.vteam}"')
    if spec.access == "nmos":
        lines.append('load "spice/mos1.osdi"')
    lines += [f'include "{resource_path("circuits", "vacask/" + name)}"' for name in include_files(spec)]
    if spec.access == "nmos":
        lines += _nmos_model()
    if circuit.device is not None:
        lines += _memristor_subckt(circuit.device)
    lines.append("")
    for part in circuit.parts:
        lines += _part_lines(part)
    lines += _control(circuit, save_all)
    return netsafe.check_vacask(lines)  # the last wall: no line may do what cosim did not write


def _nmos_model() -> list[str]:
    """`nmos_access` as sp_mos1 with the parameters of models/nmos_access.lib."""
    path = resource_path("models", "nmos_access.lib")
    card = read_model_card(path, "nmos_access")
    if card.get("level", 1.0) != 1.0:
        raise InputError(f"{path}: VACASK runs the access NMOS as SPICE level 1 (sp_mos1); "
                         f"the card says level={card['level']:g}")
    params = " ".join(f"{k}={number(v)}" for k, v in card.items() if k not in _CARD_ONLY)
    return ["// nmos_access: SPICE level-1 NMOS, the card of models/nmos_access.lib",
            f"model nmos_access sp_mos1 type=1 {params}"]


def _memristor_subckt(device: dict[str, float]) -> list[str]:
    """`memristor(p n x)`: the Verilog-A VTEAM with this tile's device parameters."""
    params = " ".join(f"{k}={number(v)}" for k, v in device.items())
    return ["// memristor: VTEAM (models/vteam.va) with this tile's device parameters",
            "subckt memristor(p n x)",
            "  parameters x0=0.5",
            f"  model dev vteam {params} x0=x0",
            "  d (p n x) dev",
            "ends"]


def _part_lines(part: Part) -> list[str]:
    """VACASK lines of one part of the neutral circuit."""
    if isinstance(part, Comment):
        return [f"// {part.text}"]
    if isinstance(part, Source):
        head = f"{part.name.lower()} ({part.p} {part.n}) vsource"
        if part.pwl is None:
            return [f"{head} dc={number(part.dc)}"]
        wave = ", ".join(f"{number(t)}, {number(v)}" for t, v in part.pwl)
        return [f'{head} type="pwl" wave=[{wave}]']
    if isinstance(part, Resistors):
        return [f"{name.lower()} ({p} {n}) resistor r={number(ohms)}" for name, p, n, ohms in part]
    if isinstance(part, Instances):
        return [f"{name.lower()} ({' '.join(nodes)}) {part.block}{' ' + params if params else ''}"
                for name, nodes, params in part]
    raise TypeError(f"unknown circuit part {part!r}")


def _save_directive(vector: str) -> str:
    """An ngspice vector name (`v(node)`, `i(vsource)`) as a VACASK save."""
    kind, _, target = vector.partition("(")
    return f"{kind}({target.rstrip(')')})"


def _control(circuit: TileCircuit, save_all: bool) -> list[str]:
    """One analysis per input vector, the code sources altered in between."""
    codes, tran = circuit.codes, circuit.tran
    if circuit.mode == "op":
        analysis = "op"
    else:
        max_step = f" maxstep={number(float(tran.t_max_step))}" if tran.t_max_step else ""
        analysis = f"tran step={number(float(tran.t_step))} stop={number(float(tran.t_stop))}{max_step}"
    saves = "default" if save_all else " ".join(
        _save_directive(v) for v in saved_vectors(circuit.spec, circuit.mode))
    out = ["", "control", "  abort always", '  options rawfile="binary" tolmode="mixed"', f"  save {saves}"]
    for b, name in enumerate(analysis_names(codes.shape[0])):
        if b > 0:
            out += [f'  alter instance("{source.lower()}") dc={number(float(codes[b, i]))}'
                    for i, source in enumerate(circuit.code_sources) if codes[b, i] != codes[b - 1, i]]
        out.append(f"  analysis {name} {analysis}")
    out.append("endc")
    return out
