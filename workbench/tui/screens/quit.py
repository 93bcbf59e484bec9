"""Quitting while runs train: stop them, leave them training, or stay."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Label, Static

from workbench.rundir.directory import RunDir


class QuitScreen(ModalScreen[str | None]):
    """Dismisses with ``"stop"``, ``"leave"``, or None to stay in the workbench."""

    BINDINGS = [
        Binding("l", "answer('leave')", "Leave running"),
        Binding("s", "answer('stop')", "Stop and quit"),
        Binding("escape,n", "answer(None)", "Cancel"),
    ]

    def __init__(self, runs: list[RunDir]):
        super().__init__()
        self.runs = runs

    def compose(self) -> ComposeResult:
        names = ", ".join(run.path.name for run in self.runs[:3]) + (" ..." if len(self.runs) > 3 else "")
        count = "1 run is" if len(self.runs) == 1 else f"{len(self.runs)} runs are"
        with Vertical(classes="dialog"):
            yield Label(f"{count} training: {names}", classes="dialog-title", markup=False)
            them, each = ("it", "") if len(self.runs) == 1 else ("them", "each ")
            yield Static(f"Leave {them} running and quit (reopen ganbench to watch again), or stop {them} "
                         f"({each}writes a checkpoint first) and quit?", markup=False)
            yield Static("l: Leave running    s: Stop and quit    Esc: Cancel", classes="dialog-keys", markup=False)
        yield Footer(compact=True)

    def action_answer(self, choice: str | None) -> None:
        self.dismiss(choice)
