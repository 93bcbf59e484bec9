"""The training run: the loop, and the one way a run ends.

``workbench.engine.run.prepare_run`` builds a ``Run``; ``Run.train`` trains it. Every way out of
``train`` (completed, stopped, diverged, failed, a second Ctrl-C, any exception) goes through
``Run._end``, which writes the final grid and checkpoint where they are due and records the end
in ``events.jsonl`` and ``state.json``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import torch

from workbench.base.errors import DiskError, GanbenchError
from workbench.data.device import DeviceImages
from workbench.engine.conditioning import grid_rows, grid_rows_note
from workbench.engine.devices import autocast_context, describe_device, memory_in_use
from workbench.engine.distributed import (SINGLE, DistributedError, Lockstep, Ranks, all_agree, batch_norm_on_this_rank,
                                          graphs_in_job, rank_seed)
from workbench.engine.divergence import MAX_SKIPS_IN_A_ROW, FailureWatch, LossWindow, StepGuard
from workbench.engine.emitter import EventFanOut, Listener
from workbench.engine.graphs import GraphedStep, use_graphs
from workbench.engine.outputs import RunOutputs
from workbench.engine.samples import GridWriter
from workbench.engine.schedule import Due, LogClock, TimeLimit, total_steps
from workbench.engine.services import Services
from workbench.engine.state import averaged_weights
from workbench.engine.translation import translation_rows
from workbench.host.manager import PluginSet
from workbench.modeling.metrics import METRIC_KEYS
from workbench.modeling.model import needs_labels
from workbench.rundir.config import RunConfig
from workbench.rundir.control import RunControl
from workbench.rundir.directory import RunDir, discard_unstarted
from workbench.rundir.events import Event, EventLog
from workbench.rundir.lock import RunLock

Evaluator = Callable[["Run"], float]  # computes quality metrics now, emits an ``eval`` event, returns its seconds


class Run(RunOutputs):
    """A prepared run. Attributes a plugin may read: ``config``, ``dir``, ``step``, ``epoch``, ``device``, and
    ``ranks`` (under torchrun: this process's ``rank`` of ``world``; one process is rank 0 of 1)."""

    def __init__(self, config: RunConfig, plugins: PluginSet, run_dir: RunDir, device: torch.device,
                 model, loss, data: DeviceImages, image_shape: tuple[int, int, int], control: RunControl,
                 listeners: list[Listener], dataset_source: str, evaluate: Evaluator | None = None,
                 ranks: Ranks = SINGLE, services: Services | None = None):
        self.config, self.plugins, self.dir, self.device, self.ranks = config, plugins, run_dir, device, ranks
        self.model, self.loss, self.data, self.image_shape = model, loss, data, image_shape
        self.classes: tuple[str, ...] = tuple(getattr(image_shape, "classes", ()))  # image_shape is a DataInfo
        self.control, self.dataset_source, self.evaluate = control, dataset_source, evaluate
        self.events = EventFanOut(plugins.manager.hook, listeners)
        self.listeners = self.events.listeners  # the console and the workbench add theirs here
        self.step = self.epoch = self.batch = 0
        self.images_seen = 0  # images of the whole job trained on so far (kimg = images_seen / 1000)
        self.services = services or Services(None, model.augment, 1)
        self.resumed_from: str | None = None
        self.spec = plugins.registry.model(config.model)
        self.noise = torch.Generator(device=device).manual_seed(rank_seed(config.seed, ranks.rank))
        model.noise = self.noise
        if hasattr(model.augment, "generator"):
            model.augment.generator = self.noise  # the augmentation draws from the run's generator too
        self.fixed_noise = torch.randn(config.engine["sample_count"], model.latent_dim,
                                       generator=torch.Generator().manual_seed(config.seed + 1)).to(device)
        # a translator's grid inputs (workbench.engine.translation), kept beside the fixed noise; set by prepare_run
        self.fixed_inputs: dict[str, torch.Tensor] = {}
        self.total_steps = total_steps(config, data)
        self.metric_keys = tuple(METRIC_KEYS) + tuple(model.metric_keys) + self.services.metric_keys()
        self.lock: RunLock | None = None  # held from prepare_run to the end of train
        self.last_checkpoint_step: int | None = None
        self.last_sample_step: int | None = None
        self.previous_status: str | None = None  # when resuming: how the run had ended ("crashed" after kill -9)
        self.resume_warnings: list[str] = []
        self.end_message = ""
        self.unrecorded: list[Path] = []  # the files the end of the run could not be written to (a full disk)
        self.watch = FailureWatch(getattr(loss, "name", config.loss))  # a loss derived from bce shares its scale
        self.skipped: list[int] = []  # steps undone by on_nan=skip since the last log
        self.grids = GridWriter()  # sample grids are encoded and written while training goes on
        self.raw_grids: dict[int, Path] = {}  # the raw generator's grids written, until their EMA grid's event
        self.memory_note: str | None = None  # the build's memory estimate, for the out-of-memory sentence
        self.made_folder = False  # prepare_run made the run folder for this run (not a resume, not a launcher's)
        # the step as one CUDA graph, unless a service changes what a step does from one step to the next
        self.graphed = use_graphs(config.engine["cuda_graphs"], device, model) and not self._services_vary()
        self.lockstep: Lockstep | None = None  # under torchrun: every rank's decisions taken together
        self.graphed, self.graphs_warning = graphs_in_job(self.graphed, ranks)

    def _services_vary(self) -> bool:
        return self.services.active or bool(self.model.metric_keys) or self.model.precision is not None

    @property
    def log(self) -> EventLog | None:
        return self.events.log

    def emit(self, type_: str, **fields: Any) -> Event:
        """Append an event to ``events.jsonl`` and show it to the listeners (even when the disk refuses it)."""
        return self.events.emit(type_, **fields)

    def notify(self, hook: str, **kwargs: Any) -> None:
        """Call one observer hook in every plugin; a failing plugin is reported, never fatal."""
        self.events.notify(hook, self, **kwargs)

    # -- the run ------------------------------------------------------------
    def train(self) -> str:
        """Train until the configured number of steps, a stop request or divergence; return the reason.

        Every way out is recorded in ``state.json`` and ``events.jsonl``: ``completed``, ``stopped``
        (a stop request: a checkpoint is written first), ``diverged`` (NaN/Inf; the checkpoints on
        disk are all from before it) or ``failed`` (the sentence is in ``end_message``). A
        KeyboardInterrupt (a second Ctrl-C) marks the run stopped without a checkpoint and is re-raised.
        """
        self._start()
        try:
            self.notify("ganbench_run_start")
            reason, message = self._loop_or_failure()
        except KeyboardInterrupt:
            self._end("stopped", f"Interrupted at step {self.step}; {self.checkpoint_note()}.", interrupted=True)
            raise
        return self._end(reason, message)

    def _start(self) -> None:
        try:
            self.events.log = EventLog(self.dir.events)
            self.hold_end_reserve()
            self.dir.write_state(status="running", pid=os.getpid(), host=socket.gethostname(), step=self.step,
                                 total_steps=self.total_steps, resumed_from=self.resumed_from,
                                 resumes=self.dir.read_state().get("resumes", 0) + (self.previous_status is not None),
                                 world_size=self.ranks.world)
            self.emit("run_start", step=self.step, epoch=self.epoch, total_steps=self.total_steps,
                      steps_per_epoch=self.data.steps_per_epoch, batch_size=self.data.global_batch_size,
                      dataset_size=int(self.data.images.shape[0]), dataset_source=self.dataset_source,
                      device=describe_device(self.device), image_shape=list(self.image_shape),
                      config=self.config.to_dict(), resumed_from=self.resumed_from,
                      previous_status=self.previous_status, classes=list(self.classes),
                      conditional=needs_labels(self.model), grid_rows=self._grid_rows(),
                      metric_keys=list(self.metric_keys), higher_is_better=list(self.model.higher_is_better),
                      images_seen=self.images_seen, **self._job_fields(),
                      total_kimg=round(self.total_steps * self.data.global_batch_size / 1000, 3))
            rows_note = grid_rows_note(self.classes) if needs_labels(self.model) else None
            for warning in self.resume_warnings + [w for w in (self.graphs_warning, rows_note) if w]:
                self.emit("warning", message=warning)
        except OSError as exc:
            self._release()
            if self.made_folder:  # a folder of our own that never trained: nothing half-made may stay behind
                self._discard_unstarted()
            raise DiskError(f"Cannot write to the run directory {self.dir.path}: {exc.strerror or exc}.") from None

    def _discard_unstarted(self) -> None:
        """Remove what ``_start`` wrote (state, events, the end reserve) and then the folder it was made in."""
        self.free_end_reserve()
        for path in (self.dir.events, self.dir.state):
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
        discard_unstarted(self.dir)

    def _grid_rows(self) -> list[str]:
        if self.fixed_inputs:
            return translation_rows(self.model, self.fixed_inputs, self.config.engine["sample_count"])
        return grid_rows(self.model, self.classes)

    def _job_fields(self) -> dict[str, int]:
        """``world_size`` and ``batch_per_rank`` of a torchrun job (``batch_size`` is the whole job's)."""
        data = self.data
        return {"world_size": data.world, "batch_per_rank": data.batch_size} if self.ranks.distributed else {}

    def _loop_or_failure(self) -> tuple[str, str]:
        """The loop's own ending, or the one sentence that says how it failed."""
        try:
            return self._loop()
        except DistributedError as exc:  # another rank died: say what is left
            return "failed", f"{str(exc).rstrip('.')}; {self.checkpoint_note()}."
        except GanbenchError as exc:
            return "failed", str(exc)
        except OSError as exc:
            where = exc.filename or f"to the run directory {self.dir.path}"
            return "failed", (f"Could not write {where} at step {self.step}: {exc.strerror or exc}; "
                              f"{self.checkpoint_note()}.")
        except torch.cuda.OutOfMemoryError:
            figures = f" ({self.memory_note} when it started)" if self.memory_note else ""
            return "failed", (f"The GPU ran out of memory at step {self.step}{figures}; try a smaller --batch-size "
                              f"({self.checkpoint_note()}).")
        except Exception as exc:
            message = f"Training failed at step {self.step}: {type(exc).__name__}: {exc}"
            with contextlib.suppress(Exception):
                self.emit("error", message=message, traceback=traceback.format_exc())
            return "failed", message

    def _loop(self) -> tuple[str, str]:
        """For each batch of each epoch: (1) one training step, (2) whatever is due after it."""
        engine = self.config.engine
        self.model.train()
        window = LossWindow(engine["log_every"], len(self.metric_keys), self.device)
        train_step = self._step_function()
        if self.ranks.distributed:  # under torchrun one object is both, in step with the other ranks
            self.lockstep = Lockstep(self.control, engine["log_every"], engine["log_seconds"], self.step, self.ranks)
        clock = self.lockstep or LogClock(engine["log_every"], engine["log_seconds"], self.step)
        control = self.lockstep or self.control
        guard = StepGuard(self.model, all_agree if self.lockstep else None) if engine["on_nan"] == "skip" else None
        limit = TimeLimit(engine["time_limit"] if self.ranks.leader else 0, time.monotonic())  # shared by lockstep
        while self.step < self.total_steps:
            for idx in self.data.batch_indices(self.epoch, self.batch):
                # (1) Train: both networks updated on this batch; its metrics stay on the device.
                if guard is not None:
                    guard.save()
                self.model.step, self.model.images_seen = self.step, self.images_seen
                values = train_step(idx)
                self.step, self.batch = self.step + 1, self.batch + 1
                self.images_seen += self.data.global_batch_size
                if guard is None or guard.accept(values):
                    window.add(values)
                    self.services.after_step(self.step, self.images_seen)  # the EMA, ADA's p
                else:
                    self.skipped.append(self.step)
                    if guard.in_a_row >= MAX_SKIPS_IN_A_ROW:
                        return "diverged", (f"Training diverged at step {self.step}: {guard.in_a_row} steps in a "
                                            f"row gave NaN or infinite values even with on_nan=skip; "
                                            f"{self.checkpoint_note()}.")
                # (2) What is due now.
                now = time.monotonic()
                control.poll(now)
                if not control.stop_requested and limit.over(now):
                    control.request_stop("completed")
                due = Due.after(self.step, self.total_steps, engine, control, self.evaluate is not None)
                # Losses and weights are read, and found finite, before a grid or checkpoint is made from them.
                if due.write or due.end or clock.due(self.step, now, window.full):
                    diverged = self._log_window(window, clock.since_step, now - clock.since_time, now)
                    clock.restart(self.step, now)
                    if diverged:
                        return "diverged", diverged
                if due.sample:
                    self.save_samples()
                if self.grids.pending:
                    self.collect_samples()
                if due.eval:
                    with batch_norm_on_this_rank(self.model), averaged_weights(self.model):  # from the EMA
                        seconds = self.evaluate(self)
                        clock.since_time += seconds  # its seconds stay out of images/s and the time limit
                        limit.exclude(seconds)
                if due.checkpoint:
                    control.checkpoint_requested = False
                    self.collect_samples(wait=True)  # a grid the disk refused ends the run before a checkpoint
                    self.save_checkpoint()
                if control.paused:
                    limit.exclude(self._wait_while_paused(control))  # a pause is not training time
                if due.end or control.stop_requested:
                    break
            if self.batch >= self.data.steps_per_epoch:
                self.emit("epoch_end", epoch=self.epoch, step=self.step)
                self.epoch, self.batch = self.epoch + 1, 0
            if control.stop_requested and limit.reached:
                return "completed", f"Completed {self.step} steps in the time limit ({engine['time_limit']:g} min)."
            if control.stop_requested:
                return control.stop_reason, f"Stopped at step {self.step} of {self.total_steps}."
        return "completed", f"Completed {self.step} steps."

    def _step_function(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """One training step on the batch at the given indices, returning the metrics as one device tensor;
        replayed as a CUDA graph when ``self.graphed``."""
        model, loss, data = self.model, self.loss, self.data
        autocast = autocast_context(self.device, self.config.engine["amp"], self.graphed)
        # Only what the model declared (an unconditional model gets none), checked here rather than every step.
        sources = data.field_tensors(tuple(model.batch_fields))
        keys, services, precision = self.metric_keys, self.services, model.precision
        engine_keys = services.metric_keys()
        if getattr(model, "owns_precision", False):  # the model chose its own autocast and scalers
            autocast, model.amp = contextlib.nullcontext(), self.config.engine["amp"]

        def step(idx: torch.Tensor) -> torch.Tensor:
            real = data.take(idx)
            if precision is not None:
                precision.start_step()
            with autocast:
                metrics = model.train_step(real, loss, **{name: tensor[idx] for name, tensor in sources.items()})
            if engine_keys:  # only a run with an augmentation adds its p: no merge on a plain step
                metrics = {**metrics, **services.metrics()}
            values = torch.stack([metrics[k].float() for k in keys])
            if precision is not None:  # a step the scalers skipped for overflow changed no weight: not divergence
                values = torch.where(precision.overflowed & ~torch.isfinite(values), 0.0, values)
            return values

        if not self.graphed:
            return step
        return GraphedStep(step, data.batch_size, model, self.device,
                           on_fallback=lambda message: self.emit("warning", message=message),
                           strict=self.config.engine["cuda_graphs"] == "on")

    def _log_window(self, window: LossWindow, since_step: int, seconds: float, now: float) -> str | None:
        """Emit the metrics of the steps since ``since_step``; return a divergence sentence, or None.
        Under torchrun the metrics are the ranks' average, and the requests travel with them."""
        lockstep = self.lockstep
        average = (lambda packed: lockstep.share(packed, self.step, now)) if lockstep else None
        summary = window.summarize(self.model, average)  # the one host sync (and collective) per interval
        if summary.count:
            rate = (self.step - since_step) * self.data.global_batch_size / max(seconds, 1e-9)
            event = self.emit("metrics", step=self.step, epoch=self.epoch, batch=self.batch,
                              kimg=round(self.images_seen / 1000, 3),
                              images_per_s=round(rate, 1), **dict(zip(self.metric_keys, summary.means)),
                              **memory_in_use(self.device))
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

    def _wait_while_paused(self, control) -> float:
        """Wait for a resume or a stop; returns the seconds waited."""
        started = time.monotonic()
        self.emit("paused", step=self.step)
        self.dir.write_state(status="paused", step=self.step)
        while control.paused and not control.stop_requested:
            time.sleep(0.05 if self.lockstep is None else control.local.interval)
            control.poll(time.monotonic())
            if self.lockstep is not None:  # every rank waits here; rank 0's resume or stop reaches all at once
                self.lockstep.exchange_requests(self.step)
        self.dir.write_state(status="running", step=self.step)
        self.emit("resumed", step=self.step)
        return time.monotonic() - started

    # -- the end ------------------------------------------------------------
    def _end(self, reason: str, message: str, interrupted: bool = False) -> str:
        """The one way a run ends: the final grid and checkpoint where due, then ``run_end`` and ``state.json``.

        Whatever goes wrong while writing the final files (a full disk, a plugin's bug, another Ctrl-C)
        still reaches the record of the end, so ``ganbench runs`` and ``--resume`` see how the run ended.
        """
        try:
            if not interrupted:
                reason, message = self._write_final_files(reason, message)
        except KeyboardInterrupt:
            reason, message, interrupted = "stopped", f"Interrupted at step {self.step}; {self.checkpoint_note()}.", True
            raise
        finally:
            self.end_message = message
            # On a full disk these writes may fail too; the console has still been told, and the lock says the
            # process is gone, so the run reads as crashed and resumes from its last checkpoint.
            self.free_end_reserve()
            try:
                self.emit("run_end", reason=reason, message=message, step=self.step, epoch=self.epoch,
                          checkpoint_step=self.last_checkpoint_step, **({"interrupted": True} if interrupted else {}))
            except Exception:
                self.unrecorded.append(self.dir.events)
            if not interrupted:
                self.notify("ganbench_run_end", reason=reason)
            try:
                self.dir.write_state(status=reason, step=self.step, message=message,
                                     checkpoint_step=self.last_checkpoint_step)
            except Exception:
                self.unrecorded.append(self.dir.state)
            self._release()
        return reason

    def _write_final_files(self, reason: str, message: str) -> tuple[str, str]:
        """A completed or stopped run ends with a grid and a checkpoint of its last step; the others keep the
        grids already started. Returns the reason and sentence, ``failed`` if these files could not be made."""
        try:
            if reason in ("completed", "stopped"):
                if self.last_sample_step != self.step:
                    self.save_samples()
                self.collect_samples(wait=True)
                if self.last_checkpoint_step != self.step:
                    self.save_checkpoint()
            else:
                with contextlib.suppress(Exception):  # the grids already started still get their events
                    self.collect_samples(wait=True)
        except GanbenchError as exc:
            return "failed", str(exc)
        except OSError as exc:
            return "failed", (f"Could not write to the run directory {self.dir.path}: {exc.strerror or exc}; "
                              f"{self.checkpoint_note()}.")
        except Exception as exc:
            return "failed", (f"Could not write the final files of step {self.step}: {type(exc).__name__}: {exc}; "
                              f"{self.checkpoint_note()}.")
        return reason, message

    def _release(self) -> None:
        """Finish the grid writes, close the event log and give up the run lock."""
        with contextlib.suppress(Exception):
            self.grids.close()
        self.events.close()
        if self.lock is not None:
            self.lock.release()
            self.lock = None
