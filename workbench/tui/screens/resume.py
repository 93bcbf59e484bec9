"""Continuing a stopped or finished run: until which step to train."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Label, Static

from workbench.base.errors import ConfigError
from workbench.tui.widgets.param_form import FieldSpec, ParamField


class ResumeScreen(ModalScreen[int | None]):
    """Asks for the total number of steps; dismisses with it, or None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "submit", "Resume", priority=True)]

    def __init__(self, name: str, step: int, total_steps: int):
        super().__init__()
        self.run_name, self.step = name, step
        self.suggested = total_steps if step < total_steps else max(2 * total_steps, step + 1)

    def _parse(self, text: str) -> int:
        try:
            steps = int(text.strip())
        except ValueError:
            raise ConfigError(f"steps must be a whole number, not {text.strip()!r}.") from None
        if steps <= self.step:
            raise ConfigError(f"steps must be more than the {self.step:,} already trained.")
        return steps

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Resume {self.run_name}", classes="dialog-title", markup=False)
            yield Static(f"It has {self.step:,} steps; it continues from its last checkpoint.", markup=False)
            yield ParamField(FieldSpec("steps", str(self.suggested), self._parse, "train until this step"), "resume")
            yield Static("Enter: Resume    Esc: Cancel", classes="dialog-keys", markup=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_submit()

    def action_submit(self) -> None:
        field = self.query_one(ParamField)
        error = field.error()
        field.show_error(error)
        if error is None:
            self.dismiss(field.value())

    def action_cancel(self) -> None:
        self.dismiss(None)
