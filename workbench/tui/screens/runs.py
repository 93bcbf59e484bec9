"""The runs browser, the workbench's home: every run in the runs folder, and what to do with them."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from workbench.base.errors import CheckpointError
from workbench.rundir.directory import RunDir, list_runs, resolve_checkpoint, summarize
from workbench.rundir.launch import ACTIVE, resume_run
from workbench.sweep.manifest import Sweep, list_sweeps, summarize_sweep
from workbench.tui.messages import RunsScanned
from workbench.tui.screens.compare import CompareScreen
from workbench.tui.screens.confirm import ConfirmScreen
from workbench.tui.screens.resume import ResumeScreen
from workbench.tui.screens.sample import SampleScreen

COLUMNS = (("mark", " "), ("name", "run"), ("status", "status"), ("model", "model"), ("steps", "steps"),
           ("d_loss", "D loss"), ("g_loss", "G loss"), ("dataset", "dataset"), ("loss", "loss"),
           ("started", "started"))
NAME_WIDTH = 28


def _num(value) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "-"


def table_row(row: dict, marked: bool) -> tuple[str, ...]:
    """The cells of one run, in ``COLUMNS`` order."""
    name = row["name"] if len(row["name"]) <= NAME_WIDTH else row["name"][:NAME_WIDTH - 1] + "…"
    steps = f"{row['step'] or 0:,}" + (f"/{row['total_steps']:,}" if row.get("total_steps") else "")
    started = time.strftime("%Y-%m-%d %H:%M", time.localtime(row["started"])) if row.get("started") else ""
    return ("●" if marked else " ", name, row["status"], row["model"], steps, _num(row["d_loss"]),
            _num(row["g_loss"]), row["dataset"], row["loss"], started)


class RunsScreen(Screen):
    """A table of runs, refreshed every few seconds by a background scan."""

    BINDINGS = [
        Binding("n", "app.new_run", "New"),
        Binding("enter", "open", "Open", priority=True),
        Binding("r", "resume", "Resume"),
        Binding("g", "sample", "Sample"),
        Binding("d", "delete", "Delete"),
        Binding("m", "mark", "Mark"),
        Binding("space", "mark", "Mark", show=False),
        Binding("c", "compare", "Compare"),
        Binding("p", "app.plugins", "Plugins"),
    ]

    def __init__(self, runs_dir: Path, scan_seconds: float = 2.0):
        super().__init__()
        self.runs_dir, self.scan_seconds = Path(runs_dir), scan_seconds
        self.rows: dict[str, dict] = {}
        self.marked: set[str] = set()

    def compose(self) -> ComposeResult:
        yield Static(f"Runs in {self.runs_dir}", id="runs-title", markup=False)
        table = DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        yield table
        yield Static("", id="runs-empty", markup=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.scan()
        self.set_interval(self.scan_seconds, self.scan)

    def on_screen_resume(self) -> None:
        self.scan()

    @work(thread=True, exclusive=True, group="scan")
    def scan(self) -> None:
        """Summarise every run (reads files; off the event loop)."""
        sweeps = [summarize_sweep(sweep) for sweep in list_sweeps(self.runs_dir)]
        self.post_message(RunsScanned(sweeps + [summarize(run) for run in list_runs(self.runs_dir)]))

    def on_runs_scanned(self, message: RunsScanned) -> None:
        table = self.query_one(DataTable)
        rows = {row["path"]: row for row in message.rows}
        self.marked &= set(rows)
        if list(rows) == list(self.rows):
            for path, row in rows.items():
                if row != self.rows[path]:
                    for (key, _), cell in zip(COLUMNS, table_row(row, path in self.marked)):
                        table.update_cell(path, key, cell, update_width=True)
        else:
            current = self._current()
            table.clear()
            for path, row in rows.items():
                table.add_row(*table_row(row, path in self.marked), key=path)
            if current in rows:
                table.move_cursor(row=table.get_row_index(current))
        self.rows = rows
        empty = self.query_one("#runs-empty", Static)
        empty.update("" if rows else "No runs here yet: press n to start one.")
        empty.display = not rows
        self.refresh_bindings()

    # -- the selected run ---------------------------------------------------
    def _current(self) -> str | None:
        table = self.query_one(DataTable)
        if not self.rows or table.row_count == 0:
            return None
        try:
            return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:  # the cursor is outside the table
            return None

    def _selected(self) -> dict | None:
        path = self._current()
        return self.rows.get(path) if path else None

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action in ("open", "resume", "sample", "delete", "mark"):
            return True if self.rows else None
        if action == "compare":
            return True if len(self.marked) >= 2 else None
        return True

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        row = self._selected()
        if row is not None and row.get("kind") == "sweep":
            self.app.open_sweep(Sweep(Path(row["path"])))
        elif row is not None:
            self.app.open_run(RunDir(Path(row["path"])))

    def _not_for_sweeps(self, row: dict | None, what: str) -> bool:
        if row is not None and row.get("kind") == "sweep":
            self.notify(f"{row['name']} is a sweep: open it (Enter) to {what} its trials.", severity="warning")
            return True
        return False

    def action_mark(self) -> None:
        path = self._current()
        if path is None:
            return
        self.marked ^= {path}
        self.query_one(DataTable).update_cell(path, "mark", "●" if path in self.marked else " ")
        self.refresh_bindings()

    def action_compare(self) -> None:
        if len(self.marked) < 2:
            self.notify("Mark two or more runs with space to compare them.", severity="warning")
            return
        self.app.push_screen(CompareScreen([RunDir(Path(p)) for p in self.rows if p in self.marked]))

    def action_resume(self) -> None:
        row = self._selected()
        if row is None:
            return
        if row["status"] in ACTIVE:
            self.notify(f"{row['name']} is {row['status']}; open it to control it.", severity="warning")
            return
        if row.get("kind") == "sweep":
            self.app.resume_sweep(Sweep(Path(row["path"])))
            return
        run_dir = RunDir(Path(row["path"]))
        try:
            resolve_checkpoint(run_dir.path)  # the file ``ganbench run --resume`` and ``ganbench sample`` would take
        except CheckpointError:
            self.notify(f"{row['name']} has no checkpoint to resume from.", severity="error")
            return

        def answered(steps: int | None) -> None:
            if steps is not None:
                launched = resume_run(run_dir.path, steps)
                self.app.track(launched)
                self.app.open_run(run_dir, launched)

        self.app.push_screen(ResumeScreen(row["name"], row["step"] or 0, row["total_steps"] or 0), answered)

    def action_sample(self) -> None:
        row = self._selected()
        if row is not None and not self._not_for_sweeps(row, "sample"):
            self.app.push_screen(SampleScreen(RunDir(Path(row["path"]))))

    def action_delete(self) -> None:
        row = self._selected()
        if row is None or self._not_for_sweeps(row, "see"):
            return
        if row["status"] in ACTIVE:
            self.notify(f"{row['name']} is {row['status']}; stop it before deleting it.", severity="error")
            return
        path = Path(row["path"])

        def answered(yes: bool | None) -> None:
            if yes:
                try:
                    shutil.rmtree(path)
                except OSError as exc:
                    self.notify(f"Cannot delete {path}: {exc.strerror or exc}.", severity="error")
                else:
                    self.notify(f"Deleted {row['name']}.")
                self.scan()

        checkpoints = len(RunDir(path).step_checkpoints())
        self.app.push_screen(ConfirmScreen(f"Delete {row['name']}?", f"Its folder, {checkpoints} checkpoint(s), "
                                           "samples and event log are removed for good.", "Delete"), answered)
