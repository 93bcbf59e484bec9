"""A new sweep: check everything the user gave, then create its folder, manifest and study.

Every check comes first, so bad input ends in one sentence with nothing created.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from workbench.base.errors import ConfigError, nearest
from workbench.host.configure import build_config
from workbench.rundir.config import ENGINE_PARAMS, check_run_name, eval_metric_names
from workbench.sweep import study as studies
from workbench.sweep.manifest import FORMAT, Sweep
from workbench.sweep.space import Axis, grid_points, parse_sets, trial_name


def plan_sweep(registry, *, model: str, sets: list[str], seeds: int, search: str | None, trials: int | None,
               objective: str, prune: str | None, name: str | None, runs_dir: str, command: list[str],
               **run_fields) -> dict[str, Any]:
    """The manifest of a new sweep, checked; raises ConfigError (one sentence) for anything wrong.

    :param sets: ``--set`` items; lists and ranges become the sweep's axes, single values its base.
    :param run_fields: the other ``ganbench run`` settings (dataset, loss, steps, device, seed, data_root ...).
    """
    spec = registry.model(model)
    engine = {p.name: p for p in ENGINE_PARAMS}

    def lookup(key: str):
        param = spec.param(key) or engine.get(key)
        if param is None:
            names = [p.name for p in spec.hyperparams] + list(engine)
            raise ConfigError(f'"{key}" is not a setting of {model}.{nearest(key, names)} Settings: {", ".join(names)}.')
        return param

    fixed, axes = parse_sets(sets, lookup)
    fixed_keys = {item.partition("=")[0].strip() for item in fixed}
    clash = {a.key for a in axes} & fixed_keys
    if clash:
        raise ConfigError(f"--set {sorted(clash)[0]} is given both as one value and as a list or range; give it once.")
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1; got {seeds}.")
    search = _check_search(axes, search, trials, seeds)
    if prune is not None and prune not in studies.PRUNERS:
        raise ConfigError(f'--prune takes {" or ".join(studies.PRUNERS)}; got "{prune}".')
    metric = registry.metric(objective)  # an unknown metric ends here, in one sentence
    name = check_run_name(name or f"sweep-{model}-{time.strftime('%Y%m%d-%H%M%S')}")
    base = build_config(registry, model, sets=fixed, runs_dir=runs_dir, **run_fields)
    notes = []
    if "eval_every" in fixed_keys and not base.engine["eval_every"]:
        if prune is not None:
            raise ConfigError("--prune judges trials by their evaluations during training, and eval_every=0 turns "
                              "them off; give eval_every=N or leave out --prune.")
        notes.append(f"eval_every=0: no {objective} is measured during training, so the trials are compared by "
                     f"their sample grids only.")
    elif not base.engine["eval_every"]:
        base.engine["eval_every"] = max(1, base.steps // 4) if base.steps else 500
        notes.append(f"eval_every was not given: the objective ({objective}) is measured every "
                     f"{base.engine['eval_every']} steps.")
    names = eval_metric_names(base.engine)
    if not metric.default and objective not in (names or []):  # fid is computed during training only when named
        # named metrics are strict, so those only a conditional model can give stay out
        defaults = [item.spec.name for item in registry.metrics.values()
                    if item.spec.default and not item.spec.needs_labels]
        base.engine["eval_metrics"] = "+".join((names or defaults) + [objective])
        notes.append(f"{objective} is not a default metric: the trials compute eval_metrics="
                     f"{base.engine['eval_metrics']}.")
    base.name = None
    folder = Path(runs_dir).expanduser() / name
    if folder.exists():
        raise ConfigError(f'A sweep or run named "{name}" already exists in {folder.parent}; choose another '
                          f"--name, or continue it with ganbench sweep --resume {folder}.")
    return {"format": FORMAT, "name": name, "created": round(time.time(), 3), "model": model,
            "runs_dir": str(folder), "base": {**base.to_dict(), "runs_dir": str(folder)},
            "axes": [a.to_dict() for a in axes], "seeds": [base.seed + i for i in range(seeds)], "search": search,
            "trials_limit": trials, "objective": {"metric": objective, "lower_is_better": metric.lower_is_better},
            "prune": prune, "total_steps": base.steps, "command": command, "notes": notes, "trials": {}}


def _check_search(axes: list[Axis], search: str | None, trials: int | None, seeds: int) -> str:
    ranges = [a for a in axes if a.is_range]
    search = search or ("tpe" if ranges else "grid")
    if search not in studies.SEARCHES:
        raise ConfigError(f'--search takes {", ".join(studies.SEARCHES)}; got "{search}".')
    if search == "grid":
        if ranges:
            raise ConfigError(f"--set {ranges[0].describe()} is a range, which a grid cannot list; search it with "
                              f"--search random or tpe and --trials N.")
        if trials is not None:
            raise ConfigError("--trials counts the settings a search draws, but every --set here is a list, so the "
                              "grid runs each combination once; leave --trials out (or give a range lo..hi).")
        if not axes and seeds < 2:
            raise ConfigError("Nothing to sweep: give --set KEY=V1,V2 (a list), KEY=lo..hi with --trials N, "
                              "or --seeds N.")
        return search
    if not axes:
        raise ConfigError(f"--search {search} needs a setting to search: --set KEY=lo..hi or KEY=V1,V2.")
    if trials is None or trials < 1:
        raise ConfigError(f"--search {search} needs --trials N (N >= 1): how many settings to draw.")
    return search


def create_sweep(manifest: dict[str, Any]) -> Sweep:
    """Create the sweep folder, its study and (for a grid) every trial, pending; the folder must not exist."""
    sweep = Sweep(Path(manifest["runs_dir"]))
    try:
        sweep.path.mkdir(parents=True)
    except FileExistsError:
        raise ConfigError(f'A sweep or run named "{manifest["name"]}" already exists in {sweep.path.parent}; '
                          f"choose another --name.") from None
    sweep.write(manifest)
    studies.create_study(sweep, manifest["name"], manifest["objective"]["lower_is_better"])
    if manifest["search"] == "grid":
        axes = [Axis.from_dict(a) for a in manifest["axes"]]
        study = studies.load_study(sweep, manifest)
        with sweep.locked():
            for point in grid_points(axes):
                for seed in manifest["seeds"]:
                    number = studies.fixed_trial(study, axes, point, seed)
                    manifest["trials"][trial_name(number, point, seed)] = {
                        "number": number, "point": point, "seed": seed, "status": "pending"}
            sweep.write(manifest)
    return sweep
