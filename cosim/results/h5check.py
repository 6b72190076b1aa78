"""Checked reads of HDF5 files cosim did not necessarily write (RUN.h5,
RESULT.h5 from someone else): every group, dataset and attribute that
`cosim report`, `cosim waves` and `cosim.results.store.read_tile_spec` use goes
through these readers, which check its kind, dtype, shape and range before
the value is used, and end in one line naming the file, the HDF5 path and
what is wrong.

Only objects stored in the file itself are read: a soft or external link,
a dataset whose data lives in another file (`external=`) and a virtual
dataset are refused, so a crafted file cannot make a report show another
file's bytes.
"""

from __future__ import annotations

import json
import numbers
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from cosim.core.config import json_kind, shown
from cosim.core.errors import InputError, first_line

#: What every message ends with: how to get a file cosim can read.
FIX = "the file was edited or damaged, or is not from cosim; write it again with cosim"
#: Largest dataset read (elements): 2**27 float64 values are 1 GiB.
MAX_ELEMENTS = 1 << 27
#: Longest text attribute read (characters).
MAX_TEXT = 16 << 20

_KIND_NAMES = {"f": "floating-point", "i": "integer", "u": "unsigned integer", "b": "boolean", "c": "complex",
               "S": "byte-string", "U": "string", "O": "object/string", "V": "opaque or compound",
               "M": "datetime", "m": "timedelta"}


def where(obj: h5py.HLObject) -> str:
    """How messages name an HDF5 object: `run.h5 /tiles/0.r0c0`."""
    return f"{Path(obj.file.filename).name} {obj.name}"


def problem(obj: h5py.HLObject, what: str, fix: str = FIX) -> InputError:
    """The one-line error for `what` is wrong with `obj`."""
    return InputError(f"{where(obj)}: {what}; {fix}")


def has(parent: h5py.Group, key: str) -> bool:
    """Whether `parent` has a member `key` (of any kind, links not followed)."""
    try:
        return parent.get(key, getlink=True) is not None
    except (KeyError, OSError, RuntimeError, ValueError, TypeError):
        return False


def member(parent: h5py.Group, key: str, kind: str = "group", required: bool = True,
           fix: str = FIX) -> h5py.Group | h5py.Dataset | None:
    """`parent[key]` if it is a `kind` ('group' or 'dataset') stored in this
    file; None if absent and not `required`; else one line."""
    try:
        link = parent.get(key, getlink=True)
    except (KeyError, OSError, RuntimeError, ValueError, TypeError) as exc:
        raise problem(parent, f"cannot read member {key!r} ({first_line(exc, 120)})", fix) from None
    if link is None:
        if required:
            raise problem(parent, f"has no {kind} {key!r}", fix)
        return None
    if not isinstance(link, h5py.HardLink):
        link_kind = {h5py.SoftLink: "a soft link", h5py.ExternalLink: "an external link"}.get(type(link), "a link")
        raise problem(parent, f"{key!r} is {link_kind}, not a {kind} stored in this file "
                      "(cosim follows no links)", fix)
    try:
        obj = parent[key]
    except (KeyError, OSError, RuntimeError, ValueError) as exc:
        raise problem(parent, f"cannot open {key!r} ({first_line(exc, 120)})", fix) from None
    wanted = h5py.Group if kind == "group" else h5py.Dataset
    if not isinstance(obj, wanted):
        other = "group" if isinstance(obj, h5py.Group) else "dataset"
        raise problem(parent, f"{key!r} is a {other}, not a {kind}", fix)
    if kind == "dataset" and (obj.external is not None or obj.is_virtual):
        raise problem(parent, f"dataset {key!r} keeps its data in another file (external or virtual "
                      "storage), which cosim does not read", fix)
    return obj


def group(parent: h5py.Group, key: str, required: bool = True, fix: str = FIX) -> h5py.Group | None:
    """A subgroup stored in the file (`member` of kind 'group')."""
    return member(parent, key, "group", required, fix)


def _utf8(value: str) -> bool:
    """Whether `value` is valid text (h5py hands undecodable bytes over as surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def names(parent: h5py.Group, fix: str = FIX) -> list[str]:
    """The member names of a group, in HDF5's order (valid UTF-8, checked)."""
    try:
        found = [str(k) for k in parent]
    except (KeyError, OSError, RuntimeError, ValueError) as exc:
        raise problem(parent, f"cannot list its members ({first_line(exc, 120)})", fix) from None
    for name in found:
        if not _utf8(name):
            raise problem(parent, f"has a member whose name is not UTF-8 text ({name.encode('utf-8', 'replace')!r})",
                          fix)
    return found


def array(parent: h5py.Group, key: str, *, kinds: str = "f", shape: tuple[int | None, ...] | None = None,
          finite: bool = True, positive: bool = False, min_size: int = 0, required: bool = True,
          what: str = "", fix: str = FIX) -> np.ndarray | None:
    """Dataset `key` of `parent` read as an array, after checking its dtype
    kind (`kinds`: 'f' real floats, returned as float64; 'i' integers; 'U'
    text), its shape (`shape`: one entry per axis, None for any length), its
    size, and for floats that every value is finite (and > 0 if `positive`)."""
    ds = member(parent, key, "dataset", required, fix)
    if ds is None:
        return None
    label = f"dataset {key!r}" + (f" ({what})" if what else "")
    dtype = ds.dtype
    kind = "U" if h5py.check_string_dtype(dtype) is not None else dtype.kind
    if dtype.fields is not None or dtype.subdtype is not None or kind not in kinds:
        wanted = " or ".join(_KIND_NAMES.get(k, k) for k in kinds)
        raise problem(parent, f"{label} holds {_KIND_NAMES.get(kind, str(dtype))} values (dtype {dtype}), "
                      f"not {wanted}", fix)
    if shape is not None:
        expected = "(" + ", ".join("N" if n is None else str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"
        if len(ds.shape) != len(shape) or any(n is not None and n != m for n, m in zip(shape, ds.shape)):
            raise problem(parent, f"{label} has shape {ds.shape}, expected {expected}", fix)
    size = int(np.prod(ds.shape, dtype=np.int64)) if ds.shape else 1
    if size > MAX_ELEMENTS:
        raise problem(parent, f"{label} has {size} elements, more than cosim reads ({MAX_ELEMENTS})", fix)
    if size < min_size:
        raise problem(parent, f"{label} is empty (shape {ds.shape})", fix)
    try:
        data = ds[()]
    except (OSError, RuntimeError, ValueError, TypeError) as exc:
        raise problem(parent, f"{label} cannot be read ({first_line(exc, 120)})", fix) from None
    if kind == "U":
        return data
    data = np.asarray(data)
    if kind == "f":
        data = data.astype(np.float64)
        if finite and not np.all(np.isfinite(data)):
            bad = tuple(int(i) for i in np.argwhere(~np.isfinite(data))[0])
            raise problem(parent, f"{label} has a NaN or infinite value at index {bad}", fix)
        if positive and not np.all(data > 0):
            bad = tuple(int(i) for i in np.argwhere(~(data > 0))[0])
            raise problem(parent, f"{label} has a value <= 0 ({data[bad]:g}) at index {bad}, where every "
                          "value must be > 0", fix)
    return data


def _attr(obj: h5py.HLObject, key: str, fix: str, required: bool) -> Any:
    """Attribute `key` of `obj` as stored, or None when it is missing and not `required`."""
    try:
        return obj.attrs[key]
    except KeyError:
        if required:
            raise problem(obj, f"has no attribute {key!r}", fix) from None
        return None
    except (OSError, RuntimeError, ValueError, TypeError) as exc:
        raise problem(obj, f"attribute {key!r} cannot be read ({first_line(exc, 120)})", fix) from None


def text(obj: h5py.HLObject, key: str, *, required: bool = True, default: str | None = None,
         choices: tuple[str, ...] = (), fix: str = FIX) -> str | None:
    """A text attribute (str, or UTF-8 bytes); `choices` is its allowlist."""
    value = _attr(obj, key, fix, required)
    if value is None:
        return default
    if isinstance(value, np.ndarray) and value.shape == () and value.dtype.kind in "SUO":
        value = value[()]
    if isinstance(value, (bytes, np.bytes_)):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise problem(obj, f"attribute {key!r} is not UTF-8 text", fix) from None
    if not isinstance(value, str):
        raise problem(obj, f"attribute {key!r} must be text, got {type(value).__name__} {shown(_plain(value), 40)}",
                      fix)
    if not _utf8(value):
        raise problem(obj, f"attribute {key!r} is not UTF-8 text", fix)
    if len(value) > MAX_TEXT:
        raise problem(obj, f"attribute {key!r} holds {len(value)} characters, more than cosim reads", fix)
    if choices and value not in choices:
        raise problem(obj, f"attribute {key!r} must be one of {', '.join(choices)}, got {shown(value)}", fix)
    return value


def json_attr(obj: h5py.HLObject, key: str, kind: type = dict, *, required: bool = True,
              default: Any = None, fix: str = FIX) -> Any:
    """A JSON text attribute parsed, and checked to be a `kind` (dict or list)."""
    raw = text(obj, key, required=required, fix=fix)
    if raw is None:
        return default
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise problem(obj, f"attribute {key!r} is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})",
                      fix) from None
    except RecursionError:
        raise problem(obj, f"attribute {key!r} nests its JSON too deeply", fix) from None
    if not isinstance(value, kind):
        noun = {dict: "a JSON object {...}", list: "a JSON list [...]"}.get(kind, kind.__name__)
        raise problem(obj, f"attribute {key!r} must be {noun}, got {json_kind(value)}", fix)
    return value


def _plain(value: Any) -> Any:
    """A numpy scalar or small array as plain Python, for messages."""
    if isinstance(value, np.ndarray):
        return value.tolist() if value.size <= 8 else f"array of shape {value.shape}"
    if isinstance(value, np.generic):
        return value.item()
    return value


def number(obj: h5py.HLObject, key: str, *, required: bool = True, default: float | None = None,
           integer: bool = False, low: float | None = None, finite: bool = True, fix: str = FIX) -> Any:
    """A numeric scalar attribute (an int if `integer`), >= `low`, finite
    unless `finite` is False (a relative error may be inf)."""
    value = _attr(obj, key, fix, required)
    if value is None:
        return default
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    noun = "an integer" if integer else "a number"
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or (
            integer and not isinstance(value, numbers.Integral)):
        raise problem(obj, f"attribute {key!r} must be {noun}, got {shown(_plain(value), 40)}", fix)
    value = int(value) if integer else float(value)
    if finite and not np.isfinite(value):
        raise problem(obj, f"attribute {key!r} must be a finite number, got {value}", fix)
    if low is not None and value < low:
        raise problem(obj, f"attribute {key!r} must be >= {low:g}, got {value}", fix)
    return value
