"""Atomic outputs: every file or directory cosim writes goes to a temporary
name in its target directory and is renamed into place when complete.

A write that fails (a full disk, a file-size limit, a read-only directory, an
exception or a signal inside the block) removes the temporary and leaves the
target as it was, even when closing the file is what failed. OS errors become
one-line `InputError`s naming the path and what to do.
"""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from cosim.errors import InputError

#: Marker file inside every directory cosim creates and may later delete.
MARKER = ".cosim-owned"

_HINTS = {
    errno.ENOSPC: "the disk is full; free some space or write elsewhere",
    errno.EDQUOT: "the disk quota is exceeded; free some space or write elsewhere",
    errno.EFBIG: "the file is larger than this process may write (ulimit -f); raise the limit",
    errno.EACCES: "permission denied; choose a directory you can write to",
    errno.EPERM: "permission denied; choose a directory you can write to",
    errno.EROFS: "the file system is read-only; write elsewhere",
    errno.ENOENT: "its directory does not exist; create it first",
    errno.EISDIR: "it is a directory; give a file name",
}


def write_error(target: Path | str, exc: OSError) -> InputError:
    """A one-line InputError for an OSError met while writing `target`."""
    hint = _HINTS.get(exc.errno or 0, "check the path and the free space")
    reason = exc.strerror or type(exc).__name__
    return InputError(f"cannot write {target}: {reason}; {hint}")


def check_output_file(path: Path | str) -> Path:
    """Refuse (one line) an output file whose directory is missing or that names a directory."""
    target = Path(path)
    if target.is_dir():
        raise InputError(f"cannot write {target}: it is a directory; give a file name such as {target}/run.h5")
    if not target.parent.is_dir():
        raise InputError(f"cannot write {target}: directory {target.parent} does not exist; create it first")
    return target


def temporary_name(target: Path) -> Path:
    """A fresh hidden name beside `target` (same directory, so the rename is atomic)."""
    return target.with_name(f".{target.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _discard(tmp: Path) -> None:
    try:
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
    except OSError:
        pass


@contextmanager
def atomic_path(path: Path | str, *, check: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `path` to write (by any library: h5py,
    numpy, matplotlib); it is renamed onto `path` when the block completes,
    and removed if the block raises."""
    target = check_output_file(path) if check else Path(path)
    tmp = temporary_name(target)
    try:
        yield tmp
        os.replace(tmp, target)
    except OSError as exc:
        _discard(tmp)
        raise write_error(target, exc) from exc
    except BaseException:
        _discard(tmp)
        raise


@contextmanager
def atomic_open(path: Path | str, mode: str = "w", *, check: bool = True,
                encoding: str | None = "utf-8", newline: str | None = None) -> Iterator[IO]:
    """Open `path` for writing ('w' text or 'wb' binary); the file appears only
    if the block and the close both succeed."""
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    with atomic_path(path, check=check) as tmp:
        kwargs = {} if mode == "wb" else {"encoding": encoding, "newline": newline}
        handle = open(tmp, mode, **kwargs)
        try:
            yield handle
        finally:
            handle.close()  # an ENOSPC/EFBIG raised by the final flush propagates; atomic_path cleans up


def atomic_write_text(path: Path | str, text: str, *, check: bool = True) -> Path:
    """Write `text` (UTF-8) to `path` atomically; returns the path."""
    with atomic_open(path, "w", check=check) as handle:
        handle.write(text)
    return Path(path)


def atomic_write_bytes(path: Path | str, data: bytes, *, check: bool = True) -> Path:
    """Write `data` to `path` atomically; returns the path."""
    with atomic_open(path, "wb", check=check) as handle:
        handle.write(data)
    return Path(path)


@contextmanager
def atomic_dir(path: Path | str, *, replace: bool = False) -> Iterator[Path]:
    """Yield a fresh temporary directory beside `path`; it becomes `path` when
    the block completes. An existing `path` is refused unless `replace` is set
    and it carries cosim's marker (a directory cosim wrote), in which case it
    is replaced."""
    target = Path(path)
    if not target.parent.is_dir():
        raise InputError(f"cannot write {target}: directory {target.parent} does not exist; create it first")
    if target.exists():
        if not (replace and is_owned(target)):
            raise InputError(f"cannot write {target}: it already exists and was not written by cosim; "
                             "remove it or choose another name")
    tmp = temporary_name(target)
    try:
        tmp.mkdir()
        mark_owned(tmp)
        yield tmp
        if target.exists():
            old = temporary_name(target)
            os.replace(target, old)
            os.replace(tmp, target)
            _discard(old)
        else:
            os.replace(tmp, target)
    except OSError as exc:
        _discard(tmp)
        raise write_error(target, exc) from exc
    except BaseException:
        _discard(tmp)
        raise


def mark_owned(directory: Path | str) -> None:
    """Put cosim's marker in `directory` (so cosim may remove it later)."""
    (Path(directory) / MARKER).write_text("written by cosim; safe for cosim to remove\n")


def is_owned(directory: Path | str) -> bool:
    """True when `directory` carries cosim's marker file."""
    return (Path(directory) / MARKER).is_file()
