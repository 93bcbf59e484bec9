"""The plugin manager: discovers the ``ganbench`` entry points and collects what they register.

One broken plugin never breaks the others: an import error, a raising hook, a
misnamed hook or an invalid registration is recorded in ``PluginSet.errors``
(and on the plugin's ``PluginInfo.error``) and the rest loads. ganbench's own
entry points load first, so a third-party plugin cannot take over a core name;
a name registered twice is reported with both distributions.

``GANBENCH_PLUGINS`` is an allow list and ``GANBENCH_DISABLE_PLUGINS`` a block
list: comma-separated entry-point names or distribution names.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from types import ModuleType

import pluggy

from workbench.base.errors import nearest
from workbench.host import hookspecs
from workbench.host.registry import DatasetSpec, LossSpec, MetricSpec, ModelSpec, Registered, Registry
from workbench.host.workloads import Workload

ENTRY_POINT_GROUP = "ganbench"
_KINDS = (
    ("models", "ganbench_register_models", ModelSpec),
    ("datasets", "ganbench_register_datasets", DatasetSpec),
    ("losses", "ganbench_register_losses", LossSpec),
    ("metrics", "ganbench_register_metrics", MetricSpec),
    ("workloads", "ganbench_register_workloads", Workload),
)


@dataclass
class PluginInfo:
    """One plugin (an entry point, or a module given to ``load_plugins``): where it came from and what became of it.

    :param error: every problem found with it, joined with "; ", or None when it loaded cleanly.
    :param registered: the names it registered, by kind (``models``, ``datasets`` ...).
    :param hooks: the hooks it implements (an observer plugin registers nothing but implements hooks).
    """

    name: str
    module: str
    dist: str
    version: str
    error: str | None = None
    registered: dict[str, list[str]] = field(default_factory=dict)
    hooks: list[str] = field(default_factory=list)


@dataclass
class PluginSet:
    """The loaded plugins, their registry, the pluggy manager (for observer hooks) and the errors.

    :param errors: one sentence per problem, naming the plugin and its distribution.
    :param disabled: ``name (distribution)`` of each entry point left out by the environment variables.
    """

    manager: pluggy.PluginManager
    registry: Registry
    plugins: list[PluginInfo]
    errors: list[str]
    disabled: list[str] = field(default_factory=list)


_KIND_WORDS = {"models": "model", "datasets": "dataset", "losses": "loss", "metrics": "metric",
               "workloads": "benchmark workload"}
_HOOK_NAMES = sorted(name for name in dir(hookspecs) if hasattr(getattr(hookspecs, name), "ganbench_spec"))


def _env_list(name: str) -> set[str] | None:
    value = os.environ.get(name)
    if value is None:
        return None
    return {item.strip() for item in value.split(",") if item.strip()}


def _normalize(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


def _dist_of(ep) -> tuple[str, str]:
    return (ep.dist.name, ep.dist.version) if ep.dist is not None else ("?", "?")


def _listed(names: set[str], ep_name: str, dist: str) -> bool:
    return ep_name in names or _normalize(dist) in {_normalize(n) for n in names}


def load_plugins(extra_modules: list[ModuleType] | None = None) -> PluginSet:
    """Import every allowed ``ganbench`` entry point and collect its registrations.

    Never raises for a plugin's fault: what went wrong is in ``PluginSet.errors``.

    :param extra_modules: plugin modules (or objects with ``@hookimpl`` methods) to add without an entry
        point, after the installed ones (for tests and notebooks).
    """
    manager = pluggy.PluginManager(ENTRY_POINT_GROUP)
    manager.add_hookspecs(hookspecs)
    allow, block = _env_list("GANBENCH_PLUGINS"), _env_list("GANBENCH_DISABLE_PLUGINS") or set()
    infos: list[PluginInfo] = []
    errors: list[str] = []
    disabled: list[str] = []
    chosen: dict[str, PluginInfo] = {}
    installed = list(entry_points(group=ENTRY_POINT_GROUP))
    # ganbench's own plugins first: a third-party plugin cannot take a core name away from them.
    for ep in sorted(installed, key=lambda e: (_dist_of(e)[0] != "ganbench", e.name, _dist_of(e)[0])):
        dist, version = _dist_of(ep)
        if (allow is not None and not _listed(allow, ep.name, dist)) or _listed(block, ep.name, dist):
            disabled.append(f"{ep.name} ({dist})")
            continue
        if ep.name in chosen:
            first = chosen[ep.name]
            errors.append(f'Plugin "{ep.name}" is provided by both {first.dist} and {dist}; '
                          f"keeping the one from {first.dist}.")
            continue
        info = chosen[ep.name] = PluginInfo(ep.name, ep.value, dist, version)
        infos.append(info)
        try:
            module = ep.load()
        except (Exception, SystemExit) as exc:  # a broken plugin must not break the others
            _report(info, errors, f"failed to load: {type(exc).__name__}: {_one_line(exc)}")
            continue
        _register(manager, module, info, errors)
    for module in extra_modules or []:
        name = getattr(module, "__name__", type(module).__name__)
        info = PluginInfo(name, name, "(local)", "-")
        infos.append(info)
        _register(manager, module, info, errors)
    errors += _unknown_names(installed, allow, block)
    registry = Registry()
    by_name = {info.name: info for info in infos}
    for kind, hook_name, spec_type in _KINDS:
        table = getattr(registry, kind)
        for impl in getattr(manager.hook, hook_name).get_hookimpls():
            info = by_name[impl.plugin_name]
            register = _registrar(kind, spec_type, table, info, errors)
            try:
                impl.function(**({"register": register} if "register" in impl.argnames else {}))
            except (Exception, SystemExit) as exc:
                _report(info, errors, f"{hook_name} raised {type(exc).__name__}: {_one_line(exc)}")
    errors += _missing_defaults(registry)
    return PluginSet(manager, registry, infos, errors, disabled)


def _register(manager: pluggy.PluginManager, module, info: PluginInfo, errors: list[str]) -> None:
    """Add one plugin's hooks; report hooks pluggy refuses, hooks that do not exist and hooks left unmarked."""
    try:
        manager.register(module, name=info.name)
    except (pluggy.PluginValidationError, ValueError) as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        _report(info, errors, f"failed to load: {'; '.join(lines[1:] or lines)}")
        return
    for caller in manager.get_hookcallers(module) or []:
        info.hooks.append(caller.name)
        if caller.spec is None:
            _report(info, errors, f"implements {caller.name}, which is not a ganbench hook, so it is never "
                                  f"called.{nearest(caller.name, _HOOK_NAMES)}")
    for name in _HOOK_NAMES:
        function = getattr(module, name, None)
        if callable(function) and not hasattr(function, "ganbench_impl"):
            _report(info, errors, f"defines {name} without the @hookimpl decorator, so it is never called")


def _report(info: PluginInfo, errors: list[str], message: str) -> None:
    info.error = message if info.error is None else f"{info.error}; {message}"
    errors.append(f'Plugin "{info.name}" ({info.dist}): {message}' + ("" if message.endswith((".", "?")) else "."))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or "(no message)"


def _unknown_names(installed, allow: set[str] | None, block: set[str]) -> list[str]:
    known = {ep.name for ep in installed} | {_normalize(_dist_of(ep)[0]) for ep in installed}
    problems = []
    for variable, names in (("GANBENCH_PLUGINS", allow or set()), ("GANBENCH_DISABLE_PLUGINS", block)):
        for name in sorted(names):
            if name not in known and _normalize(name) not in known:
                problems.append(f'{variable} names "{name}", which is neither an installed plugin nor a '
                                f"distribution that provides one.{nearest(name, sorted(known))}")
    return problems


def _missing_defaults(registry: Registry) -> list[str]:
    problems = []
    for name, item in registry.models.items():
        for kind, flag, default in (("datasets", "--dataset", item.spec.dataset), ("losses", "--loss", item.spec.loss)):
            if default not in getattr(registry, kind):
                problems.append(f'Model "{name}" (plugin {item.plugin} from {item.dist}) defaults to '
                                f'{_KIND_WORDS[kind]} "{default}", which no loaded plugin registers; '
                                f"name one with {flag}.")
    return problems


def _registrar(kind, spec_type, table, info: PluginInfo, errors: list[str]):
    from workbench.host.validation import check_spec, describe_value, guard  # imports torch: not at start-up

    def register(spec) -> None:
        if not isinstance(spec, spec_type):
            _report(info, errors, f"registered {describe_value(spec)} where a {spec_type.__name__} belongs; "
                                  f"it is ignored")
            return
        problems = check_spec(spec)
        if problems:
            _report(info, errors, f"registered an invalid {spec_type.__name__} {getattr(spec, 'name', None)!r}: "
                                  f"{'; '.join(problems)}; it is ignored")
            return
        if spec.name in table:
            first = table[spec.name]
            message = (f'{_KIND_WORDS[kind].capitalize()} "{spec.name}" is registered by both {first.dist} '
                       f"(plugin {first.plugin}) and {info.dist} (plugin {info.name}); keeping the one from "
                       f"{first.dist}.")
            errors.append(message)
            info.error = message if info.error is None else f"{info.error}; {message}"
            return
        table[spec.name] = Registered(guard(spec, info.name, info.dist), info.name, info.dist)
        info.registered.setdefault(kind, []).append(spec.name)

    return register
