"""Read ngspice netlist text defensively into elements and subcircuits, for the
circuit check (`cosim.spice.graphcheck`, `cosim netlist --check DIR`).

Only what the check needs is kept: each element's nodes and which of them
conduct at DC. Nothing in the text is evaluated or run; `.control` blocks are
skipped; includes are read only when they are regular files under
`MAX_FILE_BYTES`, at most `MAX_DEPTH` deep, never twice in a chain. Text that
is not UTF-8, holds NUL bytes or element lines this module does not know is
reported as a problem (one line each, `file:line: what`), never guessed at.

DC rules per element letter (SPICE conventions; ngspice manual ch. 3-5):

- R, L (a short at DC), D, S, W: conduct between their two nodes; L, and
  V, the E/H outputs and B with `V=` are also ideal voltage sources (0 ohm),
  the elements of a voltage-source loop.
- B with `I=`: conducts (every B current source in cosim's circuits is a
  voltage-controlled conductance: memristor, track switch, leak, clamp).
- C, I, G and F outputs: open (no DC path); controlling nodes of E and G
  are nodes of the circuit that draw no current.
- M (d g s b): the channel d-s conducts; gate and bulk draw no DC current.
  J (d g s): d-s. Q (c b e): c-e and b-e.
- X: the pins its subcircuit joins (see `cosim.spice.graphcheck.summary`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from cosim.core.errors import terminal_text

GROUND = "0"
_GROUND_NAMES = {"0", "gnd"}
MAX_FILE_BYTES = 64 * 2**20
MAX_DEPTH = 8
MAX_PROBLEMS = 20

#: Element letter -> (number of nodes, pin pairs that conduct, pin pairs that are ideal voltage sources).
_TWO = {"r": ((0, 1),), "d": ((0, 1),), "s": ((0, 1),), "w": ((0, 1),)}
_OPEN = ("c", "i")


@dataclass
class Element:
    """One element: its nodes, the pin pairs joined at DC (`conduct`) and by
    an ideal voltage source (`source`), in pin indices (-1 = ground); `block`
    is the subcircuit of an X instance (its pairs come from the subcircuit)."""

    name: str
    nodes: tuple[str, ...]
    conduct: tuple[tuple[int, int], ...] = ()
    source: tuple[tuple[int, int], ...] = ()
    block: str | None = None
    where: str = ""


@dataclass
class Subckt:
    """A `.subckt` definition: its pins (in order) and elements."""

    name: str
    pins: tuple[str, ...]
    elements: list[Element] = field(default_factory=list)
    where: str = ""


@dataclass
class Deck:
    """What a netlist file and its includes hold: top-level elements,
    every subcircuit by (lower-case) name, and the problems found reading them."""

    path: Path
    elements: list[Element] = field(default_factory=list)
    subckts: dict[str, Subckt] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def node(name: str) -> str:
    """A node name as the check compares it (SPICE is case-insensitive; `gnd` is ground)."""
    low = name.lower()
    return GROUND if low in _GROUND_NAMES else low


def element(tokens: list[str], where: str) -> Element | str:
    """The element of one logical line split into tokens, or a problem text."""
    name = tokens[0]
    kind = name[0].lower()
    args = tokens[1:]

    def nodes(count: int) -> tuple[str, ...] | None:
        return tuple(node(t) for t in args[:count]) if len(args) >= count else None

    if kind in _TWO or kind in ("l", "v", "b") or kind in _OPEN:
        pins = nodes(2)
        if pins is None:
            return f"{where}: {name} needs two nodes"
        if kind in _TWO:
            return Element(name, pins, _TWO[kind], (), where=where)
        if kind in _OPEN:
            return Element(name, pins, where=where)
        if kind == "b":
            rest = "".join(args[2:3]).lower()
            if not rest or rest[0] not in "vi":
                return f"{where}: {name} must be a B source with V= or I="
            return Element(name, pins, ((0, 1),), ((0, 1),) if rest[0] == "v" else (), where=where)
        return Element(name, pins, ((0, 1),), ((0, 1),), where=where)  # v, l
    if kind in ("e", "g"):
        pins = nodes(2)
        if pins is None:
            return f"{where}: {name} needs two output nodes"
        control = args[2:4]
        linear = len(control) == 2 and not any("=" in t or "(" in t or t.lower().startswith("poly") for t in control)
        all_nodes = pins + (tuple(node(t) for t in control) if linear else ())
        if kind == "g":
            return Element(name, all_nodes, where=where)
        return Element(name, all_nodes, ((0, 1),), ((0, 1),), where=where)
    if kind in ("h", "f"):
        pins = nodes(2)
        if pins is None or len(args) < 3:
            return f"{where}: {name} needs two nodes and a controlling source"
        return Element(name, pins, ((0, 1),) if kind == "h" else (), ((0, 1),) if kind == "h" else (), where=where)
    if kind == "m":
        pins = nodes(4)
        return f"{where}: {name} needs four nodes (d g s b)" if pins is None else Element(name, pins, ((0, 2),), where=where)
    if kind == "j":
        pins = nodes(3)
        return f"{where}: {name} needs three nodes (d g s)" if pins is None else Element(name, pins, ((0, 2),), where=where)
    if kind == "q":
        pins = nodes(3)
        return (f"{where}: {name} needs three nodes (c b e)" if pins is None
                else Element(name, pins, ((0, 2), (1, 2)), where=where))
    if kind == "x":
        words = []
        for token in args:
            if token.lower() == "params:" or "=" in token:
                break
            words.append(token)
        if not words:
            return f"{where}: {name} names no subcircuit"
        return Element(name, tuple(node(t) for t in words[:-1]), block=words[-1].lower(), where=where)
    if kind == "k":
        return Element(name, (), where=where)  # coupling of two inductors: no nodes of its own
    return f"{where}: {name}: element type {name[0]!r} is not checked; remove it or check by hand"


def _logical_lines(text: str, label: str, title: bool) -> list[tuple[str, str]]:
    """(where, line) of each logical line: continuations joined, comments dropped,
    `=` with spaces around it closed up."""
    out: list[tuple[str, str]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if title and number == 1:
            continue
        line = re.sub(r"\s[$;].*$", "", raw).strip()
        if not line or line.startswith("*"):
            continue
        line = re.sub(r"\s*=\s*", "=", line)
        if line.startswith("+"):
            if out:
                out[-1] = (out[-1][0], f"{out[-1][1]} {line[1:].strip()}")
            continue
        out.append((f"{label}:{number}", line))
    return out


def why_not(path: Path) -> str | None:
    """Why `path` cannot be read as netlist text, or None when it can."""
    try:
        if not path.is_file():
            return f"{path} is not a regular file"
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return f"{path} is {size} bytes, over the {MAX_FILE_BYTES} bytes a netlist file may have"
        data = path.read_bytes()
    except OSError as exc:
        return f"{path} cannot be read ({exc.strerror or exc})"
    if b"\0" in data:
        return f"{path} holds NUL bytes: not netlist text"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"{path} is not UTF-8 text (byte {exc.start})"
    return None


def parse(path: Path, deck: Deck | None = None, depth: int = 0, chain: tuple[Path, ...] = (),
          title: bool = True) -> Deck:
    """Read netlist `path` (and what it includes) into `deck` (a new one by default)."""
    deck = deck or Deck(Path(path))
    path = Path(path)
    problem = why_not(path)
    if problem:
        deck.problems.append(problem)
        return deck
    text = path.read_bytes().decode("utf-8")
    stack: list[Subckt] = []
    in_control = False
    for where, line in _logical_lines(text, path.name if depth == 0 else str(path), title):
        word = line.split()[0].lower()
        if in_control:
            in_control = word != ".endc"
            continue
        if word == ".control":
            in_control = True
        elif word == ".end":
            break
        elif word == ".subckt":
            tokens = line.split()
            if len(tokens) < 2:
                deck.problems.append(f"{where}: .subckt without a name")
                continue
            pins = []
            for token in tokens[2:]:
                if token.lower() == "params:" or "=" in token:
                    break
                pins.append(node(token))
            stack.append(Subckt(tokens[1].lower(), tuple(pins), where=where))
        elif word == ".ends":
            if not stack:
                deck.problems.append(f"{where}: .ends without .subckt")
                continue
            sub = stack.pop()
            deck.subckts.setdefault(sub.name, sub)
        elif word in (".include", ".inc"):
            _include(line, where, path, deck, depth, chain + (path.resolve(),))
        elif word == ".lib" and len(line.split()) > 2:
            deck.problems.append(f"{where}: .lib with a section is not checked; use .include")
        elif word.startswith("."):
            continue  # .model, .param, .options, analyses, .save ...: no elements
        else:
            found = element(line.split(), where)
            if isinstance(found, str):
                deck.problems.append(found)
            else:
                (stack[-1].elements if stack else deck.elements).append(found)
    if stack:
        deck.problems.append(f"{stack[-1].where}: .subckt {stack[-1].name} has no .ends")
    return deck


def _inside_allowed(full: Path, top: Path) -> bool:
    """Whether an included file lies in the checked netlist's own directory
    (where `cosim netlist` copies the circuits it includes) or in cosim's
    installed circuits and models: nothing else on the machine is read."""
    from cosim.core.resources import resource_path

    resolved = full.resolve()
    roots = [Path(top).resolve().parent, resource_path("circuits", "tia.cir").parent.resolve(),
             resource_path("models", "vteam.lib").parent.resolve()]
    return any(resolved.is_relative_to(root) for root in roots)


def _include(line: str, where: str, path: Path, deck: Deck, depth: int, chain: tuple[Path, ...]) -> None:
    target = line.split(None, 1)[1].strip() if len(line.split(None, 1)) > 1 else ""
    target = target.strip("'\"")
    if not target:
        deck.problems.append(f"{where}: .include names no file")
        return
    full = Path(target) if Path(target).is_absolute() else path.parent / target
    if not _inside_allowed(full, deck.path):
        deck.problems.append(f"{where}: .include {terminal_text(target, 80)} is outside the netlist's directory and "
                             "cosim's circuits; copy the file next to the netlist")
    elif depth + 1 > MAX_DEPTH:
        deck.problems.append(f"{where}: includes nested deeper than {MAX_DEPTH} levels")
    elif full.resolve() in chain:
        deck.problems.append(f"{where}: {target} includes itself")
    elif not full.exists():
        deck.problems.append(f"{where}: included file {target} does not exist")
    else:
        parse(full, deck, depth + 1, chain, title=False)
