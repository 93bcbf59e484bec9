"""The test kit for plugin authors: one call checks a plugin the way ganbench will use it.

::

    from workbench.testing import check_dataset_plugin, check_loss_plugin, check_model_plugin

    def test_my_gan():
        check_model_plugin("my_gan", hyperparams={"hidden": 32})

``check_model_plugin`` trains the model for two steps on tiny generated images
through the real engine (``prepare_run`` and ``Run.train``), reloads its
safetensors checkpoint and compares every weight, resumes it for a third step
and checks that the result equals three steps without a break, and draws a
sample grid from the checkpoint. A conditional model (``batch_fields =
("labels",)``) trains on the images' two classes and has its labels path
checked too (``workbench.testing_labels``). ``check_dataset_plugin`` loads a dataset,
checks what it returned and trains a tiny reference GAN on it;
``check_loss_plugin`` checks a loss's values and gradients and trains the tiny
GAN with it. Each raises ``PluginCheckError`` (an ``AssertionError``, so pytest
shows its message) saying what is wrong, or returns a ``KitReport``.

``scratch_env`` makes a throwaway virtual environment that sees every package
of this one, to test a plugin's packaging (``pip install -e``, entry points)
without touching the environment you work in.
"""

from __future__ import annotations

import contextlib
import math
import os
import site
import subprocess
import tempfile
import venv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn

from workbench import hookimpl
from workbench.errors import GanbenchError
from workbench.model import TwoNetworkGAN, needs_labels
from workbench.params import HyperParam, training_params
from workbench.registry import DataRequest, DatasetSpec, ImageData, ModelSpec
from workbench.testing_labels import check_labels_path

KIT_DATASET = "testkit-shapes"
KIT_MODEL = "testkit-mlp"
KIT_CLASSES = ("ellipse", "box")
KIT_ENGINE = ("log_every=1", "sample_every=0", "checkpoint_every=100000", "sample_count=4")
_KIT_BATCH = 8


class PluginCheckError(AssertionError):
    """A plugin failed a check of the test kit; the message says which and what it did."""


@dataclass
class KitReport:
    """What a successful check left behind, for further assertions of your own.

    :param run_dir: the run directory of the first training run.
    :param metrics: the metrics events of that run, one per step.
    :param checkpoint: the checkpoint the round trip and the sample used.
    :param sample: the PNG grid drawn from the checkpoint (model checks only).
    :param warnings: messages of ``warning`` events (an observer plugin that failed, for example).
    """

    run_dir: Path
    metrics: list[dict[str, Any]]
    checkpoint: Path | None = None
    sample: Path | None = None
    warnings: list[str] = field(default_factory=list)


# -- the tiny data and the tiny reference model --------------------------------
def shape_images(count: int, channels: int, size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` uint8 images (count, channels, size, size) of one bright ellipse or box each, and 0/1 labels."""
    gen = torch.Generator().manual_seed(seed)
    coords = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    y, x = coords.view(1, size, 1), coords.view(1, 1, size)
    centre = 0.3 + 0.4 * torch.rand(count, 2, 1, 1, generator=gen)
    radius = 0.12 + 0.2 * torch.rand(count, 2, 1, 1, generator=gen)
    dx, dy = (x - centre[:, 0]) / radius[:, 0], (y - centre[:, 1]) / radius[:, 1]
    labels = torch.randint(0, 2, (count,), generator=gen)
    ellipse = dx**2 + dy**2 <= 1
    box = (dx.abs() <= 1) & (dy.abs() <= 1)
    mask = torch.where(labels.view(-1, 1, 1).bool(), box, ellipse)
    colour = 120 + torch.randint(0, 136, (count, channels, 1, 1), generator=gen)
    images = mask.unsqueeze(1) * colour + (~mask).unsqueeze(1) * 16
    return images.to(torch.uint8), labels


class _TinyGenerator(nn.Module):
    def __init__(self, latent_dim: int, image_shape: tuple[int, int, int]):
        super().__init__()
        self.image_shape = image_shape
        self.net = nn.Sequential(nn.Linear(latent_dim, 64), nn.ReLU(), nn.Linear(64, math.prod(image_shape)), nn.Tanh())

    def forward(self, z):
        return self.net(z).view(z.shape[0], *self.image_shape)


def _tiny_discriminator(image_shape: tuple[int, int, int]) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(image_shape), 64), nn.LeakyReLU(0.2), nn.Linear(64, 1))


class _KitPlugin:
    """Registers the kit's dataset of generated shapes and its tiny MLP GAN (never installed as an entry point)."""

    def __init__(self, channels: int = 1, count: int = 32):
        self.__name__ = "ganbench-testkit"  # the name load_plugins lists it under
        self.channels, self.count = channels, count

    def load(self, request: DataRequest) -> ImageData:
        images, labels = shape_images(self.count, self.channels, request.image_size)
        return ImageData(images, labels, source="generated by workbench.testing", classes=KIT_CLASSES)

    @staticmethod
    def build(hp: dict, image_shape: tuple[int, int, int]) -> TwoNetworkGAN:
        return TwoNetworkGAN(_TinyGenerator(hp["latent_dim"], image_shape), _tiny_discriminator(image_shape), hp,
                             latent_dim=hp["latent_dim"])

    @hookimpl
    def ganbench_register_datasets(self, register):
        register(DatasetSpec(KIT_DATASET, "generated ellipses and boxes (the test kit's)", self.load))

    @hookimpl
    def ganbench_register_models(self, register):
        register(ModelSpec(KIT_MODEL, "a tiny MLP GAN (the test kit's)", self.build,
                           training_params(batch_size=_KIT_BATCH, lr=2e-4, epochs=1) + (
                               HyperParam("latent_dim", "int", 16, "size of the noise vector", min=1),
                               HyperParam("image_size", "int", 16, "side of the square images", min=4)),
                           dataset=KIT_DATASET))


# -- the checks ------------------------------------------------------------------
def check_model_plugin(name: str, *, hyperparams: dict[str, Any] | None = None, loss: str | None = None,
                       channels: int = 1, device: str = "cpu", exact_resume: bool = True,
                       workdir: Path | None = None, modules: list | None = None) -> KitReport:
    """Train model ``name`` for two steps on tiny data, round-trip its checkpoint, resume it, sample from it.

    :param hyperparams: values to use instead of the model's defaults (make it small: ``{"ngf": 8}``).
    :param loss: the loss to train with (default: the model's).
    :param channels: 1 for grey or 3 for RGB images, whichever the model is made for.
    :param device: ``cpu`` (default), ``cuda`` ...
    :param exact_resume: check that 2 steps + resume + 1 step equals 3 straight steps; turn off for a
        generator with dropout (drawing the end-of-run sample moves the random stream).
    :param workdir: a folder to keep the run directories in (default: a temporary folder, removed afterwards).
    :param modules: plugin modules to load besides the installed ones (to check one before packaging it).
    """
    with _workdir(workdir) as root:
        kit = _KitPlugin(channels)
        plugins = _load(kit, "models", name, modules)
        config = _kit_config(plugins, kit, name, KIT_DATASET, loss, hyperparams, device, root, "check-model")
        run = _train(plugins, config)
        report = _report(run)
        checkpoint = run.dir.latest
        _check_round_trip(plugins, run, checkpoint, device)
        if needs_labels(run.model):  # a conditional model: the labels path (workbench/testing_labels.py)
            _blame(check_labels_path, plugins, run, device, KIT_CLASSES)
        resumed = _resume(plugins, run.dir.path, config.steps + 1)
        if exact_resume:
            straight_config = _kit_config(plugins, kit, name, KIT_DATASET, loss, hyperparams, device, root,
                                          "check-model-straight", steps=config.steps + 1)
            _compare_weights(_train(plugins, straight_config).model, resumed.model,
                             f"{config.steps + 1} steps without a break",
                             f"{config.steps} steps, a resume from the checkpoint and 1 more step",
                             "keep every piece of training state in a network (a buffer) or an optimizer")
        report.checkpoint = resumed.dir.latest
        report.sample = _check_sample(plugins, resumed, root / "sample.png", device)
        return report


def check_loss_plugin(name: str, *, device: str = "cpu", workdir: Path | None = None,
                      modules: list | None = None) -> KitReport:
    """Check loss ``name`` on sample logits (scalar, finite, differentiable, the right direction) and train with it.

    :param modules: plugin modules to load besides the installed ones.
    """
    from workbench.validation import check_loss_values

    with _workdir(workdir) as root:
        kit = _KitPlugin()
        plugins = _load(kit, "losses", name, modules)
        entry = plugins.registry.losses[name]
        who = f'Loss "{name}" (plugin {entry.plugin} from {entry.dist})'
        loss = _blame(plugins.registry.loss(name).build)
        target = torch.device(device)
        _blame(check_loss_values, loss, who, target, _KIT_BATCH)
        high = torch.full((_KIT_BATCH,), 4.0, device=target)
        if not _blame(loss.d_loss, high, -high) < _blame(loss.d_loss, -high, high):
            raise PluginCheckError(f"{who}: d_loss is not lower when D scores the real images high and the fakes "
                                   f"low than the other way round; check its signs.")
        if not _blame(loss.g_loss, high) < _blame(loss.g_loss, -high):
            raise PluginCheckError(f"{who}: g_loss is not lower when D scores the fakes high; check its sign.")
        config = _kit_config(plugins, kit, KIT_MODEL, KIT_DATASET, name, None, device, root, "check-loss")
        return _report(_train(plugins, config))


def check_dataset_plugin(name: str, *, data_root: Path | str | None = None, split: str = "train",
                         image_size: int = 32, device: str = "cpu", workdir: Path | None = None,
                         modules: list | None = None) -> KitReport:
    """Load dataset ``name``, check what it returned, and train a tiny GAN on it for two steps.

    :param data_root: the folder to read (``--data-root``); None lets the dataset search its default place.
    :param split: ``train`` or ``test``.
    :param image_size: the side the tiny GAN asks for.
    :param modules: plugin modules to load besides the installed ones.
    """
    with _workdir(workdir) as root:
        kit = _KitPlugin()
        plugins = _load(kit, "datasets", name, modules)
        request = DataRequest(root=Path(data_root) if data_root else None, download=False, image_size=image_size,
                              split=split, cache_dir=root / "cache")
        data = _blame(plugins.registry.dataset(name).load, request)
        count = int(data.images.shape[0])
        if count < 2:
            raise PluginCheckError(f'Dataset "{name}" returned {count} image(s); the check needs at least 2.')
        kit.channels = int(data.images.shape[1])
        config = _kit_config(plugins, kit, KIT_MODEL, name, None, {"image_size": image_size,
                                                                     "batch_size": min(_KIT_BATCH, count)},
                             device, root, "check-dataset", data_root=str(data_root) if data_root else None)
        return _report(_train(plugins, config))


# -- how the checks run ----------------------------------------------------------
@contextlib.contextmanager
def _workdir(workdir: Path | None) -> Iterator[Path]:
    """A fresh folder for one check: inside ``workdir`` (kept), or a temporary one (removed)."""
    if workdir is not None:
        Path(workdir).mkdir(parents=True, exist_ok=True)
        yield Path(tempfile.mkdtemp(prefix="ganbench-check-", dir=workdir))
        return
    with tempfile.TemporaryDirectory(prefix="ganbench-check-") as folder:
        yield Path(folder)


def _blame(function, *args, **kwargs):
    """Call ``function``; a GanbenchError (a broken contract, with its blame) becomes a PluginCheckError."""
    try:
        return function(*args, **kwargs)
    except GanbenchError as exc:
        raise PluginCheckError(str(exc)) from exc


def _load(kit: _KitPlugin, kind: str, name: str, modules: list | None):
    from workbench.plugins import load_plugins

    plugins = load_plugins([*(modules or []), kit])
    table = getattr(plugins.registry, kind)
    if name not in table:
        word = {"models": "model", "datasets": "dataset", "losses": "loss"}[kind]
        known = ", ".join(sorted(n for n in table if not n.startswith("testkit-"))) or "none"
        problems = f" Plugin errors: {' '.join(plugins.errors)}" if plugins.errors else ""
        raise PluginCheckError(f'No {word} named "{name}" is registered (is the plugin installed, with an entry '
                               f'point in the "ganbench" group?). Known: {known}.{problems}')
    owner = next(p for p in plugins.plugins if p.name == table[name].plugin)
    if owner.error:
        raise PluginCheckError(f'Plugin "{owner.name}" ({owner.dist}), which registers "{name}", has problems: '
                               f"{owner.error}")
    return plugins


def _kit_config(plugins, kit: _KitPlugin, model: str, dataset: str, loss: str | None,
                hyperparams: dict[str, Any] | None, device: str, root: Path, name: str, steps: int = 2,
                data_root: str | None = None):
    from workbench.config import build_config, validate

    spec = plugins.registry.model(model)
    batch = spec.param("batch_size")
    size = _KIT_BATCH
    if batch.min is not None and size < batch.min or batch.max is not None and size > batch.max:
        size = int(batch.min if batch.min is not None and size < batch.min else batch.max)
    config = _blame(build_config, plugins.registry, model, dataset=dataset, loss=loss,
                    sets=[f"batch_size={size}", *KIT_ENGINE], steps=steps, device=device,
                    runs_dir=str(root / "runs"), name=name, data_root=data_root)
    unknown = sorted(set(hyperparams or {}) - {p.name for p in spec.hyperparams})
    if unknown:
        raise PluginCheckError(f'Model "{model}" declares no hyper-parameter {", ".join(unknown)}; it declares '
                               f'{", ".join(p.name for p in spec.hyperparams)}.')
    config.hyperparams.update(hyperparams or {})
    _blame(validate, config, plugins.registry)
    kit.count = max(32, 4 * config.hyperparams["batch_size"])
    return config


def _train(plugins, config):
    from workbench.engine.run import prepare_run

    run = _blame(prepare_run, config, plugins)
    reason = run.train()
    if reason != "completed":
        end = _events(run.dir.events, "run_end")
        message = end[-1].get("message", "") if end else ""
        errors = " ".join(e.get("message", "") for e in _events(run.dir.events, "error"))
        raise PluginCheckError(f'Training {config.model} on {config.dataset} with loss {config.loss} ended '
                               f'"{reason}": {message} {errors}'.strip())
    return run


def _resume(plugins, run_path: Path, steps: int):
    from workbench.engine.run import prepare_run

    run = _blame(prepare_run, None, plugins, resume=run_path, overrides={"steps": steps})
    start = run.step
    if run.train() != "completed" or run.step != steps:
        raise PluginCheckError(f"Resuming {run_path} from step {start} did not complete step {steps}.")
    return run


def _events(path: Path, kind: str) -> list[dict[str, Any]]:
    from workbench.engine.events import iter_events

    return [e for e in iter_events(path) if e["type"] == kind]


def _report(run) -> KitReport:
    metrics = _events(run.dir.events, "metrics")
    steps = [e["step"] for e in metrics]
    if steps[-1:] != [run.step]:
        raise PluginCheckError(f"The run logged metrics for steps {steps}, not up to step {run.step}.")
    for event in metrics:
        for key in ("d_loss", "g_loss", "d_real", "d_fake"):
            if not isinstance(event[key], (int, float)) or not math.isfinite(event[key]):
                raise PluginCheckError(f"Step {event['step']} of {run.config.model} logged {key} = {event[key]}.")
    if not run.dir.latest.is_file() or not any(run.dir.samples.glob("*.png")):
        raise PluginCheckError(f"The run in {run.dir.path} left no checkpoint or no sample grid.")
    warnings = [e.get("message", "") for e in _events(run.dir.events, "warning")]
    return KitReport(run.dir.path, metrics, run.dir.latest, None, warnings)


def _check_round_trip(plugins, run, checkpoint: Path, device: str) -> None:
    from workbench.engine.inference import load_model
    from workbench.engine.samples import generate

    loaded, _ = _blame(load_model, checkpoint, plugins, device)
    _compare_weights(run.model, loaded, "the trained model", f"the one reloaded from {checkpoint.name}",
                     "every network must be in GanModel.networks")
    z = torch.randn(4, run.model.latent_dim, generator=torch.Generator().manual_seed(7)).to(run.device)
    if not torch.allclose(generate(run.model, z), generate(loaded, z.to(_device_of(loaded))).to(run.device),
                          atol=1e-5):
        raise PluginCheckError(f"{run.config.model}: the reloaded model draws other images from the same noise "
                               f"than the trained one; its generate() must depend on its networks only.")


def _device_of(model) -> torch.device:
    for net in model.networks.values():
        for tensor in list(net.parameters()) + list(net.buffers()):
            return tensor.device
    return torch.device("cpu")


def _compare_weights(first, second, first_label: str, second_label: str, hint: str) -> None:
    if set(first.networks) != set(second.networks):
        raise PluginCheckError(f"{first_label} has the networks {sorted(first.networks)}, {second_label} has "
                               f"{sorted(second.networks)}.")
    for net_name, net in first.networks.items():
        other = second.networks[net_name].state_dict()
        for key, value in net.state_dict().items():
            theirs = other[key].to(value.device)
            same = torch.equal(value, theirs) if not value.is_floating_point() else \
                torch.allclose(value, theirs, rtol=1e-4, atol=1e-6)
            if not same:
                raise PluginCheckError(f"{net_name}.{key} differs between {first_label} and {second_label}; {hint}.")


def _check_sample(plugins, run, path: Path, device: str) -> Path:
    from PIL import Image

    from workbench.engine.inference import sample_images
    from workbench.engine.samples import save_grid

    images = _blame(sample_images, run.dir.latest, plugins, 4, 0, device)
    if tuple(images.shape) != (4, *run.image_shape) or images.min() < -1 or images.max() > 1:
        raise PluginCheckError(f"Sampling {run.dir.latest.name} gave images of shape {tuple(images.shape)} "
                               f"from {images.min():.3g} to {images.max():.3g}; expected (4, *{run.image_shape}) "
                               f"in [-1, 1].")
    save_grid(images, path)
    with Image.open(path) as grid:
        if grid.format != "PNG" or min(grid.size) < run.image_shape[1]:
            raise PluginCheckError(f"The sample grid {path} is a {grid.format} image of {grid.size}.")
    return path


# -- a throwaway environment for packaging tests ----------------------------------
@dataclass
class ScratchEnv:
    """A virtual environment that sees every package of the one that made it, and adds its own on top.

    Install a plugin there with ``install`` and run ``ganbench`` there with
    ``ganbench``; the environment you work in stays as it was.
    """

    path: Path

    @property
    def python(self) -> Path:
        return self.path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")

    def install(self, project: Path | str, editable: bool = True) -> None:
        """``pip install --no-deps --no-build-isolation [-e] PROJECT`` into this environment, offline."""
        command = [str(self.python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                   "--no-index", *(["-e"] if editable else []), str(project)]
        done = subprocess.run(command, capture_output=True, text=True, env=self.environ())
        if done.returncode != 0:
            raise PluginCheckError(f"pip could not install {project}:\n{done.stdout}{done.stderr}")

    def ganbench(self, *args: str, cwd: Path | str | None = None, env: dict[str, str] | None = None,
                 timeout: float = 600) -> subprocess.CompletedProcess:
        """Run ``ganbench ARGS`` with this environment's Python; returns the finished process, output captured."""
        return self.run("-m", "workbench", *args, cwd=cwd, env=env, timeout=timeout)

    def run(self, *args: str, cwd: Path | str | None = None, env: dict[str, str] | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess:
        """Run this environment's Python with ``args`` (``run("-m", "pytest", "tests")``)."""
        return subprocess.run([str(self.python), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              env=self.environ(env))

    def environ(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The environment variables for processes of this environment."""
        return {**os.environ, "PYTHONUNBUFFERED": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", **(extra or {})}


def scratch_env(path: Path | str) -> ScratchEnv:
    """Create a ``ScratchEnv`` at ``path`` (a new folder) in well under a second: no pip of its own, no copies."""
    path = Path(path)
    venv.EnvBuilder(with_pip=False, symlinks=os.name != "nt").create(path)
    env = ScratchEnv(path)
    purelib = subprocess.run([str(env.python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    outer = [p for p in site.getsitepackages() if Path(p).is_dir()]
    if site.ENABLE_USER_SITE and Path(site.getusersitepackages()).is_dir():
        outer.append(site.getusersitepackages())
    # An "import" line in a .pth file runs at start-up: addsitedir also reads the outer .pth files (editable installs).
    lines = [f"import site; site.addsitedir({folder!r})\n" for folder in outer]
    (Path(purelib) / "_ganbench_outer_site.pth").write_text("".join(lines), encoding="utf-8")
    return env
