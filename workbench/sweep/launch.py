"""Starting ``ganbench sweep`` detached, as the workbench starts runs: it outlives the app and the SSH session."""

from __future__ import annotations

import subprocess
from pathlib import Path

from workbench.rundir.process import start_ganbench


def launch_sweep(args: list[str], log: Path) -> subprocess.Popen:
    """Start ``python -m workbench sweep ARGS`` in a session of its own, its console into ``log``."""
    return start_ganbench(["sweep", *args], log, detached=True)
