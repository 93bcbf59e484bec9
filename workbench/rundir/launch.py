"""Starting training runs as detached processes, and finding the runs still training.

The workbench never trains in its own process. It creates the run directory and
its ``config.json`` itself (``create_run_dir``), then starts
``python -m workbench run --config <run>/config.json`` in a session of its own,
so the run survives the app closing or the SSH connection dropping, and watches
the run directory like any other reader. The process's console output goes to
``console.log`` in the run directory.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from workbench.base.errors import GanbenchError
from workbench.rundir.config import RunConfig
from workbench.rundir.directory import RunDir, create_run_dir, list_runs
from workbench.rundir.process import start_ganbench

ACTIVE = ("running", "paused")
CONSOLE_LOG = "console.log"


@dataclass
class Launched:
    """A ``ganbench run`` process this session started, and its run directory.

    :param prepared: this session created the run directory for the process (a new run, not a resume).
    """

    process: subprocess.Popen
    run_dir: RunDir
    log: Path
    events_at_start: int = 0
    prepared: bool = False
    error: str | None = None

    def poll(self) -> int | None:
        """Reap the process if it ended: its exit code, else None.

        A new run refused in one sentence before training leaves no folder behind, as ``ganbench run`` does
        when it cannot start: the sentence is kept here (``failure``) and the folder made for the run is removed.
        Any other early end keeps the folder, for its ``console.log``.
        """
        code = self.process.poll()
        if code is None or code == 0 or self.error is not None or _size(self.run_dir.events) > self.events_at_start:
            return code
        sentence = last_error(self.log)
        if sentence is not None and self.prepared and _never_started(self.run_dir):
            shutil.rmtree(self.run_dir.path, ignore_errors=True)
        self.error = sentence or f"The run process exited with code {code}; its output is in {self.log}."
        return code

    def failure(self) -> str | None:
        """Why the process ended before training (one sentence), or None while it runs or once it trained."""
        self.poll()
        return self.error


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


def _never_started(run_dir: RunDir) -> bool:
    """True while the engine has written nothing into ``run_dir``: no state, no events, no grid, no checkpoint."""
    return not (run_dir.state.exists() or run_dir.events.exists() or any(run_dir.samples.glob("*"))
                or any(run_dir.checkpoints.glob("*")))


def _start(args: list[str], log: Path) -> subprocess.Popen:
    # its own session: no SIGHUP when the terminal goes; NO_COLOR is dropped: the run writes plain lines to a file anyway
    return start_ganbench(["run", *args], log, detached=True, without=("NO_COLOR",))


def launch_run(config: RunConfig) -> Launched:
    """Create the run directory of ``config`` and start ``ganbench run --config <run>/config.json`` detached.

    :param config: a validated configuration; without a ``name`` the run gets ``model-dataset-time``.
    Raises ConfigError or GanbenchError (one sentence) when the run folder cannot be created.
    """
    run_dir = RunDir(create_run_dir(config).path.absolute())
    log = run_dir.path / CONSOLE_LOG
    try:
        process = _start(["--config", str(run_dir.config)], log)
    except OSError as exc:
        shutil.rmtree(run_dir.path, ignore_errors=True)
        raise GanbenchError(f"Cannot start the training process: {exc.strerror or exc}.") from None
    return Launched(process, run_dir, log, prepared=True)


def resume_run(run_path: Path, steps: int | None = None) -> Launched:
    """Continue the run at ``run_path`` from its last checkpoint (``ganbench run --resume``), detached.

    :param steps: train until this step in total; None keeps the run's own length.
    """
    run_dir = RunDir(Path(run_path).absolute())
    extra = ["--steps", str(steps)] if steps is not None else []
    log = run_dir.path / CONSOLE_LOG
    events_at_start = _size(run_dir.events)
    return Launched(_start(["--resume", str(run_dir.path), *extra], log), run_dir, log, events_at_start)


def active_runs(root: Path) -> list[RunDir]:
    """The runs under ``root`` that are training or paused now (a process that died reads as crashed)."""
    return [run for run in list_runs(Path(root)) if run.status() in ACTIVE]

