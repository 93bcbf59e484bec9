"""The one way to start a ganbench process: ``python -m workbench ARGS``, its console into a log file.

The workbench starts runs and sweeps detached (``detached=True``: a session of their own, so they outlive
the app and the SSH session); a sweep starts trials tied to it (``tied=True``: the kernel stops a trial when
its driver dies, so no trial trains unattended); the benchmark starts timed runs in a folder of its own.
Each gets the same interpreter as this process (``sys.executable``), unbuffered output, and no stdin.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from pathlib import Path

_PR_SET_PDEATHSIG = 1
try:  # Linux: a child can ask to be signalled when its parent dies
    _LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
except OSError:  # pragma: no cover - a Linux without a C library to load
    _LIBC = None


def ganbench_command(*args: str) -> list[str]:
    """The command line of ``ganbench ARGS`` with this interpreter (works without the ``ganbench`` script)."""
    return [sys.executable, "-m", "workbench", *args]


def start_ganbench(args: list[str], log: Path, *, env: dict[str, str] | None = None, detached: bool = False,
                   tied: bool = False, cwd: Path | None = None, append: bool = True,
                   without: tuple[str, ...] = ()) -> subprocess.Popen:
    """Start ``ganbench ARGS`` with stdout and stderr into ``log`` (appended to unless ``append=False``).

    :param env: variables to set on top of this process's environment.
    :param detached: in a session of its own: no SIGHUP when the terminal goes, not stopped by Ctrl-C here.
    :param tied: stopped (SIGTERM) when this process dies, on Linux; elsewhere it runs on (say so to users).
    :param without: variables of this environment the process must not inherit.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**{k: v for k, v in os.environ.items() if k not in without}, "PYTHONUNBUFFERED": "1", **(env or {})}
    with open(log, "ab" if append else "wb") as output:
        return subprocess.Popen(ganbench_command(*args), stdin=subprocess.DEVNULL, stdout=output,
                                stderr=subprocess.STDOUT, env=full_env, cwd=cwd, start_new_session=detached,
                                preexec_fn=_die_with(os.getpid()) if tied else None)


def _die_with(parent_pid: int):
    def prepare() -> None:
        if _LIBC is not None:
            _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
            if os.getppid() != parent_pid:  # the parent died before prctl: do not run unattended
                os._exit(1)
    return prepare
