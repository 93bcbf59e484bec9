"""Starting ``ganbench sweep`` detached, as the workbench starts runs: it outlives the app and the SSH session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def launch_sweep(args: list[str], log: Path) -> subprocess.Popen:
    """Start ``python -m workbench sweep ARGS`` in a session of its own, its console into ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log, "ab") as output:
        return subprocess.Popen([sys.executable, "-m", "workbench", "sweep", *args], stdin=subprocess.DEVNULL,
                                stdout=output, stderr=subprocess.STDOUT, env=env, start_new_session=True)
