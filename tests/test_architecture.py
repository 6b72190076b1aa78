"""The package layout of docs/architecture.md holds: every import between
cosim's modules, function-level and TYPE_CHECKING imports included, forms no
cycle and respects each layer's "may import" column."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

PACKAGE = Path(__file__).resolve().parent.parent / "cosim"

#: Layer of each module: its subpackage, or the module's own name when flat.
#: What each layer may import besides itself (docs/architecture.md, "Layers").
MAY_IMPORT = {
    "core": set(),
    "spice": {"core"},
    "fast": {"core"},
    "engines": {"core", "spice", "fast"},
    "analysis": {"core", "spice", "fast", "engines"},
    "mapping": {"core"},
    "nets": {"core", "mapping"},
    "run": {"core", "spice", "fast", "engines", "mapping", "nets"},
    "twin": {"core", "spice", "fast", "engines", "analysis", "mapping", "nets", "run"},
    "results": {"core", "spice", "fast", "engines", "analysis", "mapping", "nets", "run", "twin"},
    "commands": {"core", "spice", "fast", "engines", "analysis", "mapping", "nets", "run", "twin", "results",
                 "package", "compat"},
    "cli": {"core", "spice", "fast", "engines", "analysis", "mapping", "nets", "run", "twin", "results",
            "commands", "package", "compat"},
    "__main__": {"cli"},
    # cosim/__init__.py: the version, CosimError, TileSpec, and convert() / to_pyspice() on first use.
    "package": {"core", "twin", "spice"},
    # cosim/tile.py: the README's `from cosim.tile import TileSpec`.
    "compat": {"core"},
}
FLAT = {"engines": "engines", "cli": "cli", "__main__": "__main__", "__init__": "package", "tile": "compat"}
MAX_FLAT_MODULES = 8
MAX_LINES = 600


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "package"
    if len(parts) == 2 and (PACKAGE / f"{parts[1]}.py").is_file():
        return FLAT[parts[1]]
    return parts[1]


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """cosim modules that `module` imports anywhere in its file (top level,
    functions, TYPE_CHECKING blocks). `from a import b` counts as a.b when
    that is a module, else as a; a parent package's __init__ is not counted
    for `import a.b.c`."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
                for _ in range(node.level - 1):
                    package = package.rsplit(".", 1)[0]
                base = f"{package}.{base}" if base else package
            for alias in node.names:
                full = f"{base}.{alias.name}"
                if full in known:
                    found.add(full)
                elif base in known:
                    found.add(base)
    found.discard(module)
    return found


def import_graph() -> nx.DiGraph:
    mods = modules()
    graph = nx.DiGraph()
    graph.add_nodes_from(mods)
    for name, path in mods.items():
        graph.add_edges_from((name, target) for target in imports_of(name, path, set(mods)))
    return graph


def test_no_import_cycles_between_modules():
    cycles = list(nx.simple_cycles(import_graph()))
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c + [c[0]]) for c in cycles[:10])


def test_every_import_respects_the_layer_table():
    broken = []
    for a, b in import_graph().edges:
        la, lb = layer(a), layer(b)
        if la != lb and lb not in MAY_IMPORT[la]:
            broken.append(f"{a} ({la}) imports {b} ({lb})")
    assert not broken, "imports that break docs/architecture.md's layer table:\n" + "\n".join(broken)


def test_nothing_imports_the_command_line():
    importers = sorted(f"{a} imports {b}" for a, b in import_graph().edges
                       if layer(b) in ("commands", "cli") and layer(a) not in ("commands", "cli", "__main__"))
    assert not importers, importers


def test_every_module_belongs_to_a_listed_layer():
    unknown = sorted(m for m in modules() if layer(m) not in MAY_IMPORT)
    assert not unknown, f"modules outside the layer table: {unknown}"


def test_flat_modules_and_module_sizes_stay_small():
    flat = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(flat) <= MAX_FLAT_MODULES, flat
    long = {module_name(p): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_every_subpackage_opens_with_a_readme_line():
    for init in PACKAGE.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and doc.strip(), f"{init} has no docstring saying what the subpackage holds"
        assert (init.parent / "README.md").is_file(), f"{init.parent} has no README.md"


def test_the_checker_sees_function_level_and_type_checking_imports(tmp_path):
    source = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from cosim.core import tile\n"
              "def f():\n    from cosim.fast.prepared import prepare\n    import cosim.spice.ngspice\n")
    path = tmp_path / "probe.py"
    path.write_text(source)
    known = {"cosim.core.tile", "cosim.fast.prepared", "cosim.spice.ngspice", "cosim.core"}
    assert imports_of("cosim.results.probe", path, known) == known - {"cosim.core"}


def test_the_command_line_parser_loads_without_torch_or_scipy():
    """`cosim --help` / `--version` build every subcommand's parser: those modules keep
    torch, scipy and the solvers to function-level imports (start-up stays ~0.1 s)."""
    import subprocess
    import sys

    probe = ("import sys, cosim.cli; cosim.cli.build_parser(); "
             "print(sorted(m for m in ('torch', 'scipy', 'h5py', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stdout
