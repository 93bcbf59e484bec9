"""Run one workload both ways in this process and time the steps after warm-up.

Both paths start from the same initial weights (the engine's, loaded into the
classic networks), train on the same images with the same batch size and
hyper-parameters, and are timed over the same number of steps after the same
warm-up. With ``repeats`` > 1 the order alternates (classic first, then
ganbench first, ...); the median rate of each path and the median of the
per-repeat ratios are reported.
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from workbench.base.errors import ConfigError, GanbenchError
from workbench.data.loading import load_images
from workbench.engine.devices import pick_device
from workbench.engine.run import prepare_run
from workbench.engine.samples import generate
from workbench.engine.training import Run
from workbench.host.configure import build_config
from workbench.host.workloads import ClassicData, Workload
from workbench.rundir.config import RunConfig


@dataclass
class PathTiming:
    """One timed run of one path: images per second after warm-up, and its losses.

    ``losses`` holds (step, D loss, G loss): every step for the classic loop, the mean of each log
    window (ending at that step) for the engine.
    """

    path: str
    images: int
    seconds: float
    losses: list[tuple[int, float, float]]

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds


@dataclass
class WorkloadResult:
    """Both paths of one workload, over every repeat, with the first repeat's curves and samples."""

    workload: Workload
    batch_size: int
    warmup: int
    steps: int
    dataset: str
    classic: list[PathTiming] = field(default_factory=list)
    engine: list[PathTiming] = field(default_factory=list)
    samples: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def classic_rate(self) -> float:
        return statistics.median(t.images_per_s for t in self.classic)

    @property
    def engine_rate(self) -> float:
        return statistics.median(t.images_per_s for t in self.engine)

    @property
    def ratios(self) -> list[float]:
        """ganbench's rate over the classic rate in each repeat, the two measured back to back."""
        return [e.images_per_s / c.images_per_s for c, e in zip(self.classic, self.engine)]

    @property
    def ratio(self) -> float:
        """The median of the per-repeat ratios: on a shared machine the load drifts between repeats,
        less within one."""
        return statistics.median(self.ratios)

    def curves(self) -> list[tuple[int, float, float, float, float]]:
        """(step, classic D, classic G, ganbench D, ganbench G), both averaged over the engine's log windows."""
        per_step = self.classic[0].losses
        rows, start = [], 0
        for step, d_engine, g_engine in self.engine[0].losses:
            window = per_step[start:step]
            if window:
                rows.append((step, sum(w[1] for w in window) / len(window), sum(w[2] for w in window) / len(window),
                             d_engine, g_engine))
            start = step
        return rows


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def _env(name: str, value: str | None):
    """Set an environment variable for the duration of a block (the engine reads its cache folder from it)."""
    old = os.environ.get(name)
    if value is not None:
        os.environ[name] = value
    try:
        yield
    finally:
        if value is not None:
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


@contextlib.contextmanager
def classic_backend_defaults():
    """PyTorch's default backend flags while the classic loop runs (the scripts set none); the engine's
    ``tune_backends`` turns on cuDNN autotuning and TF32 matmuls for the whole process."""
    saved = (torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32 = False, False
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32 = saved


def time_classic(classic, dataloader, warmup: int, steps: int, n_epochs: int, device: torch.device) -> PathTiming:
    """Iterate the classic loop for ``warmup + steps`` batches; time the last ``steps``."""
    losses, images, start = [], 0, 0.0
    total = warmup + steps
    loop = classic.train(dataloader, n_epochs)
    try:
        for step, (batch, d_loss, g_loss) in enumerate(loop, 1):
            losses.append((step, d_loss, g_loss))
            if step == warmup:
                _sync(device)
                start = time.perf_counter()
            elif step > warmup:
                images += batch
            if step == total:
                _sync(device)
                return PathTiming("classic", images, time.perf_counter() - start, losses)
    finally:
        loop.close()  # shuts the DataLoader's workers down
    raise GanbenchError(f"The classic loop ran out of data after {len(losses)} of {total} steps.")


def time_engine(run: Run, warmup: int, steps: int) -> PathTiming:
    """Train the prepared run; time from the metrics event at step ``warmup`` to the one at the last step.

    The engine logs every ``warmup`` steps in the benchmark, so both ends of the
    timed window fall on a logging step, where the engine syncs anyway.
    """
    marks: dict[int, float] = {}
    losses: list[tuple[int, float, float]] = []
    total = warmup + steps

    def listen(event) -> None:
        if event["type"] == "metrics":
            losses.append((event["step"], event["d_loss"], event["g_loss"]))
            if event["step"] in (warmup, total):
                _sync(run.device)
                marks[event["step"]] = time.perf_counter()

    run.listeners.append(listen)
    reason = run.train()
    if reason != "completed" or len(marks) != 2:
        raise GanbenchError(f"The ganbench run of the benchmark ended '{reason}' at step {run.step} of {total}; "
                            f"see {run.dir.events}.")
    return PathTiming("ganbench", steps * run.data.batch_size, marks[total] - marks[warmup], losses)


RESERVED = ("log_every", "log_seconds", "checkpoint_every")  # the timing relies on them


class WorkloadBench:
    """Prepares the data of one workload once, then times both paths as often as asked.

    :param sets: ``key=value`` items as for ``ganbench run --set``: the model's hyper-parameters apply to both
        paths, engine settings (``compile``, ``amp``, ...) to ganbench only.
    """

    def __init__(self, workload: Workload, plugins, workdir: Path, *, device: str = "auto", warmup: int = 10,
                 steps: int | None = None, batch_size: int | None = None, dataset: str | None = None,
                 image_folder: Path | None = None, seed: int = 0, sets: list[str] = ()):
        if warmup < 1:
            raise ConfigError(f"--warmup must be at least 1; got {warmup}.")
        for item in sets:
            if item.partition("=")[0].strip() in RESERVED:
                raise ConfigError(f'The benchmark sets {", ".join(RESERVED)} itself; drop "--set {item}".')
        self.workload, self.plugins, self.workdir, self.seed = workload, plugins, Path(workdir), seed
        self.device = pick_device(device)
        self.warmup = warmup
        self.steps = steps if steps is not None else workload.default_steps(self.device.type)
        if self.steps < 1:
            raise ConfigError(f"--steps must be at least 1; got {self.steps}.")
        total = self.warmup + self.steps
        sets = [f"{k}={v}" for k, v in workload.hyperparams.items()] + \
            ([f"batch_size={batch_size}"] if batch_size else []) + list(sets) + [
            f"log_every={self.warmup}", "log_seconds=1e9",  # fixed windows: the timed span starts on a log step
            f"checkpoint_every={total + 1}"]  # the classic scripts write no checkpoints while training
        self.cache_env: str | None = None
        if workload.reads_folder:
            if dataset:
                raise ConfigError(f"{workload.name} trains on a folder of images; give --image-folder DIR, "
                                  f"not --dataset.")
            generated = image_folder is None
            if generated:
                image_folder = self.workdir / "faces"
                self.cache_env = str(self.workdir / "cache")  # the decoded copy of generated images is temporary
            elif not Path(image_folder).is_dir():
                raise ConfigError(f"--image-folder {image_folder} is not a folder.")
            elif not any(p.is_dir() for p in Path(image_folder).iterdir()):
                raise ConfigError(f"The classic side reads images from subfolders of --image-folder (torchvision's "
                                  f"ImageFolder); {image_folder} has none: pass the folder above it (for CelebA, "
                                  f"the one holding img_align_celeba).")
            self.config = build_config(plugins.registry, workload.model, dataset="folder", sets=sets, steps=total,
                                       device=device, seed=seed, runs_dir=str(self.workdir / "runs"),
                                       data_root=str(image_folder))
            hp = self.config.hyperparams
            if generated:  # enough images that the classic DataLoader never starts a second epoch
                workload.make_folder(image_folder, (total + 2) * hp["batch_size"], seed)
            self.dataset = f"{'generated ' if generated else ''}image folder {image_folder}"
            request = ClassicData(hp, self.workdir, folder=Path(image_folder))
            self.images = self.labels = None
        else:
            if image_folder is not None:
                raise ConfigError(f"--image-folder is for the workloads that read a folder of images; "
                                  f"{workload.name} reads a dataset (--dataset).")
            self.config = build_config(plugins.registry, workload.model, dataset=dataset, sets=sets, steps=total,
                                       device=device, seed=seed, runs_dir=str(self.workdir / "runs"))
            hp = self.config.hyperparams
            data = load_images(self.config, plugins, hp["image_size"])
            self.dataset = f"{self.config.dataset} ({data.images.shape[0]:,} images)"
            self.images, self.labels = data.images, data.labels  # for the whole-process scripts' files
            request = ClassicData(hp, self.workdir, images=data.images, labels=data.labels,
                                  dataset=self.config.dataset)
        self.loader = workload.classic_data(request)
        self.hp = hp

    def _prepare_engine(self) -> Run:
        config = RunConfig.from_dict(self.config.to_dict())
        with _env("GANBENCH_CACHE", self.cache_env):
            return prepare_run(config, self.plugins)

    def measure(self, repeats: int = 1, report=lambda line: None) -> WorkloadResult:
        """Time both paths ``repeats`` times, alternating which goes first."""
        result = WorkloadResult(self.workload, self.hp["batch_size"], self.warmup, self.steps, self.dataset)
        for repeat in range(repeats):
            run = self._prepare_engine()
            initial = {name: {k: v.detach().clone() for k, v in net.state_dict().items()}
                       for name, net in run.model.networks.items()}
            order = ("classic", "ganbench") if repeat % 2 == 0 else ("ganbench", "classic")
            for path in order:
                if path == "classic":
                    timing, samples = self._classic(run, initial)
                    result.classic.append(timing)
                else:
                    timing = time_engine(run, self.warmup, self.steps)
                    samples = generate(run.model, run.fixed_noise)
                    result.engine.append(timing)
                result.samples.setdefault(path, samples.cpu())
                report(f"  {self.workload.name} repeat {repeat + 1}/{repeats}: {path:8} "
                       f"{timing.images_per_s:10,.1f} images/s ({timing.images:,} images in {timing.seconds:.2f} s)")
        return result

    def _classic(self, run: Run, initial: dict) -> tuple[PathTiming, torch.Tensor]:
        np.random.seed(self.seed)
        torch.manual_seed(self.seed)
        images_dir = self.workdir / "classic-images"
        images_dir.mkdir(parents=True, exist_ok=True)
        classic = self.workload.classic(self.hp, run.image_shape, self.device, images_dir)
        for name, net in classic.networks.items():
            net.load_state_dict(initial[name])  # the same architecture: every key and shape must match
        loader = self.loader()
        n_epochs = max(self.hp["epochs"], math.ceil((self.warmup + self.steps) / len(loader)))
        with classic_backend_defaults():
            timing = time_classic(classic, loader, self.warmup, self.steps, n_epochs, self.device)
            return timing, generate(classic, run.fixed_noise)
