"""The sweep's Optuna study, kept in a journal file inside the sweep folder.

One Optuna trial per ganbench trial (a setting and a seed). Its samplers choose
the settings (random, TPE); its pruners judge a trial from the values of the
objective the trial's ``eval`` events report. A grid's trials are all created
when the sweep starts (enqueued and taken at once, under the sweep's lock):
Optuna's GridSampler may hand one grid point to two concurrent workers (its
documentation says so), and a grid known in advance needs no sampler at all.
"""

from __future__ import annotations

import warnings
from typing import Any

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from workbench.sweep.manifest import Sweep
from workbench.sweep.space import Axis

SEARCHES = ("grid", "random", "tpe")
PRUNERS = ("median", "hyperband")
optuna.logging.set_verbosity(optuna.logging.WARNING)


def _storage(sweep: Sweep) -> JournalStorage:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # experimental-API warnings in some Optuna versions
        return JournalStorage(JournalFileBackend(str(sweep.journal)))


def create_study(sweep: Sweep, name: str, lower_is_better: bool) -> None:
    """The empty study of a new sweep."""
    optuna.create_study(study_name=name, storage=_storage(sweep),
                        direction="minimize" if lower_is_better else "maximize")


def load_study(sweep: Sweep, manifest: dict[str, Any]) -> optuna.Study:
    """The sweep's study with its sampler and pruner; the sampler's seed moves on with each trial created,
    so joined drivers never draw the same random sequence."""
    storage = _storage(sweep)
    created = len(manifest.get("trials") or {})
    seed = manifest["base"]["seed"] * 1000 + created
    sampler = (optuna.samplers.TPESampler(seed=seed, n_startup_trials=manifest.get("startup_trials", 4))
               if manifest["search"] == "tpe" else optuna.samplers.RandomSampler(seed=seed))
    return optuna.load_study(study_name=manifest["name"], storage=storage, sampler=sampler,
                             pruner=_pruner(manifest))


def _pruner(manifest: dict[str, Any]) -> optuna.pruners.BasePruner:
    eval_every = manifest["base"]["engine"]["eval_every"]
    if manifest.get("prune") == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=eval_every, max_resource=manifest.get("total_steps")
                                              or "auto", reduction_factor=3)
    if manifest.get("prune") == "median":
        # Two finished trials are enough to judge a third: sweeps on one box are small.
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    return optuna.pruners.NopPruner()


def new_point(study: optuna.Study, axes: list[Axis], seed: int) -> tuple[int, dict[str, Any]]:
    """Ask the sampler for a new setting, as the trial of its first seed: (trial number, point)."""
    trial = study.ask()
    trial.set_user_attr("seed", seed)
    return trial.number, {axis.key: axis.suggest(trial) for axis in axes}


def fixed_trial(study: optuna.Study, axes: list[Axis], point: dict[str, Any], seed: int) -> int:
    """A trial of a known setting (a grid point, or another seed of a sampled one): its number.
    Call under the sweep's lock, so no other driver takes the enqueued trial first."""
    study.enqueue_trial(point, user_attrs={"seed": seed})
    trial = study.ask()
    for axis in axes:
        axis.suggest(trial)  # records the fixed value as the trial's parameter
    return trial.number


def _trial(study: optuna.Study, number: int) -> optuna.Trial:
    storage = study._storage  # noqa: SLF001 - Optuna's Trial takes a study and a storage trial id
    return optuna.Trial(study, storage.get_trial_id_from_study_id_trial_number(study._study_id, number))  # noqa: SLF001


def report(study: optuna.Study, number: int, step: int, value: float) -> bool:
    """Tell the study the objective of trial ``number`` at ``step``; True when its pruner says stop the trial."""
    trial = _trial(study, number)
    if step not in study._storage.get_trial(trial._trial_id).intermediate_values:  # noqa: SLF001
        trial.report(value, step)
    return trial.should_prune()


def reported_steps(study: optuna.Study, number: int) -> list[int]:
    """The steps at which trial ``number`` already reported (a resumed trial replays its log)."""
    return list(study._storage.get_trial(_trial(study, number)._trial_id).intermediate_values)  # noqa: SLF001


def finish(study: optuna.Study, number: int, status: str, value: float | None) -> None:
    """Close trial ``number``: complete with its objective, pruned, or failed (no value, failed, diverged)."""
    trial = study._storage.get_trial(_trial(study, number)._trial_id)  # noqa: SLF001
    if trial.state.is_finished():
        return
    if status == "completed" and value is not None:
        study.tell(number, value)
    elif status == "pruned":
        study.tell(number, state=TrialState.PRUNED)
    else:
        study.tell(number, state=TrialState.FAIL)
