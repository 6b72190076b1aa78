"""What may reach netlist text: the one place that decides how names and
numbers appear in ngspice and VACASK netlists, and the last check of every
line the writers emit.

- `netlist_name(name)`: any user-given name (tile, layer, file stem, preset
  field, anything read back from a RUN.h5) as it appears in netlist text:
  ASCII letters, digits and `_ . + = -` (`SAFE_CHARS`); every other
  character (newline, carriage return, `$`, quotes, backslash, spaces, `;`,
  `*`, control characters, anything non-ASCII) becomes `_`; a name longer
  than `MAX_NAME` has its middle cut to `...`; and a name that had to
  change (or is empty) gets `-` and 8 hex digits of the sha256 of its UTF-8
  bytes appended, so distinct names stay distinct. The original is kept
  where it is recorded (`TileSpec.name`, the `config` attrs of RUN.h5 and
  RESULT.h5); only the netlist carries the safe form.
- `number(value)`: an int as an integer, a float as its shortest round-trip
  repr (reads back as the same double); a NaN, an infinity or a value that
  is not a real number is refused in one line.
- `check_ngspice(lines)`, `check_vacask(lines)`: the final wall of each
  writer. Every line must be printable text with no control character
  (no newline, CR, NUL, DEL, C1 or unicode line separator); every line but
  an include/load path is ASCII; comments and the title are one comment
  line each; every other line must be one of the statements the writers
  emit, and the control block holds only the commands they use (ngspice:
  no `shell`, `source`, `$var`; VACASK: no `postprocess`). A violation is a
  cosim bug (names are made safe before any writer sees them) and raises
  `UnsafeNetlistError` instead of writing the netlist.
"""

from __future__ import annotations

import hashlib
import math
import re
import string
from collections.abc import Callable, Iterable

import numpy as np

from cosim.core.errors import CosimError, InputError

#: The characters a name may keep in netlist text.
SAFE_CHARS = frozenset(string.ascii_letters + string.digits + "_.+=-")
#: Longest safe name kept whole (longer ones are cut and get a hash suffix).
MAX_NAME = 64
_HASH_DIGITS = 8


class UnsafeNetlistError(CosimError):
    """A writer was about to emit a line that could change what the netlist does (a cosim bug)."""


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_DIGITS]


def netlist_name(name: object) -> str:
    """The safe form of a user-given name in netlist text (see the module docstring).

    A name already made of SAFE_CHARS, 1..MAX_NAME long, is returned as it is;
    any other str is mapped (unsafe characters to `_`, its middle cut to `...`
    beyond MAX_NAME, plus `-` and a hash of the original). A non-str is
    refused in one line.
    """
    if not isinstance(name, str):
        raise InputError(f"a tile name must be a string, got {type(name).__name__}; "
                         "give the name as text")
    if name and len(name) <= MAX_NAME and all(ch in SAFE_CHARS for ch in name):
        return name
    mapped = "".join(ch if ch in SAFE_CHARS else "_" for ch in name)
    if len(mapped) > MAX_NAME:  # keep both ends: a tile's suffix (`.r0c1`) tells it apart
        half = (MAX_NAME - 3) // 2
        mapped = f"{mapped[:half]}...{mapped[-half:]}"
    return f"{mapped}-{_digest(name)}"


def number(value: object, what: str = "a value") -> str:
    """An int as an integer; a float so that it reads back as the same double.

    Refuses (InputError, one line) NaN, infinities and anything that is not a
    real number, so that no such text reaches a netlist.
    """
    kind = type(value)
    if kind is float or kind is np.float64:  # the common case, first
        if math.isfinite(value):
            return repr(float(value))
    elif isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return str(int(value))
    if isinstance(value, (str, bytes, complex, np.complexfloating)) or value is None:
        raise InputError(f"cannot write {what} = {_short(value)} into a netlist: it is not a real number; "
                         "give a finite number")
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"cannot write {what} = {_short(value)} into a netlist: it is not a real number; "
                         "give a finite number") from None
    if not math.isfinite(x):
        raise InputError(f"cannot write {what} = {x!r} into a netlist: numbers must be finite; "
                         "check the tile's conductances and settings for NaN, inf or values that "
                         "overflow (such as 1/G of a subnormal conductance)")
    return repr(x)


def _short(value: object) -> str:
    text = ascii(value)
    return text if len(text) <= 40 else text[:37] + "..."


# ----- the final wall ---------------------------------------------------------

#: Characters no netlist line may hold ('\n' separates lines and is checked by count).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff]")
_CONTROL_BUT_NEWLINE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff]")

_NGSPICE_DOT = {".include", ".subckt", ".ends", ".control", ".endc", ".end"}
_NGSPICE_ELEMENT = re.compile(r"[RVX][A-Za-z0-9_]* ")
_NGSPICE_COMMANDS = {"set", "save", "alter", "op", "tran", "dc", "write", "quit"}
#: Outside comments and include paths: no quote, backslash, `$` (variables, inline comments) or `;`;
#: a backslash nowhere but in an include path.
_NGSPICE_FORBIDDEN = re.compile(r"[$;\\\"'`]")
_VACASK_STATEMENTS = {"ground", "load", "include", "model", "subckt", "parameters", "ends"}
_VACASK_COMMANDS = {"abort", "options", "save", "alter", "analysis"}
_VACASK_INSTANCE = re.compile(r"[a-z][a-z0-9_]* \(")
_VACASK_PATH = re.compile(r'(load|include) "([^"\\]+)"')


def _fail(dialect: str, number_: int, line: str, why: str) -> UnsafeNetlistError:
    return UnsafeNetlistError(f"refusing to write the {dialect} netlist: line {number_} {why} "
                              f"({_short(line)}); this is a cosim bug (names are made safe before "
                              "the writer), please report it with the command line")


def _check_text(dialect: str, k: int, line: str, path_ok: bool = False) -> None:
    if _CONTROL.search(line):
        raise _fail(dialect, k, line, "holds a newline, carriage return or control character")
    if not line.isprintable():
        raise _fail(dialect, k, line, "holds a non-printable character")
    if not path_ok and not line.isascii():
        raise _fail(dialect, k, line, "holds a non-ASCII character")


def _bulk_text(dialect: str, lines: list[str], text: str, is_path: Callable[[str], bool]) -> None:
    """Every line is printable, without control characters, and ASCII unless
    `is_path(line)`: checked on the whole text at once, line by line only to
    name the culprit."""
    if text.count("\n") != len(lines) - 1 or _CONTROL_BUT_NEWLINE.search(text) or not text.isascii():
        for k, line in enumerate(lines, start=1):
            _check_text(dialect, k, line, path_ok=is_path(line))


def _scan(dialect: str, text: str, pattern: re.Pattern, allowed: Callable[[str, str], bool]) -> None:
    """Each match of `pattern` (one fast scan; matches are rare) must sit on a
    line where `allowed(line, character)` holds."""
    for found in pattern.finditer(text):
        start = text.rfind("\n", 0, found.start()) + 1
        end = text.find("\n", found.start())
        line = text[start:] if end < 0 else text[start:end]
        if not allowed(line, found.group()):
            k = text.count("\n", 0, start) + 1
            raise _fail(dialect, k, line, f"holds {found.group()!r} outside a comment or path")


def _ngspice_allowed(line: str, char: str) -> bool:
    if line.startswith(".include "):
        return True
    return line.startswith("*") and char != "\\"


def _vacask_allowed(line: str, char: str) -> bool:
    return char != "\\" or line.lstrip().startswith(("load ", "include "))


def check_ngspice(lines: Iterable[str]) -> str:
    """The netlist text of `lines` (one ngspice line each) after the final
    check (module docstring); raises UnsafeNetlistError on any violation."""
    lines = list(lines)
    text = "\n".join(lines)
    _bulk_text("ngspice", lines, text, lambda line: line.startswith(".include "))
    _scan("ngspice", text, _NGSPICE_FORBIDDEN, _ngspice_allowed)
    control = 0  # 0 before .control, 1 inside, 2 after .endc
    last = len(lines)
    for k, line in enumerate(lines, start=1):
        head = line[:1]
        if head == "*":
            if len(line) > 1 and line[1] != " ":
                raise _fail("ngspice", k, line, "is a comment not of the form '* text' (ngspice runs '*#' lines)")
            continue
        if k == 1:
            raise _fail("ngspice", k, line, "is a title that is not a '* ' comment")
        first = line.split(" ", 1)[0]
        if control == 1:
            if first == ".endc":
                control = 2
            elif first not in _NGSPICE_COMMANDS:
                raise _fail("ngspice", k, line, f"runs {first!r}, not a command cosim writes")
            continue
        if head == ".":
            if first == ".control":
                if control:
                    raise _fail("ngspice", k, line, "opens a second .control block")
                control = 1
            elif first == ".endc":
                raise _fail("ngspice", k, line, "closes a .control block that is not open")
            elif first == ".end":
                if k != last:
                    raise _fail("ngspice", k, line, "ends the netlist before its last line")
            elif first not in _NGSPICE_DOT:
                raise _fail("ngspice", k, line, "is not a statement cosim writes")
        elif not _NGSPICE_ELEMENT.match(line):
            raise _fail("ngspice", k, line, "is not a statement cosim writes")
    tail = lines[-1] if lines else ""
    if control != 2:
        raise _fail("ngspice", last, tail, "ends without one complete .control block")
    if tail != ".end":
        raise _fail("ngspice", last, tail, "is not .end")
    return text + "\n"


def check_vacask(lines: Iterable[str]) -> str:
    """The netlist text of `lines` (one VACASK line each) after the final
    check (module docstring); raises UnsafeNetlistError on any violation."""
    lines = list(lines)
    text = "\n".join(lines)
    _bulk_text("VACASK", lines, text, lambda line: line.lstrip().startswith(("load ", "include ")))
    _scan("VACASK", text, re.compile(r"\\"), _vacask_allowed)  # no continued line
    control = 0
    for k, line in enumerate(lines, start=1):
        body = line.strip()
        if k == 1:  # the title
            if not body:
                raise _fail("VACASK", k, line, "is an empty title")
            continue
        if not body or body.startswith("//"):
            continue
        first = body.split(" ", 1)[0]
        if first in ("load", "include"):
            if control or not _VACASK_PATH.fullmatch(body):
                raise _fail("VACASK", k, line, "is not load/include of one quoted path")
            continue
        if control == 1:
            if first == "endc":
                control = 2
            elif first not in _VACASK_COMMANDS:
                raise _fail("VACASK", k, line, f"runs {first!r}, not a command cosim writes")
            continue
        if first == "control":
            if control:
                raise _fail("VACASK", k, line, "opens a second control block")
            control = 1
        elif first == "endc":
            raise _fail("VACASK", k, line, "closes a control block that is not open")
        elif first not in _VACASK_STATEMENTS and not _VACASK_INSTANCE.match(body):
            raise _fail("VACASK", k, line, "is not a statement cosim writes")
    if control != 2:
        raise _fail("VACASK", len(lines), lines[-1] if lines else "", "has no complete control block")
    return text + "\n"
