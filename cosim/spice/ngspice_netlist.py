"""TileSpec -> ngspice netlist text (a pure function of its inputs): the
ngspice writer of the dialect-neutral circuit of `cosim.spice.circuit`.

Two modes:
- 'op': frozen device states (each memristor is its resistance), one `.op`
  per input vector; the inputs are changed with `alter` so ngspice keeps
  the circuit between vectors.
- 'tran': live VTEAM states (models/vteam.lib), DAC step with rise time,
  TIA settling and the ADC sampling instant, one `.tran` per input vector.

Node names tell row and column (see `NODE_LEGEND`). Netlists are written as
text directly: building a PySpice Circuit of a 128x128 1T1R tile takes 9x as long, 14x with its
text (bench/pyspice.py); `cosim.spice.pyspice_export` builds one for users who script PySpice.
`input_codes`, `dac_output` and `MODES` live in `cosim.spice.circuit` (re-exported).
Names and numbers reach the text only through `cosim.core.netsafe` (safe names,
finite numbers), and `tile_netlist` returns only text that passed
`cosim.core.netsafe.check_ngspice`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cosim.core import netsafe
from cosim.core.config import TranSpec
from cosim.core.drive import dac_output, input_codes
from cosim.core.errors import InputError
from cosim.core.resources import resource_path
from cosim.core.tile import TileSpec
from cosim.spice.circuit import (
    LEGEND,
    MODES,
    Comment,
    Instances,
    Part,
    Resistors,
    Source,
    TileCircuit,
    number,
    tile_circuit,
)
from cosim.spice.circuit import Nodes as _Nodes

RAW_NAME = "tile.raw"
__all__ = ["MODES", "NODE_LEGEND", "Includes", "dac_output", "included_files", "input_codes",
           "netlist_dir_files", "saved_vectors", "tile_netlist", "write_netlist_dir"]

NODE_LEGEND = "\n".join(f"* {line}" for line in LEGEND)


@dataclass(frozen=True)
class Includes:
    """Where the netlist finds the files it includes: absolute paths into the
    installed package (default) or bare names of copies beside the netlist."""

    local: bool = False

    def line(self, folder: str, name: str) -> str:
        """The `.include` line of resource `folder/name`."""
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
    """A float written so that it reads back as the same double (shortest round
    trip); NaN and infinities refused (`cosim.core.netsafe.number`)."""
    return netsafe.number(float(value))


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
    circuit = tile_circuit(spec, voltages, mode, tran)
    lines = [f"* {circuit.title}"] + [f"* {text}" for text in circuit.header]
    lines += NODE_LEGEND.split("\n")  # one comment line each
    lines += [includes.line(folder, name) for folder, name in included_files(spec, mode)]
    if circuit.device is not None:
        lines += _memristor_wrapper(circuit.device)
    for part in circuit.parts:
        lines += _part_lines(part)
    lines += _control(circuit, save_all)
    lines.append(".end")
    return netsafe.check_ngspice(lines)  # the last wall: no line may do what cosim did not write


def _memristor_wrapper(device: dict[str, float]) -> list[str]:
    """The `memristor` subckt: VTEAM (models/vteam.lib) with this tile's device parameters."""
    params = " ".join(f"{k}={_g(v)}" for k, v in device.items())
    return ["* memristor: VTEAM (models/vteam.lib) with this tile's device parameters",
            ".subckt memristor p n x params: x0=0.5",
            f"Xvteam p n x vteam params: {params} x0={{x0}}",
            ".ends memristor"]


def _part_lines(part: Part) -> list[str]:
    """ngspice lines of one part of the neutral circuit."""
    if isinstance(part, Comment):
        return [f"* {part.text}"]
    if isinstance(part, Source):
        if part.pwl is None:
            return [f"{part.name} {part.p} {part.n} DC {number(part.dc)}"]
        points = " ".join(f"{number(t)} {number(v)}" for t, v in part.pwl)
        return [f"{part.name} {part.p} {part.n} PWL({points})"]
    if isinstance(part, Resistors):
        return [f"{name} {p} {n} {_g(ohms)}" for name, p, n, ohms in part]
    if isinstance(part, Instances):
        out = []
        for name, nodes, params in part:
            tail = f" params: {params}" if params else ""
            out.append(f"{name} {' '.join(nodes)} {part.block}{tail}")
        return out
    raise TypeError(f"unknown circuit part {part!r}")


def saved_vectors(spec: TileSpec, mode: str) -> list[str]:
    """The vectors a tile run keeps (besides `time` in transients)."""
    cols = range(spec.cols)
    vectors = [f"i(vsense_c{j})" for j in cols] + [f"v(tia_c{j})" for j in cols]
    if spec.adc.bits is not None:
        vectors += [f"v(adc_c{j})" for j in cols]
    if mode == "tran":
        nodes = _Nodes(spec)
        if nodes.driver:  # DAC outputs, before the driver resistance
            vectors += [f"v(in_r{i})" for i in range(spec.rows)]
        # Row lines at the driver end and the far end (one node per row when r_wire = 0).
        ends = (0, spec.cols - 1) if nodes.wires else (0,)
        vectors += list(dict.fromkeys(f"v({nodes.row(i, j)})" for i in range(spec.rows) for j in ends))
        vectors += [f"v(x{i}_{j})" for i in range(spec.rows) for j in cols]
    return vectors


def _control(circuit: TileCircuit, save_all: bool) -> list[str]:
    """One analysis per input vector, the code sources altered in between."""
    spec, codes, tran = circuit.spec, circuit.codes, circuit.tran
    if circuit.mode == "op":
        analysis = "op"
    else:
        max_step = f" {_g(tran.t_max_step)}" if tran.t_max_step else ""
        analysis = f"tran {_g(tran.t_step)} {_g(tran.t_stop)} 0{max_step}"
    saves = "all" if save_all else " ".join(saved_vectors(spec, circuit.mode))
    out = [".control", "set filetype=binary", "save " + saves]
    for b in range(codes.shape[0]):
        if b > 0:
            out += [f"alter {source.lower()} dc={_g(codes[b, i])}" for i, source in enumerate(circuit.code_sources)
                    if codes[b, i] != codes[b - 1, i]]
        out += [analysis, f"write {RAW_NAME}"]
        if b == 0:
            out.append("set appendwrite")
    out += ["quit 0", ".endc"]  # ngspice -b exits 1 after a .control block without it
    return out


def write_netlist_dir(spec: TileSpec, voltages: np.ndarray, directory: Path, mode: str = "op",
                      tran: TranSpec | None = None) -> Path:
    """A self-contained netlist directory: tile.cir plus copies of every
    included file; runs as `cd DIR && ngspice -b tile.cir`. Returns tile.cir.

    Written atomically (`cosim.core.atomic.atomic_dir`): the files go into a
    hidden temporary directory beside `directory`, which is renamed into
    place when complete; a failed write leaves neither. Missing parent
    directories are created. An existing `directory` is replaced only when
    it holds nothing but what this writer produces (tile.cir, the shipped
    include files, ngspice's tile.raw): an earlier netlist directory or a
    golden one; anything else is refused in one line."""
    from cosim.core.atomic import atomic_dir, check_output_dir

    directory = Path(directory)
    if directory.resolve() in (Path.cwd(), *Path.cwd().parents):
        raise InputError(f"cannot write the netlist directory {directory}: it is the current directory "
                         "or holds it; give a new directory name")
    if not directory.parent.is_dir():
        check_output_dir(directory.parent, create=True)
    text = tile_netlist(spec, voltages, mode, tran, includes=Includes(local=True))
    with atomic_dir(directory, replace=_holds_only_netlist_files, mark=False) as tmp:
        for folder, name in netlist_dir_files(spec, mode):
            (tmp / name).write_text(resource_path(folder, name).read_text())
        (tmp / "tile.cir").write_text(text)  # an OSError here: atomic_dir removes tmp, one line names directory
    return directory / "tile.cir"


def _holds_only_netlist_files(directory: Path) -> bool:
    """True when every entry of `directory` is a plain file that a netlist
    directory holds (so replacing it loses nothing a user wrote)."""
    from cosim.core.atomic import MARKER

    shipped = {p.name for known in (resource_path("circuits", "opamp.cir"), resource_path("models", "vteam.lib"))
               for p in known.parent.iterdir() if p.is_file() and p.suffix in (".cir", ".lib", ".va")}
    allowed = shipped | {"tile.cir", RAW_NAME, MARKER}
    return all(entry.is_file() and not entry.is_symlink() and entry.name in allowed
               for entry in directory.iterdir())
