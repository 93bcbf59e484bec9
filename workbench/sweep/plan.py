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

    :param model: one model plugin, or several joined by commas (``dcgan,r3gan``): then ``model`` is the grid's
        first axis, each model trains only the points of the settings it has, and ``--set MODEL:KEY=VALUE``
        gives one model a value of its own.
    :param sets: ``--set`` items; lists and ranges become the sweep's axes, single values its base.
    :param run_fields: the other ``ganbench run`` settings (dataset, loss, steps, device, seed, data_root ...).
    """
    models = _models(registry, model)
    engine = {p.name: p for p in ENGINE_PARAMS}

    def param_of(key: str, among: list[str]):
        return next((p for p in (registry.model(m).param(key) for m in among) if p is not None), None) \
            or engine.get(key)

    def lookup(key: str, among: list[str] = models):
        param = param_of(key, among)
        if param is None:
            names = list(dict.fromkeys([p.name for m in among for p in registry.model(m).hyperparams] + list(engine)))
            raise ConfigError(f'"{key}" is not a setting of {" or ".join(among)}.{nearest(key, names)} '
                              f'Settings: {", ".join(names)}.')
        return param

    shared, own = _scoped(sets, models)
    fixed, axes = parse_sets(shared, lookup)
    for item in fixed:  # a plain value must belong to some model (build_config checks the one it is given to)
        lookup(_key(item))
    for scope, items in own.items():
        if parse_sets(items, lambda key, m=scope: lookup(key, [m]))[1]:
            raise ConfigError(f"--set {scope}:KEY takes one value; a list or range is swept for every model "
                              f"that has the setting (--set KEY=a,b).")
    clash = {a.key for a in axes} & {_key(item) for item in fixed}
    if clash:
        raise ConfigError(f"--set {sorted(clash)[0]} is given both as one value and as a list or range; give it once.")
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1; got {seeds}.")
    if len(models) > 1 and (search or "grid") != "grid":
        raise ConfigError("A sweep of several models runs a grid: give their settings as lists (KEY=a,b), or "
                          "search one model at a time.")
    search = _check_search(axes, search, trials, repeats=seeds > 1 or len(models) > 1)
    if prune is not None and prune not in studies.PRUNERS:
        raise ConfigError(f'--prune takes {" or ".join(studies.PRUNERS)}; got "{prune}".')
    metric = registry.metric(objective)  # an unknown metric ends here, in one sentence
    name = check_run_name(name or f"sweep-{'+'.join(models)}-{time.strftime('%Y%m%d-%H%M%S')}")
    folder = Path(runs_dir).expanduser() / name
    notes: list[str] = []
    bases = {}
    for each in models:
        mine = [item for item in fixed if param_of(_key(item), [each])] + own.get(each, [])
        base = build_config(registry, each, sets=mine, runs_dir=runs_dir, **run_fields)
        _evaluation_defaults(base, registry, {_key(item) for item in mine}, prune, objective, metric, notes)
        base.name = None
        bases[each] = {**base.to_dict(), "runs_dir": str(folder)}
    if folder.exists():
        raise ConfigError(f'A sweep or run named "{name}" already exists in {folder.parent}; choose another '
                          f"--name, or continue it with ganbench sweep --resume {folder}.")
    manifest = {"format": FORMAT, "name": name, "created": round(time.time(), 3), "model": ",".join(models),
                "runs_dir": str(folder), "base": bases[models[0]], "axes": [a.to_dict() for a in axes],
                "seeds": [bases[models[0]]["seed"] + i for i in range(seeds)], "search": search,
                "trials_limit": trials, "objective": {"metric": objective, "lower_is_better": metric.lower_is_better},
                "prune": prune, "total_steps": bases[models[0]]["steps"], "command": command, "notes": notes,
                "trials": {}}
    if len(models) > 1:  # each model's base, and which axes it trains (a model ignores the others' settings)
        manifest["bases"] = bases
        manifest["axes"].insert(0, Axis("model", "str", tuple(models)).to_dict())
        manifest["applies"] = {m: ["model"] + [a.key for a in axes if param_of(a.key, [m])] for m in models}
    return manifest


def _key(item: str) -> str:
    """The setting a ``KEY=VALUE`` item names."""
    return item.partition("=")[0].strip()


def _models(registry, model: str) -> list[str]:
    models = [m.strip() for m in model.split(",")]
    if "" in models:
        raise ConfigError(f'--plugin {model} has an empty name in its list; remove the extra comma.')
    if len(set(models)) != len(models):
        raise ConfigError(f"--plugin {model} names a model twice; name each once (--seeds N repeats a setting).")
    for each in models:
        registry.model(each)  # an unknown model ends here, in one sentence
    return models


def _scoped(sets: list[str], models: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """``--set KEY=V`` items for every model, and ``--set MODEL:KEY=V`` items by model."""
    shared: list[str] = []
    own: dict[str, list[str]] = {}
    for item in sets:
        key, sep, value = item.partition("=")
        scope, colon, bare = key.partition(":")
        if not colon:
            shared.append(item)
            continue
        if scope.strip() not in models:
            raise ConfigError(f'--set {item}: "{scope.strip()}" is not a model of this sweep '
                              f"({', '.join(models)}).{nearest(scope.strip(), models)}")
        own.setdefault(scope.strip(), []).append(f"{bare.strip()}{sep}{value}")
    return shared, own


def _evaluation_defaults(base, registry, given: set[str], prune, objective, metric, notes: list[str]) -> None:
    """The trials' evaluations: on a schedule unless turned off (``given`` holds the keys set), computing the
    objective."""
    def note(text: str) -> None:
        if text not in notes:
            notes.append(text)

    if "eval_every" in given and not base.engine["eval_every"]:
        if prune is not None:
            raise ConfigError("--prune judges trials by their evaluations during training, and eval_every=0 turns "
                              "them off; give eval_every=N or leave out --prune.")
        note(f"eval_every=0: no {objective} is measured during training, so the trials are compared by "
             f"their sample grids only.")
    elif not base.engine["eval_every"]:
        base.engine["eval_every"] = max(1, base.steps // 4) if base.steps else 500
        note(f"eval_every was not given: the objective ({objective}) is measured every "
             f"{base.engine['eval_every']} steps.")
    names = eval_metric_names(base.engine)
    if not metric.default and objective not in (names or []):  # fid is computed during training only when named
        # named metrics are strict, so those only a conditional model can give stay out
        defaults = [item.spec.name for item in registry.metrics.values()
                    if item.spec.default and not item.spec.needs_labels]
        base.engine["eval_metrics"] = "+".join((names or defaults) + [objective])
        note(f"{objective} is not a default metric: the trials compute eval_metrics="
             f"{base.engine['eval_metrics']}.")


def _check_search(axes: list[Axis], search: str | None, trials: int | None, repeats: bool) -> str:
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
        if not axes and not repeats:  # neither seeds nor models to repeat the one setting over
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
            for point in sweep_grid(manifest):
                for seed in manifest["seeds"]:
                    number = studies.fixed_trial(study, [a for a in axes if a.key in point], point, seed)
                    manifest["trials"][trial_name(number, point, seed)] = {
                        "number": number, "point": point, "seed": seed, "status": "pending"}
            sweep.write(manifest)
    return sweep


def sweep_grid(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The points of a grid sweep; with several models, each model's own grid of the settings it has."""
    axes = [Axis.from_dict(a) for a in manifest["axes"]]
    applies = manifest.get("applies")
    if not applies:
        return grid_points(axes)
    return [{"model": model, **point} for model, keys in applies.items()
            for point in grid_points([a for a in axes if a.key in keys and a.key != "model"])]
