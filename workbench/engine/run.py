"""The training run: build everything from a configuration, then loop and emit events.

``prepare_run`` resolves the model, loss and dataset, creates (or reopens) the
run directory and restores a checkpoint when resuming; ``Run.train`` runs the
loop. The console, the workbench and the tests all drive these two calls.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import torch

from workbench.config import RunConfig, validate
from workbench.engine import checkpoint as ckpt
from workbench.engine.control import RunControl
from workbench.engine.data import DeviceImages, resize_uint8
from workbench.engine.devices import describe_device, pick_device, tune_backends
from workbench.engine.events import Event, EventLog
from workbench.engine.rundir import RunDir, create_run_dir
from workbench.engine.samples import generate, save_grid
from workbench.errors import CheckpointError, ConfigError, DataError, GanbenchError
from workbench.plugins import PluginSet
from workbench.registry import DataRequest, ImageData

Listener = Callable[[Event], None]
METRIC_KEYS = ("d_loss", "g_loss", "d_real", "d_fake")


class Run:
    """A prepared run. Attributes a plugin may read: ``config``, ``dir``, ``step``, ``epoch``, ``device``."""

    def __init__(self, config: RunConfig, plugins: PluginSet, run_dir: RunDir, device: torch.device,
                 model, loss, data: DeviceImages, image_shape: tuple[int, int, int], control: RunControl,
                 listeners: list[Listener], dataset_source: str):
        self.config, self.plugins, self.dir, self.device = config, plugins, run_dir, device
        self.model, self.loss, self.data, self.image_shape = model, loss, data, image_shape
        self.control, self.listeners, self.dataset_source = control, listeners, dataset_source
        self.step = self.epoch = self.batch = 0
        self.resumed_from: str | None = None
        self.spec = plugins.registry.model(config.model)
        self.noise = torch.Generator(device=device).manual_seed(config.seed)
        model.noise = self.noise
        self.fixed_noise = torch.randn(config.engine["sample_count"], model.latent_dim,
                                       generator=torch.Generator().manual_seed(config.seed + 1)).to(device)
        self.total_steps = config.steps or config.hyperparams["epochs"] * data.steps_per_epoch
        self.log: EventLog | None = None

    # -- events -------------------------------------------------------------
    def emit(self, type_: str, **fields: Any) -> Event:
        event = self.log.write(type_, **fields)
        for listener in self.listeners:
            listener(event)
        return event

    def notify(self, hook: str, **kwargs: Any) -> None:
        """Call one observer hook in every plugin; a failing plugin is reported, never fatal."""
        for impl in getattr(self.plugins.manager.hook, hook).get_hookimpls():
            try:
                impl.function(run=self, **kwargs)
            except Exception as exc:
                self.emit("warning", message=f'Plugin "{impl.plugin_name}" failed in {hook}: {type(exc).__name__}: {exc}')

    # -- files --------------------------------------------------------------
    def checkpoint_meta(self) -> dict[str, Any]:
        return {"model": self.config.model, "model_version": self.spec.version, "dataset": self.config.dataset,
                "loss": self.config.loss, "hyperparams": self.config.hyperparams, "image_shape": list(self.image_shape),
                "latent_dim": self.model.latent_dim, "step": self.step, "epoch": self.epoch, "batch": self.batch,
                "device": self.device.type, "config": self.config.to_dict(), "time": round(time.time(), 3)}

    def save_checkpoint(self) -> Path:
        extra = {"rng/noise": self.noise.get_state(), "rng/torch": torch.get_rng_state(), "fixed_noise": self.fixed_noise}
        if self.device.type == "cuda":
            extra["rng/cuda"] = torch.cuda.get_rng_state(self.device)
        path = self.dir.checkpoints / f"step-{self.step:08d}.safetensors"
        ckpt.save_checkpoint(path, self.model, self.checkpoint_meta(), extra)
        _replace_with_link(path, self.dir.latest)
        keep = self.config.engine["keep_checkpoints"]
        for old in sorted(self.dir.checkpoints.glob("step-*.safetensors"))[:-keep]:
            old.unlink(missing_ok=True)
        self.emit("checkpoint", step=self.step, epoch=self.epoch, path=str(path))
        self.notify("ganbench_checkpoint_written", path=path, step=self.step)
        return path

    def save_samples(self) -> Path:
        path = self.dir.samples / f"step-{self.step:08d}.png"
        save_grid(generate(self.model, self.fixed_noise), path)
        self.emit("sample", step=self.step, epoch=self.epoch, path=str(path))
        self.notify("ganbench_sample_written", path=path, step=self.step)
        return path

    def restore(self, checkpoint: ckpt.Checkpoint) -> None:
        ckpt.restore_networks(checkpoint, self.model)
        ckpt.restore_optimizers(checkpoint, self.model)
        meta = checkpoint.meta
        self.step, self.epoch, self.batch = int(meta["step"]), int(meta.get("epoch", 0)), int(meta.get("batch", 0))
        if "fixed_noise" in checkpoint.tensors:
            self.fixed_noise = checkpoint.tensors["fixed_noise"].to(self.device)
        if meta.get("device") == self.device.type:  # generator states are device-specific
            self.noise.set_state(checkpoint.tensors["rng/noise"])
            torch.set_rng_state(checkpoint.tensors["rng/torch"])
            if "rng/cuda" in checkpoint.tensors:
                torch.cuda.set_rng_state(checkpoint.tensors["rng/cuda"], self.device)
        self.resumed_from = str(checkpoint.path)

    # -- the loop -----------------------------------------------------------
    def train(self) -> str:
        """Train until the configured number of steps, a stop request or divergence; return the reason."""
        self.log = EventLog(self.dir.events)
        self.dir.write_state(status="running", pid=os.getpid(), host=socket.gethostname(), step=self.step,
                             total_steps=self.total_steps)
        self.emit("run_start", step=self.step, epoch=self.epoch, total_steps=self.total_steps,
                  steps_per_epoch=self.data.steps_per_epoch, batch_size=self.data.batch_size,
                  dataset_size=int(self.data.images.shape[0]), dataset_source=self.dataset_source,
                  device=describe_device(self.device), image_shape=list(self.image_shape),
                  config=self.config.to_dict(), resumed_from=self.resumed_from)
        self.notify("ganbench_run_start")
        try:
            reason, message = self._loop()
        except GanbenchError as exc:
            reason, message = "failed", str(exc)
        except Exception as exc:
            reason = "failed"
            message = f"Training failed at step {self.step}: {type(exc).__name__}: {exc}"
            self.emit("error", message=message, traceback=traceback.format_exc())
        return self._finish(reason, message)

    def _loop(self) -> tuple[str, str]:
        model, loss, control, engine = self.model, self.loss, self.control, self.config.engine
        sample_every, checkpoint_every = engine["sample_every"], engine["checkpoint_every"]
        model.train()
        totals = torch.zeros(len(METRIC_KEYS), device=self.device)
        count, last_log_step = 0, self.step
        last_log = time.monotonic()
        while self.step < self.total_steps:
            for real in self.data.batches(self.epoch, self.batch):
                metrics = model.train_step(real, loss)
                totals += torch.stack([metrics[k].float() for k in METRIC_KEYS])
                count += 1
                self.step += 1
                self.batch += 1
                now = time.monotonic()
                control.poll(now)
                if self.step % engine["log_every"] == 0 or now - last_log >= engine["log_seconds"] \
                        or self.step == self.total_steps or control.stop_requested:
                    values = (totals / count).tolist()  # the one host sync per interval
                    rate = (self.step - last_log_step) * self.data.batch_size / max(now - last_log, 1e-9)
                    event = self.emit("metrics", step=self.step, epoch=self.epoch, batch=self.batch,
                                      images_per_s=round(rate, 1), **dict(zip(METRIC_KEYS, values)))
                    self.notify("ganbench_metrics", metrics=event)
                    totals.zero_()
                    count, last_log_step, last_log = 0, self.step, now
                    if not all(v == v and abs(v) != float("inf") for v in values):
                        return "diverged", f"Training diverged at step {self.step} (a loss became NaN or infinite)."
                if sample_every and self.step % sample_every == 0:
                    self.save_samples()
                if self.step % checkpoint_every == 0 or control.checkpoint_requested:
                    control.checkpoint_requested = False
                    self.save_checkpoint()
                if control.paused:
                    self._wait_while_paused()
                if control.stop_requested or self.step >= self.total_steps:
                    break
            if self.batch >= self.data.steps_per_epoch:
                self.emit("epoch_end", epoch=self.epoch, step=self.step)
                self.epoch, self.batch = self.epoch + 1, 0
            if control.stop_requested:
                return control.stop_reason, f"Stopped at step {self.step} of {self.total_steps}."
        return "completed", f"Completed {self.step} steps."

    def _wait_while_paused(self) -> None:
        self.emit("paused", step=self.step)
        self.dir.write_state(status="paused", step=self.step)
        while self.control.paused and not self.control.stop_requested:
            time.sleep(0.05)
            self.control.poll(time.monotonic())
        self.dir.write_state(status="running", step=self.step)
        self.emit("resumed", step=self.step)

    def _finish(self, reason: str, message: str) -> str:
        if reason in ("completed", "stopped"):
            try:
                self.save_samples()
                self.save_checkpoint()
            except OSError as exc:
                reason, message = "failed", f"Could not write the final checkpoint: {exc.strerror or exc}; " \
                                            f"the previous checkpoint is intact."
        self.emit("run_end", reason=reason, message=message, step=self.step, epoch=self.epoch)
        self.notify("ganbench_run_end", reason=reason)
        self.dir.write_state(status=reason, step=self.step, message=message)
        self.log.close()
        return reason


def _replace_with_link(source: Path, target: Path) -> None:
    """Point ``target`` at ``source``'s content atomically (a hard link, or a copy where links fail)."""
    import shutil

    tmp = target.with_name(f".{target.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
    os.replace(tmp, target)


def load_images(config: RunConfig, plugins: PluginSet, image_size: int, split: str = "train") -> ImageData:
    """Ask the dataset plugin for its images and check what it returned."""
    spec = plugins.registry.dataset(config.dataset)
    request = DataRequest(root=Path(config.data_root).expanduser() if config.data_root else None,
                          download=config.download, image_size=image_size, split=split)
    data = spec.load(request)
    images = getattr(data, "images", None)
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.dim() != 4:
        got = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, torch.Tensor) else type(images).__name__
        raise DataError(f'Dataset "{config.dataset}" returned {got}; a uint8 tensor (N, C, H, W) is required.')
    if images.shape[0] == 0:
        raise DataError(f'Dataset "{config.dataset}" holds no images.')
    return data


def prepare_run(config: RunConfig | None, plugins: PluginSet, *, resume: Path | None = None,
                control: RunControl | None = None, listeners: list[Listener] = (),
                overrides: dict[str, Any] | None = None) -> Run:
    """Build a ready-to-train ``Run`` for a new configuration, or from a run directory or checkpoint to resume.

    :param overrides: with ``resume``, the fields to change (``steps``, ``device``, ``epochs``).
    """
    checkpoint, run_dir = None, None
    if resume is not None:
        checkpoint, run_dir = _open_resume(Path(resume))
        config = RunConfig.from_dict(checkpoint.meta["config"])
        for key, value in (overrides or {}).items():
            if key == "epochs":
                config.hyperparams["epochs"] = value
            elif value is not None:
                setattr(config, key, value)
    validate(config, plugins.registry)
    spec = plugins.registry.model(config.model)
    loss = plugins.registry.loss(config.loss).build()
    device = pick_device(config.device)
    tune_backends(device)
    image_size = config.hyperparams.get("image_size", 28)
    data = load_images(config, plugins, image_size)
    images = resize_uint8(data.images.to(device), image_size)
    image_shape = (int(images.shape[1]), image_size, image_size)
    torch.manual_seed(config.seed)
    try:
        model = spec.build(dict(config.hyperparams), image_shape)
    except ValueError as exc:
        raise ConfigError(f"{config.model} cannot be built with these settings: {exc}.") from None
    model.to(device)
    model.make_optimizers()
    batches = DeviceImages(images, config.hyperparams["batch_size"], device, config.seed, model.channels_last)
    if checkpoint is not None and run_dir is None:
        config.name = None  # a checkpoint carried away from its run directory starts a fresh one
    if run_dir is None:
        run_dir = create_run_dir(config)
    run = Run(config, plugins, run_dir, device, model, loss, batches, image_shape,
              control or RunControl(run_dir.requests), list(listeners), data.source)
    if checkpoint is not None:
        if tuple(checkpoint.meta["image_shape"]) != image_shape:
            raise CheckpointError(f"{checkpoint.path} holds images of shape {tuple(checkpoint.meta['image_shape'])}, "
                                  f"but the dataset now gives {image_shape}.")
        run.restore(checkpoint)
        if run.step >= run.total_steps:
            raise ConfigError(f"The run in {run_dir.path} already has {run.step} of {run.total_steps} steps; "
                              f"pass a larger --steps or --epochs to train further.")
    return run


def _open_resume(path: Path) -> tuple[ckpt.Checkpoint, RunDir | None]:
    """The checkpoint to resume from, and its run directory when it lives in one."""
    if path.is_dir():
        run_dir = RunDir(path)
        candidates = sorted(run_dir.checkpoints.glob("step-*.safetensors"), reverse=True)
        if run_dir.latest.is_file():
            candidates.insert(0, run_dir.latest)
        if not candidates:
            raise CheckpointError(f"{path} holds no checkpoint to resume from.")
        errors = []
        for candidate in candidates:  # fall back to an older checkpoint if the newest is damaged
            try:
                return ckpt.load_checkpoint(candidate), run_dir
            except CheckpointError as exc:
                errors.append(str(exc))
        raise CheckpointError(f"No usable checkpoint in {path}: {errors[0]}")
    checkpoint = ckpt.load_checkpoint(path)
    parent = path.resolve().parent.parent
    return checkpoint, RunDir(parent) if (parent / "config.json").is_file() else None
