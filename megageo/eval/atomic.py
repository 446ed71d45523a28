"""Write-then-rename, so that a reader (or a crashed run) never sees a half-written output file."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temporary path beside ``path`` for the caller to create; on success it replaces
    ``path``, on error it is removed.

    The temporary file lives in the destination directory so that the final ``os.replace`` is a
    same-filesystem rename, which is atomic on POSIX. It is not pre-created (as ``mkstemp`` would,
    with mode 0600) so the writer creates it with the usual umask-derived permissions.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield temporary
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
