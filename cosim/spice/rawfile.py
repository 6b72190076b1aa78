"""Read ngspice raw files (binary or ASCII, one or more plots) into numpy."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cosim.core.errors import CosimError


@dataclass(frozen=True)
class Plot:
    """One analysis result: `vectors` maps lower-case names (`v(r0_0)`,
    `i(vsense_c0)`, `time`) to 1-D arrays (one value per point)."""

    title: str
    name: str
    vectors: dict[str, np.ndarray]

    def __getitem__(self, key: str) -> np.ndarray:
        try:
            return self.vectors[key.lower()]
        except KeyError:
            raise CosimError(f"no vector {key!r} in ngspice plot {self.name!r}; "
                             f"it has {sorted(self.vectors)[:8]}...") from None


def _normalise(name: str) -> str:
    """ngspice writes branch currents as `i(v1)` or `v1#branch`; use `i(v1)`."""
    name = name.lower()
    if name.endswith("#branch"):
        return f"i({name[:-len('#branch')]})"
    return name


def read_raw(path: Path | str) -> list[Plot]:
    """All plots of an ngspice raw file, in the order they were written."""
    data = Path(path).read_bytes()
    plots: list[Plot] = []
    pos = 0
    while pos < len(data):
        header: dict[str, str] = {}
        names: list[str] = []
        while True:
            end = data.index(b"\n", pos)
            line = data[pos:end].decode("ascii", "replace")
            pos = end + 1
            key, _, value = line.partition(":")
            key = key.strip().lower()
            if key == "variables":
                count = int(header["no. variables"])
                for _ in range(count):
                    end = data.index(b"\n", pos)
                    fields = data[pos:end].decode("ascii", "replace").split()
                    pos = end + 1
                    names.append(_normalise(fields[1]))
                continue
            if key in ("binary", "values"):
                break
            header[key] = value.strip()
        n_vars, n_points = int(header["no. variables"]), int(header["no. points"])
        complex_data = "complex" in header.get("flags", "")
        width = 2 if complex_data else 1
        if key == "binary":
            n_values = n_vars * n_points * width
            table = np.frombuffer(data, dtype="<f8", count=n_values, offset=pos)
            pos += n_values * 8
            table = table.reshape(n_points, n_vars * width)
        else:
            table, pos = _read_ascii_values(data, pos, n_vars, n_points, complex_data)
        if complex_data:
            table = table[:, 0::2] + 1j * table[:, 1::2]
        vectors = {name: np.array(table[:, k]) for k, name in enumerate(names)}
        plots.append(Plot(header.get("title", ""), header.get("plotname", ""), vectors))
        while pos < len(data) and data[pos:pos + 1] in (b"\n", b"\r"):
            pos += 1
    return plots


def _read_ascii_values(data: bytes, pos: int, n_vars: int, n_points: int,
                       complex_data: bool) -> tuple[np.ndarray, int]:
    """Parse the `Values:` section of an ASCII raw file."""
    width = 2 if complex_data else 1
    table = np.empty((n_points, n_vars * width))
    tokens_needed = n_points * (n_vars + 1)
    values: list[str] = []
    while len(values) < tokens_needed and pos < len(data):
        end = data.find(b"\n", pos)
        end = len(data) if end < 0 else end
        values.extend(data[pos:end].decode("ascii").split())
        pos = end + 1
    for p in range(n_points):
        row = values[p * (n_vars + 1) + 1:(p + 1) * (n_vars + 1)]
        for k, token in enumerate(row):
            parts = token.split(",")
            table[p, k * width:(k + 1) * width] = [float(x) for x in parts[:width]]
    return table, pos
