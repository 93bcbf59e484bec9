"""The run directory: what a run leaves behind, and its status for other processes.

::

    runs/<name>/
      config.json        the resolved configuration
      state.json         status (running, paused, completed, stopped, diverged, failed), pid, step
      events.jsonl       every event, append-only
      samples/step-00000500.png
      checkpoints/step-00002000.safetensors ... and latest.safetensors
      requests/          commands from the workbench (stop, pause, resume, checkpoint)
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from workbench.base.atomic import write_text_atomic
from workbench.base.errors import CheckpointError, ConfigError, DiskError
from workbench.rundir.config import RunConfig, check_run_name, run_name_default, runs_root
from workbench.rundir.lock import LOCK_NAME, run_is_locked


@dataclass
class RunDir:
    """Paths inside one run directory."""

    path: Path

    @property
    def config(self) -> Path:
        return self.path / "config.json"

    @property
    def state(self) -> Path:
        return self.path / "state.json"

    @property
    def events(self) -> Path:
        return self.path / "events.jsonl"

    @property
    def samples(self) -> Path:
        return self.path / "samples"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def latest(self) -> Path:
        return self.checkpoints / "latest.safetensors"

    def step_checkpoints(self) -> list[Path]:
        """The ``step-N.safetensors`` files, oldest first (their zero-padded names sort by step)."""
        return sorted(self.checkpoints.glob("step-*.safetensors"))

    def newest_checkpoint(self) -> Path | None:
        """``latest``, or the newest step file where a kill came before ``latest`` was linked; None if none."""
        if self.latest.is_file():
            return self.latest
        steps = self.step_checkpoints()
        return steps[-1] if steps else None

    def relative(self, path: Path) -> str:
        """``path`` (inside this run directory) relative to it, with ``/``: it stays valid when the run is copied."""
        return path.relative_to(self.path).as_posix()

    @property
    def requests(self) -> Path:
        return self.path / "requests"

    def read_config(self) -> dict:
        """The run's ``config.json`` as a dict; empty when it is missing or unreadable."""
        try:
            config = json.loads(self.config.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return config if isinstance(config, dict) else {}

    def read_state(self) -> dict:
        try:
            return json.loads(self.state.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def write_state(self, **fields) -> None:
        """Update ``state.json`` atomically; on a full disk, in place in the blocks the file already has."""
        state = self.read_state()
        state.update(fields, updated=round(time.time(), 3))
        text = json.dumps(state, indent=1)
        try:
            write_text_atomic(self.state, text)
        except OSError as exc:
            # The atomic way needs room for a second copy. A full disk must not hide how the run ended, and
            # rewriting a file within its own size needs no new block (a crash in between would tear it, but
            # read_state takes a torn state as unknown, and the lock still tells a dead process).
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT) or not _overwrite_in_place(self.state, text):
                raise

    def status(self) -> str:
        """The run's status; a 'running' run whose process is gone (killed, power lost) reads as 'crashed'."""
        state = self.read_state()
        status = state.get("status", "unknown")
        if status in ("running", "paused"):
            held = run_is_locked(self.path)  # the kernel drops the lock of a dead process, pid reuse or not
            if held is False or (held is None and state.get("host") == os.uname().nodename
                                 and not pid_alive(state.get("pid"))):
                return "crashed"
        return status


def resolve_checkpoint(path: Path) -> Path:
    """A checkpoint file, or the latest checkpoint of a run directory."""
    path = Path(path)
    if path.is_dir():
        newest = RunDir(path).newest_checkpoint()
        if newest is None:
            raise CheckpointError(f"{path} holds no checkpoint.")
        return newest
    return path


def _overwrite_in_place(path: Path, text: str) -> bool:
    data = text.encode("utf-8")
    try:
        info = path.stat()
        if max(info.st_size, getattr(info, "st_blocks", 0) * 512) < len(data):  # the blocks it already has
            return False
        with open(path, "r+b") as handle:
            handle.write(data)
            handle.truncate()
            handle.flush()
            os.fsync(handle.fileno())
    except OSError:
        return False
    return True


def pid_alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def create_run_dir(config: RunConfig) -> RunDir:
    """Make a fresh run directory; never reuse or overwrite an existing one.

    Raises DiskError naming the file when the disk refuses; a folder that could not be completed is removed,
    so a run that could not start leaves nothing behind (and its name stays free).
    """
    root = runs_root(config)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DiskError(f"Cannot create the runs folder {root}: {exc.strerror}.") from None
    path = _claim_name(root, config)
    run_dir = RunDir(path)
    writing = path
    try:
        for writing in (run_dir.samples, run_dir.checkpoints, run_dir.requests):
            writing.mkdir()
        writing = run_dir.config
        write_text_atomic(run_dir.config, json.dumps(config.to_dict(), indent=2))
    except OSError as exc:
        shutil.rmtree(path, ignore_errors=True)
        raise DiskError(f"Cannot create the run folder {path}: {exc.strerror or exc} (writing {writing.name}).") \
            from None
    return run_dir


def _claim_name(root: Path, config: RunConfig) -> Path:
    """Create the run's folder under ``root``: ``config.name``, or the first free default name (set in config)."""
    if config.name:
        name = check_run_name(config.name)
        path = root / name
        try:
            path.mkdir()
        except FileExistsError:
            raise ConfigError(f'A run named "{name}" already exists in {root}; choose another --name '
                              f"or continue it with --resume {path}.") from None
        except OSError as exc:
            raise DiskError(f"Cannot create the run folder {path}: {exc.strerror}.") from None
        return path
    base = run_name_default(config, time.strftime("%Y%m%d-%H%M%S"))
    for attempt in range(1, 1000):
        path = root / (base if attempt == 1 else f"{base}-{attempt}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            raise DiskError(f"Cannot create the run folder {path}: {exc.strerror}.") from None
        config.name = path.name
        return path
    raise ConfigError(f"{root} already holds 999 runs named {base}; give this one a --name.")


def discard_unstarted(run_dir: RunDir) -> bool:
    """Remove a run folder that ``create_run_dir`` made and no training has written to; True if removed.

    A folder holding anything beyond the empty sub-folders and ``config.json`` is left alone.
    """
    expected = {run_dir.config, run_dir.samples, run_dir.checkpoints, run_dir.requests, run_dir.path / LOCK_NAME}
    try:
        if any(p not in expected or (p.is_dir() and any(p.iterdir())) for p in run_dir.path.iterdir()):
            return False
        shutil.rmtree(run_dir.path)
    except OSError:
        return False
    return True


def list_runs(root: Path) -> list[RunDir]:
    """Every run directory under ``root``, newest first."""
    if not root.is_dir():
        return []
    runs = [RunDir(p) for p in root.iterdir() if (p / "config.json").is_file()]
    return sorted(runs, key=lambda r: r.config.stat().st_mtime, reverse=True)


def last_event(run_dir: RunDir, kind: str, tail_bytes: int = 256 * 1024) -> dict | None:
    """The newest event of ``kind``, read from the end of the log only."""
    try:
        with open(run_dir.events, "rb") as handle:
            handle.seek(max(0, handle.seek(0, 2) - tail_bytes))
            lines = handle.read().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("type") == kind:
            return event
    return None


def steps_done(run_dir: RunDir, state: dict | None = None, metrics: dict | None = None) -> int:
    """How far a run has trained: ``state.json`` holds the step of the last checkpoint (and the last step once
    it ends), the newest ``metrics`` event the step a run that is training has reached since."""
    state = run_dir.read_state() if state is None else state
    metrics = (last_event(run_dir, "metrics") or {}) if metrics is None else metrics
    return max(state.get("step") or 0, metrics.get("step") or 0)


def summarize(run_dir: RunDir) -> dict:
    """One row of the runs table: name, status, model, dataset, loss, steps, last losses, start time."""
    config = run_dir.read_config()
    state = run_dir.read_state()
    metrics = last_event(run_dir, "metrics") or {}
    return {"name": run_dir.path.name, "path": str(run_dir.path), "status": run_dir.status(),
            "model": config.get("model", "?"), "dataset": config.get("dataset", "?"), "loss": config.get("loss", "?"),
            "step": steps_done(run_dir, state, metrics), "total_steps": state.get("total_steps"),
            "world_size": state.get("world_size", 1), "images_per_s": metrics.get("images_per_s"),
            "d_loss": metrics.get("d_loss"), "g_loss": metrics.get("g_loss"), "kimg": metrics.get("kimg"),
            # every training metric of the last log line: the four and what the run declared (r1, aug_p ...)
            "metrics": {k: v for k, v in metrics.items() if k not in _NOT_METRICS},
            "started": run_dir.config.stat().st_mtime if run_dir.config.exists() else None}


_NOT_METRICS = ("type", "time", "step", "epoch", "batch", "kimg", "images_per_s")
