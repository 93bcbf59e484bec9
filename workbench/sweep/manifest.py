"""The sweep folder and its manifest, ``sweep.json``: what the sweep is, its trials and their status.

::

    runs/<sweep>/
      sweep.json            the definition (model, base configuration, axes, seeds, search, objective)
                            and one entry per trial: its point, seed, Optuna trial number, status
      optuna-journal.log    the Optuna study (JournalStorage): how joined drivers share one search
      <trial>/              each trial is an ordinary run directory
      .sweep.lock           held briefly while a driver reads and rewrites sweep.json or takes a trial
      .claims/<trial>.lock  held by the driver watching that trial, for as long as it lives

Several drivers (``--join``, on this machine or another sharing the folder) may work on one
sweep: every change to ``sweep.json`` is a read-modify-write under ``.sweep.lock``, and a
trial belongs to whichever driver holds its claim. The kernel drops both locks when a driver
dies, however it dies, so an orphaned trial is simply one whose claim nobody holds.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Callable, Iterator

from workbench.base.atomic import write_text_atomic
from workbench.base.errors import ConfigError

MANIFEST = "sweep.json"
JOURNAL = "optuna-journal.log"
FORMAT = 1
# A trial's status in the manifest. "stopped" (the sweep was interrupted) and "crashed" resume;
# the others are final.
UNFINISHED = ("pending", "running", "stopped", "crashed")
FINAL = ("completed", "pruned", "failed", "diverged")


def is_sweep(path: Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def list_sweeps(root: Path) -> list[Sweep]:
    """Every sweep folder directly under ``root``, newest first."""
    if not Path(root).is_dir():
        return []
    found = [Sweep(p) for p in Path(root).iterdir() if is_sweep(p)]
    return sorted(found, key=lambda s: s.manifest.stat().st_ctime, reverse=True)


def summarize_sweep(sweep: Sweep) -> dict:
    """A row for the runs browser: the sweep's name, whether a trial trains now, trials done of planned."""
    from workbench.rundir.directory import RunDir  # the run directory's status reads its lock

    manifest = sweep.read()
    trials = manifest.get("trials") or {}
    statuses = [RunDir(sweep.path / name).status() if entry["status"] == "running" else entry["status"]
                for name, entry in trials.items()]
    planned = planned_trials(manifest)
    done = sum(status in FINAL for status in statuses)
    running = any(status in ("running", "paused") for status in statuses) or bool(drivers_here(manifest))
    return {"kind": "sweep", "name": manifest.get("name", sweep.path.name), "path": str(sweep.path),
            "status": "running" if running else ("done" if done >= planned else "stopped"),
            "model": f"sweep · {manifest.get('model', '?')}", "dataset": manifest.get("base", {}).get("dataset", "?"),
            "loss": manifest.get("base", {}).get("loss", "?"), "step": done, "total_steps": planned,
            "d_loss": None, "g_loss": None, "started": manifest.get("created")}


def planned_trials(manifest: dict) -> int:
    """How many trials the sweep trains in all: a grid's are all listed; a search draws ``--trials`` settings,
    each with every seed."""
    if manifest.get("search") == "grid":
        return len(manifest.get("trials") or {})
    return (manifest.get("trials_limit") or 0) * len(manifest.get("seeds") or [0])


def drivers_here(manifest: dict) -> list[int]:
    """The process ids of the drivers working on this sweep from this machine, alive now."""
    from workbench.rundir.directory import pid_alive

    host = os.uname().nodename
    drivers = [key.rpartition(":") for key in manifest.get("drivers") or {}]
    return [int(pid) for where, _, pid in drivers if where == host and pid.isdigit() and pid_alive(int(pid))]


def drivers_sharing_cores(manifest: dict) -> list[int]:
    """The other live drivers on this machine whose processors overlap this process's (on Linux; elsewhere every
    other driver here): their CPU trials and ours would each take every shared core."""
    shared = []
    for pid in drivers_here(manifest):
        if pid == os.getpid():
            continue
        try:
            overlap = os.sched_getaffinity(pid) & os.sched_getaffinity(0)
        except AttributeError:  # no affinity outside Linux: assume the cores are shared
            overlap = True
        except OSError:  # it ended meanwhile
            continue
        if overlap:
            shared.append(pid)
    return shared


class Sweep:
    """A sweep folder: its manifest, its locks, its trials' run directories."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @property
    def manifest(self) -> Path:
        return self.path / MANIFEST

    @property
    def journal(self) -> Path:
        return self.path / JOURNAL

    @classmethod
    def open(cls, path: Path | str, flag: str) -> Sweep:
        """The sweep at ``path``, or ConfigError (one sentence) when the folder is no sweep."""
        path = Path(path)
        if not path.is_dir():
            raise ConfigError(f"{flag} {path}: there is no such folder.")
        if not is_sweep(path):
            raise ConfigError(f"{flag} {path}: this folder is no sweep (it has no {MANIFEST}); "
                              f"start one with ganbench sweep.")
        sweep = cls(path)
        if sweep.read().get("format") != FORMAT:
            raise ConfigError(f"{flag} {path}: its {MANIFEST} is damaged or from another version of ganbench.")
        return sweep

    def read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def write(self, data: dict[str, Any]) -> None:
        write_text_atomic(self.manifest, json.dumps(data, indent=1))

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the sweep's lock: one driver at a time reads and rewrites the manifest or takes a trial."""
        fd = os.open(self.path / ".sweep.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _flock(fd, blocking=True)
            yield
        finally:
            os.close(fd)

    def update(self, change: Callable[[dict], Any]) -> Any:
        """Apply ``change`` to the manifest under the lock and write it back; return what ``change`` returned."""
        with self.locked():
            data = self.read()
            result = change(data)
            self.write(data)
        return result

    def claim(self, name: str) -> int | None:
        """Take the trial ``name`` for this process: a lock descriptor to keep, or None when another driver has it."""
        folder = self.path / ".claims"
        folder.mkdir(exist_ok=True)
        fd = os.open(folder / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        if _flock(fd, blocking=False):
            return fd
        os.close(fd)
        return None

    def trials(self) -> dict[str, dict]:
        """The trials, in the order they were created."""
        trials = self.read().get("trials") or {}
        return dict(sorted(trials.items(), key=lambda item: item[1].get("number", 0)))


def _flock(fd: int, blocking: bool) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; one driver per sweep there
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    except OSError:
        return True  # a file system without locks: carry on, as the run lock does
    return True
