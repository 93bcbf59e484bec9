"""``ganbench plugins``: every plugin, what it registered, where it came from, and what went wrong.

Readable tables for people; ``--json`` for scripts. A broken plugin is listed
with its error and never stops the listing.
"""

from __future__ import annotations

import json

NAME = "plugins"
HELP = "list plugins, what they registered, and their errors"
KINDS = (("models", "Models"), ("datasets", "Datasets"), ("losses", "Losses"), ("metrics", "Metrics"),
         ("workloads", "Benchmark workloads (ganbench bench)"))


def add_arguments(parser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output (the same facts)")


def _param(p) -> dict:
    return {"name": p.name, "type": p.type, "default": p.default, "min": p.min, "max": p.max,
            "choices": list(p.choices), "help": p.help}


def describe(plugins) -> dict:
    """The JSON document of ``ganbench plugins --json``.

    Keys: ``plugins`` (name, module, dist, version, error, registered), one table per kind
    (``models``, ``datasets``, ``losses``, ``metrics``, ``workloads``: name -> description, plugin, dist; models add
    hyperparams, dataset and loss; metrics add lower_is_better, default and unavailable: None when the
    metric can run here, else the sentence saying why not), ``disabled`` and ``errors``.
    """
    from workbench.quality.evaluate import unavailable_reason

    registry = plugins.registry
    document: dict = {"plugins": [vars(p) for p in plugins.plugins]}
    for kind, _ in KINDS:
        items = getattr(registry, kind, {})
        document[kind] = {name: {"description": item.spec.description, "plugin": item.plugin, "dist": item.dist}
                          for name, item in sorted(items.items())}
    for name, item in registry.models.items():
        document["models"][name].update(hyperparams=[_param(p) for p in item.spec.hyperparams],
                                        dataset=item.spec.dataset, loss=item.spec.loss)
    for name, item in registry.metrics.items():
        document["metrics"][name].update(lower_is_better=item.spec.lower_is_better, default=item.spec.default,
                                         unavailable=unavailable_reason(item.spec))
    document["disabled"] = list(plugins.disabled)
    document["errors"] = list(plugins.errors)
    return document


def main(args) -> int:
    from workbench.host.manager import load_plugins

    plugins = load_plugins()
    if args.json:
        print(json.dumps(describe(plugins), indent=2, default=str))
        return 0
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    registry, console = plugins.registry, Console(highlight=False)
    grid = Table(title="Plugins", title_justify="left")
    for column in ("plugin", "distribution", "registered", "status"):
        grid.add_column(column, no_wrap=column == "plugin")
    for info in plugins.plugins:
        registered = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in info.registered.items())
        observes = [h.removeprefix("ganbench_") for h in info.hooks if not h.startswith("ganbench_register_")]
        registered = registered or (f"observes: {', '.join(observes)}" if observes else "-")
        status = Text("error (below)", style="bold red") if info.error else Text("ok", style="green")
        grid.add_row(info.name, f"{info.dist} {info.version}", registered, status)
    console.print(grid)
    for kind, title in KINDS:
        items = getattr(registry, kind, {})
        if not items:
            continue
        if kind == "metrics":
            console.print(_metrics_table(items))
            continue
        grid = Table(title=title, title_justify="left")
        grid.add_column("name", no_wrap=True)
        grid.add_column("description")
        grid.add_column("from")
        for name, item in sorted(items.items()):
            grid.add_row(name, item.spec.description, f"{item.plugin} ({item.dist})")
        console.print(grid)
    for name, item in sorted(registry.models.items()):
        settings = ", ".join(f"{p.name}={p.default}" for p in item.spec.hyperparams)
        console.print(f"[bold]{name}[/] settings: {settings}")
    if plugins.disabled:
        console.print(f"disabled by GANBENCH_PLUGINS / GANBENCH_DISABLE_PLUGINS: {', '.join(plugins.disabled)}")
    for error in plugins.errors:
        console.print(Text.assemble(("error: ", "red"), error))
    return 0


def _metrics_table(items: dict):
    """The quality metrics: which way is better, whether ``ganbench eval`` computes them unasked, usable here."""
    from rich.table import Table
    from rich.text import Text

    from workbench.quality.evaluate import unavailable_reason

    grid = Table(title="Metrics (ganbench eval, --set eval_every=N)", title_justify="left")
    for column in ("name", "better", "default", "here", "description", "from"):
        grid.add_column(column, no_wrap=column in ("name", "better", "default"))
    for name, item in sorted(items.items()):
        spec, reason = item.spec, unavailable_reason(item.spec)
        here = Text("yes", style="green") if reason is None else Text(f"no: {reason}", style="yellow")
        grid.add_row(name, "lower" if spec.lower_is_better else "higher", "yes" if spec.default else "no",
                     here, spec.description, f"{item.plugin} ({item.dist})")
    return grid
