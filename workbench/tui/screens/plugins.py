"""The discovered plugins: every model, dataset and loss, where it came from, and what failed to load."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

if TYPE_CHECKING:
    from workbench.host.manager import PluginSet


class PluginsScreen(Screen):
    """A table of registered items and the load errors under it."""

    BINDINGS = [Binding("escape", "back", "Back")]

    def __init__(self, plugins: PluginSet):
        super().__init__()
        self.plugins = plugins

    def compose(self) -> ComposeResult:
        yield Static("Plugins", id="plugins-title")
        table = DataTable(id="plugins-table", cursor_type="row", zebra_stripes=True)
        table.add_columns("kind", "name", "from", "description")
        registry = self.plugins.registry
        for kind, items in (("model", registry.models), ("dataset", registry.datasets), ("loss", registry.losses)):
            for name, item in sorted(items.items()):
                table.add_row(kind, name, f"{item.plugin} ({item.dist})", item.spec.description)
        yield table
        errors = self.plugins.errors
        text = "\n".join(f"error: {e}" for e in errors) if errors else "Every plugin loaded."
        yield Static(text, id="plugins-errors", classes="-failed" if errors else "", markup=False)
        yield Footer(compact=True)

    def action_back(self) -> None:
        self.dismiss()
