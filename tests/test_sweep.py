"""`cosim sweep`: grid parsing, mean/std over draws, and the three outputs."""

from __future__ import annotations

import pytest
import torch

from cosim.cli import main
from cosim.commands.sweep import SweepSetup, markdown, parse_grid, run_sweep, split
from cosim.config import load_preset
from cosim.errors import InputError
from cosim.examples import digits_data


def test_grid_parsing_types_and_refusals():
    grid = parse_grid(["stuck_at_rate=0,0.1", "stuck_at=hrs,both", "states=4", "ir_drop=on,off"])
    assert grid == {"stuck_at_rate": [0.0, 0.1], "stuck_at": ["hrs", "both"], "states": [4],
                    "ir_drop": ["on", "off"]}
    for bad in (["colour=red"], ["stuck_at=mid"], ["states=x"], ["novalue"]):
        with pytest.raises(InputError):
            parse_grid(bad)


def test_sweep_averages_draws_and_more_faults_cost_accuracy():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 10))
    x, y = digits_data()
    opt = torch.optim.Adam(model.parameters(), lr=2e-2)
    for _ in range(60):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    train, test = split(x, y)
    rows = run_sweep(model, parse_grid(["stuck_at_rate=0,0.25", "stuck_at=lrs"]), load_preset("seed001_mlp"),
                     SweepSetup(engine="ideal", draws=3), train, test)
    assert [r["draws"] for r in rows] == [1, 3]  # no randomness at rate 0: one draw
    assert rows[1]["mean"] < rows[0]["mean"] and rows[1]["std"] > 0
    assert "| 0.25 | lrs |" in markdown(rows)


def test_sweep_cli_writes_markdown_csv_and_png(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 10))
    torch.save(model, tmp_path / "m.pt")
    assert main(["sweep", str(tmp_path / "m.pt"), "--param", "variability_sigma=0,0.5", "--draws", "2",
                 "--engine", "ideal", "--out-dir", str(tmp_path), "--name", "t"]) == 0
    assert (tmp_path / "t.png").stat().st_size > 1000
    assert (tmp_path / "t.csv").read_text().splitlines()[0].startswith("variability_sigma,mean,std")
    assert "accuracy %" in (tmp_path / "t.md").read_text()
