"""The offline quality metrics on real Fashion-MNIST images and a real, disk-cached domain classifier."""

from __future__ import annotations

import hashlib
import math
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

from workbench.base.errors import DataError, GanbenchError, PluginError
from workbench.engine.run import prepare_run
from workbench.host.configure import build_config
from workbench.host.manager import load_plugins
from workbench.host.registry import DatasetSpec, ImageData
from workbench.quality.coverage import class_shares, coverage
from workbench.quality.evaluate import Evaluator, select_metrics
from workbench.quality.frechet import feature_stats, frechet_between, frechet_distance
from workbench.quality.manifold import precision_recall
from workbench.quality.periodic import PeriodicEvaluation
from workbench.quality.reference import labelled_splits
from workbench.rundir.events import iter_events

CPU = torch.device("cpu")


@pytest.fixture(scope="session")
def quality_cache(tmp_path_factory):
    """One classifier cache for the whole session (the CLI tests use the same folder)."""
    path = tmp_path_factory.getbasetemp() / "quality-cache"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="session")
def fashion_config(plugins):
    return build_config(plugins.registry, "mlp_gan", dataset="fashion-mnist-test")


@pytest.fixture(scope="session")
def evaluator(plugins, fashion_config, quality_cache):
    """An evaluator whose classifier was trained (or read from the session cache) on the shipped split."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GANBENCH_CACHE", str(quality_cache))
        ev = Evaluator(plugins, fashion_config, 28, CPU)
        ev.reference()
    return ev


@pytest.fixture(scope="session")
def splits(plugins, fashion_config):
    return labelled_splits(fashion_config, plugins, 28)


# -- the mathematics, against closed forms ---------------------------------------------------------

def test_frechet_distance_of_gaussians_matches_the_closed_form():
    mu1, mu2 = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, 0.0])
    var1, var2 = torch.tensor([1.0, 4.0, 9.0]), torch.tensor([4.0, 1.0, 9.0])
    expected = (mu1 - mu2).square().sum() + (var1.sqrt() - var2.sqrt()).square().sum()  # diagonal covariances
    assert frechet_distance(mu1, torch.diag(var1), mu2, torch.diag(var2)) == pytest.approx(float(expected))
    rotation = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64))[0]
    rotated = [rotation @ torch.diag(v).double() @ rotation.T for v in (var1, var2)]
    assert frechet_distance(rotation @ mu1.double(), rotated[0], rotation @ mu2.double(), rotated[1]) \
        == pytest.approx(float(expected))


def test_frechet_distance_of_samples_is_near_zero_for_one_distribution_and_handles_a_point_mass():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(20000, 8, generator=gen), torch.randn(20000, 8, generator=gen)
    assert frechet_between(a, b) < 0.01
    assert frechet_between(a, b + 3) == pytest.approx(8 * 9, rel=0.02)
    point_mass = torch.zeros(100, 8)  # a singular covariance: a fully collapsed generator
    assert frechet_between(point_mass, a) == pytest.approx(8, rel=0.05)
    mu, sigma = feature_stats(a)
    assert mu.dtype == torch.float64 and sigma.shape == (8, 8)


def test_precision_and_recall_on_point_clouds():
    gen = torch.Generator().manual_seed(0)
    real = torch.randn(2000, 4, generator=gen)
    assert precision_recall(real, real.clone()) == (1.0, 1.0)
    assert precision_recall(real, real + 100) == (0.0, 0.0)
    # samples from one half of the real distribution: realistic, but without the other half's variety
    half = real[real[:, 0] > 0]
    precision, recall = precision_recall(real, half)
    assert precision == 1.0 and 0.3 < recall < 0.7


def test_coverage_flags_a_generator_stuck_on_one_class():
    classes = tuple(f"c{i}" for i in range(10))
    real_logits = torch.eye(10).repeat(100, 1)  # balanced
    stuck = coverage(torch.eye(10)[[3] * 500], real_logits, classes)
    assert stuck.classes_covered == 1 and stuck.kl == pytest.approx(math.log(10))
    assert stuck.notes()[0].startswith("MODE COLLAPSE: 1 of 10 classes covered") and '"c3"' in stuck.notes()[0]
    full = coverage(real_logits, real_logits, classes)
    assert full.classes_covered == 10 and full.kl == pytest.approx(0.0) and full.notes() == []
    eight = coverage(torch.eye(10)[torch.arange(800) % 8], real_logits, classes)
    assert eight.classes_covered == 8 and eight.notes()[0].startswith("8 of 10 classes covered (missing: c8, c9)")
    assert class_shares(real_logits, 10).sum() == pytest.approx(1.0)


# -- the domain classifier and the held-out split --------------------------------------------------

def test_a_dataset_whose_splits_are_the_same_images_is_cut_into_two_disjoint_halves(splits, fashion_images):
    x_train, x_test = splits.x_train, splits.x_test
    assert x_train.shape[0] == x_test.shape[0] == 5000 and len(splits.classes) == 10
    assert "same images in both splits" in splits.note

    def rows(images):
        return sorted(hashlib.sha1(row.numpy().tobytes()).hexdigest() for row in images.reshape(images.shape[0], -1))

    # the two halves are a partition of the 10,000 shipped images: nothing the classifier saw is a reference image
    assert rows(torch.cat([x_train, x_test])) == rows(fashion_images)


def test_the_classifier_is_trained_once_cached_on_disk_with_its_accuracy(evaluator, plugins, fashion_config,
                                                                        quality_cache, monkeypatch):
    trained = evaluator.reference().classifier
    assert trained.accuracy > 0.8 and trained.test_size == 5000 and trained.train_size == 5000
    files = list((quality_cache / "quality").glob("fashion-mnist-test-28px-*.safetensors"))
    assert len(files) == 1
    monkeypatch.setenv("GANBENCH_CACHE", str(quality_cache))
    again = Evaluator(plugins, fashion_config, 28, CPU).reference()
    assert again.classifier.from_cache and again.classifier.accuracy == trained.accuracy
    assert "test accuracy" in again.notes[0] and "cached at" in again.notes[0]
    assert torch.equal(again.features, evaluator.reference().features)


def test_real_images_score_near_zero_noise_and_one_repeated_image_score_far(evaluator, splits):
    x_train, x_test = splits.x_train, splits.x_test
    real = evaluator.evaluate(x_train)  # the classifier's training half against the held-out half
    noise = evaluator.evaluate(torch.randint(0, 256, (5000, 1, 28, 28), dtype=torch.uint8,
                                             generator=torch.Generator().manual_seed(0)))
    repeated = evaluator.evaluate(x_test[:1].repeat(5000, 1, 1, 1))
    assert real.metrics["fd"] < 5
    assert noise.metrics["fd"] > 50 * real.metrics["fd"] and repeated.metrics["fd"] > 50 * real.metrics["fd"]
    assert real.metrics["classes_covered"] == 10 and real.metrics["class_kl"] < 0.02
    assert real.metrics["precision"] > 0.75 and real.metrics["recall"] > 0.75
    assert noise.metrics["recall"] < 0.05 and repeated.metrics["recall"] < 0.05
    assert repeated.metrics["classes_covered"] == 1 and repeated.metrics["class_kl"] > 1.5
    assert any(note.startswith("MODE COLLAPSE: 1 of 10") for note in repeated.notes)
    assert noise.metrics["classes_covered"] < 10 and noise.metrics["class_kl"] > 0.5


def test_float_images_are_quantised_like_saved_samples(evaluator, splits):
    x_test = splits.x_test[:2000]
    as_float = x_test.float() / 127.5 - 1  # what a generator returns
    assert evaluator.evaluate(as_float).metrics == evaluator.evaluate(x_test).metrics


# -- choosing metrics and failing clearly ----------------------------------------------------------

def test_default_metrics_and_unknown_or_unavailable_ones(plugins):
    names = [spec.name for spec in select_metrics(plugins.registry)]
    assert names[:5] == ["fd", "classes_covered", "class_kl", "precision", "recall"]
    assert "fid" not in names and "kid" not in names  # optional and heavy: only when named
    with pytest.raises(PluginError, match='Unknown metric "fdd". Did you mean "fd"'):
        select_metrics(plugins.registry, ["fdd"])
    reason = plugins.registry.metric("fid").available()
    if reason is not None:
        with pytest.raises(GanbenchError, match='Metric "fid" is not available here: .*Inception detector'):
            select_metrics(plugins.registry, ["fid"])


@pytest.fixture
def unlabelled_plugins(fashion_images):
    """The installed plugins plus a real dataset plugin whose images have no labels."""
    from workbench import hookimpl

    module = types.ModuleType("unlabelled_plugin")

    def load(request):
        return ImageData(fashion_images[:256].unsqueeze(1).clone(), None, source="memory")

    @hookimpl
    def ganbench_register_datasets(register):
        register(DatasetSpec("unlabelled", "images without labels", load))

    module.ganbench_register_datasets = ganbench_register_datasets
    sys.modules[module.__name__] = module
    yield load_plugins(extra_modules=[module])
    del sys.modules[module.__name__]


def test_an_unlabelled_dataset_is_refused_in_one_sentence(unlabelled_plugins):
    config = build_config(unlabelled_plugins.registry, "mlp_gan", dataset="unlabelled")
    with pytest.raises(DataError, match='need class labels, and dataset "unlabelled" has none'):
        Evaluator(unlabelled_plugins, config, 28, CPU).evaluate(torch.zeros(20, 1, 28, 28, dtype=torch.uint8))


def test_during_training_an_unusable_metric_warns_once_and_training_goes_on(unlabelled_plugins, tmp_path):
    config = build_config(unlabelled_plugins.registry, "mlp_gan", dataset="unlabelled", steps=6, device="cpu",
                          runs_dir=str(tmp_path), name="unlabelled",
                          sets=["eval_every=2", "eval_samples=100", "sample_every=0", "batch_size=32"])
    assert prepare_run(config, unlabelled_plugins, evaluate=PeriodicEvaluation()).train() == "completed"
    events = list(iter_events(tmp_path / "unlabelled" / "events.jsonl"))
    warnings = [e["message"] for e in events if e["type"] == "warning"]
    assert warnings == [("Quality metrics are off for the rest of this run: The quality metrics need class labels, "
                         'and dataset "unlabelled" has none in its train split.')]
    assert not [e for e in events if e["type"] == "eval"]


def test_drawing_samples_of_an_uncompiled_model_does_not_import_the_compiler():
    """``torch.compiler.set_stance`` imports dynamo (1.3 s here); without compile=on nothing needs it."""
    code = ("import sys, torch; from workbench.host.manager import load_plugins; from workbench.engine.samples import "
            "generate; spec = load_plugins().registry.model('mlp_gan'); "
            "model = spec.build(spec.defaults(), (1, 28, 28)); images = generate(model, torch.randn(300, 100)); "
            "print(tuple(images.shape), 'torch._dynamo' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["(300,", "1,", "28,", "28)", "False"]


def test_an_evaluator_describes_its_classifier_in_its_first_result_only(evaluator, splits):
    """Which classifier, and how the splits were made, hold for every evaluation: eval events say it once."""
    again = Evaluator(evaluator.plugins, evaluator.config, 28, CPU, ["fd", "classes_covered"])
    again._reference = evaluator.reference()  # the classifier trained above, not trained again
    first, second = again.evaluate(splits.x_train[:400]), again.evaluate(splits.x_train[400:800])
    assert any("test accuracy" in note for note in first.notes)
    assert any("same images in both splits" in note for note in first.notes)
    assert not any("test accuracy" in note or "both splits" in note for note in second.notes)
    three_classes = splits.x_train[splits.y_train < 3][:400]  # what is new in each evaluation is still said
    assert any("classes covered" in note for note in again.evaluate(three_classes).notes)


def test_evaluating_during_training_leaves_the_training_unchanged(plugins, evaluator, quality_cache, tmp_path,
                                                                  monkeypatch):
    monkeypatch.setenv("GANBENCH_CACHE", str(quality_cache))
    weights = {}
    for every in (0, 3):
        config = build_config(plugins.registry, "mlp_gan", dataset="fashion-mnist-test", steps=6, device="cpu",
                              runs_dir=str(tmp_path), name=f"every-{every}",
                              sets=[f"eval_every={every}", "eval_samples=500", "sample_every=0"])
        run = prepare_run(config, plugins, evaluate=PeriodicEvaluation())
        assert run.train() == "completed"
        weights[every] = [t.clone() for net in run.model.networks.values() for t in net.state_dict().values()]
    evals = [e for e in iter_events(tmp_path / "every-3" / "events.jsonl") if e["type"] == "eval"]
    assert [e["step"] for e in evals] == [3, 6] and evals[0]["samples"] == 500
    # the classifier and the halves of the split are described in the first event only
    assert any("test accuracy" in note for note in evals[0]["notes"])
    assert not any("test accuracy" in note or "both splits" in note for note in evals[1]["notes"])
    assert all(torch.equal(a, b) for a, b in zip(weights[0], weights[3]))


def test_the_metric_plugin_of_the_guide_runs_beside_the_core_ones(quality_cache, monkeypatch, splits):
    guide = (Path(__file__).resolve().parent.parent / "docs" / "plugins.md").read_text(encoding="utf-8")
    code = re.search(r'```python\n("""mean_gap:.*?)^```', guide, re.DOTALL | re.MULTILINE).group(1)
    module = types.ModuleType("guide_metric")
    exec(compile(code, "docs/plugins.md", "exec"), module.__dict__)
    sys.modules[module.__name__] = module
    monkeypatch.setenv("GANBENCH_CACHE", str(quality_cache))
    try:
        plugins = load_plugins(extra_modules=[module])
        assert not plugins.errors and plugins.registry.metrics["mean_gap"].plugin == "guide_metric"
        config = build_config(plugins.registry, "mlp_gan", dataset="fashion-mnist-test")
        evaluator = Evaluator(plugins, config, 28, CPU, ["mean_gap", "fd"])
        black = evaluator.evaluate(torch.zeros(500, 1, 28, 28, dtype=torch.uint8))
        real = evaluator.evaluate(splits.x_train[:500])
        assert set(black.metrics) == {"mean_gap", "fd"} and real.metrics["mean_gap"] < 0.02 < black.metrics["mean_gap"]
    finally:
        del sys.modules[module.__name__]
