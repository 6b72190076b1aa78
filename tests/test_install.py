"""A non-editable install used from another directory still finds the
shipped circuits/ and models/ files (package data via importlib.resources)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_non_editable_install_finds_circuits_and_models(tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(REPO)], check=True, timeout=300, capture_output=True)
    probe = ("from cosim.core.resources import resource_path as r; import cosim; "
             "print(cosim.__file__); "
             "print(r('circuits','tia.cir')); print(r('models','vteam.va')); print(r('models','vteam.lib')); "
             "print(r('circuits','vacask/tia.inc')); print(r('circuits','vacask/blocks.va')); "
             "print(r('presets','seed000_vteam.json'))")
    env = dict(os.environ, PYTHONPATH=str(target))
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True,
                         text=True, check=True, timeout=60)
    paths = [Path(line) for line in out.stdout.split()]
    assert all(str(p).startswith(str(target)) for p in paths), out.stdout
    assert all(p.is_file() for p in paths[1:])
    # Every module of the checkout is in the installed package (setup.cfg lists every subpackage),
    # and each imports from there.
    shipped = {p.relative_to(target / "cosim") for p in (target / "cosim").rglob("*.py")}
    source = {p.relative_to(REPO / "cosim") for p in (REPO / "cosim").rglob("*.py")}
    assert source <= shipped, f"not installed: {sorted(map(str, source - shipped))}"
    names = sorted(".".join(("cosim", *p.with_suffix("").parts)).removesuffix(".__init__") for p in source
                   if p.name != "__main__.py")
    probe = ("import importlib, sys; root, mods = sys.argv[1], sys.argv[2:]; "
             "bad = [m for m in mods if not importlib.import_module(m).__file__.startswith(root)]; "
             "print(len(mods), bad)")
    out = subprocess.run([sys.executable, "-c", probe, str(target), *names], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[0] == str(len(names)) and out.stdout.strip().endswith("[]"), out.stdout
