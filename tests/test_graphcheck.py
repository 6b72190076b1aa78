"""The circuit check before every SPICE run (cosim.spice.graphcheck): sound
tiles pass, circuits broken on purpose (a floating node, a loop of voltage
sources, hand-edited netlists) are named in one line, and the hand-edited
cases are ones real ngspice cannot solve either."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cosim.core.config import AdcSpec, DacSpec, TiaSpec
from cosim.core.tile import TileSpec
from cosim.spice import graphcheck, netparse
from cosim.spice.circuit import Resistors, Source, tile_circuit
from cosim.spice.graphcheck import CircuitCheckError, check_circuit, check_netlist_path, circuit_problems
from cosim.spice.ngspice_netlist import write_netlist_dir

GOLDEN = Path(__file__).resolve().parent.parent / "netlists"


def _spec(access: str = "nmos", r_wire: float = 1.0, r_driver: float = 10.0, tia: str = "ideal",
          adc: int | None = 6, rows: int = 3, cols: int = 4) -> TileSpec:
    g = np.linspace(1.1e-3, 1.9e-2, rows * cols).reshape(rows, cols)
    return TileSpec(g, r_wire=r_wire, r_driver=r_driver, access=access, tia=TiaSpec(kind=tia),
                    dac=DacSpec(bits=6), adc=AdcSpec(bits=adc), name="broken/tile 7")


def _without(circuit, name: str):
    """`circuit` with the source or the resistor bank element called `name` removed."""
    parts = []
    for part in circuit.parts:
        if isinstance(part, Source) and part.name == name:
            continue
        if isinstance(part, Resistors) and name in part.names:
            keep = [k for k, n in enumerate(part.names) if n != name]
            part = Resistors([part.names[k] for k in keep], [part.p[k] for k in keep], [part.n[k] for k in keep],
                             part.ohms[keep])
        parts.append(part)
    circuit.parts[:] = parts
    return circuit


@pytest.mark.parametrize("access", ["none", "nmos"])
@pytest.mark.parametrize("mode", ["op", "tran"])
@pytest.mark.parametrize("wires", [(0.0, 0.0), (1.0, 10.0)])
@pytest.mark.parametrize("tia", ["ideal", "vcvs", "opamp"])
def test_every_kind_of_tile_passes(access, mode, wires, tia):
    spec = _spec(access, *wires, tia=tia)
    assert circuit_problems(tile_circuit(spec, np.full(3, 0.1), mode)) == []


def test_a_floating_word_line_is_named_with_its_tile():
    circuit = _without(tile_circuit(_spec(), np.full(3, 0.1)), "Vwl")
    with pytest.raises(CircuitCheckError) as info:
        check_circuit(circuit)
    message = str(info.value)
    assert len(message.splitlines()) == 1
    assert "tile broken_tile_7-" in message and "node wl has no DC path to ground" in message
    assert "first on Xcell_0_0" in message


def test_a_floating_dac_input_is_named():
    circuit = _without(tile_circuit(_spec(), np.full(3, 0.1)), "Vcode_r1")
    assert circuit_problems(circuit) == ["node code_r1 has no DC path to ground (first on Xdac_r1)"]


def test_a_cut_off_group_of_nodes_is_one_line():
    """Memristor-only tile with r_wire = 0: removing every cell of row 1 and its driver leaves r1 floating."""
    spec = _spec(access="none", r_wire=0.0, r_driver=10.0)
    circuit = tile_circuit(spec, np.full(3, 0.1))
    for name in ["Rdrv_r1"] + [f"Rm_1_{j}" for j in range(4)]:
        _without(circuit, name)
    assert circuit_problems(circuit) == []  # r1 is gone with its last element
    circuit.parts.append(Source("Vprobe", "r1", "p1", dc=0))  # a probe left on the cut-off row
    assert circuit_problems(circuit) == ["nodes p1, r1 have no DC path to ground (first on Vprobe)"]


def test_a_loop_of_voltage_sources_is_named():
    circuit = tile_circuit(_spec(), np.full(3, 0.1))
    circuit.parts.append(Source("Vextra", "en", "0", dc=1))
    assert circuit_problems(circuit) == ["voltage sources Ven, Vextra form a loop"]


def test_a_loop_through_a_block_output_is_named():
    """A source across a DAC output (itself a voltage source to ground inside the dac block)."""
    circuit = tile_circuit(_spec(), np.full(3, 0.1))
    circuit.parts.append(Source("Vshort", "in_r2", "0", dc=0))
    assert circuit_problems(circuit) == ["voltage sources Xdac_r2, Vshort form a loop"]


def test_solve_spice_refuses_a_broken_circuit_before_any_run(monkeypatch, tmp_path):
    from cosim.engines import solve
    from cosim.spice import circuit as circuit_module

    real = circuit_module.tile_circuit
    monkeypatch.setattr(circuit_module, "tile_circuit", lambda *a, **k: _without(real(*a, **k), "Vwl"))
    keep = tmp_path / "run"
    with pytest.raises(CircuitCheckError, match="node wl"):
        solve(_spec(), np.full(3, 0.1), engine="spice", keep_dir=keep)
    assert not keep.exists()  # no netlist written, no simulator started


def _netlist_dir(tmp_path: Path, **spec) -> Path:
    directory = tmp_path / "net"
    write_netlist_dir(_spec(**spec), np.full(3, 0.1), directory)
    return directory


def _edit(path: Path, drop: str = "", add: str = "") -> None:
    lines = [l for l in path.read_text().splitlines() if not (drop and l.startswith(drop))]
    if add:
        lines.insert(lines.index(".control"), add)
    path.write_text("\n".join(lines) + "\n")


def _ngspice_log(directory: Path) -> str:
    run = subprocess.run(["ngspice", "-b", "tile.cir"], cwd=directory, capture_output=True, text=True, timeout=120)
    return (run.stdout + run.stderr).lower()


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cosim", "netlist", *args], capture_output=True, text=True,
                          timeout=120)


def test_golden_and_fresh_netlist_directories_pass(tmp_path):
    for directory in (GOLDEN / "tile4x4_op", GOLDEN / "tile4x4_tran", _netlist_dir(tmp_path, tia="opamp")):
        summary, problems = check_netlist_path(directory)
        assert problems == [], problems
        assert "tile.cir:" in summary
    out = _cli("--check", str(GOLDEN / "tile4x4_op"))
    assert out.returncode == 0 and out.stdout.startswith("OK ") and len(out.stdout.splitlines()) == 1


def test_a_hand_edited_netlist_without_its_word_line_source(tmp_path):
    """What ngspice calls "singular matrix: check node wl" is named before it runs."""
    directory = _netlist_dir(tmp_path)
    _edit(directory / "tile.cir", drop="Vwl ")
    out = _cli("--check", str(directory))
    assert out.returncode == 2
    assert out.stderr.splitlines()[0].startswith("cosim: netlist check: tile.cir:")
    assert "node wl has no DC path to ground" in out.stderr
    assert out.stderr.splitlines()[-1].startswith("cosim: error: 1 problem(s)")
    assert "singular matrix" in _ngspice_log(directory)


def test_a_hand_edited_netlist_with_a_removed_resistor(tmp_path):
    """The user's RC probe on a TIA output, its resistor deleted: the probe node keeps only its
    capacitor (open at DC). (A single resistor of cosim's own crossbar never floats a node: each
    row and column node is reached through its cells from both sides.)"""
    directory = _netlist_dir(tmp_path)
    _edit(directory / "tile.cir", add="Rprobe tia_c0 probe 1k\nCprobe probe 0 1p")
    assert check_netlist_path(directory)[1] == []
    _edit(directory / "tile.cir", drop="Rprobe ")
    summary, problems = check_netlist_path(directory)
    assert len(problems) == 1 and "node probe has no DC path to ground (first on Cprobe)" in problems[0]
    assert "singular matrix" in _ngspice_log(directory)


def test_a_hand_edited_subcircuit_copy_is_checked_too(tmp_path):
    """The directory's own copy of circuits/ is what ngspice reads, so that is what is checked."""
    directory = _netlist_dir(tmp_path)
    dac = directory / "dac.cir"
    dac.write_text(dac.read_text().replace("\n.ends dac\n", "\nVloop out 0 DC 0\n.ends dac\n"))
    problems = check_netlist_path(directory)[1]
    assert any("subcircuit dac: voltage sources Bdac, Vloop form a loop" in p for p in problems)


def test_a_loop_of_sources_added_by_hand(tmp_path):
    directory = _netlist_dir(tmp_path)
    _edit(directory / "tile.cir", add="Vagain en 0 DC 1")
    problems = check_netlist_path(directory)[1]
    assert problems == ["tile.cir: voltage sources Ven, Vagain form a loop"]


@pytest.mark.parametrize("content, expected", [
    (b"t\nV1 a 0 1\nR1 a 0 1k\n\xff\xfe\n.end\n", "is not UTF-8 text"),
    (b"t\nV1 a 0 1\x00\n.end\n", "holds NUL bytes"),
    (b"t\nV1 a 0 1\nR1 a 0 1k\nA1 a 0 model\n.end\n", "element type 'A' is not checked"),
    (b"t\nV1 a 0 1\nX1 a 0 nosuch\n.end\n", "unknown subcircuit nosuch"),
    (b"t\nV1 a 0 1\n.include missing.cir\n.end\n", "included file missing.cir does not exist"),
    (b"t\nV1 a 0 1\n.include tile.cir\n.end\n", "includes itself"),
    (b"t\n.subckt two a b\nR1 a b 1k\n.ends\nV1 a 0 1\nX1 a two\n.end\n", "has 1 nodes, subcircuit two has 2 pins"),
    (b"t\nV1 a 0 1\nR1\n.end\n", "R1 needs two nodes"),
])
def test_untrusted_netlist_text_gets_one_line_per_problem(tmp_path, content, expected):
    (tmp_path / "tile.cir").write_bytes(content)
    problems = check_netlist_path(tmp_path)[1]
    assert any(expected in p for p in problems), problems
    assert all("\n" not in p for p in problems)


def test_nothing_in_a_control_block_runs_and_oversized_files_are_refused(tmp_path, monkeypatch):
    marker = tmp_path / "ran"
    (tmp_path / "tile.cir").write_text(f"t\nV1 a 0 1\nR1 a 0 1k\n.control\nshell touch {marker}\n.endc\n.end\n")
    assert check_netlist_path(tmp_path)[1] == [] and not marker.exists()
    monkeypatch.setattr(netparse, "MAX_FILE_BYTES", 10)
    assert "over the 10 bytes" in check_netlist_path(tmp_path)[1][0]


def test_includes_outside_the_netlist_directory_are_not_read(tmp_path):
    """A hand-edited netlist cannot make the check read (and echo) any file on the machine:
    only the netlist's own directory and cosim's shipped circuits are included."""
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    folder = tmp_path / "net"
    folder.mkdir()
    for target in (secret, "../secret.txt"):
        (folder / "tile.cir").write_text(f"t\nV1 a 0 1\nR1 a 0 1k\n.include {target}\n.end\n")
        problems = check_netlist_path(folder)[1]
        assert len(problems) == 1 and "outside the netlist's directory" in problems[0], problems
        assert "root:x" not in problems[0]


def test_control_characters_in_a_netlist_never_reach_the_terminal(tmp_path):
    (tmp_path / "tile.cir").write_bytes(b"t\nV1 a 0 1\n\x1b[31mX1 a\n.end\n")
    run = subprocess.run([sys.executable, "-m", "cosim", "netlist", "--check", str(tmp_path)],
                         capture_output=True, text=True)
    assert run.returncode == 2 and "\x1b" not in run.stderr and "\\x1b[31mX1" in run.stderr, run.stderr


def test_a_directory_without_a_netlist_is_one_line(tmp_path):
    (tmp_path / "dac.cir").write_text(".subckt x a\nR1 a 0 1\n.ends\n")
    assert check_netlist_path(tmp_path)[1][0].endswith("give a directory written by cosim netlist")


def test_block_summaries_match_the_shipped_subcircuits():
    """A few summaries read by hand from circuits/: which pins each block joins at DC."""
    _, cache = graphcheck.block_library()
    assert cache["dac"].conduct == ((2, -1),) and cache["dac"].source == ((2, -1),)  # out to ground
    assert cache["cell_1t1r_frozen"].conduct == ((0, 1),)  # bl-sl through Rmem and the channel; wl: a gate
    assert cache["memristor"].conduct == ((0, 1), (2, -1))  # p-n, and the state node leaks to ground
    assert cache["tia_opamp"].source == ()  # the op-amp output goes through Ro: no ideal source path
