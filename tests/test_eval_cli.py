"""``ganbench eval``, ``eval_every`` during training and ``ganbench runs --sort``, in real subprocesses."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import run_cli, run_cli_here

from workbench.engine import checkpoint as ckpt
from workbench.engine.inference import load_model
from workbench.quality.history import eval_events, latest_metrics
from workbench.rundir.directory import RunDir

pytestmark = pytest.mark.slow  # end-to-end processes: `pytest -m slow` (CI runs it)

TRAINED_STEPS = 300


@pytest.fixture(scope="module")
def runs(tmp_path_factory, plugins):
    """A trained mlp_gan run evaluated during training, a one-step (untrained) run, and a collapsed generator."""
    cache = tmp_path_factory.getbasetemp() / "quality-cache"  # shared with test_quality.py: one classifier
    cache.mkdir(exist_ok=True)
    root = tmp_path_factory.mktemp("eval-runs")
    # one thread: two-thread OpenMP processes on a shared 2-core machine slow each other down many times over
    env = {"GANBENCH_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    common = ("--plugin", "mlp_gan", "--set", "sample_every=0", "--set", "eval_samples=2000")
    trained = run_cli("run", *common, "--steps", str(TRAINED_STEPS), "--name", "trained",
                      "--set", f"eval_every={TRAINED_STEPS // 2}", cwd=root, env=env, timeout=900)
    assert trained.returncode == 0, trained.stderr
    untrained = run_cli("run", *common, "--steps", "1", "--name", "untrained", cwd=root, env=env)
    assert untrained.returncode == 0, untrained.stderr
    _make_collapsed(root / "runs" / "trained", root / "runs" / "collapsed", plugins)
    return root, env


def _make_collapsed(source: Path, target: Path, plugins) -> None:
    """Copy a run and give its generator a last layer that ignores the noise: every sample is one image."""
    shutil.copytree(source, target)
    (target / "events.jsonl").write_text("")
    model, checkpoint = load_model(target, plugins, "cpu")
    last = [m for m in model.G.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(-3.0)
        last.bias.view(28, 28)[4:24, 9:19] = 3.0  # a bright upright block on black: trousers, to a classifier
    meta = {k: v for k, v in checkpoint.meta.items() if k not in ("format", "ganbench_version", "optimizer_groups")}
    ckpt.save_checkpoint(RunDir(target).latest, model, meta, {})


def test_training_with_eval_every_writes_eval_events(runs):
    root, _ = runs
    events = eval_events(root / "runs" / "trained" / "events.jsonl")
    assert [e["step"] for e in events] == [TRAINED_STEPS // 2, TRAINED_STEPS]
    for event in events:  # the shape the workbench's sparklines read
        assert set(event["metrics"]) == {"fd", "classes_covered", "class_kl", "precision", "recall"}
        assert all(isinstance(v, float) for v in event["metrics"].values())
        assert event["samples"] == 2000
    assert events[1]["metrics"]["fd"] < events[0]["metrics"]["fd"]  # training improves the samples
    # which classifier, and how the splits were made: said in the first event, not repeated in every one
    first_notes, second_notes = events[0]["notes"], events[1]["notes"]
    assert any("test accuracy" in note for note in first_notes)
    assert any("same images in both splits" in note for note in first_notes)
    assert not any("test accuracy" in note or "both splits" in note for note in second_notes)


def test_eval_command_scores_a_trained_generator_far_better_than_an_untrained_one(runs):
    root, env = runs
    results = {}
    for name in ("trained", "untrained"):
        done = run_cli("eval", f"runs/{name}", "-n", "3000", "--json", cwd=root, env=env)
        assert done.returncode == 0, done.stderr
        results[name] = json.loads(done.stdout)
        # a run directory was given: the result is appended to its events
        last = eval_events(root / "runs" / name / "events.jsonl")[-1]
        assert last["source"] == "ganbench eval" and last["metrics"] == results[name]["metrics"]
    trained, untrained = results["trained"]["metrics"], results["untrained"]["metrics"]
    assert trained["fd"] < 0.7 * untrained["fd"]
    assert trained["classes_covered"] > untrained["classes_covered"]
    assert trained["class_kl"] < untrained["class_kl"]
    assert results["trained"]["step"] == TRAINED_STEPS and results["trained"]["samples"] == 3000


def test_a_collapsed_generator_is_flagged_by_coverage(runs):
    root, env = runs
    done = run_cli("eval", "runs/collapsed", "-n", "1000", "--metric", "classes_covered", "--metric", "class_kl",
                   cwd=root, env=env)
    assert done.returncode == 0, done.stderr
    assert "MODE COLLAPSE: 1 of 10 classes covered" in " ".join(done.stdout.split())
    metrics = latest_metrics(root / "runs" / "collapsed" / "events.jsonl")
    assert set(metrics) == {"classes_covered", "class_kl"}  # only what was asked for
    assert metrics["classes_covered"]["value"] == 1.0 and metrics["class_kl"]["value"] > 1.5


def test_runs_sort_by_a_metric_puts_the_best_first(runs):
    root, env = runs
    by_fd = json.loads(run_cli_here("runs", "--sort", "fd", "--json", cwd=root, env=env).stdout)
    ranked = [row["name"] for row in by_fd if "fd" in row["quality"]]
    assert ranked[0] == "trained" and ranked[-1] in ("untrained", "collapsed")
    by_coverage = json.loads(run_cli_here("runs", "--sort", "classes_covered", "--json", cwd=root, env=env).stdout)
    covered = [row["quality"]["classes_covered"]["value"] for row in by_coverage]
    assert by_coverage[0]["name"] == "trained" and covered == sorted(covered, reverse=True) and covered[-1] == 1
    table = run_cli_here("runs", "--sort", "fd", cwd=root, env=env)
    assert table.returncode == 0 and " fd" in table.stdout.splitlines()[0]
    unknown = run_cli_here("runs", "--sort", "lpips", cwd=root, env=env)
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1 and 'Unknown metric "lpips"' in unknown.stderr


@pytest.mark.parametrize("args, message", [
    (("runs/nowhere",), "No run directory or checkpoint at runs/nowhere."),
    (("runs/trained", "--metric", "fdd"), 'Unknown metric "fdd". Did you mean "fd"?'),
    (("runs/trained", "-n", "5"), "-n must be between 10 and 100000; got 5."),
])
def test_eval_user_errors_are_one_sentence(runs, args, message):
    root, env = runs
    done = run_cli_here("eval", *args, cwd=root, env=env)
    assert done.returncode == 2 and done.stderr.startswith(f"ganbench: error: {message}")
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1
