"""A sweep of several models: each trains its own grid of the settings it has, on the same seeds."""

from __future__ import annotations

import pytest

from conftest import run_cli_here
from workbench.base.errors import ConfigError
from workbench.sweep.plan import create_sweep, plan_sweep, sweep_grid
from workbench.sweep.trials import trial_config


def plan(plugins, tmp_path, model, sets, seeds=2, search=None):
    return plan_sweep(plugins.registry, model=model, sets=sets, seeds=seeds, search=search, trials=None,
                      objective="fd", prune=None, name="both", runs_dir=str(tmp_path / "runs"), command=[],
                      steps=400)


def test_each_model_trains_the_points_of_its_own_settings_on_the_same_seeds(plugins, tmp_path):
    manifest = plan(plugins, tmp_path, "mlp_gan,dcgan",
                    ["ngf=16,32", "lr=1e-4", "dcgan:ndf=16", "dcgan:batch_size=32", "eval_every=50"])
    points = sweep_grid(manifest)
    # ngf is dcgan's alone: mlp_gan is trained once, not once per ngf (which it would ignore)
    assert points == [{"model": "mlp_gan"}, {"model": "dcgan", "ngf": 16}, {"model": "dcgan", "ngf": 32}]
    bases = manifest["bases"]
    assert bases["mlp_gan"]["hyperparams"]["lr"] == bases["dcgan"]["hyperparams"]["lr"] == 1e-4  # shared
    assert bases["dcgan"]["hyperparams"]["ndf"] == 16 and bases["dcgan"]["hyperparams"]["batch_size"] == 32
    assert bases["mlp_gan"]["hyperparams"]["batch_size"] == 64  # dcgan:batch_size is dcgan's alone
    assert bases["mlp_gan"]["loss"] == "bce" and bases["dcgan"]["engine"]["eval_every"] == 50
    sweep = create_sweep(manifest)
    trials = sweep.read()["trials"]
    assert len(trials) == 3 * 2 and sorted({t["seed"] for t in trials.values()}) == [0, 1]
    for name, trial in trials.items():
        config = trial_config(sweep.read(), plugins.registry, name, trial["point"], trial["seed"])
        assert config.model == trial["point"]["model"] and config.seed == trial["seed"]
        if config.model == "dcgan":
            assert config.hyperparams["ngf"] == trial["point"]["ngf"] and config.hyperparams["ndf"] == 16


def test_one_model_is_planned_as_before(plugins, tmp_path):
    manifest = plan(plugins, tmp_path, "dcgan", ["ngf=16,32"])
    assert "bases" not in manifest and manifest["model"] == "dcgan"
    assert sweep_grid(manifest) == [{"ngf": 16}, {"ngf": 32}]


@pytest.mark.parametrize("model, sets, search, says", [
    ("mlp_gan,dcgan", ["nope=1,2"], None, '"nope" is not a setting of mlp_gan or dcgan'),
    ("mlp_gan,dcgan", ["aae:lr=1e-4"], None, '"aae" is not a model of this sweep'),
    ("mlp_gan,dcgan", ["dcgan:ngf=16,32"], None, "takes one value"),
    ("mlp_gan,dcgan", ["mlp_gan:ngf=16"], None, '"ngf" is not a setting of mlp_gan'),
    ("mlp_gan,dcgan", ["lr=1e-5..1e-3"], "tpe", "runs a grid"),
    ("dcgan,dcgan", [], None, "names a model twice"),
    ("dcgan,", [], None, "empty name"),
    ("dcgan,nope", [], None, 'Unknown model plugin "nope"'),
])
def test_bad_model_sweeps_are_one_sentence(plugins, tmp_path, model, sets, search, says):
    with pytest.raises(Exception, match=says) as caught:
        plan(plugins, tmp_path, model, sets, search=search)
    assert "\n" not in str(caught.value) and not (tmp_path / "runs").exists()


def test_two_models_alone_are_something_to_sweep_and_the_cli_refuses_in_one_sentence(plugins, tmp_path):
    manifest = plan(plugins, tmp_path, "mlp_gan,dcgan", [], seeds=1)
    assert sweep_grid(manifest) == [{"model": "mlp_gan"}, {"model": "dcgan"}]
    with pytest.raises(ConfigError, match="Nothing to sweep"):
        plan(plugins, tmp_path, "dcgan", [], seeds=1)
    refused = run_cli_here("sweep", "-p", "mlp_gan,dcgan", "--set", "dcgan:ngf=16,32", "--name", "s", cwd=tmp_path)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert not (tmp_path / "runs" / "s").exists()


def test_a_models_own_eval_every_0_is_kept_while_the_other_gets_the_default_schedule(plugins, tmp_path):
    bases = plan(plugins, tmp_path, "mlp_gan,dcgan", ["dcgan:eval_every=0"])["bases"]
    assert bases["dcgan"]["engine"]["eval_every"] == 0 and bases["mlp_gan"]["engine"]["eval_every"] == 100


def test_compare_names_runs_of_two_models_by_the_model_and_what_varies_within_one(tmp_path, fashion_images):
    """Runs of models with different settings (dcgan has ngf, mlp_gan has not) are ranked side by side."""
    import json

    from test_tui_helpers import write_recorded_run
    from workbench.sweep.compare import compare_runs

    runs = [write_recorded_run(tmp_path, "mlp", fashion_images, evals=True)]
    for name, ngf in (("dc16", 16), ("dc32", 32)):
        run = write_recorded_run(tmp_path, name, fashion_images, evals=True, model="dcgan")
        config = json.loads(run.config.read_text())
        config["hyperparams"].update(ngf=ngf, ndf=32)
        run.config.write_text(json.dumps(config))
        runs.append(run)
    report = compare_runs(runs, "fd")
    assert sorted(s["label"] for s in report["settings"]) == ["model=dcgan ngf=16", "model=dcgan ngf=32",
                                                              "model=mlp_gan"]
