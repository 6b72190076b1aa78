"""Finished tiles of an interrupted run, kept beside the output file so that
`--resume` does not redo them. Each tile is one .npz, written atomically and
keyed by a hash of everything its result depends on."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np


def task_key(*parts: object) -> str:
    """A stable hash of arrays, numbers and strings (sha256, hex)."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            digest.update(str(part.shape).encode())
            digest.update(np.ascontiguousarray(part, dtype=float).tobytes())
        else:
            digest.update(repr(part).encode())
        digest.update(b"|")
    return digest.hexdigest()


class Checkpoint:
    """A directory `<output>.partial/` of finished tiles."""

    def __init__(self, output: Path, resume: bool) -> None:
        self.directory = Path(f"{output}.partial")
        if self.directory.exists() and not resume:
            shutil.rmtree(self.directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.reused = 0

    def load(self, key: str) -> dict[str, np.ndarray] | None:
        path = self.directory / f"{key}.npz"
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as data:
            self.reused += 1
            return {name: data[name] for name in data.files}

    def save(self, key: str, arrays: dict[str, np.ndarray]) -> None:
        tmp = self.directory / f".{key}.tmp.npz"
        np.savez(tmp, **arrays)
        os.replace(tmp, self.directory / f"{key}.npz")

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
