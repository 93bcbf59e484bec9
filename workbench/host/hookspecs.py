"""The hooks a ganbench plugin can implement.

A plugin is a module named in the ``ganbench`` entry-point group that defines
functions decorated with ``workbench.hookimpl`` and named like the hooks
below. Registration hooks receive a ``register`` callback; observer hooks
receive the running ``Run`` and must not slow the training loop down. A hook
that raises is reported and never stops the others.

The author's guide, ``docs/plugins.md``, documents every hook here (a test
checks it) and the contracts of what a plugin registers.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol

import pluggy

if TYPE_CHECKING:
    import torch

    from workbench.host.registry import DatasetSpec, LossSpec, MetricSpec, ModelSpec
    from workbench.host.workloads import Workload
    from workbench.rundir.config import RunConfig
    from workbench.rundir.directory import RunDir


class Run(Protocol):
    """What an observer hook may read of the running run (the engine's ``Run`` is one). Read it; never change it.

    The hooks are typed against this, not the engine's class, so the plugin host does not depend on training.
    """

    config: RunConfig  # the resolved configuration (model, dataset, hyperparams, engine settings)
    dir: RunDir  # the run folder: ``path``, ``config``, ``events``, ``samples``, ``checkpoints``
    step: int  # steps done
    epoch: int
    images_seen: int  # images of the whole job trained on (kimg = images_seen / 1000)
    device: torch.device
    model: Any  # the GanModel being trained

hookspec = pluggy.HookspecMarker("ganbench")
from workbench import hookimpl  # noqa: E402,F401  (re-exported)


@hookspec
def ganbench_register_models(register: Callable[[ModelSpec], None]) -> None:
    """Register model plugins: call ``register(ModelSpec(...))`` once per model.

    :param register: adds one ``workbench.host.registry.ModelSpec``.
    """


@hookspec
def ganbench_register_datasets(register: Callable[[DatasetSpec], None]) -> None:
    """Register dataset plugins: call ``register(DatasetSpec(...))`` once per dataset.

    :param register: adds one ``workbench.host.registry.DatasetSpec``.
    """


@hookspec
def ganbench_register_losses(register: Callable[[LossSpec], None]) -> None:
    """Register adversarial losses: call ``register(LossSpec(...))`` once per loss.

    :param register: adds one ``workbench.host.registry.LossSpec``.
    """


@hookspec
def ganbench_register_metrics(register: Callable[[MetricSpec], None]) -> None:
    """Register sample-quality metrics: call ``register(MetricSpec(...))`` once per metric.

    :param register: adds one ``workbench.host.registry.MetricSpec``.
    """


@hookspec
def ganbench_register_workloads(register: Callable[[Workload], None]) -> None:
    """Register benchmark workloads for ``ganbench bench``: call ``register(Workload(...))`` once per workload.

    :param register: adds one ``workbench.host.workloads.Workload``: an engine model paired with a reference
        loop of the same algorithm.
    """


@hookspec
def ganbench_run_start(run: Run) -> None:
    """A run is about to take its first step (also after ``--resume``).

    :param run: the run; ``run.config``, ``run.dir`` and ``run.step`` are set.
    """


@hookspec
def ganbench_metrics(run: Run, metrics: dict[str, Any]) -> None:
    """Metrics for the last logging interval were read from the device.

    :param run: the run.
    :param metrics: the event written to ``events.jsonl``: step, epoch, d_loss, g_loss, d_real, d_fake, images_per_s.
    """


@hookspec
def ganbench_sample_written(run: Run, path: Path, step: int) -> None:
    """A fixed-noise sample grid was written.

    :param run: the run.
    :param path: the PNG file.
    :param step: the training step it shows.
    """


@hookspec
def ganbench_checkpoint_written(run: Run, path: Path, step: int) -> None:
    """A checkpoint was written and renamed into place.

    :param run: the run.
    :param path: the ``.safetensors`` file.
    :param step: the training step it holds.
    """


@hookspec
def ganbench_run_end(run: Run, reason: str) -> None:
    """The run ended.

    :param run: the run.
    :param reason: ``completed``, ``stopped``, ``diverged`` or ``failed``.
    """
