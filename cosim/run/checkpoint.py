"""Finished tiles of an interrupted run, kept beside the output file so that
`--resume` does not redo them. Each tile is one .npz, written atomically and
keyed by a hash of everything its result depends on.

A run holds `<output>.lock` (an flock, released by the kernel when the run
ends however it ends, so a crashed run's stale lock file blocks nothing):
a second run on the same output is refused in one line and never touches
the first one's checkpoints. The directory `<output>.partial/` carries
cosim's marker (`cosim.core.atomic.MARKER`); one without it is a user's and is
never written into or removed. A checkpoint that cannot be read back, or
whose arrays are not what the caller expects, is recomputed with a warning.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import shutil
import warnings
from pathlib import Path

import numpy as np

from cosim.core.atomic import MARKER, is_owned, mark_owned, write_error
from cosim.core.errors import InputError, first_line

#: What the caller expects of a checkpoint's arrays: name -> (shape or None, numpy dtype kinds).
Layout = dict[str, tuple[tuple[int, ...] | None, str]]


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


class OutputLock:
    """An exclusive flock on `<output>.lock` for the lifetime of a run.

    Refused in one line while another process holds it. The lock file is
    removed on release; one left by a run that was killed holds no lock and
    is simply taken over."""

    def __init__(self, output: Path | str) -> None:
        self.output = Path(output)
        self.path = Path(f"{output}.lock")
        self.fd: int | None = None
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise InputError(f"{self.path} is a symbolic link; cosim does not follow links for its "
                                     "lock file: move it away or give another --out") from None
                raise write_error(self.path, exc) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_pid(fd)
                os.close(fd)
                raise InputError(f"{self.output} is being written by another cosim run"
                                 f"{f' (process {holder})' if holder else ''}, which holds {self.path}; "
                                 "wait for it to finish or give another --out") from None
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                    warnings.warn(f"cannot lock {self.path} on this file system ({exc.strerror}); "
                                  "make sure no other run writes the same --out", stacklevel=2)
                    return
                raise write_error(self.path, exc) from None
            # A run that finished between our open and our flock has unlinked the
            # file we opened: lock the one now at the path instead.
            try:
                here = os.stat(self.path)
                mine = os.fstat(fd)
                same = (here.st_dev, here.st_ino) == (mine.st_dev, mine.st_ino)
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        size = os.fstat(fd).st_size
        if size and (size > 32 or not _read_pid(fd)):
            os.close(fd)  # never truncate or remove a file of the user's that happens to have this name
            raise InputError(f"{self.path} exists and is not a cosim lock file (it should hold only a "
                             "process id); move it away or give another --out")
        self.fd = fd
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError:
            pass  # the pid is only for the message of a refused run

    def release(self) -> None:
        """Remove the lock file and let go of the lock (idempotent)."""
        if self.fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None


def _read_pid(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    except OSError:
        return ""
    return text if text.isdigit() else ""


class Checkpoint:
    """A directory `<output>.partial/` of finished tiles, and the run's lock on `<output>`.

    Call `remove()` when the output is written, `release()` (or use it as a
    context manager) in any case; a process that dies releases its lock."""

    def __init__(self, output: Path, resume: bool) -> None:
        self.directory = Path(f"{output}.partial")
        self.reused = 0
        self.recomputed = 0
        self.lock = OutputLock(output)  # before anything in the directory is touched
        try:
            self._prepare(resume)
        except BaseException:
            self.lock.release()
            raise

    def _prepare(self, resume: bool) -> None:
        directory = self.directory
        if directory.is_symlink() or (directory.exists() and not directory.is_dir()):
            raise InputError(f"{directory} exists and is not a directory cosim made; "
                             "move it away or give another --out")
        if directory.exists() and not is_owned(directory):
            raise InputError(f"{directory} exists but was not made by cosim (it has no {MARKER} file); "
                             "cosim neither writes into it nor removes it: move it away or give another --out")
        if directory.exists() and not resume:
            shutil.rmtree(directory)
        try:
            directory.mkdir(parents=True, exist_ok=True)
            if not is_owned(directory):
                mark_owned(directory)
        except OSError as exc:
            raise write_error(directory, exc) from None

    def __enter__(self) -> Checkpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def load(self, key: str, expect: Layout | None = None) -> dict[str, np.ndarray] | None:
        """The arrays saved under `key`, or None when there are none. A file
        that cannot be read back (truncated, corrupt, not an .npz) or whose
        arrays do not match `expect` is removed, with a warning, and None is
        returned, so the caller recomputes it."""
        path = self.directory / f"{key}.npz"
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
        except Exception as exc:  # BadZipFile, ValueError, OSError, EOFError, KeyError, zlib.error, ...
            detail = first_line(exc, 80, fallback="")
            return self._discard(path, f"unreadable ({type(exc).__name__}: {detail})")
        problem = check_layout(arrays, expect) if expect is not None else None
        if problem:
            return self._discard(path, problem)
        self.reused += 1
        return arrays

    def _discard(self, path: Path, why: str) -> None:
        warnings.warn(f"checkpoint {path} is {why}; recomputing that tile", stacklevel=3)
        self.recomputed += 1
        try:
            path.unlink()
        except OSError:
            pass
        return None

    def save(self, key: str, arrays: dict[str, np.ndarray]) -> None:
        """Write one tile's arrays atomically as KEY.npz in the checkpoint directory."""
        from cosim.core.atomic import atomic_open

        with atomic_open(self.directory / f"{key}.npz", "wb") as handle:  # a failed write leaves no file
            np.savez(handle, **arrays)

    def remove(self) -> None:
        """Delete the checkpoints (the output is complete) and release the lock."""
        try:
            if is_owned(self.directory) and not self.directory.is_symlink():
                shutil.rmtree(self.directory, ignore_errors=True)
        finally:
            self.release()

    def release(self) -> None:
        """Let go of the output's lock, keeping the checkpoints (idempotent); a
        checkpoint directory without one finished tile (a run refused or
        stopped before its first tile) is removed first: it holds nothing to resume."""
        try:
            directory = self.directory
            if directory.is_dir() and not directory.is_symlink() and is_owned(directory) \
                    and all(entry.name == MARKER for entry in directory.iterdir()):
                shutil.rmtree(directory, ignore_errors=True)
        except OSError:
            pass
        finally:
            self.lock.release()


def check_layout(arrays: dict[str, np.ndarray], expect: Layout) -> str | None:
    """What is wrong with `arrays` against `expect` (name -> (shape or None,
    dtype kinds such as 'f' or 'U')), or None; float arrays must be finite."""
    for name, (shape, kinds) in expect.items():
        if name not in arrays:
            return f"missing array {name!r}"
        value = arrays[name]
        if value.dtype.kind not in kinds:
            return f"holding {name!r} of dtype {value.dtype} (expected kind {kinds!r})"
        if shape is not None and value.shape != tuple(shape):
            return f"holding {name!r} of shape {value.shape} (expected {tuple(shape)})"
        if value.dtype.kind in "fc" and not np.isfinite(value).all():
            return f"holding non-finite values in {name!r}"
    return None
