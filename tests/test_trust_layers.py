"""No code from a layer file ever runs: TorchScript archives are refused from
their zip entries alone (torch never opens them), pickle payloads are refused
by torch.load(weights_only=True) with cosim's allowlist. Each hostile file is
first shown to run its payload when loaded the unsafe way, so the tests
prove the refusal, not a broken payload."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

from cosim.nets.loading import is_torchscript, load_layer


def cosim(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cosim", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def one_error_line(run: subprocess.CompletedProcess) -> str:
    assert run.returncode == 2, (run.returncode, run.stdout, run.stderr)
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cosim: error:"), run.stderr
    return lines[0]


# A scripted class named Linear (what cosim's old TorchScript path mapped by
# original_name) whose forward creates the file at self.marker: TorchScript has
# no open(), but torch.from_file(shared=True) creates and writes a file.
SCRIPTED_LINEAR = """
    import sys, torch
    from torch import nn

    class Linear(nn.Module):
        def __init__(self, marker: str):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(2, 4))
            self.bias = nn.Parameter(torch.zeros(2))
            self.in_features = 4
            self.out_features = 2
            self.marker = marker

        def forward(self, x):
            mark = torch.from_file(self.marker, shared=True, size=8, dtype=torch.uint8)
            mark.fill_(1)
            return x @ self.weight.t() + self.bias + mark.sum() * 0

    torch.jit.script(Linear(sys.argv[1] if len(sys.argv) > 1 else MARKER)).save(OUT)
"""


def scripted_linear(tmp_path: Path, name: str, marker: Path) -> Path:
    out = tmp_path / name
    script = tmp_path / f"make_{Path(name).stem}.py"  # torch.jit.script reads the class's source file
    script.write_text(f"MARKER = {str(marker)!r}\nOUT = {str(out)!r}\n" + textwrap.dedent(SCRIPTED_LINEAR))
    made = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    script.unlink()
    assert made.returncode == 0 and out.is_file(), made.stderr
    return out


def test_scripted_linear_whose_forward_writes_a_file_is_refused_and_never_runs(tmp_path):
    # The payload is live: loaded and called the unsafe way, it writes its marker.
    probe_marker = tmp_path / "probe.marker"
    probe = scripted_linear(tmp_path, "probe.pt", probe_marker)
    ran = python(f"import torch; torch.jit.load({str(probe)!r})(torch.ones(1, 4))", tmp_path)
    assert ran.returncode == 0 and probe_marker.exists(), ran.stderr

    marker = tmp_path / "cosim.marker"
    layer = scripted_linear(tmp_path, "evil.pt", marker)
    out = tmp_path / "run.h5"
    for engine in ("ideal", "spice"):
        line = one_error_line(cosim("simulate", str(layer), "--engine", engine, "--batch", "2",
                                    "--out", str(out), "--quiet", cwd=tmp_path))
        assert "TorchScript" in line and "runs the code" in line and "torch.save(module" in line
        assert not marker.exists() and not out.exists()
    # The other commands that load models refuse it the same way.
    line = one_error_line(cosim("evaluate", str(layer), "--data", "digits", "--limit", "4",
                                "--out", str(tmp_path / "eval.h5"), cwd=tmp_path))
    assert "TorchScript" in line
    line = one_error_line(cosim("spotcheck", "--layer", str(layer), "--tile", "4", cwd=tmp_path))
    assert "TorchScript" in line
    assert not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.pt", "probe.marker", "probe.pt"]


def test_plain_scripted_sequential_is_refused_in_one_line(tmp_path):
    torch.jit.script(nn.Sequential(nn.Linear(6, 4), nn.ReLU())).save(str(tmp_path / "scripted.pt"))
    line = one_error_line(cosim("simulate", str(tmp_path / "scripted.pt"), "--engine", "ideal",
                                "--out", str(tmp_path / "run.h5"), "--quiet"))
    assert "scripted.pt is a TorchScript archive" in line
    assert not (tmp_path / "run.h5").exists()


def _rezip(source: Path, target: Path, drop) -> None:
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
        for item in src.infolist():
            if not drop(item.filename):
                dst.writestr(item, src.read(item.filename))


@pytest.mark.parametrize("variant, drop", [
    ("no_constants", lambda name: name.endswith("constants.pkl")),
    ("no_code", lambda name: "/code/" in name),
    ("no_debug_pkl", lambda name: name.endswith(".debug_pkl") or name.endswith("constants.pkl")),
    ("debug_pkl_only", lambda name: name.endswith(".py") or name.endswith("constants.pkl")),
])
def test_torchscript_detection_survives_stripped_archives(tmp_path, variant, drop):
    """An archive missing any one TorchScript marker is still recognised (and refused)."""
    full = scripted_linear(tmp_path, "full.pt", tmp_path / "marker")
    stripped = tmp_path / f"{variant}.pt"
    _rezip(full, stripped, drop)
    assert is_torchscript(stripped)
    line = one_error_line(cosim("simulate", str(stripped), "--engine", "ideal", "--out",
                                str(tmp_path / "run.h5"), "--quiet"))
    assert "TorchScript" in line
    assert not (tmp_path / "marker").exists() and not (tmp_path / "run.h5").exists()


def test_torch_save_archives_are_not_mistaken_for_torchscript(tmp_path):
    """torch.save names the zip's top folder after the file: 'code.pt' holds code/data.pkl."""
    for name in ("code.pt", "constants.pt", "layer.pt"):
        torch.save(nn.Sequential(nn.Linear(3, 2), nn.ReLU()), tmp_path / name)
        assert not is_torchscript(tmp_path / name)
        assert isinstance(load_layer(tmp_path / name), nn.Sequential)
    run = cosim("simulate", str(tmp_path / "code.pt"), "--engine", "ideal", "--batch", "2",
                "--out", str(tmp_path / "run.h5"), "--quiet")
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "run.h5").is_file()


def test_pickle_payload_is_refused_and_never_runs(tmp_path):
    make = """
        import os, sys, torch
        class Payload:
            def __reduce__(self):
                return (os.system, ("touch " + sys.argv[1],))
        torch.save({"layer": Payload()}, sys.argv[2])
    """
    marker, layer = tmp_path / "pickle.marker", tmp_path / "evil.pt"
    made = subprocess.run([sys.executable, "-c", textwrap.dedent(make), str(marker), str(layer)],
                          capture_output=True, text=True, timeout=120)
    assert made.returncode == 0 and layer.is_file() and not marker.exists(), made.stderr
    # The payload is live: an unsafe torch.load runs it.
    probe_marker = tmp_path / "probe.marker"
    probe = tmp_path / "probe.pt"
    subprocess.run([sys.executable, "-c", textwrap.dedent(make), str(probe_marker), str(probe)], check=True,
                   timeout=120)
    python(f"import torch; torch.load({str(probe)!r}, weights_only=False)", tmp_path)
    assert probe_marker.exists()

    out = tmp_path / "run.h5"
    line = one_error_line(cosim("simulate", str(layer), "--engine", "ideal", "--out", str(out), "--quiet"))
    assert "posix.system" in line and "does not load" in line
    line = one_error_line(cosim("evaluate", str(layer), "--data", "digits", "--out", str(tmp_path / "e.h5")))
    assert "system" in line
    # As an input tensor (torch.load with weights_only) it is refused too.
    torch.save(nn.Linear(4, 2), tmp_path / "lin.pt")
    line = one_error_line(cosim("simulate", str(tmp_path / "lin.pt"), "--input", str(layer),
                                "--engine", "ideal", "--out", str(out), "--quiet"))
    assert "not a torch.save'd tensor" in line and "posix.system" in line
    assert "weights_only" not in line  # torch's advice to load unsafely is never passed on
    assert not marker.exists() and not out.exists()


def test_scripted_input_tensor_file_is_refused(tmp_path):
    torch.save(nn.Linear(4, 2), tmp_path / "lin.pt")
    marker = tmp_path / "marker"
    scripted = scripted_linear(tmp_path, "x.pt", marker)
    line = one_error_line(cosim("simulate", str(tmp_path / "lin.pt"), "--input", str(scripted),
                                "--engine", "ideal", "--out", str(tmp_path / "run.h5"), "--quiet"))
    assert "input file" in line and "TorchScript" in line
    assert not marker.exists() and not (tmp_path / "run.h5").exists()


def test_a_scripted_module_handed_to_the_python_api_is_refused(tmp_path):
    """steps() recognises only real torch.nn classes now, never a scripted module's original_name."""
    from cosim.core.errors import InputError
    from cosim.nets.loading import steps

    scripted = torch.jit.script(nn.Linear(4, 2))
    with pytest.raises(InputError, match="not a supported module"):
        steps(scripted)


def test_layers_saved_under_the_former_flat_module_paths_still_load(tmp_path, monkeypatch):
    """A file pickled when Abs lived in `cosim.nn` (before the subpackages) names
    that path; it loads as cosim.nets.nn.Abs, still through the allowlist."""
    import sys
    import types

    from cosim.nets.loading import load_layer
    from cosim.nets.nn import Abs

    former = types.ModuleType("cosim.nn")

    class FormerAbs(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.abs()

    FormerAbs.__module__, FormerAbs.__qualname__, FormerAbs.__name__ = "cosim.nn", "Abs", "Abs"
    former.Abs = FormerAbs
    monkeypatch.setitem(sys.modules, "cosim.nn", former)
    path = tmp_path / "former.pt"
    torch.save(torch.nn.Sequential(torch.nn.Linear(3, 2), FormerAbs()), path)
    monkeypatch.delitem(sys.modules, "cosim.nn")
    layer = load_layer(path)
    assert type(layer[1]) is Abs
