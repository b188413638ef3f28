"""Atomic file writes: a killed process never leaves a half-written file under the final name."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _current_umask() -> int:
    mask = os.umask(0o022)  # the only portable way to read it: set and restore
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: temporary file in the same folder, fsync, rename.

    An existing file is replaced only once the new one is complete; a symbolic link is followed
    (its target is replaced, the link stays); a path that exists and is not a regular file (a
    folder, a device such as ``/dev/null``, a pipe) is refused with a ``ValueError`` naming it,
    never replaced. Missing parent folders are created. The file gets the mode of a plain
    ``open(path, "w")``: ``0o666 & ~umask`` (the temporary file of :func:`tempfile.mkstemp`
    would be 0600).
    """
    given = os.fspath(path)
    path = Path(os.path.realpath(path))
    if path.exists() and not path.is_file():
        raise ValueError(f"{given!r} exists and is not a regular file; refusing to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_current_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
