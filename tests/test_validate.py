"""`cosim validate`: the fast solver agrees with ngspice on small tiles, and
the command writes the markdown and JSON table with its regenerating command."""

from __future__ import annotations

import json

from cosim.cli import main
from cosim.commands.validate import markdown, validate_case
from cosim.core.config import load_preset


def test_fast_solver_matches_ngspice_on_small_tiles():
    preset = load_preset("seed000_vteam")
    for access in ("none", "nmos"):
        row = validate_case(preset, 8, access, batch=2, seed=1, vacask=False)
        assert row["fast_max_rel"] < 1e-9
        assert row["ngspice_s"] > 0 and row["fast_prepare_s"] >= 0
    assert row["fast_linear_max_rel"] < 0.2  # small-signal access: percent-level, not exact
    text = markdown([row], "cosim validate --sizes 8")
    assert text.startswith("<!-- regenerate: cosim validate --sizes 8 -->")
    assert "| seed000_vteam | nmos | 8 | 2 |" in text


def test_validate_command_writes_markdown_and_json(tmp_path, capsys):
    status = main(["validate", "--preset", "seed001_mlp", "--sizes", "4", "--access", "none",
                   "--batch", "1", "--vacask", "no", "--out-dir", str(tmp_path)])
    assert status == 0
    data = json.loads((tmp_path / "validation.json").read_text())
    assert data["command"].startswith("cosim validate --preset seed001_mlp --sizes 4")
    assert data["rows"][0]["size"] == 4 and data["rows"][0]["fast_max_rel"] < 1e-9
    assert "cosim validate" in (tmp_path / "validation.md").read_text().splitlines()[0]


def test_validate_bad_sizes_is_one_line(tmp_path, capsys):
    assert main(["validate", "--sizes", "a,b", "--out-dir", str(tmp_path)]) == 2
    assert "--sizes must be integers" in capsys.readouterr().err
