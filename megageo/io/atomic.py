"""Write-then-rename for every writer: a reader, a crash or a full disk never leaves a half-written output at its
final path, and an existing output stays as it was until its replacement is complete and on disk.

One mechanism, two shapes: `atomic_path` for a file (the store, releases, forecasts, eval outputs, checkpoint
metadata) and `atomic_dir` for a folder that appears whole (a resharded checkpoint). The caller writes under a
temporary name beside the target, in the same folder, so the final rename stays on one filesystem and is atomic
on POSIX. Before the rename the new content is fsynced (every file and folder of a folder variant); after it the
parent folder is fsynced so the rename itself survives a power cut. Any error, including ENOSPC raised by the
caller's writer or by fsync, removes the temporary and leaves the target untouched.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from megageo.errors import MegageoError


def _temporary_beside(target: Path) -> Path:
    return target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def _fsync(path: Path) -> None:
    """Flush one file or folder to disk (a folder's fsync persists the names it holds)."""
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    if path.is_dir():
        for folder, _, files in os.walk(path):
            for name in files:
                _fsync(Path(folder) / name)
            _fsync(Path(folder))
    else:
        _fsync(path)


def _reason(error: Exception, folder: Path) -> str:
    """What the system said. Libraries that write through C (HDF5, netCDF, safetensors' Rust) raise their own
    types and at best quote the errno in their message; without one, the free space there is the best hint."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    code = re.search(r"(?:errno = |os error )(\d+)", str(error))
    if code:
        return os.strerror(int(code[1]))
    message = (str(error).splitlines() or [type(error).__name__])[0]
    if isinstance(error, OSError):
        return message
    return f"{message}; {shutil.disk_usage(folder).free / 1e9:.1f} GB free there"


@contextlib.contextmanager
def _publishing(target: str | os.PathLike, make_folder: bool, replace: bool,
                writer_errors: tuple[type[Exception], ...] = ()) -> Iterator[Path]:
    """The shared mechanism. An OSError on the way (disk full, file too large, read-only or unwritable folder),
    from the caller's writer or from here, or one of `writer_errors` (the writing library's own types for a failed
    write), becomes one MegageoError naming the target and what is left of it."""
    target = Path(target)
    existed = target.exists()
    temporary = _temporary_beside(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if make_folder:
            temporary.mkdir()  # with the umask's permissions, unlike mkdtemp's 0700
        yield temporary
        _fsync_tree(temporary)
        if replace:
            os.replace(temporary, target)
        elif target.exists():
            raise MegageoError(f"{target} already exists: it appeared while it was being written")
        else:
            os.rename(temporary, target)
        _fsync(target.parent)
    except (OSError, *writer_errors) as error:
        kept = f"the existing {target.name} is unchanged" if existed else "nothing was left behind"
        raise MegageoError(f"{target}: could not be written ({_reason(error, target.parent)}); {kept}") from None
    finally:
        if temporary.is_dir():
            shutil.rmtree(temporary, ignore_errors=True)
        elif temporary.exists():
            temporary.unlink()


def atomic_path(path: str | os.PathLike, writer_errors: tuple[type[Exception], ...] = ()
                ) -> contextlib.AbstractContextManager[Path]:
    """Yield a temporary path beside ``path`` for the caller to create the file at (it is not pre-created, so the
    writer gives it the usual umask-derived permissions); on success it replaces ``path``, on error it is removed.
    ``writer_errors``: the types the writing library raises when the disk refuses it (h5py and netCDF4 raise
    RuntimeError, safetensors its SafetensorError), reported like an OSError."""
    return _publishing(path, make_folder=False, replace=True, writer_errors=writer_errors)


def atomic_dir(path: str | os.PathLike) -> contextlib.AbstractContextManager[Path]:
    """Yield an empty temporary folder beside ``path`` to fill; on success it is renamed to ``path``, which must
    not exist (a folder is never replaced); on error it is removed with everything in it."""
    return _publishing(path, make_folder=True, replace=False)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """``path.write_text(text)``, atomically."""
    with atomic_path(path) as temporary:
        temporary.write_text(text)
    return Path(path)
