"""What a sweep varies, parsed against the model's declared settings; bad input refused before anything exists."""

from __future__ import annotations

import os

import pytest

from conftest import run_cli_here
from workbench.base.errors import ConfigError
from workbench.base.params import HyperParam
from workbench.sweep.space import Axis, grid_points, parse_sets, trial_name

PARAMS = {"lr": HyperParam("lr", "float", 2e-4, min=1e-8, max=1.0),
          "batch_size": HyperParam("batch_size", "int", 64, min=2, max=65536),
          "loss_kind": HyperParam("loss_kind", "str", "a", choices=("a", "b"))}


def lookup(key):
    if key not in PARAMS:
        raise ConfigError(f'"{key}" is not a setting.')
    return PARAMS[key]


def test_lists_ranges_and_single_values_are_told_apart():
    fixed, axes = parse_sets(["lr=1e-4,2e-4", "batch_size=32..128:log", "loss_kind=b", "b1=0.5"], lookup)
    assert fixed == ["loss_kind=b", "b1=0.5"]  # single values go to the base configuration unparsed
    assert axes == [Axis("lr", "float", (1e-4, 2e-4)), Axis("batch_size", "int", low=32, high=128, log=True)]
    assert axes[1].describe() == "batch_size=32..128:log"


def test_a_grid_is_every_combination_first_axis_slowest():
    axes = [Axis("lr", "float", (1e-4, 2e-4)), Axis("batch_size", "int", (32, 64, 128))]
    points = grid_points(axes)
    assert len(points) == 6 and points[0] == {"lr": 1e-4, "batch_size": 32} and points[3]["lr"] == 2e-4
    assert trial_name(7, points[3], 1) == "t007-lr0.0002-batch_size32-seed1"


@pytest.mark.parametrize("item, says", [
    ("lr=,", "empty list"),
    ("lr=1e-4,", "empty value"),
    ("lr=1e-4,1e-4", "twice"),
    ("lr=5e-4..1e-4", "upwards"),
    ("lr=1e-4..", "not a range"),
    ("lr=1e-4..1e-3:ln", "not a range"),
    ("lr=1e-4,3", "at most 1"),
    ("lr=0..1e-3:log", "at least"),
    ("loss_kind=a..b", "numeric setting"),
    ("batch_size=8,x", "whole number"),
    ("nope=1,2", "not a setting"),
])
def test_bad_lists_and_ranges_are_one_sentence(item, says):
    with pytest.raises(ConfigError, match=says) as caught:
        parse_sets([item], lookup)
    assert "\n" not in str(caught.value)


BAD_INPUT = [
    (["--set", "lr=,"], "empty list"),
    (["--set", "nope=1,2"], '"nope" is not a setting of mlp_gan'),
    (["--set", "lr=1e-3..1e-4"], "upwards"),
    (["--set", "lr=1e-4,2"], "lr must be at most 1"),
    (["--set", "lr=1e-4,2e-4", "--trials", "4"], "--trials counts the settings a search draws"),
    (["--set", "lr=1e-5..1e-3:log"], "needs --trials N"),
    (["--set", "lr=1e-5..1e-3:log", "--search", "grid", "--trials", "3"], "a grid cannot list"),
    (["--steps", "10"], "Nothing to sweep"),
    (["--set", "lr=1e-4,2e-4", "--objective", "nope"], 'Unknown metric "nope"'),
    (["--set", "lr=1e-4,2e-4", "--prune", "often"], "--prune takes median or hyperband"),
]


@pytest.mark.parametrize("args, says", BAD_INPUT)
def test_bad_sweeps_exit_2_with_one_sentence_and_create_nothing(tmp_path, args, says):
    result = run_cli_here("sweep", "-p", "mlp_gan", "--name", "s", *args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert says in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_join_of_a_folder_that_is_no_sweep_and_a_taken_name(tmp_path):
    (tmp_path / "runs" / "taken").mkdir(parents=True)
    joined = run_cli_here("sweep", "--join", "runs/taken", cwd=tmp_path)
    assert joined.returncode == 2 and "this folder is no sweep" in joined.stderr, joined.stderr
    again = run_cli_here("sweep", "-p", "mlp_gan", "--set", "lr=1e-4,2e-4", "--name", "taken", cwd=tmp_path)
    assert again.returncode == 2 and 'A sweep or run named "taken" already exists' in again.stderr, again.stderr
    assert list((tmp_path / "runs" / "taken").iterdir()) == []
    compare = run_cli_here("compare", "runs/taken", cwd=tmp_path)
    assert compare.returncode == 2 and "neither a sweep folder nor a run directory" in compare.stderr


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="processor affinity is Linux's")
def test_cpu_slots_share_the_processors_this_process_may_use_not_the_whole_node():
    """A cluster job (or taskset) given one processor of many: one trial gets one thread, not the node's count."""
    from workbench.sweep.driver import plan_slots

    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(allowed)})
    try:
        (slot,) = plan_slots("cpu", None, None)
    finally:
        os.sched_setaffinity(0, allowed)
    assert dict(slot.env)["OMP_NUM_THREADS"] == "1" and slot.cpus == 1
    assert [dict(s.env)["OMP_NUM_THREADS"] for s in plan_slots("cpu", None, 2, cpus=8)] == ["4", "4"]


def test_a_cpu_runs_one_trial_per_core_by_default_as_many_as_there_are_trials():
    from workbench.sweep.driver import plan_slots, trials_left

    def threads(parallel=None, **kwargs):
        return [dict(s.env)["OMP_NUM_THREADS"] for s in plan_slots("cpu", None, parallel, **kwargs)]

    assert threads(cpus=2, trials_left=6) == ["1", "1"]  # this project's CPU: two trials of one thread
    assert threads(cpus=8, trials_left=3) == ["2", "2", "2"]  # no idle slot holding cores back
    assert threads(cpus=8, trials_left=0) == ["8"]
    assert threads(cpus=2, trials_left=6, parallel=1) == ["2"]  # --parallel 1: one trial with every core
    grid = {"search": "grid", "trials": {"a": {"status": "completed"}, "b": {"status": "crashed"},
                                         "c": {"status": "pending"}}}
    assert trials_left(grid) == 2
    search = {"search": "tpe", "trials_limit": 5, "seeds": [0, 1], "trials": {"a": {"status": "pruned"},
                                                                             "b": {"status": "running"}}}
    assert trials_left(search) == 1 + (10 - 2)


def test_eval_every_0_given_is_kept_and_pruning_without_evaluations_refused(plugins, tmp_path):
    """An explicit eval_every=0 (a sweep compared by its grids, or timed without evaluations) is not replaced by
    the default objective schedule; --prune, which needs the evaluations, is refused with it."""
    from workbench.sweep.plan import plan_sweep

    def plan(sets, prune=None):
        return plan_sweep(plugins.registry, model="mlp_gan", sets=sets, seeds=2, search=None, trials=None,
                          objective="fd", prune=prune, name=None, runs_dir=str(tmp_path), command=[], steps=400)

    kept = plan(["lr=1e-4,2e-4", "eval_every=0"])
    assert kept["base"]["engine"]["eval_every"] == 0 and "compared by their sample grids only" in kept["notes"][0]
    assert plan(["lr=1e-4,2e-4"])["base"]["engine"]["eval_every"] == 100  # not given: every quarter of the steps
    with pytest.raises(ConfigError, match="eval_every=0 turns them off"):
        plan(["lr=1e-4,2e-4", "eval_every=0"], prune="median")


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs two processors and Linux's affinity")
def test_a_driver_here_on_the_same_cores_is_found_and_one_on_other_cores_is_not():
    """What ``ganbench sweep --join`` warns about: another live driver of the sweep on this machine whose CPU
    trials would take the same cores as ours (two full teams of torch threads on the same cores)."""
    import subprocess
    import sys

    from workbench.sweep.manifest import drivers_sharing_cores

    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        host = os.uname().nodename
        manifest = {"drivers": {f"{host}:{other.pid}": 0.0, f"{host}:{os.getpid()}": 0.0,
                                f"elsewhere:{other.pid}": 0.0}}
        assert drivers_sharing_cores(manifest) == [other.pid]
        first, second, *_ = sorted(os.sched_getaffinity(0))
        allowed = os.sched_getaffinity(0)
        os.sched_setaffinity(other.pid, {second})
        os.sched_setaffinity(0, {first})
        try:
            assert drivers_sharing_cores(manifest) == []
        finally:
            os.sched_setaffinity(0, allowed)
    finally:
        other.kill()
        other.wait()
    assert drivers_sharing_cores(manifest) == []  # it ended


def test_a_cpu_trial_takes_the_cores_the_running_ones_leave_shared_with_those_starting_beside_it():
    from workbench.sweep.driver import cpu_share

    assert cpu_share(2, [], free_slots=2, to_start=6) == 1  # the first of two trials starting together
    assert cpu_share(2, [1], free_slots=1, to_start=5) == 1
    assert cpu_share(2, [], free_slots=2, to_start=1) == 2  # the sweep's last trial, the others finished
    assert cpu_share(2, [1], free_slots=1, to_start=1) == 1  # never more than the free core
    assert cpu_share(8, [2, 2], free_slots=2, to_start=1) == 4
    assert cpu_share(2, [2], free_slots=1, to_start=1) == 1  # nothing free: one thread, not zero
