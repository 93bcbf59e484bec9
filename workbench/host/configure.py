"""A run's configuration resolved against the loaded plugins: defaults, ``--set``, and every value checked.

``workbench.rundir.config.RunConfig`` is the configuration as a run folder stores it (torch-free, no
plugin needed to read it); here it meets the registry: the model's declared hyper-parameters and engine
defaults, the names of datasets, losses and metrics.
"""

from __future__ import annotations

from workbench.base.errors import ConfigError, nearest
from workbench.host.registry import Registry
from workbench.rundir.config import ENGINE_PARAMS, RunConfig, check_run_name, check_types, eval_metric_names


def build_config(registry: Registry, model: str, *, dataset: str | None = None, loss: str | None = None,
                 sets: list[str] = (), **fields) -> RunConfig:
    """Resolve a run configuration: the model's defaults, then named flags, then ``--set key=value``.

    Raises ConfigError/PluginError with one sentence for unknown names or bad values.
    """
    spec = registry.model(model)
    config = RunConfig(model=model, dataset=dataset or spec.dataset, loss=loss or spec.loss,
                       hyperparams=spec.defaults(), **{k: v for k, v in fields.items() if v is not None})
    config.engine.update(getattr(spec, "engine_defaults", {}) or {})  # what the model asks of the engine
    registry.dataset(config.dataset)
    registry.loss(config.loss)
    for item in sets:
        apply_set(config, registry, item)
    validate(config, registry)
    return config


def apply_set(config: RunConfig, registry: Registry, item: str) -> None:
    """Apply one ``key=value`` to the model's hyper-parameters or the engine settings."""
    key, sep, value = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f'--set needs key=value, got "{item}".')
    spec = registry.model(config.model)
    param = spec.param(key)
    if param is not None:
        config.hyperparams[key] = param.parse(value)
        return
    engine = next((p for p in ENGINE_PARAMS if p.name == key), None)
    if engine is not None:
        config.engine[key] = engine.parse(value)
        return
    names = [p.name for p in spec.hyperparams] + [p.name for p in ENGINE_PARAMS]
    raise ConfigError(f'"{key}" is not a setting of {config.model}.{nearest(key, names)} '
                      f'Settings: {", ".join(names)}.')


def validate(config: RunConfig, registry: Registry) -> None:
    """Check every value against its declaration, so a bad one fails before any data is loaded."""
    check_types(config)
    spec = registry.model(config.model)
    for param in spec.hyperparams:
        config.hyperparams[param.name] = param.check(config.hyperparams.get(param.name, param.default))
    for param in ENGINE_PARAMS:
        config.engine[param.name] = param.check(config.engine.get(param.name, param.default))
    for name in eval_metric_names(config.engine) or []:
        registry.metric(name)  # an unknown metric ends here, in one sentence
    if config.steps is not None and config.steps < 1:
        raise ConfigError(f"--steps must be at least 1; got {config.steps}.")
    if config.kimg is not None and not 0 < config.kimg <= 1e7:
        raise ConfigError(f"--kimg must be more than 0 (thousands of images); got {config.kimg}.")
    if config.kimg is not None and config.steps is not None:
        raise ConfigError("Give the length as --steps or as --kimg, not both.")
    if not 0 <= config.seed < 2 ** 32:
        raise ConfigError(f"--seed must be between 0 and {2 ** 32 - 1}; got {config.seed}.")
    if config.device not in ("auto", "cpu", "cuda", "mps") and not config.device.startswith("cuda:"):
        raise ConfigError(f'--device must be auto, cpu, cuda, cuda:N or mps; got "{config.device}".')
    if config.name is not None:
        check_run_name(config.name)
