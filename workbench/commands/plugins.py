"""``ganbench plugins``: every plugin, what it registered, where it came from, and load errors."""

from __future__ import annotations

import json

NAME = "plugins"
HELP = "list plugins and what they registered"


def add_arguments(parser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def describe(plugins) -> dict:
    """The JSON document of ``ganbench plugins --json``."""
    registry = plugins.registry

    def table(items):
        return {name: {"description": item.spec.description, "plugin": item.plugin, "dist": item.dist}
                for name, item in items.items()}

    models = table(registry.models)
    for name, item in registry.models.items():
        models[name]["hyperparams"] = [
            {"name": p.name, "type": p.type, "default": p.default, "min": p.min, "max": p.max,
             "choices": list(p.choices), "help": p.help} for p in item.spec.hyperparams]
        models[name].update(dataset=item.spec.dataset, loss=item.spec.loss)
    return {"plugins": [vars(p) for p in plugins.plugins], "models": models, "datasets": table(registry.datasets),
            "losses": table(registry.losses), "errors": plugins.errors}


def main(args) -> int:
    from workbench.plugins import load_plugins

    plugins = load_plugins()
    if args.json:
        print(json.dumps(describe(plugins), indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    registry, console = plugins.registry, Console()
    for title, items in (("Models", registry.models), ("Datasets", registry.datasets), ("Losses", registry.losses)):
        grid = Table(title=title, title_justify="left")
        grid.add_column("name", no_wrap=True)
        grid.add_column("description")
        grid.add_column("from")
        for name, item in sorted(items.items()):
            grid.add_row(name, item.spec.description, f"{item.plugin} ({item.dist})")
        console.print(grid)
    for name, item in sorted(registry.models.items()):
        settings = ", ".join(f"{p.name}={p.default}" for p in item.spec.hyperparams)
        console.print(f"[bold]{name}[/] settings: {settings}", highlight=False)
    for error in plugins.errors:
        console.print(f"[red]error:[/] {error}", highlight=False)
    return 0
