"""The training run: build everything from a configuration, then loop and emit events.

``prepare_run`` resolves the model, loss and dataset, creates (or reopens) the
run directory and restores a checkpoint when resuming; ``Run.train`` runs the
loop. The console, the workbench and the tests all drive these two calls.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from workbench.atomic import atomic_write, remove_temporaries
from workbench.config import RunConfig, check_run_name, validate
from workbench.engine import checkpoint as ckpt
from workbench.engine.control import RunControl
from workbench.engine.data import DeviceImages, resize_uint8
from workbench.engine.devices import autocast_context, compile_networks, describe_device, pick_device, tune_backends
from workbench.engine.divergence import MAX_SKIPS_IN_A_ROW, FailureWatch, LossWindow, StepGuard
from workbench.engine.events import Event, EventLog, make_event
from workbench.engine.graphs import GraphedStep, use_graphs
from workbench.engine.lock import RunLock, acquire_run_lock
from workbench.engine.rundir import RunDir, create_run_dir
from workbench.engine.samples import GridWriter, generate
from workbench.errors import CheckpointError, ConfigError, DataError, DiskError, GanbenchError, PluginError
from workbench.plugins import PluginSet
from workbench.registry import DataRequest, ImageData
from workbench.validation import check_before_training

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
        self.lock: RunLock | None = None  # held from prepare_run to the end of train
        self.last_checkpoint_step: int | None = None
        self.last_sample_step: int | None = None
        self.previous_status: str | None = None  # when resuming: how the run had ended ("crashed" after kill -9)
        self.resume_warnings: list[str] = []
        self.end_message = ""
        self.watch = FailureWatch(getattr(loss, "name", config.loss))  # a loss derived from bce shares its scale
        self.skipped: list[int] = []  # steps undone by on_nan=skip since the last log
        self.grids = GridWriter()  # sample grids are encoded and written while training goes on
        self.graphed = use_graphs(config.engine["cuda_graphs"], device, model)  # the step as one CUDA graph

    # -- events -------------------------------------------------------------
    def emit(self, type_: str, **fields: Any) -> Event:
        """Append an event to ``events.jsonl`` and show it to the listeners (even when the disk refuses it)."""
        event = make_event(type_, **fields)
        try:
            if self.log is not None:  # None before train(): nothing is logged, the listeners still hear it
                self.log.append(event)
        finally:
            for listener in list(self.listeners):
                try:
                    listener(event)
                except Exception as exc:  # a console whose terminal went away (SSH dropped) must not end training
                    self.listeners.remove(listener)
                    if self.log is not None:
                        with contextlib.suppress(OSError):
                            self.log.write("warning", message=f"A progress display failed and was turned off: "
                                                              f"{type(exc).__name__}: {exc}")
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
        """Write ``step-N.safetensors`` atomically, point ``latest`` at it and drop the oldest beyond ``keep``.

        Raises DiskError (one sentence) when the disk refuses; the earlier checkpoints stay intact.
        """
        extra = {"rng/noise": self.noise.get_state(), "rng/torch": torch.get_rng_state(), "fixed_noise": self.fixed_noise}
        if self.device.type == "cuda":
            extra["rng/cuda"] = torch.cuda.get_rng_state(self.device)
        path = self.dir.checkpoints / f"step-{self.step:08d}.safetensors"
        try:
            ckpt.save_checkpoint(path, self.model, self.checkpoint_meta(), extra)
            _replace_with_link(path, self.dir.latest)
        except OSError as exc:
            raise DiskError(f"Could not write the checkpoint of step {self.step} to {path}: "
                            f"{exc.strerror or exc}; {self.checkpoint_note()}.") from None
        self.last_checkpoint_step = self.step
        self.dir.write_state(step=self.step, checkpoint_step=self.step)  # what a crash from here on leaves
        keep = self.config.engine["keep_checkpoints"]
        for old in self.dir.step_checkpoints()[:-keep]:
            with contextlib.suppress(OSError):
                old.unlink()
        self.emit("checkpoint", step=self.step, epoch=self.epoch, path=str(path), file=self.dir.relative(path))
        self.notify("ganbench_checkpoint_written", path=path, step=self.step)
        return path

    def save_samples(self) -> None:
        """Start writing the fixed-noise grid of this step in the background; ``collect_samples`` reports it."""
        path = self.dir.samples / f"step-{self.step:08d}.png"
        self.grids.submit(generate(self.model, self.fixed_noise), path, self.step, self.epoch)
        self.last_sample_step = self.step

    def collect_samples(self, wait: bool = False) -> None:
        """Emit the events of the grids written since the last call (waiting for all with ``wait``);
        raises DiskError (one sentence) for a grid the disk refused."""
        for grid in self.grids.finished(wait):
            exc = grid.future.exception()
            if isinstance(exc, OSError):
                raise DiskError(f"Could not write the sample grid {grid.path}: {exc.strerror or exc}; "
                                f"{self.checkpoint_note()}.")
            if exc is not None:
                raise exc
            self.emit("sample", step=grid.step, epoch=grid.epoch, path=str(grid.path),
                      file=self.dir.relative(grid.path))
            self.notify("ganbench_sample_written", path=grid.path, step=grid.step)

    def checkpoint_note(self) -> str:
        """Where the user's work stands: 'the checkpoint of step N is intact', for the end-of-run sentences."""
        if self.last_checkpoint_step is None:
            return "no checkpoint had been written yet"
        return f"the checkpoint of step {self.last_checkpoint_step} is intact"

    def restore(self, checkpoint: ckpt.Checkpoint) -> None:
        """Load weights, optimizer moments, the position in the data and the random generators."""
        ckpt.restore_networks(checkpoint, self.model)
        ckpt.restore_optimizers(checkpoint, self.model)
        meta, tensors = checkpoint.meta, checkpoint.tensors
        self.step, self.epoch, self.batch = int(meta["step"]), int(meta.get("epoch", 0)), int(meta.get("batch", 0))
        try:
            fixed = tensors.get("fixed_noise")
            if fixed is not None and fixed.dim() == 2 and fixed.shape[1] == self.model.latent_dim:
                self.fixed_noise = fixed.float().to(self.device)
            if meta.get("device") == self.device.type:  # generator states are device-specific
                self.noise.set_state(tensors["rng/noise"])
                torch.set_rng_state(tensors["rng/torch"])
                if "rng/cuda" in tensors:
                    torch.cuda.set_rng_state(tensors["rng/cuda"], self.device)
        except (KeyError, RuntimeError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{checkpoint.path} holds unusable random-generator state ({exc}).") from None
        self.resumed_from = str(checkpoint.path)
        self.last_checkpoint_step = self.step

    # -- the loop -----------------------------------------------------------
    def train(self) -> str:
        """Train until the configured number of steps, a stop request or divergence; return the reason.

        Every way out is recorded in ``state.json`` and ``events.jsonl``: ``completed``, ``stopped``
        (a stop request: a checkpoint is written first), ``diverged`` (NaN/Inf; the checkpoints on
        disk are all from before it) or ``failed`` (the sentence is in ``end_message``). A
        KeyboardInterrupt (a second Ctrl-C) marks the run stopped without a checkpoint and is re-raised.
        """
        try:
            self.log = EventLog(self.dir.events)
            self.dir.write_state(status="running", pid=os.getpid(), host=socket.gethostname(), step=self.step,
                                 total_steps=self.total_steps, resumed_from=self.resumed_from,
                                 resumes=self.dir.read_state().get("resumes", 0) + (self.previous_status is not None))
            self.emit("run_start", step=self.step, epoch=self.epoch, total_steps=self.total_steps,
                      steps_per_epoch=self.data.steps_per_epoch, batch_size=self.data.batch_size,
                      dataset_size=int(self.data.images.shape[0]), dataset_source=self.dataset_source,
                      device=describe_device(self.device), image_shape=list(self.image_shape),
                      config=self.config.to_dict(), resumed_from=self.resumed_from,
                      previous_status=self.previous_status)
            for warning in self.resume_warnings:
                self.emit("warning", message=warning)
        except OSError as exc:
            self._release()
            raise DiskError(f"Cannot write to the run directory {self.dir.path}: {exc.strerror or exc}.") from None
        self.notify("ganbench_run_start")
        try:
            try:
                reason, message = self._loop()
            except GanbenchError as exc:
                reason, message = "failed", str(exc)
            except OSError as exc:
                reason = "failed"
                message = (f"Could not write to the run directory {self.dir.path} at step {self.step}: "
                           f"{exc.strerror or exc}; {self.checkpoint_note()}.")
            except torch.cuda.OutOfMemoryError:
                reason = "failed"
                message = (f"The GPU ran out of memory at step {self.step}; try a smaller --batch-size "
                           f"({self.checkpoint_note()}).")
            except Exception as exc:
                reason = "failed"
                message = f"Training failed at step {self.step}: {type(exc).__name__}: {exc}"
                with contextlib.suppress(OSError):
                    self.emit("error", message=message, traceback=traceback.format_exc())
            return self._finish(reason, message)
        except KeyboardInterrupt:
            self._interrupted()
            raise

    def _loop(self) -> tuple[str, str]:
        model, loss, control, engine = self.model, self.loss, self.control, self.config.engine
        sample_every, checkpoint_every = engine["sample_every"], engine["checkpoint_every"]
        model.train()
        window = LossWindow(engine["log_every"], len(METRIC_KEYS), self.device)
        guard = StepGuard(model) if engine["on_nan"] == "skip" else None
        train_step = self._step_function()
        last_log_step, last_log = self.step, time.monotonic()
        while self.step < self.total_steps:
            for idx in self.data.batch_indices(self.epoch, self.batch):
                if guard is not None:
                    guard.save()
                values = train_step(idx)
                self.step += 1
                self.batch += 1
                if guard is None or guard.accept(values):
                    window.add(values)
                else:
                    self.skipped.append(self.step)
                    if guard.in_a_row >= MAX_SKIPS_IN_A_ROW:
                        return "diverged", (f"Training diverged at step {self.step}: {guard.in_a_row} steps in a row "
                                            f"gave NaN or infinite values even with on_nan=skip; "
                                            f"{self.checkpoint_note()}.")
                now = time.monotonic()
                control.poll(now)
                due_sample = bool(sample_every) and self.step % sample_every == 0
                due_checkpoint = self.step % checkpoint_every == 0 or control.checkpoint_requested
                # Samples and checkpoints are written only after the losses and weights were read and found finite.
                if due_sample or due_checkpoint or window.full or self.step % engine["log_every"] == 0 \
                        or now - last_log >= engine["log_seconds"] or self.step == self.total_steps \
                        or control.stop_requested:
                    diverged = self._log_window(window, last_log_step, now - last_log)
                    last_log_step, last_log = self.step, now
                    if diverged:
                        return "diverged", diverged
                if due_sample:
                    self.save_samples()
                if self.grids.pending:
                    self.collect_samples()
                if engine["eval_every"] and self.step % engine["eval_every"] == 0:
                    from workbench.quality.periodic import evaluate_during_training
                    last_log += evaluate_during_training(self)  # its seconds stay out of images/s
                if due_checkpoint:
                    control.checkpoint_requested = False
                    self.collect_samples(wait=True)  # a grid the disk refused ends the run before a checkpoint
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

    def _step_function(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """One training step on the batch at the given indices, returning the metrics as one device tensor;
        replayed as a CUDA graph when ``self.graphed``."""
        model, loss, data = self.model, self.loss, self.data
        autocast = autocast_context(self.device, self.config.engine["amp"], self.graphed)

        def step(idx: torch.Tensor) -> torch.Tensor:
            real = data.take(idx)
            with autocast:
                metrics = model.train_step(real, loss)
            return torch.stack([metrics[k].float() for k in METRIC_KEYS])

        if not self.graphed:
            return step
        return GraphedStep(step, data.batch_size, model, self.device,
                           on_fallback=lambda message: self.emit("warning", message=message),
                           strict=self.config.engine["cuda_graphs"] == "on")

    def _log_window(self, window: LossWindow, since_step: int, seconds: float) -> str | None:
        """Emit the metrics of the steps since ``since_step``; return a divergence sentence, or None."""
        summary = window.summarize(self.model)  # the one host sync per interval
        if summary.count:
            rate = (self.step - since_step) * self.data.batch_size / max(seconds, 1e-9)
            event = self.emit("metrics", step=self.step, epoch=self.epoch, batch=self.batch,
                              images_per_s=round(rate, 1), **dict(zip(METRIC_KEYS, summary.means)),
                              **self._device_memory())
            self.notify("ganbench_metrics", metrics=event)
            warning = self.watch.update(self.step, summary.means[0], summary.means[1])
            if warning:
                self.emit("warning", message=warning)
        skipped = [s for s in self.skipped if s > since_step]
        if skipped:
            self.emit("warning", message=f"Skipped {len(skipped)} step(s) whose losses or weights were NaN or "
                                         f"infinite (on_nan=skip), the first at step {skipped[0]}.", steps=skipped)
            self.skipped.clear()
        if summary.first_bad is not None:
            return (f"Training diverged at step {since_step + summary.first_bad + 1}: a loss became NaN or infinite; "
                    f"{self.checkpoint_note()} (--set on_nan=skip skips such steps instead).")
        if not summary.weights_finite:
            return (f"Training diverged at step {self.step}: a weight became NaN or infinite; "
                    f"{self.checkpoint_note()} (--set on_nan=skip skips such steps instead).")
        return None

    def _device_memory(self) -> dict[str, float]:
        """The GPU memory in use (and its peak), in MiB, on CUDA; nothing elsewhere."""
        if self.device.type != "cuda":
            return {}
        return {"gpu_memory_mb": round(torch.cuda.memory_allocated(self.device) / 2**20, 1),
                "gpu_peak_memory_mb": round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1)}

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
                if self.last_sample_step != self.step:
                    self.save_samples()
                self.collect_samples(wait=True)
                if self.last_checkpoint_step != self.step:
                    self.save_checkpoint()
            except GanbenchError as exc:
                reason, message = "failed", str(exc)
            except OSError as exc:
                reason = "failed"
                message = f"Could not write to the run directory {self.dir.path}: {exc.strerror or exc}; " \
                          f"{self.checkpoint_note()}."
        else:
            with contextlib.suppress(GanbenchError, OSError):  # the grids already started still get their events
                self.collect_samples(wait=True)
        self.end_message = message
        # On a full disk these writes may fail too; the console has still been told, and the lock says the
        # process is gone, so the run reads as crashed and resumes from its last checkpoint.
        with contextlib.suppress(OSError):
            self.emit("run_end", reason=reason, message=message, step=self.step, epoch=self.epoch,
                      checkpoint_step=self.last_checkpoint_step)
        self.notify("ganbench_run_end", reason=reason)
        with contextlib.suppress(OSError):
            self.dir.write_state(status=reason, step=self.step, message=message,
                                 checkpoint_step=self.last_checkpoint_step)
        self._release()
        return reason

    def _interrupted(self) -> None:
        """A second Ctrl-C: leave without a checkpoint, but say so in the state and the log."""
        self.end_message = f"Interrupted at step {self.step}; {self.checkpoint_note()}."
        with contextlib.suppress(Exception):
            self.emit("run_end", reason="stopped", message=self.end_message, step=self.step, epoch=self.epoch,
                      checkpoint_step=self.last_checkpoint_step, interrupted=True)
        with contextlib.suppress(Exception):
            self.dir.write_state(status="stopped", step=self.step, message=self.end_message,
                                 checkpoint_step=self.last_checkpoint_step)
        self._release()

    def _release(self) -> None:
        """Finish the grid writes, close the event log and give up the run lock."""
        self.grids.close()
        if self.log is not None:
            self.log.close()
        if self.lock is not None:
            self.lock.release()
            self.lock = None


def _replace_with_link(source: Path, target: Path) -> None:
    """Point ``target`` at ``source``'s content atomically (a hard link, or a copy where links fail)."""
    import shutil

    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:  # a file system without hard links: a copy, written like any other file
        with atomic_write(target) as copy:
            shutil.copyfile(source, copy)
        return
    os.replace(tmp, target)


def load_images(config: RunConfig, plugins: PluginSet, image_size: int, split: str = "train") -> ImageData:
    """Ask the dataset plugin for its images and check what it returned."""
    spec = plugins.registry.dataset(config.dataset)
    request = DataRequest(root=Path(config.data_root).expanduser() if config.data_root else None,
                          download=config.download, image_size=image_size, split=split)
    try:
        data = spec.load(request)
    except GanbenchError:
        raise
    except MemoryError:
        raise DataError(f'Dataset "{config.dataset}" does not fit in memory.') from None
    except Exception as exc:  # a dataset plugin that broke: say which, keep the traceback out of the way
        raise DataError(f'Dataset "{config.dataset}" failed to load: {type(exc).__name__}: {exc}.') from None
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

    Resuming a run directory continues in it from its newest readable checkpoint (or from step 0 if it
    has none yet); the run is locked for this process from here to the end of ``Run.train``, and a run
    another process is training is refused. Raises ``GanbenchError`` subclasses with one sentence.

    :param overrides: with ``resume``, the fields to change (``steps``, ``device``, ``epochs``, ``data_root``).
    """
    point = ResumePoint(None, None, config)
    lock = None
    if resume is not None:
        point = _open_resume(Path(resume))
        config = point.config
        for key, value in (overrides or {}).items():
            if key == "epochs":
                config.hyperparams["epochs"] = value
            elif value is not None:
                setattr(config, key, value)
        if point.run_dir is not None:  # before the slow part: refuse at once if another process trains it
            lock = acquire_run_lock(point.run_dir.path)
    try:
        run = _build_run(config, plugins, point, control, listeners)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    if lock is not None:
        run.lock = lock
    return run


def _build_run(config: RunConfig, plugins: PluginSet, point: ResumePoint, control: RunControl | None,
               listeners) -> Run:
    checkpoint, run_dir = point.checkpoint, point.run_dir
    validate(config, plugins.registry)
    spec = plugins.registry.model(config.model)
    try:
        loss = plugins.registry.loss(config.loss).build()
    except GanbenchError:
        raise
    except Exception as exc:
        raise PluginError(f'The loss "{config.loss}" could not be built: {type(exc).__name__}: {exc}.') from None
    device = pick_device(config.device)
    tune_backends(device, config.engine)
    image_size = config.hyperparams.get("image_size", 28)
    data = load_images(config, plugins, image_size)
    images = resize_uint8(data.images.to(device), image_size)
    image_shape = (int(images.shape[1]), image_size, image_size)
    torch.manual_seed(config.seed)
    try:
        model = spec.build(dict(config.hyperparams), image_shape)
    except GanbenchError:
        raise
    except Exception as exc:  # ValueError from the plugin's own checks, or a plugin bug: one sentence either way
        raise ConfigError(f"{config.model} cannot be built with these settings: {type(exc).__name__}: {exc}.") from None
    model.to(device)
    model.make_optimizers()
    compile_networks(model, config.engine["compile"])
    batches = DeviceImages(images, config.hyperparams["batch_size"], device, config.seed, model.channels_last)
    check_before_training(plugins.registry, config, model, loss, batches, image_shape)  # blames a broken plugin
    if checkpoint is not None:  # refuse a checkpoint that does not fit before any folder is created
        _check_fits(checkpoint, model, image_shape, config.steps or config.hyperparams["epochs"] * len(batches),
                    run_dir)
        if run_dir is None:
            config.name = None  # a checkpoint carried away from its run directory starts a fresh one
    lock = None
    if run_dir is None:
        run_dir = create_run_dir(config)
        lock = acquire_run_lock(run_dir.path)
    try:
        run = Run(config, plugins, run_dir, device, model, loss, batches, image_shape,
                  control or RunControl(run_dir.requests), list(listeners), data.source)
        run.lock = lock
        if checkpoint is not None:
            run.restore(checkpoint)
        if point.run_dir is not None:  # resuming in place: say how the run had ended, tidy what a kill left
            state = run_dir.read_state()
            status = state.get("status", "unknown")
            run.previous_status = "crashed" if status in ("running", "paused") else status
            run.resume_warnings = list(point.warnings)
            for folder in (run_dir.checkpoints, run_dir.samples, run_dir.path):
                remove_temporaries(folder)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    return run


def _check_fits(checkpoint: ckpt.Checkpoint, model, image_shape: tuple[int, int, int], total_steps: int,
                run_dir: RunDir | None) -> None:
    """Raise one sentence if the checkpoint cannot continue on this model and data, or has no steps left."""
    if tuple(checkpoint.meta["image_shape"]) != image_shape:
        raise CheckpointError(f"{checkpoint.path} holds images of shape {tuple(checkpoint.meta['image_shape'])}, "
                              f"but the dataset now gives {image_shape}.")
    ckpt.restore_networks(checkpoint, model)
    ckpt.restore_optimizers(checkpoint, model)
    if checkpoint.step >= total_steps:
        where = f"The run in {run_dir.path}" if run_dir is not None else str(checkpoint.path)
        raise ConfigError(f"{where} already has {checkpoint.step} of {total_steps} steps; "
                          f"pass a larger --steps or --epochs to train further.")


@dataclass
class ResumePoint:
    """Where a resumed run starts: a checkpoint (None: from step 0), its run directory, its configuration."""

    checkpoint: ckpt.Checkpoint | None
    run_dir: RunDir | None
    config: RunConfig | None
    warnings: list[str] = field(default_factory=list)


def _open_resume(path: Path) -> ResumePoint:
    """Find what ``--resume PATH`` continues: a run directory (its newest readable checkpoint) or a checkpoint file.

    A run killed before its first checkpoint starts over from step 0 with its ``config.json``.
    """
    if path.is_dir():
        if path.name == "checkpoints" and (path.parent / "config.json").is_file():
            path = path.parent
        run_dir = RunDir(path)
        if not run_dir.config.is_file():
            raise CheckpointError(f"{path} is not a run directory (it has no config.json) and holds no checkpoint.")
        candidates = run_dir.step_checkpoints()[::-1]
        if run_dir.latest.is_file():
            # latest is a hard link to the newest step file, unless a kill came between writing one and linking
            newest = bool(candidates) and os.path.samefile(run_dir.latest, candidates[0])
            candidates.insert(0 if newest or not candidates else len(candidates), run_dir.latest)
        if not candidates:
            return ResumePoint(None, run_dir, _config_from_file(run_dir),
                               [f"{path} had no checkpoint yet; starting over from step 0."])
        errors = []
        for candidate in candidates:  # fall back to an older checkpoint if the newest is damaged
            try:
                checkpoint = ckpt.load_checkpoint(candidate)
                warnings = [f"Skipped an unusable checkpoint: {error}" for error in errors]
                return ResumePoint(checkpoint, run_dir, _config_in_place(_config_from_meta(checkpoint), run_dir),
                                   warnings)
            except CheckpointError as exc:
                errors.append(str(exc))
        raise CheckpointError(f"No usable checkpoint in {path}: {errors[0]}")
    checkpoint = ckpt.load_checkpoint(path)
    folder = path.resolve().parent
    if folder.name == "checkpoints" and (folder.parent / "config.json").is_file():
        run_dir = RunDir(folder.parent)
        return ResumePoint(checkpoint, run_dir, _config_in_place(_config_from_meta(checkpoint), run_dir))
    return ResumePoint(checkpoint, None, _config_from_meta(checkpoint))


def _config_from_meta(checkpoint: ckpt.Checkpoint) -> RunConfig:
    try:
        return RunConfig.from_dict(dict(checkpoint.meta["config"]))
    except (TypeError, ValueError):
        raise CheckpointError(f"The metadata of {checkpoint.path} does not hold a run configuration.") from None


def _config_from_file(run_dir: RunDir) -> RunConfig:
    try:
        return _config_in_place(RunConfig.from_dict(json.loads(run_dir.config.read_text(encoding="utf-8"))), run_dir)
    except (OSError, ValueError, TypeError, AttributeError):
        raise CheckpointError(f"{run_dir.config} cannot be read as a run configuration.") from None


def _config_in_place(config: RunConfig, run_dir: RunDir) -> RunConfig:
    """The run keeps living where it is now, even if its folder was moved or renamed."""
    config.runs_dir = str(run_dir.path.parent)
    with contextlib.suppress(ConfigError):  # a folder renamed to something no new run could be called
        config.name = check_run_name(run_dir.path.name)
    return config
