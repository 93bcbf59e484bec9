"""A one-line progress bar that stays readable without colour: ``epoch ██████░░░░ 3/10``."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget


class ProgressLine(Widget, can_focus=False):
    """A labelled bar of ``done`` out of ``total``; ``total`` 0 draws an empty bar with no count."""

    DEFAULT_CSS = """
    ProgressLine { height: 1; }
    ProgressLine > .progress-line--done { color: $accent; }
    ProgressLine > .progress-line--left { color: $foreground 30%; }
    """
    COMPONENT_CLASSES = {"progress-line--done", "progress-line--left"}

    done: reactive[int] = reactive(0)
    total: reactive[int] = reactive(0)

    def __init__(self, label: str, *, id: str | None = None, classes: str | None = None):
        super().__init__(id=id, classes=classes)
        self.label = label

    def render(self) -> Text:
        count = f" {self.done:,}/{self.total:,}" if self.total else ""
        width = max(self.content_size.width - len(self.label) - 1 - len(count), 1)
        filled = round(width * min(self.done / self.total, 1.0)) if self.total else 0
        text = Text(f"{self.label} ", no_wrap=True)
        text.append("█" * filled, self.get_component_rich_style("progress-line--done"))
        text.append("░" * (width - filled), self.get_component_rich_style("progress-line--left"))
        text.append(count)
        return text
