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
