"""Atomic outputs: every file or directory cosim writes goes to a temporary
name in its target directory and is renamed into place when complete.

A write that fails (a full disk, a file-size limit, a read-only directory, an
exception or a signal inside the block) removes the temporary and leaves the
target as it was, even when closing the file is what failed. OS errors become
one-line `InputError`s naming the path and what to do.

Temporary names are hidden and say what they are:
`.NAME.partial-PID-RANDOM<suffix of NAME>` (the suffix is kept so that a
library that picks a format from the name, numpy's savez or matplotlib,
still writes the right one; pass the format explicitly all the same). A
process killed with SIGKILL cannot clean up; its temporary stays hidden and
is never taken for the output.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any

from cosim.core.errors import InputError


def save_figure(fig: Any, path: Path | str, *, dpi: int = 110, format: str = "png") -> Path:
    """Write a matplotlib figure `fig` to `path` atomically, in `format`
    (given explicitly: the temporary name must not choose it), at `dpi` dots
    per inch; returns the path."""
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format=format, dpi=dpi)
    return Path(path)


#: Marker file inside every directory cosim creates and may later delete.
MARKER = ".cosim-owned"
#: What every temporary name holds (tests and cleanup look for it).
PARTIAL = ".partial-"

_HINTS = {
    errno.ENOSPC: "free some space or write elsewhere",
    errno.EDQUOT: "the disk quota is exceeded; free some space or write elsewhere",
    errno.EFBIG: "it exceeds this process's file-size limit (ulimit -f); raise the limit or write less",
    errno.EACCES: "choose a directory you can write to",
    errno.EPERM: "choose a directory you can write to",
    errno.EROFS: "write to another file system",
    errno.ENOENT: "its directory does not exist; create it first",
    errno.ENOTDIR: "a part of the path is a file, not a directory; fix the path",
    errno.EISDIR: "give a file name",
    errno.ENAMETOOLONG: "choose a shorter name",
    errno.EIO: "the device reported an I/O error; write elsewhere",
}
# h5py, PIL and friends put the errno inside their message ("errno = 28").
_ERRNO_IN_TEXT = re.compile(r"errno\s*=?\s*(\d+)", re.IGNORECASE)


def _errno_of(exc: BaseException) -> int | None:
    code = getattr(exc, "errno", None)
    if isinstance(code, int) and code > 0:
        return code
    found = _ERRNO_IN_TEXT.search(str(exc))
    return int(found.group(1)) if found else None


def write_error(target: Path | str, exc: BaseException) -> InputError:
    """A one-line InputError for an OSError (or a library error wrapping one)
    met while writing `target`."""
    code = _errno_of(exc)
    if code is not None:
        reason = os.strerror(code)
    else:
        lines = str(exc).strip().splitlines()
        reason = lines[0][:160] if lines else type(exc).__name__
    hint = _HINTS.get(code or 0, "check the path and the free space")
    return InputError(f"cannot write {target}: {reason}; {hint}")


def _check_writable_dir(target: Path, directory: Path) -> None:
    """Refuse (one line) a directory this process cannot create files in."""
    if os.access(directory, os.W_OK | os.X_OK):
        return
    try:
        read_only = bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    code = errno.EROFS if read_only else errno.EACCES
    raise write_error(target, OSError(code, os.strerror(code)))


def check_output_file(path: Path | str) -> Path:
    """Refuse (one line) an output file that names a directory, whose directory
    is missing, or whose directory cannot be written (read-only, no permission).
    Call it before the work that produces the output, so nothing runs in vain."""
    target = Path(path)
    if target.is_dir():
        raise InputError(f"cannot write {target}: it is a directory; give a file name "
                         f"(e.g. {target / 'NAME'}) or remove the directory")
    if not target.parent.is_dir():
        what = "is not a directory" if target.parent.exists() else "does not exist"
        raise InputError(f"cannot write {target}: directory {target.parent} {what}; create it first")
    _check_writable_dir(target, target.parent)
    return target


def check_output_dir(path: Path | str, *, create: bool = False) -> Path:
    """Refuse (one line) an output directory that is a file, missing (unless
    `create`: then it is made, with its parents) or not writable."""
    directory = Path(path)
    if directory.exists() and not directory.is_dir():
        raise InputError(f"cannot write into {directory}: it is a file, not a directory; give a directory")
    if not directory.exists():
        if not create:
            raise InputError(f"cannot write into {directory}: it does not exist; create it first")
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_error(directory, exc) from None
    _check_writable_dir(directory, directory)
    return directory


def temporary_name(target: Path) -> Path:
    """A fresh hidden name beside `target` (same directory, so the rename is
    atomic), ending in the target's own suffix."""
    return target.with_name(f".{target.name}{PARTIAL}{os.getpid()}-{uuid.uuid4().hex[:8]}{target.suffix}")


def _discard(tmp: Path) -> None:
    try:
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
    except OSError:
        pass


def _fsync(path: Path) -> None:
    """Flush a finished temporary file to the device, so that a delayed
    allocation failure (ENOSPC at write-back) shows here, before the rename."""
    if not path.is_file():
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: Path | str, *, check: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `path` to write (by any library: h5py,
    numpy, matplotlib); it is renamed onto `path` when the block completes,
    and removed if the block raises. An OSError becomes one line naming `path`."""
    with atomic_paths([path], check=check) as (tmp,):
        yield tmp


@contextmanager
def atomic_paths(paths: Sequence[Path | str], *, check: bool = True) -> Iterator[list[Path]]:
    """Several outputs that appear together: yield one temporary path per
    target; all are renamed into place only when the block completes (and
    each one was written), and all are removed if it raises."""
    targets = [check_output_file(p) if check else Path(p) for p in paths]
    temps = [temporary_name(t) for t in targets]
    current: Path | None = None  # the target being finished (None: inside the block)
    try:
        yield temps
        for target, tmp in zip(targets, temps):
            current = target
            if not tmp.exists():
                raise InputError(f"cannot write {target}: nothing was written (internal error; please report)")
            _fsync(tmp)
        for target, tmp in zip(targets, temps):
            current = target
            os.replace(tmp, target)
    except OSError as exc:
        for tmp in temps:
            _discard(tmp)
        raise write_error(_failed_target(exc, targets, temps, current), exc) from exc
    except BaseException:
        for tmp in temps:
            _discard(tmp)
        raise


def _failed_target(exc: OSError, targets: list[Path], temps: list[Path], current: Path | None) -> str:
    """The target an OSError is about: the one whose temporary it names, the
    only one, or all of them (a write inside the block does not say which)."""
    for name in (exc.filename, exc.filename2):
        for target, tmp in zip(targets, temps):
            if isinstance(name, (str, os.PathLike)) and Path(name) in (tmp, target):
                return str(target)
    if current is not None:
        return str(current)
    if len(targets) == 1:
        return str(targets[0])
    return ", ".join([str(targets[0]), *(t.name for t in targets[1:])])


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


@contextmanager
def atomic_opens(paths: Sequence[Path | str], mode: str = "w", *, check: bool = True,
                 encoding: str | None = "utf-8", newline: str | None = None) -> Iterator[list[IO]]:
    """`atomic_open` for several files that appear together (`atomic_paths`)."""
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    kwargs = {} if mode == "wb" else {"encoding": encoding, "newline": newline}
    with atomic_paths(paths, check=check) as temps:
        with ExitStack() as stack:
            yield [stack.enter_context(open(tmp, mode, **kwargs)) for tmp in temps]


def atomic_write_text(path: Path | str, text: str, *, check: bool = True) -> Path:
    """Write `text` (UTF-8) to `path` atomically; returns the path."""
    with atomic_open(path, "w", check=check) as handle:
        handle.write(text)
    return Path(path)


def atomic_write_bytes(path: Path | str, data: bytes | memoryview, *, check: bool = True) -> Path:
    """Write `data` to `path` atomically; returns the path."""
    with atomic_open(path, "wb", check=check) as handle:
        handle.write(data)
    return Path(path)


@contextmanager
def atomic_dir(path: Path | str, *, replace: bool | Callable[[Path], bool] = False,
               mark: bool = True) -> Iterator[Path]:
    """Yield a fresh temporary directory beside `path`; it becomes `path` when
    the block completes (with cosim's marker inside when `mark`). An existing
    `path` is refused unless `replace` allows it: True replaces a directory
    that carries cosim's marker (one cosim wrote); a callable decides for the
    existing directory (e.g. "holds only files this writer produces")."""
    target = Path(path)
    if not target.parent.is_dir():
        raise InputError(f"cannot write {target}: directory {target.parent} does not exist; create it first")
    if target.exists() or target.is_symlink():
        if not target.is_dir() or target.is_symlink():
            raise InputError(f"cannot write directory {target}: a file of that name exists; "
                             "remove it or choose another name")
        allowed = replace(target) if callable(replace) else (replace and is_owned(target))
        if not allowed:
            why = "holds files cosim did not write" if callable(replace) else "was not written by cosim"
            raise InputError(f"cannot write {target}: it already exists and {why}; "
                             "remove it or choose another name")
    _check_writable_dir(target, target.parent)
    tmp = temporary_name(target)
    try:
        tmp.mkdir()
        if mark:
            mark_owned(tmp)
        yield tmp
        for item in tmp.rglob("*"):
            _fsync(item)
        if target.exists():
            old = temporary_name(target)
            os.replace(target, old)
            try:
                os.replace(tmp, target)
            except OSError:
                os.replace(old, target)  # put the old directory back
                raise
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
