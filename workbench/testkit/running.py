"""How a check drives the real engine: a folder of its own, the plugins with the kit's, a small run, its report.

Every check trains through ``prepare_run`` and ``Run.train``, as ``ganbench run``
does, so a plugin that passes here behaves the same under the CLI and the workbench.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
from pathlib import Path
from typing import Any, Iterator

from workbench.modeling.metrics import METRIC_KEYS
from workbench.testkit.kit_plugin import KIT_BATCH, KitPlugin
from workbench.testkit.report import KitReport, PluginCheckError, blame

KIT_ENGINE = ("log_every=1", "sample_every=0", "checkpoint_every=100000", "sample_count=4")
KINDS = {"models": "model", "datasets": "dataset", "losses": "loss"}  # Registry table -> what it holds


@contextlib.contextmanager
def check_folder(workdir: Path | None) -> Iterator[Path]:
    """A fresh folder for one check: inside ``workdir`` (kept), or a temporary one (removed)."""
    if workdir is not None:
        Path(workdir).mkdir(parents=True, exist_ok=True)
        yield Path(tempfile.mkdtemp(prefix="ganbench-check-", dir=workdir))
        return
    with tempfile.TemporaryDirectory(prefix="ganbench-check-") as folder:
        yield Path(folder)


def load_with_kit(kit: KitPlugin, kind: str, name: str, modules: list | None):
    """The installed plugins, ``modules`` and the kit's; refuse if ``name`` is not in table ``kind`` or its plugin broke."""
    from workbench.host.manager import load_plugins

    plugins = load_plugins([*(modules or []), kit])
    table = getattr(plugins.registry, kind)
    if name not in table:
        known = ", ".join(sorted(n for n in table if not n.startswith("testkit-"))) or "none"
        problems = f" Plugin errors: {' '.join(plugins.errors)}" if plugins.errors else ""
        raise PluginCheckError(f'No {KINDS[kind]} named "{name}" is registered (is the plugin installed, with an '
                               f'entry point in the "ganbench" group?). Known: {known}.{problems}')
    owner = next(p for p in plugins.plugins if p.name == table[name].plugin)
    if owner.error:
        raise PluginCheckError(f'Plugin "{owner.name}" ({owner.dist}), which registers "{name}", has problems: '
                               f"{owner.error}")
    return plugins


def kit_config(plugins, kit: KitPlugin, model: str, dataset: str, loss: str | None,
               hyperparams: dict[str, Any] | None, device: str, root: Path, name: str, steps: int = 2,
               data_root: str | None = None):
    """A validated configuration of a short run named ``name`` under ``root/runs``, in batches the model accepts."""
    from workbench.host.configure import build_config, validate

    spec = plugins.registry.model(model)
    batch = spec.param("batch_size")
    size = KIT_BATCH
    if batch.min is not None and size < batch.min or batch.max is not None and size > batch.max:
        size = int(batch.min if batch.min is not None and size < batch.min else batch.max)
    config = blame(build_config, plugins.registry, model, dataset=dataset, loss=loss,
                   sets=[f"batch_size={size}", *KIT_ENGINE], steps=steps, device=device,
                   runs_dir=str(root / "runs"), name=name, data_root=data_root)
    unknown = sorted(set(hyperparams or {}) - {p.name for p in spec.hyperparams})
    if unknown:
        raise PluginCheckError(f'Model "{model}" declares no hyper-parameter {", ".join(unknown)}; it declares '
                               f'{", ".join(p.name for p in spec.hyperparams)}.')
    config.hyperparams.update(hyperparams or {})
    blame(validate, config, plugins.registry)
    kit.count = max(32, 4 * config.hyperparams["batch_size"])
    return config


def train(plugins, config):
    """Train ``config`` to the end in this process; the finished ``Run``, or a PluginCheckError saying how it ended."""
    from workbench.engine.run import prepare_run

    run = blame(prepare_run, config, plugins)
    reason = run.train()
    if reason != "completed":
        end = events_of(run.dir.events, "run_end")
        message = end[-1].get("message", "") if end else ""
        errors = " ".join(e.get("message", "") for e in events_of(run.dir.events, "error"))
        raise PluginCheckError(f'Training {config.model} on {config.dataset} with loss {config.loss} ended '
                               f'"{reason}": {message} {errors}'.strip())
    return run


def resume(plugins, run_path: Path, steps: int):
    """Continue the run at ``run_path`` from its checkpoint until step ``steps``; the finished ``Run``."""
    from workbench.engine.run import prepare_run

    run = blame(prepare_run, None, plugins, resume=run_path, overrides={"steps": steps})
    start = run.step
    if run.train() != "completed" or run.step != steps:
        raise PluginCheckError(f"Resuming {run_path} from step {start} did not complete step {steps}.")
    return run


def events_of(path: Path, kind: str) -> list[dict[str, Any]]:
    """The events of type ``kind`` in the log at ``path``."""
    from workbench.rundir.events import iter_events

    return [e for e in iter_events(path) if e["type"] == kind]


def report_of(run) -> KitReport:
    """Check what a finished run logged and left (finite metrics every step, a checkpoint, a grid); its report."""
    metrics = events_of(run.dir.events, "metrics")
    steps = [e["step"] for e in metrics]
    if steps[-1:] != [run.step]:
        raise PluginCheckError(f"The run logged metrics for steps {steps}, not up to step {run.step}.")
    for event in metrics:
        for key in METRIC_KEYS:
            if not isinstance(event[key], (int, float)) or not math.isfinite(event[key]):
                raise PluginCheckError(f"Step {event['step']} of {run.config.model} logged {key} = {event[key]}.")
    if not run.dir.latest.is_file() or not any(run.dir.samples.glob("*.png")):
        raise PluginCheckError(f"The run in {run.dir.path} left no checkpoint or no sample grid.")
    warnings = [e.get("message", "") for e in events_of(run.dir.events, "warning")]
    return KitReport(run.dir.path, metrics, run.dir.latest, None, warnings)
