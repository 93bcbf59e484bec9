"""The plugin manager: discovers the ``ganbench`` entry points and collects what they register.

One broken plugin never breaks the others: an import error, a raising hook or
an invalid registration is recorded in ``PluginSet.errors`` and the rest loads.
``GANBENCH_PLUGINS`` (comma-separated entry-point names) is an allow list and
``GANBENCH_DISABLE_PLUGINS`` a block list.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from types import ModuleType

import pluggy

from workbench import hookspecs
from workbench.registry import DatasetSpec, LossSpec, ModelSpec, Registered, Registry

ENTRY_POINT_GROUP = "ganbench"
_KINDS = (
    ("models", "ganbench_register_models", ModelSpec),
    ("datasets", "ganbench_register_datasets", DatasetSpec),
    ("losses", "ganbench_register_losses", LossSpec),
)


@dataclass
class PluginInfo:
    """One entry point: where it came from and what became of it."""

    name: str
    module: str
    dist: str
    version: str
    error: str | None = None
    registered: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class PluginSet:
    """The loaded plugins, their registry, the pluggy manager (for observer hooks) and the errors."""

    manager: pluggy.PluginManager
    registry: Registry
    plugins: list[PluginInfo]
    errors: list[str]


def _env_list(name: str) -> set[str] | None:
    value = os.environ.get(name)
    if value is None:
        return None
    return {item.strip() for item in value.split(",") if item.strip()}


def load_plugins(extra_modules: list[ModuleType] | None = None) -> PluginSet:
    """Import every allowed ``ganbench`` entry point and collect its registrations.

    :param extra_modules: plugin modules to add without an entry point (for tests and notebooks).
    """
    manager = pluggy.PluginManager(ENTRY_POINT_GROUP)
    manager.add_hookspecs(hookspecs)
    allow, block = _env_list("GANBENCH_PLUGINS"), _env_list("GANBENCH_DISABLE_PLUGINS") or set()
    infos: list[PluginInfo] = []
    errors: list[str] = []
    seen: set[str] = set()
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if ep.name in seen or (allow is not None and ep.name not in allow) or ep.name in block:
            continue
        seen.add(ep.name)
        dist = ep.dist.name if ep.dist else "?"
        info = PluginInfo(ep.name, ep.value, dist, ep.dist.version if ep.dist else "?")
        infos.append(info)
        try:
            module = ep.load()
            manager.register(module, name=ep.name)
        except Exception as exc:  # a broken plugin must not break the others
            info.error = f"failed to load: {type(exc).__name__}: {exc}"
            errors.append(f'Plugin "{ep.name}" ({dist}) {info.error}')
    for module in extra_modules or []:
        name = module.__name__
        infos.append(PluginInfo(name, name, "(local)", "-"))
        manager.register(module, name=name)
    registry = Registry()
    by_name = {info.name: info for info in infos}
    for kind, hook_name, spec_type in _KINDS:
        table = getattr(registry, kind)
        for impl in getattr(manager.hook, hook_name).get_hookimpls():
            info = by_name[impl.plugin_name]
            register = _registrar(kind, spec_type, table, info, errors)
            try:
                impl.function(register=register)
            except Exception as exc:
                info.error = f"{hook_name} raised {type(exc).__name__}: {exc}"
                errors.append(f'Plugin "{info.name}" ({info.dist}): {info.error}')
    return PluginSet(manager, registry, infos, errors)


def _registrar(kind, spec_type, table, info: PluginInfo, errors: list[str]):
    def register(spec) -> None:
        if not isinstance(spec, spec_type):
            message = f"registered a {type(spec).__name__} where a {spec_type.__name__} belongs"
            errors.append(f'Plugin "{info.name}" ({info.dist}) {message}; ignored.')
            info.error = message
            return
        if spec.name in table:
            first = table[spec.name]
            errors.append(
                f'{kind[:-1].capitalize()} "{spec.name}" is registered by both "{first.plugin}" ({first.dist}) '
                f'and "{info.name}" ({info.dist}); keeping the first.'
            )
            return
        table[spec.name] = Registered(spec, info.name, info.dist)
        info.registered.setdefault(kind, []).append(spec.name)

    return register

