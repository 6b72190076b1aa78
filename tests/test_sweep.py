"""`cosim sweep`: grid parsing, mean/std over draws, and the three outputs."""

from __future__ import annotations

import pytest
import torch

from cosim.cli import main
from cosim.results.sweep_outputs import markdown
from cosim.twin.sweep import SweepSetup, parse_grid, run_sweep
from cosim.core.config import load_preset
from cosim.core.errors import InputError


def test_grid_parsing_types_and_refusals():
    grid = parse_grid(["stuck_at_rate=0,0.1", "stuck_at=hrs,both", "states=4", "ir_drop=on,off"])
    assert grid == {"stuck_at_rate": [0.0, 0.1], "stuck_at": ["hrs", "both"], "states": [4],
                    "ir_drop": ["on", "off"]}
    for bad in (["colour=red"], ["stuck_at=mid"], ["states=x"], ["novalue"]):
        with pytest.raises(InputError):
            parse_grid(bad)


def test_sweep_averages_draws_and_more_faults_cost_accuracy(digits_mlp, digits_split):
    rows = run_sweep(digits_mlp, parse_grid(["stuck_at_rate=0,0.25", "stuck_at=lrs"]), load_preset("seed001_mlp"),
                     SweepSetup(engine="ideal", draws=3), *digits_split)
    assert [r["draws"] for r in rows] == [1, 3]  # no randomness at rate 0: one draw
    assert rows[1]["mean"] < rows[0]["mean"] - 0.3 and rows[1]["std"] > 0
    assert "| 0.25 | lrs |" in markdown(rows)


def test_method_axis_gives_one_column_per_method_and_insitu_wins_back_stuck_devices(digits_mlp, digits_split):
    """none vs calibration + in-situ (aliases of off / both) on the same two faulty arrays."""
    (x, y), test = digits_split
    grid = parse_grid(["stuck_at_rate=0.1", "stuck_at=both", "insitu=none,cal+insitu"])
    assert grid["insitu"] == ["off", "both"]
    rows = run_sweep(digits_mlp, grid, load_preset("seed001_mlp"), SweepSetup(engine="ideal", draws=2, insitu_epochs=2),
                     (x[:400], y[:400]), test)
    none, both = rows
    assert none["draws"] == both["draws"] == 2
    assert both["mean"] > none["mean"] + 0.1  # ~0.78 -> ~0.96 here
    text = markdown(rows)
    assert "| none % (mean ± std) | calibration + in-situ % (mean ± std) | draws |" in text
    assert f"| 0.1 | both | {100 * none['mean']:.2f} ± {100 * none['std']:.2f} | {100 * both['mean']:.2f}" in text


def test_deterministic_points_run_once(digits_mlp, digits_split):
    """Finite states alone do not depend on the draw, so --draws 3 runs them once."""
    rows = run_sweep(digits_mlp, parse_grid(["states=4"]), load_preset("seed001_mlp"),
                     SweepSetup(engine="ideal", draws=3), *digits_split)
    assert rows[0]["draws"] == 1 and rows[0]["std"] == 0


def test_sweep_cli_writes_markdown_csv_and_png(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 10))
    torch.save(model, tmp_path / "m.pt")
    assert main(["sweep", str(tmp_path / "m.pt"), "--param", "variability_sigma=0,0.5", "--draws", "2",
                 "--engine", "ideal", "--out-dir", str(tmp_path), "--name", "t"]) == 0
    assert (tmp_path / "t.png").stat().st_size > 1000
    assert (tmp_path / "t.csv").read_text().splitlines()[0].startswith("variability_sigma,mean,std")
    assert "accuracy %" in (tmp_path / "t.md").read_text()
    assert main(["sweep", str(tmp_path / "m.pt"), "--param", "states=8", "--methods", "none,calibration",
                 "--engine", "ideal", "--out-dir", str(tmp_path), "--name", "m"]) == 0
    assert (tmp_path / "m.csv").read_text().splitlines()[0].startswith("states,insitu,mean,std")
    assert "| states | none % (mean ± std) | calibration % (mean ± std) | draws |" in (tmp_path / "m.md").read_text()
