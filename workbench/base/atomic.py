"""Write a file so that readers see the old version or the whole new one, never half."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


@contextlib.contextmanager
def atomic_write(path: Path):
    """Yield a temporary path beside ``path``; on success fsync it and rename it over ``path``.

    On any error the temporary file is removed and ``path`` keeps its previous content.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically."""
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def remove_temporaries(folder: Path) -> int:
    """Delete the temporary files a killed writer left in ``folder``; return how many.

    Those are ours (``.NAME.PID.tmp``) and the ones safetensors writes before
    its own rename (``.tmpXXXXXX``). Call it only while no other process writes
    there (the run lock is held).
    """
    removed = 0
    folder = Path(folder)
    for stale in [*folder.glob(".*.tmp"), *folder.glob(".tmp*")]:
        with contextlib.suppress(OSError):
            stale.unlink()
            removed += 1
    return removed
