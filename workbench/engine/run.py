"""Building a run: from a configuration (or a run to resume) to a ready-to-train ``Run``.

Everything that can be refused is checked here, before a run folder exists: the settings, the
plugins, the data, one pre-flight training step and, when resuming, whether the checkpoint fits.
The console, the workbench, sweeps and the tests all call ``prepare_run`` and then ``Run.train``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from workbench.base.atomic import remove_temporaries, write_text_atomic
from workbench.base.errors import ConfigError, GanbenchError, PluginError
from workbench.data.device import DeviceImages, resize_uint8
from workbench.data.loading import load_images, training_subset
from workbench.engine import checkpoint as ckpt
from workbench.engine.conditioning import check_labels_fit, data_info
from workbench.engine.devices import compile_networks, pick_device, tune_backends
from workbench.engine.distributed import (SINGLE, Ranks, all_reduce_sum, average_gradients, broadcast_object,
                                          convert_sync_batch_norm, job_device, rank_seed, share_start_state)
from workbench.engine.emitter import Listener
from workbench.engine.follower import FollowerRun, FollowerRunDir
from workbench.engine.memory import check_data_fits, check_step_fits, memory_summary
from workbench.engine.resume import (ResumePoint, check_image_shape, check_steps_left, open_resume, reconcile,
                                     restore_position)
from workbench.engine.services import attach_services
from workbench.engine.state import restore_tensor_state, state_bytes, weight_bytes
from workbench.engine.training import Evaluator, Run
from workbench.engine.translation import device_fields, fixed_inputs, held_out
from workbench.host.configure import validate
from workbench.host.manager import PluginSet
from workbench.host.translation import check_fields_fit, is_translator, orient
from workbench.host.validation import check_before_training
from workbench.rundir.config import RunConfig
from workbench.rundir.control import RunControl
from workbench.rundir.directory import RunDir, create_run_dir, discard_unstarted
from workbench.rundir.lock import acquire_run_lock


def prepare_run(config: RunConfig | None, plugins: PluginSet, *, resume: Path | None = None,
                control: RunControl | None = None, listeners: list[Listener] = (),
                overrides: dict[str, Any] | None = None, in_folder: Path | None = None,
                ranks: Ranks = SINGLE, evaluate: Evaluator | None = None) -> Run:
    """Build a ready-to-train ``Run`` for a new configuration, or from a run directory or checkpoint to resume.

    Resuming a run directory continues in it from its newest readable checkpoint (or from step 0 if it
    has none yet); the run is locked for this process from here to the end of ``Run.train``, and a run
    another process is training is refused. Raises ``GanbenchError`` subclasses with one sentence.

    :param overrides: with ``resume``, the fields to change (``steps``, ``device``, ``epochs``, ``data_root``).
    :param in_folder: a run folder a launcher (the workbench, a sweep) made with ``create_run_dir`` and has
        not started yet: the new run trains in it rather than in a folder of its own.
    :param ranks: under torchrun, rank 0's place in the job: ``lead_job`` then gives the run to the others.
    :param evaluate: what computes the quality metrics every ``eval_every`` steps (the CLI hands in
        ``workbench.quality.periodic.PeriodicEvaluation()``); without it the run trains with no evaluation.
    """
    point = ResumePoint(None, None, config)
    lock = None
    if resume is not None:
        point = open_resume(Path(resume))
        config = point.config
        for key, value in (overrides or {}).items():
            if key == "epochs":
                config.hyperparams["epochs"] = value
            elif value is not None:
                setattr(config, key, value)
                if key in ("steps", "kimg"):  # the new length replaces the old one, whichever way it was given
                    setattr(config, "kimg" if key == "steps" else "steps", None)
    elif in_folder is not None:
        point = ResumePoint(None, _unstarted_folder(Path(in_folder)), config)
    if point.run_dir is not None:  # before the slow part: refuse at once if another process trains it
        lock = acquire_run_lock(point.run_dir.path)
    try:
        run = _build_run(config, plugins, point, control, listeners, continuing=resume is not None, ranks=ranks,
                         evaluate=evaluate)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    if lock is not None:
        run.lock = lock
    job = {"distributed": {"world_size": ranks.world, "batch_per_rank": run.data.batch_size}} \
        if ranks.distributed else {}  # how the job was shared out, for readers (RunConfig ignores it)
    if in_folder is not None or job:  # the flags given beside the launcher's file are part of the configuration
        write_text_atomic(run.dir.config, json.dumps({**config.to_dict(), **job}, indent=2))
    return run


def _unstarted_folder(path: Path) -> RunDir:
    run_dir = RunDir(path)
    if not run_dir.config.is_file():
        raise ConfigError(f"{path} is not a run folder (it has no config.json).")
    if run_dir.events.exists() or run_dir.state.exists():
        raise ConfigError(f"The run in {path} has already started; continue it with --resume {path}.")
    return run_dir


def lead_job(run: Run) -> None:
    """Rank 0 of a torchrun job: tell the other ranks what to build, then give them its weights and position.
    ``refuse_job`` instead when rank 0 could not prepare the run."""
    if run.ranks.distributed:
        broadcast_object({"config": run.config.to_dict(), "dir": str(run.dir.path)}, run.ranks)
        _share_start(run)


def refuse_job(ranks: Ranks) -> None:
    """Rank 0 could not prepare the run (it says why): the other ranks end without a word."""
    if ranks.distributed:
        broadcast_object(None, ranks)


def follow_job(plugins: PluginSet, control: RunControl, ranks: Ranks,
               evaluate: Evaluator | None = None) -> Run | None:
    """A rank other than 0: build the run rank 0 announces and start from its state; None if rank 0 gave up.
    ``evaluate`` is the follower's share of the periodic evaluation (as ``prepare_run``'s)."""
    offer = broadcast_object(None, ranks)
    if offer is None:
        return None
    config = RunConfig.from_dict(offer["config"])
    run = _build_run(config, plugins, ResumePoint(None, None, config), control, [], continuing=False, ranks=ranks,
                     follower_dir=Path(offer["dir"]), evaluate=evaluate)
    _share_start(run)
    return run


def _share_start(run: Run) -> None:
    position = {"step": run.step, "epoch": run.epoch, "batch": run.batch, "images_seen": run.images_seen,
                "resumed_from": run.resumed_from,
                "last_checkpoint_step": run.last_checkpoint_step}
    position = share_start_state(run.model, position, run.ranks)
    if not run.ranks.leader:
        for key, value in position.items():
            setattr(run, key, value)
        seed = rank_seed(run.config.seed, run.ranks.rank) + run.step  # a resumed follower draws fresh noise
        run.noise.manual_seed(seed)
        torch.manual_seed(seed)


def _build_run(config: RunConfig, plugins: PluginSet, point: ResumePoint, control: RunControl | None,
               listeners, continuing: bool, ranks: Ranks = SINGLE, follower_dir: Path | None = None,
               evaluate: Evaluator | None = None) -> Run:
    checkpoint, run_dir = point.checkpoint, point.run_dir
    validate(config, plugins.registry)
    spec = plugins.registry.model(config.model)
    try:
        loss = plugins.registry.loss(config.loss).build()
    except GanbenchError:
        raise
    except Exception as exc:
        raise PluginError(f'The loss "{config.loss}" could not be built: {type(exc).__name__}: {exc}.') from None
    device = pick_device(job_device(config.device, ranks))
    tune_backends(device, config.engine)
    image_size = config.hyperparams.get("image_size", 28)
    data = training_subset(load_images(config, plugins, image_size), config.engine.get("train_images", 0),
                           config.dataset)
    data = orient(data, config.engine["direction"], config.dataset)  # B to A: the two sides swapped
    data_bytes = check_data_fits(data.images, image_size, device, config.dataset)  # refuse before the copy
    images = resize_uint8(data.images.to(device), image_size)
    info = data_info(data, int(images.shape[1]), image_size)  # the image shape (C, H, W), with the classes
    image_shape = info.image_shape
    torch.manual_seed(config.seed)
    try:
        model = spec.build(dict(config.hyperparams), info)
    except GanbenchError:
        raise
    except Exception as exc:  # ValueError from the plugin's own checks, or a plugin bug: one sentence either way
        raise ConfigError(f"{config.model} cannot be built with these settings: {type(exc).__name__}: {exc}.") from None
    check_labels_fit(model, info, data, config.model, config.dataset)  # a conditional model needs labels
    check_fields_fit(model, data, config.model, config.dataset)  # a translator needs its paired or unpaired side
    model.to(device)
    model.make_optimizers()
    global_batch = config.hyperparams["batch_size"]  # DeviceImages splits it over the ranks
    services = attach_services(model, config.engine, global_batch, device,
                               all_reduce_sum if ranks.distributed else None)  # before compiling: the EMA copy
    compile_networks(model, config.engine["compile"])
    labels = data.labels if model.batch_fields else None  # on the device only for a model that takes them
    fields = device_fields(data, model, image_size, device)  # a translator's sources or second domain
    batches = DeviceImages(images, config.hyperparams["batch_size"], device, config.seed, model.channels_last, labels,
                           rank=ranks.rank, world=ranks.world, image_fields=fields)
    held, held_warning = {}, None
    if is_translator(model):  # its held-out pairs or domains: for its own metrics and the grids
        held, held_warning = held_out(lambda split: load_images(config, plugins, image_size, split), config, model,
                                      image_size, device)
        model.held_out = held
    check_before_training(plugins.registry, config, model, loss, batches, image_shape)  # blames a broken plugin
    trial = batches.order(0)[:4].to(device)
    step_need = check_step_fits(model, loss, batches.take(trial), batches.batch_size, device,
                                batches.fields(trial, model.batch_fields))
    memory_note = memory_summary(data_bytes + step_need + weight_bytes(model) + state_bytes(model), device)
    if config.engine["sync_bn"]:  # after the check: its trial step runs on one rank's copy, without collectives
        convert_sync_batch_norm(model, device, ranks)
    average_gradients(model, ranks)
    if follower_dir is not None:
        return FollowerRun(config, plugins, FollowerRunDir(follower_dir), device, model, loss, batches, info,
                           control or RunControl(), [], data.source, evaluate, ranks, services)
    if checkpoint is not None:  # a checkpoint that does not fit is refused before any folder is created
        check_image_shape(checkpoint, image_shape)
        ckpt.restore_networks(checkpoint, model)
        ckpt.restore_optimizers(checkpoint, model)
        fresh = restore_tensor_state(checkpoint.tensors, model, checkpoint.path)  # EMA, augmentation, scalers
        check_steps_left(checkpoint, config.steps or config.hyperparams["epochs"] * len(batches), run_dir)
        if run_dir is None:
            config.name = None  # a checkpoint carried away from its run directory starts a fresh one
    lock = None
    if run_dir is None:
        run_dir = create_run_dir(config)
        lock = acquire_run_lock(run_dir.path)
    try:
        run = Run(config, plugins, run_dir, device, model, loss, batches, info,
                  control or RunControl(run_dir.requests), list(listeners), data.source, evaluate,
                  ranks, services)
        run.lock = lock
        run.made_folder = lock is not None  # this process created the folder: a failed start removes it
        run.memory_note = memory_note
        if held:
            run.fixed_inputs = fixed_inputs(held, model, config.engine["sample_count"])
            run.resume_warnings += [held_warning] if held_warning else []
        if checkpoint is not None:
            restore_position(run, checkpoint)
            run.resume_warnings += fresh
        if continuing and point.run_dir is not None:  # resuming in place: say how it had ended, tidy what a kill left
            status = run_dir.read_state().get("status", "unknown")
            run.previous_status = "crashed" if status in ("running", "paused") else status
            run.resume_warnings = list(point.warnings)
            for folder in (run_dir.checkpoints, run_dir.samples, run_dir.path):
                remove_temporaries(folder)
            if checkpoint is not None:  # a kill between a checkpoint and its record: make the files agree
                run.resume_warnings += reconcile(run_dir, checkpoint, config.engine["keep_checkpoints"])
    except BaseException:  # a run that could not start (even on Ctrl-C) leaves no folder of its own behind
        if lock is not None:
            lock.release()
            discard_unstarted(run_dir)
        raise
    return run

