"""What a sweep writes: markdown table, CSV, accuracy plot and Pareto plot
(`cosim.twin.sweep` computes the rows; `cosim sweep` writes them).

The Pareto plot puts each grid point's accuracy against its tile size, or,
when the rows carry the energy column (`energy_per_inference_j`, filled by
`cosim.run.energy`), against its energy per inference; points no other point
beats on both (higher accuracy, and smaller tiles or less energy) are joined
as the front.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from cosim.twin.sweep import METHOD_TITLES, RESULT_KEYS


def write_csv(rows: list[dict], path: Path) -> None:
    """The rows as CSV at `path` (a temporary of `write_outputs`, or any path)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _axes(rows: list[dict]) -> list[str]:
    return [k for k in rows[0] if k not in RESULT_KEYS]


def markdown(rows: list[dict]) -> str:
    """Markdown table: axes, accuracy mean ± std (%) over the draws, draws. With an `insitu`
    (method) axis of several values, one accuracy column per method, rows over the other axes."""
    axes = _axes(rows)
    methods = list(dict.fromkeys(r["insitu"] for r in rows)) if "insitu" in axes else []
    if len(methods) < 2:
        lines = ["| " + " | ".join(axes) + " | accuracy % (mean ± std) | draws |",
                 "|" + "---|" * (len(axes) + 2)]
        for r in rows:
            lines.append("| " + " | ".join(str(r[a]) for a in axes)
                         + f" | {100 * r['mean']:.2f} ± {100 * r['std']:.2f} | {r['draws']} |")
        return "\n".join(lines) + "\n"
    others = [a for a in axes if a != "insitu"]
    table: dict[tuple, dict[str, dict]] = {}
    for r in rows:
        table.setdefault(tuple(r[a] for a in others), {})[r["insitu"]] = r
    lines = ["| " + " | ".join(others) + " | "
             + " | ".join(f"{METHOD_TITLES[m]} % (mean ± std)" for m in methods) + " | draws |",
             "|" + "---|" * (len(others) + len(methods) + 1)]
    for key, by_method in table.items():
        cells = [f"{100 * by_method[m]['mean']:.2f} ± {100 * by_method[m]['std']:.2f}" if m in by_method else "–"
                 for m in methods]
        draws = max(r["draws"] for r in by_method.values())
        lines.append("| " + " | ".join(str(v) for v in key) + " | " + " | ".join(cells) + f" | {draws} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path, title: str = "") -> None:
    """Accuracy vs the first axis with std error bars: one colour per value of the other
    axes, one line style per method (`insitu` axis)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes = _axes(rows)
    x_axis, others = axes[0], [a for a in axes[1:] if a != "insitu"]
    styles = {"off": "-", "cal": ":", "insitu": "-.", "both": "--"}
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((*(r[a] for a in others), r.get("insitu", "")), []).append(r)
    by_method = len({k[:-1] for k in groups}) == 1  # a single curve per method: colour the methods
    colours = {key: f"C{i}" for i, key in enumerate(dict.fromkeys(k[-1:] if by_method else k[:-1] for k in groups))}
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, items in groups.items():
        xs = [str(r[x_axis]) if isinstance(r[x_axis], str) else r[x_axis] for r in items]
        label = ", ".join([f"{a}={v}" for a, v in zip(others, key)] + ([METHOD_TITLES[key[-1]]] if key[-1] else []))
        ax.errorbar(xs, [100 * r["mean"] for r in items], yerr=[100 * r["std"] for r in items], marker="o",
                    capsize=3, color=colours[key[-1:] if by_method else key[:-1]], linestyle=styles.get(key[-1], "-"), label=label or None)
    ax.set_xlabel(x_axis)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    if len(groups) > 1:
        ax.legend(fontsize=6, ncol=2 if len(groups) > 6 else 1)
    fig.tight_layout()
    try:
        fig.savefig(path, format="png", dpi=120)  # explicit: `path` may be a temporary name
    finally:
        plt.close(fig)


def pareto_axis(rows: list[dict]) -> str:
    """The Pareto plot's x axis: 'energy_per_inference_j' when every row has a finite
    energy, else 'tile' when the grid sweeps it, else '' (no Pareto plot)."""
    if rows and all(isinstance(r.get("energy_per_inference_j"), float)
                    and math.isfinite(r["energy_per_inference_j"]) for r in rows):
        return "energy_per_inference_j"
    return "tile" if rows and "tile" in rows[0] else ""


def pareto_front(rows: list[dict], x_key: str) -> list[dict]:
    """The rows no other row dominates: none has accuracy >= and x <= with one strict, sorted by x."""
    front = [r for r in rows if not any(o["mean"] >= r["mean"] and o[x_key] <= r[x_key]
                                        and (o["mean"] > r["mean"] or o[x_key] < r[x_key]) for o in rows)]
    return sorted(front, key=lambda r: r[x_key])


def pareto_plot(rows: list[dict], path: Path, title: str = "") -> bool:
    """Accuracy against tile size or energy per inference (`pareto_axis`), every point
    labelled with its other axes, the front joined; False (nothing written) without such an axis."""
    x_key = pareto_axis(rows)
    if not x_key:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    others = [a for a in _axes(rows) if a != x_key]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    scale = 1e9 if x_key == "energy_per_inference_j" else 1.0
    for r in rows:
        ax.scatter(r[x_key] * scale, 100 * r["mean"], color="C0", s=18)
        label = ", ".join(f"{a}={r[a]}" for a in others)
        if label:
            ax.annotate(label, (r[x_key] * scale, 100 * r["mean"]), fontsize=5, xytext=(3, 2),
                        textcoords="offset points")
    front = pareto_front(rows, x_key)
    ax.plot([r[x_key] * scale for r in front], [100 * r["mean"] for r in front], color="C3", label="Pareto front")
    ax.set_xlabel("energy per inference (nJ)" if x_key == "energy_per_inference_j" else "tile size (devices per side)")
    if x_key == "tile":
        ax.set_xscale("log", base=2)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    try:
        fig.savefig(path, format="png", dpi=120)
    finally:
        plt.close(fig)
    return True


def output_paths(out_dir: Path, name: str) -> dict[str, Path]:
    """{'md', 'csv', 'png', 'pareto'}: NAME.md, NAME.csv, NAME.png and NAME.pareto.png under out_dir."""
    paths = {ext: Path(out_dir) / f"{name}.{ext}" for ext in ("md", "csv", "png")}
    paths["pareto"] = Path(out_dir) / f"{name}.pareto.png"
    return paths


def check_outputs(out_dir: Path, name: str) -> dict[str, Path]:
    """Refuse (one line, before any simulation) outputs that cannot be written:
    out_dir a file or read-only, NAME.* a directory; creates out_dir."""
    from cosim.core.atomic import check_output_dir, check_output_file

    check_output_dir(out_dir, create=True)
    paths = output_paths(out_dir, name)
    for path in paths.values():
        check_output_file(path)
    return paths


def write_outputs(rows: list[dict], out_dir: Path, name: str, title: str = "") -> dict[str, Path]:
    """NAME.md, NAME.csv, NAME.png and, when the rows have a tile or energy axis
    (`pareto_axis`), NAME.pareto.png under out_dir (created), atomically: they
    appear together when complete, or none does. Returns the paths written."""
    from cosim.core.atomic import atomic_paths

    paths = check_outputs(out_dir, name)
    if not pareto_axis(rows):
        paths.pop("pareto")
    with atomic_paths(list(paths.values())) as temps:
        md, table, png = temps[:3]
        md.write_text((f"### {title}\n\n" if title else "") + markdown(rows), encoding="utf-8")
        write_csv(rows, table)
        plot(rows, png, title)
        if len(temps) > 3:
            pareto_plot(rows, temps[3], title)
    return paths
