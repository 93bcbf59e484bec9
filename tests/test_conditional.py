"""Conditional GANs: labels beside the images, the class count checked before a run, one grid row per class,
``sample --class``, labelled image folders, ``class_accuracy``, and the test kit's labels path."""

from __future__ import annotations

import copy
import json
import pickle

import pytest
import torch
from PIL import Image
from torch import nn

from workbench import hookimpl
from workbench.base.errors import ConfigError
from workbench.base.params import HyperParam, training_params
from workbench.data.device import DeviceImages
from workbench.data.folder import load_labelled_folder
from workbench.engine.checkpoint import read_metadata
from workbench.engine.run import prepare_run
from workbench.host.configure import build_config
from workbench.host.manager import load_plugins
from workbench.host.registry import DataInfo, ModelSpec
from workbench.modeling.model import ConditionalGAN
from workbench.rundir.events import iter_events
from workbench.testing import check_model_plugin
from workbench.tui.run_state import RunState

pytestmark = pytest.mark.usefixtures("one_thread")
SMALL = {"latent_dim": 8, "image_size": 16}


def write_pngs(folder, images: torch.Tensor) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        Image.fromarray(image.numpy()).save(folder / f"{i:03d}.png")


@pytest.fixture
def labelled_folder(tmp_path, fashion_images):
    """Sneakers (label 7 in Fashion-MNIST) and trousers (label 1) in class sub-folders, as ImageFolder lays them out."""
    from workbench.data.idx import read_idx
    from conftest import SHIPPED

    labels = read_idx(SHIPPED / "t10k-labels-idx1-ubyte.gz")
    root = tmp_path / "clothes"
    write_pngs(root / "trouser", fashion_images[labels == 1][:12])
    write_pngs(root / "sneaker", fashion_images[labels == 7][:12])
    return root


def test_data_info_is_the_image_shape_with_the_classes():
    info = DataInfo(1, 28, ("a", "b"))
    assert info == (1, 28, 28) and tuple(info) == (1, 28, 28) and info.n_classes == 2
    for twin in (copy.deepcopy(info), pickle.loads(pickle.dumps(info))):  # models keep it; the pre-flight copies them
        assert twin == info and twin.classes == ("a", "b")
    assert DataInfo(3, 8).n_classes == 0


def test_labels_are_taken_with_the_same_indices_as_the_images():
    images = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1).expand(10, 1, 2, 2).contiguous()
    data = DeviceImages(images, 4, torch.device("cpu"), seed=3, labels=torch.arange(10) * 10)
    for idx in data.batch_indices(0):
        assert torch.equal(data.fields(idx, ("labels",))["labels"], idx * 10)
        assert data.fields(idx, ()) == {}
    with pytest.raises(ConfigError, match='"mask"'):
        data.fields(idx, ("mask",))


def test_a_labelled_folder_has_one_class_per_sub_folder_sorted(labelled_folder, tmp_path):
    found = load_labelled_folder(labelled_folder, 16, 1, tmp_path / "cache", "t")
    assert found.classes == ("sneaker", "trouser")
    assert found.labels.tolist() == [0] * 12 + [1] * 12
    again = load_labelled_folder(labelled_folder, 16, 1, tmp_path / "cache", "t")  # from the cache
    assert torch.equal(again.labels, found.labels) and again.classes == found.classes
    write_pngs(labelled_folder, found.images[:2, :1].expand(2, 1, 16, 16)[:, 0].contiguous())  # loose images
    assert load_labelled_folder(labelled_folder, 16, 1, None, "t").labels is None


def _train(plugins, tmp_path, model, steps=2, **kwargs):
    config = build_config(plugins.registry, model, steps=steps, runs_dir=str(tmp_path / "runs"), device="cpu",
                          sets=["log_every=1", "sample_count=16", *kwargs.pop("sets", [])], **kwargs)
    run = prepare_run(config, plugins)
    assert run.train() == "completed", run.end_message
    return run


@pytest.mark.parametrize("loss", ["lsgan", "bce", "hinge", "wgan-gp"])
def test_cgan_trains_with_every_loss_on_real_labels(plugins, tmp_path, loss):
    run = _train(plugins, tmp_path, "cgan", loss=loss, sets=["latent_dim=8", "image_size=12", "batch_size=16"])
    assert run.classes[7] == "Sneaker" and run.model.n_classes == 10
    assert read_metadata(run.dir.latest)["classes"] == list(run.classes)
    with Image.open(sorted(run.dir.samples.glob("*.png"))[-1]) as grid:  # 10 class rows of 4 (isqrt(16)) images
        assert grid.size == (4 * 14 + 2, 10 * 14 + 2)


def test_the_model_is_given_the_real_batch_labels(plugins, tmp_path, monkeypatch):
    seen = []
    original = ConditionalGAN.train_step

    def spy(self, real, loss, labels):
        seen.append((real.clone(), labels.clone()))
        return original(self, real, loss, labels)

    monkeypatch.setattr(ConditionalGAN, "train_step", spy)
    run = _train(plugins, tmp_path, "cgan", sets=["latent_dim=8", "image_size=28", "batch_size=16"])
    from workbench.data.idx import read_idx
    from conftest import SHIPPED

    images, labels = read_idx(SHIPPED / "t10k-images-idx3-ubyte.gz"), read_idx(SHIPPED / "t10k-labels-idx1-ubyte.gz")
    for real, given in seen:  # the pre-flight step (on a copy of the model) saw real labels too
        pixels = ((real[:, 0] + 1) * 127.5).round().to(torch.uint8)
        rows = [int((images == p).flatten(1).all(1).nonzero()[0]) for p in pixels[:4]]
        assert given[:4].tolist() == labels[rows].tolist()
    assert len(seen) == 4 and run.step == 2  # pre-flight, memory trial, two training steps


def test_conditional_model_with_unlabelled_folder_is_refused_before_a_folder(cli, tmp_path, fashion_images):
    write_pngs(tmp_path / "loose", fashion_images[:8])
    done = cli("run", "--plugin", "cgan", "--dataset", "folder", "--data-root", str(tmp_path / "loose"),
               "--steps", "2", "--batch-size", "4", "--set", "image_size=8", env={"GANBENCH_CACHE": str(tmp_path / "c")})
    assert done.returncode == 2, done.stderr
    message = done.stderr.strip()
    assert message.count("\n") == 0 and "Traceback" not in message
    assert 'Model "cgan" is conditional' in message and 'dataset "folder" has no labels' in message
    assert not (tmp_path / "runs").exists()


class _ThreeClassModel:
    """A third-party conditional model that ignores data.n_classes and builds for 3 classes."""

    __name__ = "three-class"

    @staticmethod
    def build(hp, data):
        class G(nn.Module):
            def __init__(self):
                super().__init__()
                self.emb, self.net = nn.Embedding(3, 4), nn.Linear(8, data.channels * data.size ** 2)

            def forward(self, z, labels):
                return torch.tanh(self.net(torch.cat([z, self.emb(labels)], 1))).view(-1, *data)

        class D(nn.Module):
            def __init__(self):
                super().__init__()
                self.net = nn.Linear(data.channels * data.size ** 2, 3)

            def forward(self, images, labels):
                return self.net(images.flatten(1)).gather(1, labels.view(-1, 1))

        return ConditionalGAN(G(), D(), hp, latent_dim=4, n_classes=3)

    @hookimpl
    def ganbench_register_models(self, register):
        register(ModelSpec("three", "3 classes", self.build, training_params(8, 1e-3, 1) + (
            HyperParam("image_size", "int", 8, "side"),)))


def test_a_class_count_that_does_not_match_is_refused_before_a_folder(tmp_path):
    plugins = load_plugins([_ThreeClassModel()])
    config = build_config(plugins.registry, "three", steps=1, runs_dir=str(tmp_path / "runs"), device="cpu")
    with pytest.raises(ConfigError, match=r'^Model "three" was built for 3 classes, but dataset "fashion-mnist-test" '
                                          r"has 10\.$"):
        prepare_run(config, plugins)
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_labelled_folder_trains_cgan_and_sample_draws_one_class(cli, tmp_path, labelled_folder):
    env = {"GANBENCH_CACHE": str(tmp_path / "c")}
    done = cli("run", "--plugin", "cgan", "--dataset", "folder", "--data-root", str(labelled_folder), "--steps", "3",
               "--batch-size", "8", "--set", "image_size=16", "--set", "latent_dim=8", "--set", "sample_count=9",
               "--name", "clothes", env=env)
    assert done.returncode == 0, done.stderr
    run = tmp_path / "runs" / "clothes"
    assert read_metadata(run / "checkpoints" / "latest.safetensors")["classes"] == ["sneaker", "trouser"]
    start = json.loads((run / "events.jsonl").read_text().splitlines()[0])
    assert start["classes"] == ["sneaker", "trouser"] and start["conditional"] is True
    state = RunState("clothes", run)  # the workbench names the grid's rows
    state.feed(iter_events(run / "events.jsonl"))
    assert state.snapshot().grid_rows == ("sneaker", "trouser")
    with Image.open(sorted((run / "samples").glob("*.png"))[-1]) as grid:  # 2 rows (classes) of 3 (isqrt(9))
        assert grid.size == (3 * 18 + 2, 2 * 18 + 2)

    done = cli("sample", str(run), "--class", "Trouser", "-n", "4", "-o", "t.png")
    assert done.returncode == 0, done.stderr
    assert "wrote 4 samples of class trouser to t.png" in done.stdout
    done = cli("sample", str(run), "-n", "9", "-o", "all.png")
    assert "one row per class: sneaker, trouser" in done.stdout
    with Image.open(tmp_path / "all.png") as grid:
        assert grid.size == (3 * 18 + 2, 2 * 18 + 2)
    done = cli("sample", str(run), "--class", "hat", "-o", "x.png")
    assert done.returncode == 2 and 'No class "hat"' in done.stderr and "0 sneaker, 1 trouser" in done.stderr


def test_the_class_drawn_is_the_class_asked_for(plugins, tmp_path):
    """Labels reach the generator: a class index and its name draw the same images, another class others."""
    from workbench.engine.inference import draw_samples

    run = _train(plugins, tmp_path, "cgan", sets=["latent_dim=8", "image_size=12", "batch_size=16"])
    by_name = draw_samples(run.dir.latest, plugins, 4, class_name="sneaker", device="cpu")
    by_index = draw_samples(run.dir.latest, plugins, 4, class_name="7", device="cpu")
    other = draw_samples(run.dir.latest, plugins, 4, class_name="Trouser", device="cpu")
    assert by_name.rows == ("Sneaker",) and torch.equal(by_name.images, by_index.images)
    assert not torch.allclose(by_name.images, other.images)
    with pytest.raises(ConfigError, match="not conditional"):
        draw_samples(_train(plugins, tmp_path, "mlp_gan", sets=["image_size=12"]).dir.latest, plugins, 2,
                     class_name="Sneaker", device="cpu")


def test_class_accuracy_scores_samples_against_the_classes_they_were_drawn_for(plugins):
    """Real test images stand in for a perfect generator: labelled truly they score the classifier's accuracy,
    labelled by a shifted class they score far less."""
    from workbench.data.idx import read_idx
    from workbench.quality.evaluate import Evaluator
    from workbench.rundir.config import RunConfig
    from conftest import SHIPPED

    images = read_idx(SHIPPED / "t10k-images-idx3-ubyte.gz")[:1000].unsqueeze(1)
    labels = read_idx(SHIPPED / "t10k-labels-idx1-ubyte.gz")[:1000].long()
    evaluator = Evaluator(plugins, RunConfig("cgan", "fashion-mnist-test", "bce", {}), 28, torch.device("cpu"),
                          ["class_accuracy"])
    right = evaluator.evaluate(images, labels).metrics["class_accuracy"]
    wrong = evaluator.evaluate(images, (labels + 1) % 10).metrics["class_accuracy"]
    assert right > 0.8 and wrong < 0.2
    with pytest.raises(Exception, match="conditional"):
        evaluator.evaluate(images)
    unconditional = Evaluator(plugins, RunConfig("mlp_gan", "fashion-mnist-test", "bce", {}), 28,
                              torch.device("cpu"), None)
    assert "class_accuracy" not in unconditional.evaluate(images[:200]).metrics


@pytest.mark.parametrize("model", ["cgan", "acgan"])
def test_core_conditional_models_pass_the_kit(model):
    report = check_model_plugin(model, hyperparams=SMALL)
    assert len(report.metrics) == 2
