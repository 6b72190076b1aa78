"""Preset JSON files and numeric options are checked before anything runs:
every bad field of a preset is refused in one `cosim: error:` line (exit 2,
no traceback) that names the file and the field's JSON path; a preset that
leaves out sections runs on cosim's defaults and says which, once, on
stderr; negative or zero counts and sizes of simulate, evaluate, sweep and
tile are refused when the command line is parsed."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import h5py
import pytest
import torch
from torch import nn
from trust_helpers import assert_one_line
from trust_helpers import cli_in_process as cli

from cosim.core import config
from cosim.core.config import (
    AdcSpec,
    DacSpec,
    FieldError,
    NmosAccess,
    Preset,
    TiaSpec,
    TranSpec,
    VteamParams,
    from_dict,
    load_preset,
)
from cosim.core.errors import InputError
from cosim.core.resources import resource_path

COSIM = str(Path(sys.executable).with_name("cosim"))
BUNDLED = json.loads(resource_path("presets", "seed000_vteam.json").read_text())


@pytest.fixture(scope="module")
def layer(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("layer")
    torch.manual_seed(0)
    torch.save(nn.Linear(6, 3), folder / "lin.pt")
    return folder / "lin.pt"


def edited(change) -> dict:
    data = copy.deepcopy(BUNDLED)
    change(data)
    return data


# (name, preset JSON (or raw text), what the message must say)
BAD_PRESETS = [
    ("string number", edited(lambda d: d["device"].update(r_on="1e3")),
     'device.r_on must be a number (ohm), got "1e3"'),
    ("null", edited(lambda d: d.update(r_wire=None)), "r_wire must be a number >= 0 (ohm), got null"),
    ("list", edited(lambda d: d.update(r_driver=[1, 2])), "r_driver must be a number (ohm), got [1, 2]"),
    ("top-level list", [BUNDLED], "the top level must be a JSON object"),
    ("top-level string", '"hello"', "the top level must be a JSON object"),
    ("unknown key", edited(lambda d: d.update(r_wires=1.0)), "unknown field(s) r_wires"),
    ("unknown nested key", edited(lambda d: d["tia"].update(gain=2)), "unknown field(s) tia.gain"),
    ("negative resistance", edited(lambda d: d.update(r_wire=-1.0)), "r_wire must be a number >= 0 (ohm), got -1.0"),
    ("negative r_on", edited(lambda d: d["device"].update(r_on=-50.0)), "device.r_on must be a number > 0 (ohm)"),
    ("zero rs", edited(lambda d: d["tia"].update(rs=0)), "tia.rs must be a number > 0 (ohm), got 0"),
    ("bits too high", edited(lambda d: d.update(dac_bits=99)), "dac_bits must be an integer from 2 to 24"),
    ("bits too low", edited(lambda d: d.update(adc_bits=1)), "adc_bits must be an integer from 2 to 24"),
    ("bits fraction", edited(lambda d: d.update(adc_bits=8.5)), "adc_bits must be an integer (bits), got 8.5"),
    ("bits boolean", edited(lambda d: d.update(dac_bits=True)), "dac_bits must be an integer (bits), got true"),
    ("window_p string", edited(lambda d: d["device"].update(window_p="2")),
     'device.window_p must be an integer, got "2"'),
    ("unknown window", edited(lambda d: d["device"].update(window="hann")), 'device.window must be one of "clamp"'),
    ("unknown access", edited(lambda d: d.update(access="pmos")), 'access must be one of "none", "nmos", got "pmos"'),
    ("unknown tia kind", edited(lambda d: d["tia"].update(kind="ideal\n.control")), "tia.kind must be one of"),
    ("section a list", edited(lambda d: d.update(device=[1])), "device must be a JSON object {...}"),
    ("section null", edited(lambda d: d.update(nmos=None)), "nmos must be a JSON object {...}"),
    ("name with a newline", edited(lambda d: d.update(name="x\n.control\nshell touch M\n.endc")),
     "name must be one line of text"),
    ("name a number", edited(lambda d: d.update(name=5)), "name must be a string, got 5"),
    ("r_on above r_off", edited(lambda d: d["device"].update(r_on=5000.0)), "device: VTEAM needs 0 < r_on < r_off"),
    ("NaN", json.dumps(BUNDLED).replace('"r_wire": 1.0', '"r_wire": NaN'),
     "r_wire must be a finite number (ohm), got NaN"),
    ("Infinity", json.dumps(BUNDLED).replace('"v_read": 0.3', '"v_read": 1e999'), "v_read must be a finite number (V)"),
    ("huge integer", json.dumps(BUNDLED).replace('"r_driver": 10.0', '"r_driver": ' + "9" * 400),
     "r_driver must be a finite number (ohm)"),
    ("broken JSON", '{"r_wire": 1.0,', "is not valid JSON (line 1)"),
    ("deep nesting", "[" * 100000 + "]" * 100000, "nests its JSON too deeply"),
]


@pytest.mark.parametrize("name, data, message", BAD_PRESETS, ids=[case[0] for case in BAD_PRESETS])
def test_bad_preset_json_is_one_line_naming_the_json_path(name, data, message, layer, tmp_path, capsys):
    preset = tmp_path / "x.json"
    preset.write_text(data if isinstance(data, str) else json.dumps(data))
    out = tmp_path / "run.h5"
    rc, _, err = cli(["simulate", str(layer), "--engine", "ideal", "--quiet", "--preset", str(preset),
                      "--out", str(out)], capsys)
    assert_one_line(rc, err, message, str(preset))  # what, and where: the file
    assert not out.exists()


def test_a_binary_preset_file_is_one_line(layer, tmp_path, capsys):
    preset = tmp_path / "x.json"
    preset.write_bytes(b"\xff\xfe\x00\x81 not text")
    rc, _, err = cli(["simulate", str(layer), "--engine", "ideal", "--quiet", "--preset", str(preset),
                      "--out", str(tmp_path / "run.h5")], capsys)
    assert_one_line(rc, err, "is not UTF-8 text")


def test_the_bundled_presets_pass_every_field_check_and_warn_nothing(capsys):
    for name in config.PRESET_NAMES:
        preset = load_preset(name)
        bundled = json.loads(resource_path("presets", f"{name}.json").read_text())
        assert preset.name == name and preset.dac_bits == bundled["dac_bits"]
    assert capsys.readouterr().err == ""


def test_a_preset_without_sections_runs_on_the_defaults_and_lists_them_once(layer, tmp_path, capsys):
    """Choice: partial presets are accepted; the fields and sections taken from
    cosim's defaults are listed in one warning line, once per file and run."""
    preset = tmp_path / "partial.json"
    preset.write_text(json.dumps({"r_wire": 2.0, "tia": {"kind": "ideal", "rs": 50.0}}))
    out = tmp_path / "run.h5"
    rc, _, err = cli(["simulate", str(layer), "--engine", "ideal", "--quiet", "--preset", str(preset),
                      "--out", str(out)], capsys)
    assert rc == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("cosim: warning:")]
    assert len(warnings) == 1, err
    line = warnings[0]
    assert f"preset {preset} does not set device, v_read, r_driver, access, nmos, dac_bits, adc_bits" in line
    assert '"r_on":50.0' in line and "v_read 0.3 V" in line and "access \"nmos\"" in line
    missing = line.split(" does not set ")[1].split(";")[0].split(", ")
    assert "r_wire" not in missing and "tia" not in missing  # given in the file
    with h5py.File(out, "r") as h5:
        stored = json.loads(h5.attrs["config"])["preset"]
    assert stored["r_wire"] == 2.0 and stored["tia"]["rs"] == 50.0
    assert stored["device"] == json.loads(json.dumps(config.to_dict(VteamParams())))
    assert stored["r_driver"] == Preset().r_driver and stored["dac_bits"] == Preset().dac_bits
    load_preset(str(preset))  # the same file again in this process: no second warning
    assert "cosim: warning" not in capsys.readouterr().err


def test_every_config_dataclass_checks_its_fields_when_built_from_python():
    cases = [(lambda: VteamParams(r_on="50"), 'device.r_on must be a number (ohm), got "50"'),
             (lambda: NmosAccess(width=float("nan")), "nmos.width must be a finite number (m), got NaN"),
             (lambda: TiaSpec(rs=-1.0), "tia.rs must be a number > 0 (ohm), got -1.0"),
             (lambda: DacSpec(bits=1), "dac.bits must be an integer from 2 to 24 (bits) or null, got 1"),
             (lambda: AdcSpec(vfs=None), "adc.vfs must be a number > 0 (V), got null"),
             (lambda: TranSpec(t_stop=0.0), "tran.t_stop must be a number > 0 (s), got 0.0"),
             (lambda: Preset(access="pmos"), 'preset.access must be one of "none", "nmos", got "pmos"'),
             (lambda: Preset(device={"r_on": 1}), "preset.device must be a JSON object {...} of VteamParams")]
    for build, message in cases:
        with pytest.raises(FieldError) as info:
            build()
        assert message in str(info.value)
    # numpy scalars are numbers too
    assert DacSpec(bits=__import__("numpy").int64(8)).bits == 8


def test_from_dict_names_the_file_and_the_json_path():
    with pytest.raises(InputError, match=r"^run\.h5 tile: device\.k_off must be a number \(m/s\), got \[\]$"):
        from_dict(VteamParams, {"k_off": []}, "run.h5 tile", "device.")
    with pytest.raises(InputError, match=r"^f\.json: tia must be a JSON object .* got a string"):
        from_dict(TiaSpec, "ideal", "f.json", "tia.")


# Bad numeric options: (command words before the option, option, value, what the message says).
BAD_OPTIONS = [
    ("simulate", "--spice-max-tile", "-1", "argument --spice-max-tile: must be an integer >= 0, got '-1'"),
    ("simulate", "--tile", "0", "argument --tile: must be an integer >= 2, got '0'"),
    ("simulate", "--tile", "1.5", "argument --tile: must be an integer >= 2, got '1.5'"),
    ("simulate", "--spot-check", "-1", "argument --spot-check: must be an integer >= 0"),
    ("simulate", "--spot-vectors", "0", "argument --spot-vectors: must be an integer >= 1"),
    ("simulate", "--workers", "0", "argument --workers: must be an integer >= 1"),
    ("simulate", "--dac-bits", "-3", "argument --dac-bits: must be 0 (exact voltages) or an integer from 2 to 24"),
    ("simulate", "--adc-bits", "1", "argument --adc-bits: must be 0 (no quantisation) or an integer from 2 to 24"),
    ("simulate", "--r-wire", "-1", "argument --r-wire: must be a finite number >= 0 (ohm), got '-1'"),
    ("simulate", "--r-driver", "nan", "argument --r-driver: must be a finite number >= 0 (ohm), got 'nan'"),
    ("simulate", "--transient-vectors", "0", "argument --transient-vectors: must be an integer >= 1"),
    ("simulate", "--batch", "0", "argument --batch: must be an integer >= 1"),
    ("simulate", "--seq-len", "-4", "argument --seq-len: must be an integer >= 1"),
    ("simulate", "--seed", "-1", "argument --seed: must be an integer from 0 to"),
    ("evaluate", "--spice-max-tile", "-1", "argument --spice-max-tile: must be an integer >= 0"),
    ("evaluate", "--tile", "-4", "argument --tile: must be an integer >= 2"),
    ("evaluate", "--workers", "0", "argument --workers: must be an integer >= 1"),
    ("evaluate", "--limit", "0", "argument --limit: must be an integer >= 1"),
    ("evaluate", "--batch-size", "-2", "argument --batch-size: must be an integer >= 1"),
    ("evaluate", "--r-wire", "inf", "argument --r-wire: must be a finite number >= 0 (ohm)"),
    ("sweep", "--tile", "0", "argument --tile: must be an integer >= 2"),
    ("sweep", "--draws", "0", "argument --draws: must be an integer >= 1"),
    ("sweep", "--insitu-epochs", "-1", "argument --insitu-epochs: must be an integer >= 0"),
    ("tile", "--r-wire", "-1", "argument --r-wire: must be a finite number >= 0 (ohm)"),
    ("tile", "--rs", "0", "argument --rs: must be a finite number > 0 (ohm)"),
    ("tile", "--dac-bits", "0", "argument --dac-bits: must be an integer from 2 to 24"),
    ("tile", "--adc-vfs", "-1", "argument --adc-vfs: must be a finite number > 0 (V)"),
]
COMMAND_ARGS = {"simulate": ["LAYER", "--engine", "ideal", "--quiet"], "evaluate": ["LAYER", "--data", "digits"],
                "sweep": ["LAYER", "--param", "stuck_at_rate=0"],
                "tile": ["--conductance", "G.npy", "--voltage", "V.npy"]}


@pytest.mark.parametrize("command, option, value, message", BAD_OPTIONS,
                         ids=[f"{c[0]} {c[1]} {c[2]}" for c in BAD_OPTIONS])
def test_negative_or_zero_numeric_option_is_one_line(command, option, value, message, layer, tmp_path, capsys):
    args = [str(layer) if a == "LAYER" else a for a in COMMAND_ARGS[command]]
    out = tmp_path / "out.h5"
    rc, _, err = cli([command, *args, option, value, "--out" if command != "sweep" else "--out-dir",
                      str(out)], capsys)
    assert_one_line(rc, err, message, f"(see cosim {command} --help)")
    assert not out.exists()


def test_the_same_options_with_good_values_run(layer, tmp_path, capsys):
    out = tmp_path / "run.h5"
    rc, _, err = cli(["simulate", str(layer), "--engine", "auto", "--spice-max-tile", "0", "--tile", "4",
                      "--spot-check", "0", "--workers", "1", "--dac-bits", "0", "--adc-bits", "6", "--r-wire", "0",
                      "--seed", "3", "--quiet", "--out", str(out)], capsys)
    assert rc == 0, err
    with h5py.File(out, "r") as h5:
        assert {h5["tiles"][k].attrs["engine"] for k in h5["tiles"]} == {"fast"}  # K = 0: no tile to ngspice
        options = json.loads(h5.attrs["config"])["options"]
        preset = json.loads(h5.attrs["config"])["preset"]
    assert options["spice_max_tile"] == 0 and preset["dac_bits"] is None and preset["adc_bits"] == 6


@pytest.mark.skipif(not Path(COSIM).is_file(), reason="the cosim console script is not installed")
def test_the_console_script_prints_one_line_and_no_traceback(layer, tmp_path):
    """Through the installed `cosim` executable, as a user types it."""
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(edited(lambda d: d["device"].update(r_on="1e3"))))
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    for args in (["simulate", str(layer), "--spice-max-tile", "-1"],
                 ["simulate", str(layer), "--preset", str(bad), "--engine", "ideal", "--quiet"],
                 ["evaluate", str(layer), "--data", "digits", "--preset", str(listed)],
                 ["sweep", str(layer), "--param", "stuck_at_rate=0", "--tile", "0"]):
        run = subprocess.run([COSIM, *args], capture_output=True, text=True, cwd=tmp_path, timeout=120)
        assert run.returncode == 2, run.stderr
        assert run.stderr.startswith("cosim: error: ") and run.stderr.count("\n") == 1, run.stderr
        assert "Traceback" not in run.stderr
