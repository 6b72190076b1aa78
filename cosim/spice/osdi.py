"""Compile Verilog-A to OSDI with openvaf-r, once per source: the `.osdi` is
cached in the user's cache directory under the sha256 of the source text
and the compiler's identity, so an edited `.va` recompiles and an unchanged
one never does (compiling takes ~0.1 s, a cache hit a stat).

Cache directory: $COSIM_CACHE_DIR, else $XDG_CACHE_HOME/cosim, else
~/.cache/cosim; files go under `osdi/`. Writes are atomic (compile to a
temporary name, then rename), so parallel workers can share the cache.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from pathlib import Path

from cosim.core.errors import SpiceError

COMPILE_TIMEOUT_S = 120.0


def cache_dir() -> Path:
    """Root of cosim's cache ($COSIM_CACHE_DIR, $XDG_CACHE_HOME/cosim or ~/.cache/cosim)."""
    configured = os.environ.get("COSIM_CACHE_DIR")
    if configured:
        return Path(configured)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "cosim"


def osdi_key(source_text: str, compiler_id: str) -> str:
    """sha256 (hex) of a Verilog-A source together with the compiler that builds it."""
    digest = hashlib.sha256()
    digest.update(compiler_id.encode())
    digest.update(b"\0")
    digest.update(source_text.encode())
    return digest.hexdigest()


def compile_va(source: Path, openvaf: str, compiler_id: str, cache: Path | None = None) -> Path:
    """The compiled `.osdi` of `source`, from the cache or freshly built.

    Args:
        source: the Verilog-A file (its `include`s must be the compiler's
            standard ones: only the file's own text is hashed).
        openvaf: path of the openvaf-r executable.
        compiler_id: what identifies that compiler build (its package
            version), part of the cache key.
        cache: cache root (default `cache_dir()`).

    Raises:
        SpiceError: openvaf-r rejected the source (with its output as the log).
    """
    source = Path(source)
    key = osdi_key(source.read_text(), compiler_id)
    folder = (cache or cache_dir()) / "osdi"
    target = folder / f"{source.stem}-{key[:20]}.osdi"
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{source.stem}-", suffix=".osdi", dir=folder)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        out = subprocess.run([openvaf, str(source), "-o", str(tmp)], capture_output=True, text=True,
                             timeout=COMPILE_TIMEOUT_S, stdin=subprocess.DEVNULL)
        log = out.stdout + out.stderr
        if out.returncode != 0 or tmp.stat().st_size == 0:
            first = next((line.strip() for line in log.splitlines() if "error" in line.lower()),
                         f"exit code {out.returncode}")
            raise SpiceError(f"openvaf-r could not compile {source}: {first}", log=log)
        os.replace(tmp, target)
    except subprocess.TimeoutExpired as exc:
        raise SpiceError(f"openvaf-r took more than {COMPILE_TIMEOUT_S:g} s on {source}",
                         log=str(exc.output or "")) from None
    finally:
        tmp.unlink(missing_ok=True)
    return target
