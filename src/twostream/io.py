"""Small file helpers: everything the toolkit writes goes to a temporary name first, then is renamed.

Temporary files are named ``.<name>.<random>.tmp`` beside their target (``TMP_SUFFIX``): a process
killed mid-write leaves one behind, and ``remove_leftovers`` deletes those of a folder at the next run.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from .errors import UserError

TMP_SUFFIX = ".tmp"


def _umask() -> int:
    mask = os.umask(0)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return mask


def fsync_path(path: str | Path) -> None:
    """Flush a file's data, or a folder's entries (a rename, a new file), to disk: durable across a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)``, flush it to disk, then rename it onto ``path`` and flush the folder:
    nothing half-written is ever visible at ``path``, an old file there survives a failed write, and the
    new file has the permissions the umask gives (not ``mkstemp``'s 0600). A full disk is a ``UserError``
    naming the file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())
        fsync_path(tmp)
        os.replace(tmp, path)
        fsync_path(path.parent)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if _no_space(exc):
            raise UserError(f"{path}: no space left on device (nothing was written; the previous file, if "
                            "any, is kept)") from None
        raise
    return path


def _no_space(exc: BaseException | None) -> bool:
    """Whether ``exc`` is a full disk: an OSError ENOSPC or EDQUOT, or an error raised while handling
    one (torch's serializer turns it into "[enforce fail at inline_container.cc]")."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda p: p.write_text(text))


def remove_leftovers(folder: str | Path, name: str) -> list[Path]:
    """Delete the temporary files a killed ``atomic_write`` of ``folder/name`` left behind; returns them."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    prefix = f".{name}."
    gone = [p for p in folder.iterdir() if p.name.startswith(prefix) and p.name.endswith(TMP_SUFFIX)]
    for p in gone:
        p.unlink(missing_ok=True)
    return gone
