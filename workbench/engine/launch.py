"""Starting training runs as detached processes, and finding the runs still training.

The workbench never trains in its own process: it starts ``python -m workbench run``
in a session of its own, so the run survives the app closing or the SSH
connection dropping, and then watches the run directory like any other reader.
The process's console output goes to ``console.log`` in the run directory
(before the directory exists, to ``<runs>/.launch/<name>.log``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from workbench.engine.rundir import RunDir, list_runs

ACTIVE = ("running", "paused")
CONSOLE_LOG = "console.log"


@dataclass
class Launched:
    """A ``ganbench run`` process this session started, and where its run directory will be."""

    process: subprocess.Popen
    run_dir: RunDir
    log: Path
    events_at_start: int = 0

    def poll(self) -> int | None:
        """Reap the process if it ended (its exit code, else None); move its console log into the run directory."""
        code = self.process.poll()
        target = self.run_dir.path / CONSOLE_LOG
        if self.log != target and self.run_dir.config.is_file():
            try:
                os.replace(self.log, target)
                self.log = target
            except OSError:
                pass
        return code

    def failure(self) -> str | None:
        """Why the process ended before training (one sentence), or None while it runs or once it trained."""
        code = self.poll()
        if code is None or code == 0 or _size(self.run_dir.events) > self.events_at_start:
            return None
        return last_error(self.log) or f"The run process exited with code {code}; its output is in {self.log}."


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def last_error(log: Path) -> str | None:
    """The ``ganbench: error: ...`` sentence a failed run printed, if any."""
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if line.startswith("ganbench: error: "):
            return line.removeprefix("ganbench: error: ").strip()
    return None


def _start(args: list[str], log: Path, cwd: Path | None = None) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("NO_COLOR", None)  # the run writes plain lines to a file anyway
    with open(log, "ab") as output:
        return subprocess.Popen([sys.executable, "-m", "workbench", "run", *args], stdin=subprocess.DEVNULL,
                                stdout=output, stderr=subprocess.STDOUT, cwd=cwd, env=env,
                                start_new_session=True)  # its own session: no SIGHUP when the terminal goes


def launch_run(args: list[str], runs_dir: Path, name: str) -> Launched:
    """Start ``ganbench run ARGS --name NAME --runs-dir RUNS_DIR`` detached from this process.

    :param args: the other ``ganbench run`` arguments, e.g. ``["--plugin", "mlp_gan", "--steps", "100"]``.
    """
    runs_dir = Path(runs_dir).absolute()
    log = runs_dir / ".launch" / f"{name}.log"
    log.unlink(missing_ok=True)
    process = _start([*args, "--name", name, "--runs-dir", str(runs_dir)], log)
    return Launched(process, RunDir(runs_dir / name), log)


def resume_run(run_path: Path, steps: int | None = None) -> Launched:
    """Continue the run at ``run_path`` from its last checkpoint (``ganbench run --resume``), detached.

    :param steps: train until this step in total; None keeps the run's own length.
    """
    run_dir = RunDir(Path(run_path).absolute())
    extra = ["--steps", str(steps)] if steps is not None else []
    log = run_dir.path / CONSOLE_LOG
    process = _start(["--resume", str(run_dir.path), *extra], log)
    return Launched(process, run_dir, log, events_at_start=_size(run_dir.events))


def active_runs(root: Path) -> list[RunDir]:
    """The runs under ``root`` that are training or paused now (a process that died reads as crashed)."""
    return [run for run in list_runs(Path(root)) if run.status() in ACTIVE]


def free_run_name(root: Path, base: str) -> str:
    """``base``, or ``base-2``, ``base-3`` ... whichever names no existing folder under ``root``."""
    root = Path(root)
    name, attempt = base, 1
    while (root / name).exists() or (root / ".launch" / f"{name}.log").exists():
        attempt += 1
        name = f"{base}-{attempt}"
    return name
