"""Comparing runs by sample quality: one row per setting, the objective's mean ± std over seeds.

Works on any set of runs, not only a sweep's: runs whose configurations differ
only by seed (and name) are one setting; the settings' differing values name
them. Everything here reads run directories and nothing else.
"""

from __future__ import annotations

import io
import json
import statistics
from typing import Any

from workbench.quality.history import eval_events
from workbench.rundir.directory import RunDir
from workbench.rundir.events import iter_events
from workbench.sweep.manifest import Sweep
from workbench.sweep.space import format_value

_NOT_SETTINGS = ("seed", "name", "runs_dir", "device", "data_root", "download", "tags")


def sweep_runs(sweep: Sweep) -> list[RunDir]:
    """The sweep's trials that have a run directory, in the order they were created."""
    runs = [RunDir(sweep.path / name) for name in sweep.trials()]
    return [run for run in runs if run.config.is_file()]


def sweep_statuses(sweep: Sweep) -> dict[str, str]:
    """The statuses a sweep knows better than its runs: a pruned trial's run says only "stopped"."""
    return {name: "pruned" for name, entry in sweep.trials().items() if entry["status"] == "pruned"}


def _config(run: RunDir) -> dict:
    try:
        data = json.loads(run.config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _flat(config: dict) -> dict[str, Any]:
    flat = {}
    for key, value in config.items():
        if key in _NOT_SETTINGS:
            continue
        if isinstance(value, dict):
            flat.update({k: v for k, v in value.items()})
        else:
            flat[key] = value
    return flat


def _curve(run: RunDir, metric: str) -> list[tuple[int, float]]:
    """The run's values of ``metric`` by step: from its ``eval`` events, else (a metric the model declares, such as
    pix2pix's val_l1) from its ``metrics`` events."""
    by_step: dict[int, float] = {}
    for event in eval_events(run.events):
        value = event["metrics"].get(metric)
        if isinstance(event.get("step"), int) and isinstance(value, (int, float)):
            by_step[event["step"]] = float(value)  # a later evaluation of the same step wins
    if not by_step and run.events.is_file():
        for event in iter_events(run.events):
            value = event.get(metric) if event.get("type") == "metrics" else None
            if isinstance(event.get("step"), int) and isinstance(value, (int, float)):
                by_step[event["step"]] = float(value)
    return sorted(by_step.items())


def declared_direction(runs: list[RunDir], metric: str) -> bool | None:
    """Whether lower is better for ``metric`` if the runs' model declares it (``metric_keys``), else None."""
    for run in runs:
        start = next((e for e in iter_events(run.events) if e.get("type") == "run_start"), None) \
            if run.events.is_file() else None
        if start and metric in (start.get("metric_keys") or []):
            return metric not in (start.get("higher_is_better") or [])
    return None


def _value_at(curve: list[tuple[int, float]], step: int) -> float | None:
    before = [value for at, value in curve if at <= step]
    return before[-1] if before else None


def _stats(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _sample_steps(run: RunDir) -> dict[int, str]:
    steps = {}
    for path in sorted(run.samples.glob("step-*.png")):
        try:
            steps[int(path.stem.split("-")[1])] = str(path)
        except (IndexError, ValueError):
            continue
    return steps


def _why_unranked(runs: list[RunDir], metric: str) -> str:
    for run in runs:
        for line in run.events.read_text(encoding="utf-8", errors="replace").splitlines() \
                if run.events.is_file() else []:
            if '"Quality metrics are off' in line:
                try:
                    message = json.loads(line)["message"].split(": ", 1)[-1]
                except (ValueError, KeyError):
                    continue
                return f"Cannot rank by {metric}: {message.rstrip('.')} (so only the contact sheet compares them)."
    return (f"Cannot rank by {metric}: none of these runs has an {metric} value; train with --set eval_every=N "
            f"on a dataset with labels.")


def compare_runs(runs: list[RunDir], metric: str, lower_is_better: bool = True,
                 statuses: dict[str, str] | None = None) -> dict[str, Any]:
    """The comparison as plain data (what ``--json`` prints): settings, their runs and statistics, the best.

    :param statuses: run name -> status to show instead of the run's own (a sweep's "pruned").
    """
    groups: dict[str, list[dict]] = {}
    flats = {}
    for run in runs:
        config = _config(run)
        flat = flats[run.path] = _flat(config)
        curve = _curve(run, metric)
        groups.setdefault(json.dumps(flat, sort_keys=True, default=str), []).append({
            "name": run.path.name, "path": str(run.path), "seed": config.get("seed"),
            "status": (statuses or {}).get(run.path.name) or run.status(), "curve": curve,
            "last_step": curve[-1][0] if curve else None, "last": curve[-1][1] if curve else None,
            "samples": _sample_steps(run)})
    varying = _label_keys([json.loads(key) for key in groups])
    ends = [r["last_step"] for g in groups.values() for r in g if r["last_step"] is not None]
    common = min(ends) if ends else None
    settings = []
    for key, members in groups.items():
        flat = json.loads(key)
        point = {k: flat[k] for k in varying if k in flat}  # a setting of one model is not another's
        for run in members:
            run["at_common"] = _value_at(run["curve"], common) if common is not None else None
        mean_last, std_last = _stats([r["last"] for r in members if r["last"] is not None])
        mean_common, std_common = _stats([r["at_common"] for r in members if r["at_common"] is not None])
        settings.append({"label": " ".join(f"{k}={format_value(v)}" for k, v in point.items()) or "(one setting)",
                         "point": point, "runs": members, "mean_last": mean_last, "std_last": std_last,
                         "mean_common": mean_common, "std_common": std_common,
                         "complete": all(r["status"] == "completed" and r["last"] is not None for r in members)})
    ranked = sorted((s for s in settings if s["complete"]), key=lambda s: s["mean_last"],
                    reverse=not lower_is_better)
    for rank, setting in enumerate(ranked, 1):
        setting["rank"] = rank
    report = {"metric": metric, "lower_is_better": lower_is_better, "common_step": common,
              "settings": ranked + [s for s in settings if not s["complete"]], "best": None, "unranked_reason": None}
    if ranked:
        best = ranked[0]
        run = min((r for r in best["runs"]), key=lambda r: r["last"] * (1 if lower_is_better else -1))
        steps = max(r["last_step"] for r in best["runs"])
        report["best"] = {"label": best["label"], "run": run["path"],
                          "command": f"ganbench run --resume {run['path']} --steps {2 * steps}"}
    elif runs:
        report["unranked_reason"] = _why_unranked(runs, metric) if not ends else \
            f"Cannot rank by {metric}: no setting has finished every seed yet."
    return report


def _varying(flats: list[dict]) -> list[str]:
    """The settings whose values differ between the runs (a setting some runs lack differs too)."""
    keys = list(dict.fromkeys(key for flat in flats for key in flat))
    return [key for key in keys
            if any(json.dumps(f.get(key), default=str) != json.dumps(flats[0].get(key), default=str) for f in flats)]


def _label_keys(flats: list[dict]) -> list[str]:
    """What names a setting: the varying settings; between models, the model and what varies within one model
    (the models' own defaults, which differ anyway, would only lengthen every label)."""
    varying = _varying(flats)
    if "model" not in varying:
        return varying
    models: dict[str, list[dict]] = {}
    for flat in flats:
        models.setdefault(flat["model"], []).append(flat)
    within = {key for group in models.values() for key in _varying(group)}
    return ["model"] + [key for key in varying if key in within]


def _pm(mean: float | None, std: float | None) -> str:
    return "-" if mean is None else f"{mean:.4g} ± {std:.2g}"


def format_table(report: dict[str, Any]) -> str:
    """The comparison as text: one row per setting, the best named with the command to train it further."""
    from rich.console import Console
    from rich.table import Table

    metric, common = report["metric"], report["common_step"]
    direction = "lower is better" if report["lower_is_better"] else "higher is better"
    table = Table(box=None, pad_edge=False, title_justify="left")
    for column in ("rank", "setting", "seeds", f"{metric} at last step",
                   f"{metric} at step {common:,}" if common is not None else "at a common step", "trials"):
        table.add_column(column, no_wrap=column != "setting")
    for setting in report["settings"]:
        statuses = sorted({r["status"] for r in setting["runs"]})
        last_steps = sorted({r["last_step"] for r in setting["runs"] if r["last_step"] is not None})
        at = f" (step {last_steps[-1]:,})" if last_steps else ""
        table.add_row(str(setting.get("rank", "-")), setting["label"], str(len(setting["runs"])),
                      _pm(setting["mean_last"], setting["std_last"]) + at,
                      _pm(setting["mean_common"], setting["std_common"]), ", ".join(statuses))
    console = Console(width=160, file=io.StringIO(), color_system=None)
    console.print(f"{metric} ({direction}), mean ± std over seeds")
    console.print(table)
    if report["best"]:
        console.print(f"best: {report['best']['label']}  ({report['best']['run']})")
        console.print(f"train it further: {report['best']['command']}")
    elif report["unranked_reason"]:
        console.print(report["unranked_reason"])
    return console.file.getvalue().rstrip()
