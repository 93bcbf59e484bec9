"""One trial: its run configuration, the ``ganbench run`` process that trains it, and how it ended.

A trial is launched exactly as the workbench launches a run: the driver makes
its run folder with ``create_run_dir`` (the config.json carries the sweep, trial
and point in ``tags``) and starts ``python -m workbench run --config
<folder>/config.json``, whose console goes to ``console.log`` in the folder.
On Linux the child asks the kernel for SIGTERM when its driver dies
(``PR_SET_PDEATHSIG``), so after a ``kill -9`` of the driver every trial
checkpoints and stops instead of training unattended.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.host.configure import validate
from workbench.host.registry import Registry
from workbench.quality.history import eval_events
from workbench.rundir.config import ENGINE_PARAMS, RunConfig
from workbench.rundir.directory import RunDir
from workbench.rundir.launch import last_error
from workbench.rundir.process import start_ganbench

CONSOLE_LOG = "console.log"


def trial_config(manifest: dict[str, Any], registry: Registry, name: str, point: dict[str, Any],
                 seed: int) -> RunConfig:
    """The run configuration of one trial: the sweep's base, the point's values, the seed, the sweep's folder."""
    config = RunConfig.from_dict((manifest.get("bases") or {}).get(point.get("model"), manifest["base"]))
    spec = registry.model(config.model)
    engine_keys = {p.name for p in ENGINE_PARAMS}
    for key, value in point.items():
        if spec.param(key) is not None:
            config.hyperparams[key] = value
        elif key in engine_keys:
            config.engine[key] = value
    config.seed, config.name, config.runs_dir = seed, name, manifest["runs_dir"]
    config.tags = {"sweep": manifest["name"], "trial": name, "point": point}  # opaque to the engine
    validate(config, registry)
    return config


@dataclass
class TrialProcess:
    """A running trial: its process, where it writes, what the driver has read of its events."""

    name: str
    number: int
    run: RunDir
    process: subprocess.Popen
    claim: int
    slot: Any
    where: str  # the slot and, on a CPU, the trial's threads: "cpu slot 2 (1 thread)", "cuda:1"
    threads: int = 0  # on a CPU, the trial's share of the cores
    offset: int = 0
    step: int = 0
    total_steps: int | None = None
    objective: float | None = None
    prune_step: int | None = None
    reported: set = field(default_factory=set)

    def new_events(self) -> list[dict]:
        """The events appended since the last call (whole lines only)."""
        import json

        try:
            with open(self.run.events, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except OSError:
            return []
        end = data.rfind(b"\n") + 1
        self.offset += end
        events = []
        for line in data[:end].splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                events.append(event)
        return events


def start_trial(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    """Start ``python -m workbench run ARGS`` as a child that dies with this process; console into ``log``."""
    return start_ganbench(["run", *args], log, env=env, tied=True)


def objective_of(run: RunDir, metric: str) -> tuple[int, float] | None:
    """The last (step, value) of ``metric`` in the run's eval events, or None."""
    last = None
    for event in eval_events(run.events):
        value = event["metrics"].get(metric)
        if isinstance(value, (int, float)) and isinstance(event.get("step"), int):
            last = (event["step"], float(value))
    return last


def outcome(run: RunDir, exit_code: int | None, prune_step: int | None, log: Path) -> tuple[str, str]:
    """How a trial ended, as (manifest status, message)."""
    state = run.read_state()
    status = run.status() if run.config.is_file() else "unknown"
    message = state.get("message", "")
    if status == "stopped" and prune_step is not None:
        return "pruned", f"Pruned at step {prune_step}."
    if status in ("completed", "failed", "diverged", "stopped", "crashed"):
        return status, message
    if exit_code not in (None, 0) and not run.events.is_file():
        return "failed", last_error(log) or f"The trial process exited with code {exit_code} before training."
    return "crashed", message or "The trial process ended without a word."
