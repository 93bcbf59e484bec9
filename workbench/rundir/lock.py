"""One training process per run directory: an advisory lock the kernel drops when the process dies.

``state.json`` may still say "running" after a ``kill -9`` or a power loss; the
lock tells a live trainer from a dead one without trusting process ids, which
the system reuses.
"""

from __future__ import annotations

import os
from pathlib import Path

from workbench.base.errors import GanbenchError

LOCK_NAME = ".lock"


class RunLock:
    """Holds ``RUN_DIR/.lock`` until ``release`` or the process ends (even by ``kill -9``)."""

    def __init__(self, fd: int | None, path: Path):
        self._fd, self.path = fd, path

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None


def acquire_run_lock(run_path: Path) -> RunLock:
    """Lock the run directory for training; raise GanbenchError when another process trains it."""
    path = Path(run_path) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise GanbenchError(f"Cannot open {path}: {exc.strerror}.") from None
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; state.json's pid check has to do
        return RunLock(fd, path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise GanbenchError(f"The run in {run_path} is being trained by another process right now; "
                            f"stop it first (ganbench can only train a run in one process at a time).") from None
    except OSError:
        pass  # a file system without locks (some network mounts): carry on unlocked
    return RunLock(fd, path)  # the file stays empty: state.json has the pid, the lock is what counts


def run_is_locked(run_path: Path) -> bool | None:
    """True while a process trains the run, False when none does, None when this system cannot tell."""
    path = Path(run_path) / LOCK_NAME
    try:
        import fcntl

        fd = os.open(path, os.O_RDONLY)
    except (ImportError, OSError):
        return None  # no lock file (a run from before locks), or no fcntl
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    except OSError:
        return None
    finally:
        os.close(fd)
