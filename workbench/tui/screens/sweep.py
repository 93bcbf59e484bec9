"""Watching a sweep: its trials with status and progress, the leaderboard, overlaid curves, sample grids.

A thread worker re-reads the sweep folder every ``poll_seconds`` (``read_sweep``),
so a sweep started headless, in another terminal or on another box sharing the
folder, shows the same as one started here. Enter opens a trial's run screen.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane
from textual_plotext import PlotextPlot

from workbench.rundir.directory import RunDir
from workbench.sweep.manifest import Sweep, drivers_here
from workbench.tui.sweep_state import SweepView, read_sweep
from workbench.tui.widgets.sample_image import SampleImage

TRIAL_COLUMNS = ("trial", "status", "steps", "objective", "setting")
MAX_GRIDS = 6


def _steps(row: dict) -> str:
    total = f"/{row['total']:,}" if row.get("total") else ""
    return f"{row['step'] or 0:,}{total}"


def _objective(row: dict) -> str:
    return f"{row['objective']:.4g}" if isinstance(row.get("objective"), (int, float)) else "-"


def leaderboard(view: SweepView) -> str:
    """The ranking as lines: rank, setting, mean ± std at the last step, the trials' statuses."""
    report = view.report
    if not report.get("settings"):
        return "No trial has started yet."
    lines = []
    for setting in report["settings"]:
        mean, std = setting["mean_last"], setting["std_last"]
        value = "-" if mean is None else f"{mean:.4g} ± {std:.2g}"
        statuses = ",".join(sorted({r["status"] for r in setting["runs"]}))
        lines.append(f"{setting.get('rank', '-'):>2}  {setting['label'][:30]:<30} {value:>16}  {statuses}")
    if report.get("best"):
        lines.append(f"best: {report['best']['label']}")
    elif report.get("unranked_reason"):
        lines.append(report["unranked_reason"])
    return "\n".join(lines)


class SweepScreen(Screen):
    """One sweep, live or finished; tabs 1 trials, 2 curves, 3 samples."""

    BINDINGS = [
        Binding("1", "tab('trials')", "Trials"),
        Binding("2", "tab('curves')", "Curves"),
        Binding("3", "tab('samples')", "Samples"),
        Binding("enter", "open", "Open trial", priority=True),
        Binding("s", "stop", "Stop sweep"),
        Binding("escape", "back", "Runs"),
    ]

    def __init__(self, sweep: Sweep, poll_seconds: float = 2.0):
        super().__init__()
        self.sweep, self.poll_seconds = sweep, poll_seconds
        self.view: SweepView | None = None
        self.plotted: dict[str, list[str]] = {}  # plot id -> the curves' legend labels

    def compose(self) -> ComposeResult:
        yield Static(self.sweep.path.name, id="sweep-title", markup=False)
        with TabbedContent(id="sweep-tabs"):
            with TabPane("1 trials", id="trials"):
                table = DataTable(id="sweep-trials", cursor_type="row", zebra_stripes=True)
                for column in TRIAL_COLUMNS:
                    table.add_column(column, key=column)
                yield table
                yield Static("", id="sweep-leaderboard", markup=False)
            with TabPane("2 curves", id="curves"):
                with Horizontal(id="sweep-plots"):
                    yield PlotextPlot(id="sweep-objective")
                    yield PlotextPlot(id="sweep-losses")
            with TabPane("3 samples", id="samples"):
                yield Static("", id="sweep-grid-step", markup=False)
                yield Grid(id="sweep-grids")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#sweep-leaderboard", Static).border_title = "leaderboard"
        self.query_one("#sweep-trials", DataTable).focus()
        self.load()
        self.set_interval(self.poll_seconds, self.load)

    @work(thread=True, exclusive=True, group="sweep")
    def load(self) -> None:
        view = read_sweep(self.sweep)
        self.app.call_from_thread(self._show, view)

    # -- drawing -----------------------------------------------------------------
    def _show(self, view: SweepView) -> None:
        first = self.view is None
        self.view = view
        self.query_one("#sweep-title", Static).update(view.title)
        self._show_trials(view)
        self.query_one("#sweep-leaderboard", Static).update(leaderboard(view))
        self._plot("#sweep-objective", view.objective, f"{view.report.get('metric', 'objective')} by setting")
        self._plot("#sweep-losses", view.losses, "G loss by trial")
        if first or [g for g in view.grids] != getattr(self, "_grids_shown", None):
            self._show_grids(view)

    def _show_trials(self, view: SweepView) -> None:
        table = self.query_one("#sweep-trials", DataTable)
        rows = {row["name"]: (row["name"], row["status"] + (f" @{row['pruned_at']}" if row.get("pruned_at") else ""),
                              _steps(row), _objective(row), row["setting"]) for row in view.trials}
        if list(rows) == [key.value for key in table.rows]:
            for name, cells in rows.items():
                for column, cell in zip(TRIAL_COLUMNS, cells):
                    table.update_cell(name, column, cell)
            return
        table.clear()
        for name, cells in rows.items():
            table.add_row(*cells, key=name)

    def _plot(self, selector: str, curves: dict, title: str) -> None:
        widget = self.query_one(selector, PlotextPlot)
        plt = widget.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(title)
        plt.xlabel("step")
        self.plotted[selector] = []
        for label, points in curves.items():
            if points:
                plt.plot([p[0] for p in points], [p[1] for p in points], label=label[:24])
                self.plotted[selector].append(label)
        widget.refresh()

    def _show_grids(self, view: SweepView) -> None:
        self._grids_shown = list(view.grids)
        box = self.query_one("#sweep-grids", Grid)
        box.remove_children()
        shown = min(len(view.grids), MAX_GRIDS)
        # One row up to three settings; more in two rows, so that at 80 columns a grid and its label stay readable.
        columns = shown if shown <= 3 else -(-shown // 2)
        box.styles.grid_size_columns = max(1, columns)
        box.styles.grid_size_rows = 1 if shown <= 3 else 2
        step = f"at step {view.grid_step:,}" if view.grid_step is not None else "each trial's latest"
        self.query_one("#sweep-grid-step", Static).update(f"first seed of each setting, {step}")
        images = []
        for label, path in view.grids[:MAX_GRIDS]:
            image = SampleImage(Path(path), classes="sweep-grid")
            # A setting of several values, "batch_size=32 lr=0.0008", is split over the top and bottom borders
            # so that it fits a third of 80 columns.
            first, _, rest = label.partition(" ")
            image.border_title, image.border_subtitle = first, rest or None
            images.append(image)
        if images:
            box.mount_all(images)

    # -- actions -----------------------------------------------------------------
    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        if tab == "trials":
            self.query_one("#sweep-trials", DataTable).focus()

    def action_open(self) -> None:
        table = self.query_one("#sweep-trials", DataTable)
        if self.query_one(TabbedContent).active != "trials" or table.row_count == 0:
            return
        name = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        run = RunDir(self.sweep.path / name)
        if run.config.is_file():
            self.app.open_run(run)
        else:
            self.notify(f"{name} has not started yet.")

    def action_stop(self) -> None:
        """Ask the drivers working on this sweep here to stop it: their trials checkpoint and stop."""
        stopped = 0
        for pid in drivers_here(self.sweep.read()):
            try:
                os.kill(pid, signal.SIGTERM)
                stopped += 1
            except OSError:
                pass
        self.notify(f"Asked {stopped} sweep driver(s) to stop; the trials checkpoint first." if stopped else
                    "No sweep driver runs on this machine.")

    def action_back(self) -> None:
        self.dismiss()
