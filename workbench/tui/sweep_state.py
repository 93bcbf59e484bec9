"""What the sweep screen shows, read from the sweep folder alone (no textual here, so it is testable plainly).

The same files any reader uses: ``sweep.json`` for the trials, each trial's
``state.json`` and its newest ``metrics`` event for its progress, ``events.jsonl`` for its curves, and the
comparison of ``workbench.sweep.compare`` for the leaderboard.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from workbench.rundir.directory import RunDir, steps_done
from workbench.rundir.events import iter_events
from workbench.sweep.compare import compare_runs, sweep_runs, sweep_statuses
from workbench.sweep.figures import sheet_step
from workbench.sweep.manifest import FINAL, Sweep, planned_trials
from workbench.sweep.space import point_label

Points = list[tuple[int, float]]


@dataclass
class SweepView:
    """One reading of a sweep: trials, leaderboard, curves and sample grids."""

    title: str = ""
    trials: list[dict] = field(default_factory=list)
    report: dict = field(default_factory=dict)
    objective: dict[str, Points] = field(default_factory=dict)  # setting label -> mean curve
    losses: dict[str, Points] = field(default_factory=dict)  # trial name -> G loss curve
    grids: list[tuple[str, str]] = field(default_factory=list)  # (label, sample PNG path) per setting
    grid_step: int | None = None
    active: bool = False


def _losses(run: RunDir, key: str = "g_loss") -> Points:
    points = []
    for event in iter_events(run.events):
        value = event.get(key)
        if event.get("type") == "metrics" and isinstance(event.get("step"), int) and \
                isinstance(value, (int, float)) and math.isfinite(value):
            points.append((event["step"], float(value)))
    return points


def read_sweep(sweep: Sweep) -> SweepView:
    """Read everything the screen draws."""
    manifest = sweep.read()
    objective = manifest.get("objective", {"metric": "fd", "lower_is_better": True})
    metric = objective["metric"]
    view = SweepView()
    done = 0
    for name, entry in sweep.trials().items():
        run = RunDir(sweep.path / name)
        state = run.read_state()
        status = entry["status"]
        if status == "running" or (status in ("pending", "stopped") and run.state.is_file()):
            status = run.status() if run.state.is_file() else status
            status = "pruned" if status == "stopped" and entry.get("status") == "pruned" else status
        view.active |= status in ("running", "paused")
        done += status in FINAL
        view.trials.append({"name": name, "setting": point_label(entry["point"]), "seed": entry["seed"],
                            "status": status, "step": steps_done(run, state), "total": state.get("total_steps"),
                            "objective": entry.get("objective"), "pruned_at": entry.get("pruned_at")})
    planned = planned_trials(manifest)
    view.title = (f"sweep {manifest.get('name', sweep.path.name)} · {manifest.get('model', '?')} · "
                  f"{manifest.get('search', '?')} · {metric} ({'lower' if objective['lower_is_better'] else 'higher'}"
                  f" is better) · {done}/{planned} trials done")
    runs = sweep_runs(sweep)
    view.report = compare_runs(runs, metric, objective["lower_is_better"], sweep_statuses(sweep))
    for setting in view.report["settings"]:
        by_step: dict[int, list[float]] = {}
        for run in setting["runs"]:
            for step, value in run["curve"]:
                by_step.setdefault(step, []).append(value)
        view.objective[setting["label"]] = [(s, sum(v) / len(v)) for s, v in sorted(by_step.items())]
    for run in runs:
        view.losses[run.path.name] = _losses(run)
    view.grid_step = sheet_step(view.report)
    for setting in view.report["settings"]:
        first = next((r for r in setting["runs"] if r["samples"]), None)
        if first is not None:
            at = view.grid_step if view.grid_step is not None else max(first["samples"])
            view.grids.append((setting["label"], first["samples"][at]))
    return view
