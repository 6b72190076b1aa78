"""`cosim spotcheck` and `cosim calibrate` from the command line."""

from __future__ import annotations

import json

import torch
from torch import nn

from cosim.cli import main


def test_spotcheck_random_tiles_reports_fast_vs_ngspice_within_1e9(tmp_path, capsys):
    report = tmp_path / "spot.json"
    assert main(["spotcheck", "--k", "2", "--size", "8", "--access", "none", "--json", str(report),
                 "--plot", str(tmp_path / "spot.png")]) == 0
    data = json.loads(report.read_text())
    assert len(data["tiles"]) == 2 and data["max_rel"] < 1e-9
    assert (tmp_path / "spot.png").stat().st_size > 1000
    assert "fast solver vs ngspice" in capsys.readouterr().out


def test_spotcheck_named_tiles_of_a_layer(tmp_path, capsys):
    torch.manual_seed(0)
    torch.save(nn.Linear(20, 12), tmp_path / "fc.pt")
    report = tmp_path / "spot.json"
    assert main(["spotcheck", "--layer", str(tmp_path / "fc.pt"), "--tile", "16", "--tiles", "linear.r1c1",
                 "--batch", "2", "--json", str(report)]) == 0
    data = json.loads(report.read_text())
    assert [t["tile"] for t in data["tiles"]] == ["linear.r1c1"]
    assert (data["tiles"][0]["rows"], data["tiles"][0]["cols"]) == (4, 8)
    assert data["tiles"][0]["max_rel"] < 1e-6  # 1T1R: Newton vs ngspice


def test_spotcheck_refuses_an_unknown_tile_name(tmp_path, capsys):
    torch.save(nn.Linear(4, 2), tmp_path / "fc.pt")
    assert main(["spotcheck", "--layer", str(tmp_path / "fc.pt"), "--tiles", "nope"]) == 2
    assert "no tile named nope" in capsys.readouterr().err


def test_calibrate_writes_a_calibration_with_provenance(tmp_path):
    out = tmp_path / "cal.json"
    assert main(["calibrate", "--devices", "5", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert "ngspice" in json.dumps(data)
