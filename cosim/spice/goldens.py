"""The golden 4x4 netlists under netlists/ and the bundled example tile they use.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cosim.core import vteam
from cosim.core.config import AdcSpec, DacSpec, TiaSpec, TranSpec, VteamParams
from cosim.core.seeds import EXAMPLE_SEED
from cosim.core.tile import TileSpec
from cosim.spice.ngspice_netlist import write_netlist_dir


def example_tile4() -> tuple[np.ndarray, np.ndarray]:
    """A 4x4 tile of seed-000 VTEAM devices (50 ohm..1 kohm) and two input
    vectors in +-0.3 V: (G (4, 4) S, V (2, 4) V), from a fixed seed."""
    rng = np.random.default_rng(EXAMPLE_SEED)
    g = vteam.conductance(rng.uniform(0.1, 0.9, size=(4, 4)), VteamParams())
    v = rng.uniform(-0.3, 0.3, size=(2, 4))
    return g, v


def golden_cases() -> dict[str, tuple[TileSpec, np.ndarray, str, TranSpec | None]]:
    """The golden 4x4 netlists under netlists/: name -> (spec, voltages, mode, tran)."""
    g, v = example_tile4()
    common = dict(r_wire=1.0, r_driver=10.0, access="nmos", dac=DacSpec(bits=8, vfs=0.3),
                  adc=AdcSpec(bits=8, vfs=1.0), name="golden4x4")
    op_spec = TileSpec(g, tia=TiaSpec(kind="ideal", rs=100.0), **common)
    tran_spec = TileSpec(g, tia=TiaSpec(kind="opamp", rs=100.0), **common)
    return {"tile4x4_op": (op_spec, v, "op", None),
            "tile4x4_tran": (tran_spec, v[:1], "tran", TranSpec())}


def write_golden_netlists(directory: Path) -> list[Path]:
    """(Re)write every golden netlist directory under `directory`."""
    written = []
    for name, (spec, voltages, mode, tran) in golden_cases().items():
        written.append(write_netlist_dir(spec, voltages, Path(directory) / name, mode=mode, tran=tran))
    return written
