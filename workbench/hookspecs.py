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
from typing import TYPE_CHECKING, Any, Callable

import pluggy

if TYPE_CHECKING:
    from workbench.bench.workloads import Workload
    from workbench.engine.training import Run
    from workbench.registry import DatasetSpec, LossSpec, MetricSpec, ModelSpec

hookspec = pluggy.HookspecMarker("ganbench")
from workbench import hookimpl  # noqa: E402,F401  (re-exported)


@hookspec
def ganbench_register_models(register: Callable[[ModelSpec], None]) -> None:
    """Register model plugins: call ``register(ModelSpec(...))`` once per model.

    :param register: adds one ``workbench.registry.ModelSpec``.
    """


@hookspec
def ganbench_register_datasets(register: Callable[[DatasetSpec], None]) -> None:
    """Register dataset plugins: call ``register(DatasetSpec(...))`` once per dataset.

    :param register: adds one ``workbench.registry.DatasetSpec``.
    """


@hookspec
def ganbench_register_losses(register: Callable[[LossSpec], None]) -> None:
    """Register adversarial losses: call ``register(LossSpec(...))`` once per loss.

    :param register: adds one ``workbench.registry.LossSpec``.
    """


@hookspec
def ganbench_register_metrics(register: Callable[[MetricSpec], None]) -> None:
    """Register sample-quality metrics: call ``register(MetricSpec(...))`` once per metric.

    :param register: adds one ``workbench.registry.MetricSpec``.
    """


@hookspec
def ganbench_register_workloads(register: Callable[[Workload], None]) -> None:
    """Register benchmark workloads for ``ganbench bench``: call ``register(Workload(...))`` once per workload.

    :param register: adds one ``workbench.bench.workloads.Workload``: an engine model paired with a reference
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
