"""Any tile as a PySpice `Circuit`, for users who script their own analyses in
PySpice: `to_pyspice(spec, voltages, mode)` (also `cosim.to_pyspice`), and
`pyspice_script(...)`, the Python script `cosim netlist --pyspice FILE.py`
writes, which builds the same circuit.

Built from the dialect-neutral circuit of `cosim.spice.circuit` (the parts the
ngspice writer turns into text), so the elements, node names and values are
the ngspice netlist's: 1T1R cells (`cell_1t1r_frozen` in .op,
`cell_1t1r` with live VTEAM states in .tran), memristor-only cells
(resistors in .op, the `memristor` wrapper of models/vteam.lib in .tran),
DACs, TIAs and ADCs as the subcircuits of circuits/ (included by absolute
path into the installed package). An element `Rrow_0_1` of the netlist is
PySpice's `circuit.R('row_0_1', ...)`, which PySpice writes as `Rrow_0_1`
again. Values are floats (written as their shortest round-trip repr, so
they read back as the same doubles) and ints; no unit objects.

One input vector: mode 'op' gives the operating point of `voltages` (R,)
(or (1, R)); run it with `simulator(circuit).operating_point()` and read
`analysis.branches['vsense_c{j}']` (A, the current into column j's TIA) and
`analysis.nodes['tia_c{j}']` (V). Mode 'tran' adds the DAC step, live VTEAM
states and the ADC clock; run `simulator(circuit).transient(**transient_args(tran))`.

PySpice is imported only here, inside the functions (`import cosim` stays
light); its `Circuit` objects take ~9x longer to build than cosim's netlist
text at 128x128 (~14x with PySpice's own `str()`; `bench/pyspice.py`), which
is why cosim's own runs never use them.
"""

from __future__ import annotations

import inspect
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from cosim.core import netsafe
from cosim.core.config import TranSpec
from cosim.core.errors import InputError
from cosim.core.resources import resource_path
from cosim.core.tile import TileSpec
from cosim.spice.circuit import Comment, Instances, Resistors, Source, TileCircuit, tile_circuit
from cosim.spice.ngspice_netlist import included_files

if TYPE_CHECKING:
    from PySpice.Spice.Netlist import Circuit

Value = Union[int, float]
#: ("V", name, p, n, dc V) | ("PWL", name, p, n, ((t s, v V), ...)) | ("R", name, p, n, ohm)
#: | ("X", name, block, (nodes...), {param: value}); names without their element letter.
Record = tuple
_NAME = re.compile(r"[A-Za-z0-9_.+=-]{1,200}")
_TITLE = re.compile(r"[ -~]{1,400}")  # printable ASCII, one line


def _name(text: str) -> str:
    if not isinstance(text, str) or not _NAME.fullmatch(text):
        raise InputError(f"name {text!r} cannot go into a PySpice circuit (a cosim bug: names are made safe first)")
    return text


def _value(x: Any) -> Value:
    if isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_)):
        return int(x)
    value = float(x)
    if not math.isfinite(value):
        raise InputError(f"value {x!r} is not a finite number; a PySpice circuit takes finite values only")
    return value


def records(circuit: TileCircuit) -> tuple[list[str], dict[str, float] | None, list[Record]]:
    """(include paths, memristor parameters or None, element records) of `circuit`, every
    name checked against the netlist alphabet and every number finite."""
    includes = [str(resource_path(folder, name)) for folder, name in included_files(circuit.spec, circuit.mode)]
    device = None if circuit.device is None else {_name(k): _value(v) for k, v in circuit.device.items()}
    out: list[Record] = []
    for part in circuit.parts:
        if isinstance(part, Comment):
            continue
        if isinstance(part, Source):
            name, p, n = _name(part.name[1:]), _name(part.p), _name(part.n)
            if part.pwl is None:
                out.append(("V", name, p, n, _value(part.dc)))
            else:
                out.append(("PWL", name, p, n, tuple((_value(t), _value(v)) for t, v in part.pwl)))
        elif isinstance(part, Resistors):
            out += [("R", _name(name[1:]), _name(p), _name(n), _value(ohm)) for name, p, n, ohm in part]
        elif isinstance(part, Instances):
            block = _name(part.block)
            columns = {_name(k): ([_value(x) for x in v] if isinstance(v, np.ndarray) else _value(v))
                       for k, v in part.params.items()}
            for k, (name, nodes) in enumerate(zip(part.names, part.nodes)):
                params = {key: (v[k] if isinstance(v, list) else v) for key, v in columns.items()}
                out.append(("X", _name(name[1:]), block, tuple(_name(x) for x in nodes), params))
        else:
            raise TypeError(f"unknown circuit part {part!r}")
    return includes, device, out


def assemble(title: str, includes: list[str], device: dict[str, float] | None, elements: list[Record]) -> Circuit:
    """The PySpice Circuit of these records (`pyspice_script` copies this function's source into the script)."""
    from PySpice.Spice.Netlist import Circuit, SubCircuit

    circuit = Circuit(title)
    for path in includes:
        circuit.include(path)
    if device is not None:
        wrapper = SubCircuit("memristor", "p", "n", "x", x0=0.5)
        wrapper.X("vteam", "vteam", "p", "n", "x", **device, x0="{x0}")
        circuit.subcircuit(wrapper)
    for record in elements:
        kind = record[0]
        if kind == "V":
            circuit.V(record[1], record[2], record[3], record[4])
        elif kind == "PWL":
            circuit.PieceWiseLinearVoltageSource(record[1], record[2], record[3], values=list(record[4]))
        elif kind == "R":
            circuit.R(record[1], record[2], record[3], record[4])
        else:
            circuit.X(record[1], record[2], *record[3], **record[4])
    return circuit


def _circuit(spec: TileSpec, voltages: np.ndarray, mode: str, tran: TranSpec | None) -> TileCircuit:
    v = spec.check_voltages(voltages)
    if v.shape[0] != 1:
        raise InputError(f"a PySpice circuit holds one input vector, got {v.shape[0]}; pass voltages[b] for "
                         "the vector b you want")
    return tile_circuit(spec, v, mode, tran)


def to_pyspice(spec: TileSpec, voltages: np.ndarray, mode: str = "op", tran: TranSpec | None = None) -> Circuit:
    """PySpice Circuit of tile `spec` driven by one input vector `voltages` ((R,) or (1, R) V,
    before DAC quantisation), in mode 'op' (frozen states) or 'tran' (live VTEAM states)."""
    circuit = _circuit(spec, voltages, mode, tran)
    return assemble(circuit.title, *records(circuit))


def transient_args(tran: TranSpec | None = None) -> dict[str, float]:
    """Keyword arguments of PySpice's `simulator.transient` for the analysis cosim runs (s)."""
    tran = tran or TranSpec()
    args = {"step_time": float(tran.t_step), "end_time": float(tran.t_stop)}
    if tran.t_max_step:
        args["max_time"] = float(tran.t_max_step)
    return args


def simulator(circuit: Circuit, **kwargs: Any):
    """`circuit.simulator(simulator='ngspice-shared')` on this machine's libngspice: the
    library is found as libngspice.so.0 (the libngspice0 package) unless
    NGSPICE_LIBRARY_PATH says otherwise (the environment is not changed), and
    PySpice's "Unsupported Ngspice version" warning is silenced. The analyses
    then run in this process (for cosim's own runs, `--spice ngspice-shared`
    uses a worker process instead)."""
    import logging
    import os

    from PySpice.Spice.NgSpice.Shared import NgSpiceShared

    from cosim.spice.ngspice_shared import LIBRARY

    if not os.environ.get("NGSPICE_LIBRARY_PATH"):
        NgSpiceShared.LIBRARY_PATH = LIBRARY
    logger = logging.getLogger("PySpice.Spice.NgSpice.Shared.NgSpiceShared")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        shared = NgSpiceShared.new_instance()
    finally:
        logger.setLevel(level)
    return circuit.simulator(simulator="ngspice-shared", ngspice_shared=shared, **kwargs)


# ----- the script of cosim netlist --pyspice ---------------------------------------------
_SCRIPT = '''"""PySpice circuit of a cosim tile, written by `cosim netlist --pyspice` ({what}).

Run `python {script}` to print the netlist PySpice makes of it, or import it:
    from {module} import build
    circuit = build()          # a PySpice Circuit
Every value below is a number or a netlist-safe name written by repr().
"""

from __future__ import annotations

TITLE = {title}
INCLUDES = {includes}
MEMRISTOR = {device}
#: ("V", name, p, n, dc V) | ("PWL", name, p, n, ((t s, v V), ...)) | ("R", name, p, n, ohm)
#: | ("X", name, block, (nodes...), {{param: value}}); element names without their letter.
ELEMENTS = [
{elements}]


{assemble}

def build():
    """The tile's PySpice Circuit."""
    return assemble(TITLE, INCLUDES, MEMRISTOR, ELEMENTS)


if __name__ == "__main__":
    print(build())
'''


def pyspice_script(spec: TileSpec, voltages: np.ndarray, mode: str = "op", tran: TranSpec | None = None,
                   script_name: str = "tile.py") -> str:
    """The text of a Python script whose `build()` returns `to_pyspice(spec, voltages, mode, tran)`.

    Only validated values reach it, each written with repr(): names in the
    netlist alphabet, finite floats and ints, the title in printable ASCII."""
    circuit = _circuit(spec, voltages, mode, tran)
    if not _TITLE.fullmatch(circuit.title):
        raise InputError("the tile's title cannot go into a script (a cosim bug: names are made safe first)")
    includes, device, elements = records(circuit)
    stem = Path(script_name).stem
    module = stem if stem.isidentifier() and stem.isascii() else "tile"
    return _SCRIPT.format(what=f"{spec.rows}x{spec.cols}, mode {mode}", script=netsafe.netlist_name(Path(script_name).name),
                          module=module, title=repr(circuit.title), includes=repr(includes), device=repr(device),
                          elements="".join(f"    {record!r},\n" for record in elements),
                          assemble=inspect.getsource(assemble))


def write_pyspice_script(spec: TileSpec, voltages: np.ndarray, path: Path, mode: str = "op",
                         tran: TranSpec | None = None) -> Path:
    """Write `pyspice_script(...)` to `path` atomically (`cosim.core.atomic`)."""
    from cosim.core.atomic import atomic_write_text, check_output_file

    path = Path(path)
    if path.suffix != ".py":
        raise InputError(f"--pyspice {path}: the script's name must end in .py")
    check_output_file(path)
    atomic_write_text(path, pyspice_script(spec, voltages, mode, tran, script_name=path.name))
    return path
