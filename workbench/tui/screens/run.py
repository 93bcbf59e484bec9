"""Watching one run: progress, sparklines, the latest sample grid and the event log; and its controls.

A thread worker tails the run's ``events.jsonl`` from the first byte (a
finished run replays its whole history) and posts ``RunUpdated`` snapshots;
a burst of them collapses into one redraw. Controls go to the training process
as request files (``send_request``), so they work as well for a run started
headless in another terminal.
"""

from __future__ import annotations

import time

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, RichLog, Static
from textual.worker import get_current_worker

from workbench.modeling.metrics import METRIC_KEYS
from workbench.rundir.control import send_request
from workbench.rundir.directory import RunDir
from workbench.rundir.events import read_events
from workbench.rundir.launch import Launched, resume_run
from workbench.tui.messages import RunUpdated
from workbench.tui.run_state import RunSnapshot, RunState, clock, format_duration
from workbench.tui.screens.confirm import ConfirmScreen
from workbench.tui.screens.resume import ResumeScreen
from workbench.tui.screens.sample import SampleScreen
from workbench.tui.widgets.metric_line import MetricLine
from workbench.tui.widgets.progress_line import ProgressLine
from workbench.tui.widgets.sample_image import SampleImage

LIVE = ("running", "paused")
LOG_STYLES = {"warning": "yellow", "error": "bold red", "run_end": "bold", "paused": "italic", "eval": "cyan"}


class RunScreen(Screen):
    """One run, live or finished."""

    BINDINGS = [
        Binding("p", "pause", "Pause"),
        Binding("p", "resume", "Resume"),
        Binding("c", "checkpoint", "Checkpoint"),
        Binding("s", "stop", "Stop"),
        Binding("r", "continue_run", "Resume run"),
        Binding("g", "sample", "Sample PNG"),
        Binding("z", "zoom", "Zoom"),
        Binding("e", "switch_grid", "EMA/raw"),
        Binding("escape", "back", "Runs"),
    ]

    def __init__(self, run_dir: RunDir, launched: Launched | None = None, poll_seconds: float = 0.25):
        super().__init__()
        self.run_dir, self.launched, self.poll_seconds = run_dir, launched, poll_seconds
        self.snapshot = RunSnapshot(name=run_dir.path.name)
        self.show_raw = False  # the EMA's grid unless the user switched
        self._log_shown = -1
        self._metric_keys: list[str] = []

    def compose(self) -> ComposeResult:
        yield Static(self.run_dir.path.name, id="run-title", markup=False)
        with Horizontal(id="run-body"):
            with Vertical(id="run-left"):
                yield ProgressLine("epoch", id="epoch-progress")
                yield ProgressLine("batch", id="batch-progress")
                yield Static("", id="run-stats", markup=False)
                yield Static("", id="run-device", markup=False)
                with Vertical(id="run-metrics"):
                    for key in METRIC_KEYS:
                        yield MetricLine(self.snapshot.label(key), id=f"metric-{key}")
            yield SampleImage(id="run-sample")
        yield RichLog(id="run-log", max_lines=500, min_width=20, wrap=True, markup=False, auto_scroll=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._metric_keys = list(METRIC_KEYS)
        self.query_one("#run-sample", SampleImage).border_title = "samples"
        self.query_one("#run-log", RichLog).border_title = "events"
        self._draw(self.snapshot)
        self.tail()

    # -- reading ------------------------------------------------------------
    @work(thread=True, exclusive=True, group="tail")
    def tail(self) -> None:
        """Replay the log from the start, then follow it until the screen closes."""
        worker = get_current_worker()
        state = RunState(self.run_dir.path.name, self.run_dir.path)
        state.set_config(self.run_dir.read_config())  # a run just launched: shown while its process starts
        offset, next_status = 0, 0.0
        while not worker.is_cancelled:
            events, offset = read_events(self.run_dir.events, offset)
            changed = state.feed(events)
            now = time.monotonic()
            if now >= next_status or events:
                next_status = now + 0.5
                changed |= self._read_status(state)
            if changed:
                self.post_message(RunUpdated(state.snapshot()))
            time.sleep(self.poll_seconds)

    def _read_status(self, state: RunState) -> bool:
        launched = self.launched
        if launched is not None:
            failure = launched.failure()
            if failure is not None:
                return state.set_status("failed", failure)
        status = self.run_dir.status()
        if status == "unknown":
            return False  # the process has not written its state yet
        return state.set_status(status, self.run_dir.read_state().get("message") if status not in LIVE else None)

    def on_run_updated(self, message: RunUpdated) -> None:
        previous, snap = self.snapshot, message.snapshot
        self.snapshot = snap
        self._draw(snap)
        if previous.status != snap.status or (previous.raw_sample is None) != (snap.raw_sample is None):
            self.refresh_bindings()

    # -- drawing ------------------------------------------------------------
    def _draw(self, snap: RunSnapshot) -> None:
        title = self.query_one("#run-title", Static)
        title.update(Text.assemble((snap.status, "bold"), "  ", (snap.name, "bold"),
                                   f"  {snap.model} on {snap.dataset} · {snap.loss}"))
        title.set_classes(f"status-{snap.status}")
        epoch = self.query_one("#epoch-progress", ProgressLine)
        epoch.done, epoch.total = min(snap.epoch + (snap.status == "completed"), snap.epochs), snap.epochs
        batch = self.query_one("#batch-progress", ProgressLine)
        batch.done, batch.total = min(snap.batch, snap.epoch_batches), snap.epoch_batches
        rate = f" · {snap.images_per_s:,.0f} img/s" if snap.images_per_s else ""
        kimg = f" · {snap.kimg:,.1f}/{snap.total_kimg:,.1f} kimg" if snap.kimg and snap.total_kimg else ""
        stats = f"step {snap.step:,}/{snap.total_steps:,}{kimg}{rate}\nelapsed {format_duration(snap.elapsed)}"
        if snap.active:
            stats += f" · ETA {format_duration(snap.eta)}"
        if snap.status == "starting":
            stats = "Starting the training process ..."
        self.query_one("#run-stats", Static).update(stats)
        device = snap.device or "device: -"
        if snap.gpu_memory_mb is not None:
            device += f" · GPU memory {snap.gpu_memory_mb:,.0f} MB"
        if snap.status == "crashed":
            device += "\nThe training process ended without finishing; r resumes it from its last checkpoint."
        elif snap.message and not snap.active or snap.status == "failed":
            device += f"\n{snap.message}"
        self.query_one("#run-device", Static).update(device)
        self._draw_metrics(snap)
        sample = self.query_one("#run-sample", SampleImage)
        sample.tile = snap.image_size
        raw = self.show_raw and snap.raw_sample is not None  # `e`: the raw generator's grid beside the EMA's
        sample.path = snap.raw_sample if raw else snap.sample
        which = (" · raw" if raw else " · EMA") if snap.raw_sample is not None else ""
        sample.border_title = f"samples · step {snap.sample_step:,}{which}" if snap.sample_step is not None \
            else "samples"
        # A conditional model's grid has a row per class: name them, top to bottom.
        sample.border_subtitle = f"rows: {' · '.join(snap.grid_rows)}" if snap.grid_rows else None
        log = self.query_one("#run-log", RichLog)
        for line in snap.log:
            if line.index > self._log_shown:
                log.write(Text(f"{clock(line.time)} {line.text}", style=LOG_STYLES.get(line.kind, "")))
                self._log_shown = line.index

    def _draw_metrics(self, snap: RunSnapshot) -> None:
        box = self.query_one("#run-metrics", Vertical)
        for key in snap.series:
            if key not in self._metric_keys:  # a new eval metric: give it a line of its own
                self._metric_keys.append(key)
                box.mount(MetricLine(snap.label(key), id=f"metric-{len(self._metric_keys)}"))
        for key, line in zip(self._metric_keys, box.query(MetricLine)):
            line.show(snap.series.get(key, ()))

    # -- controls -----------------------------------------------------------
    def check_action(self, action: str, parameters: tuple) -> bool | None:
        """Show the controls that apply: live ones while a process trains, resume once it has ended."""
        status = self.snapshot.status
        starting = None if status == "starting" else False  # shown greyed out until the run has begun
        if action == "pause":
            return True if status == "running" else starting
        if action == "resume":
            return status == "paused"
        if action in ("checkpoint", "stop"):
            return True if status in LIVE else starting
        if action == "continue_run":
            return status not in LIVE and status != "starting"
        if action == "sample":
            return True if status != "starting" else None
        if action == "switch_grid":  # only a run with an EMA writes two grids
            return self.snapshot.raw_sample is not None
        return True

    def _request(self, command: str, done: str) -> None:
        if self.snapshot.status not in LIVE:
            self.notify(f"The run is {self.snapshot.status}; there is no process to {command}.", severity="warning")
            return
        send_request(self.run_dir.path, command)
        self.notify(done)

    def action_pause(self) -> None:
        self._request("pause", "Pausing after this step.")

    def action_resume(self) -> None:
        self._request("resume", "Resuming.")

    def action_checkpoint(self) -> None:
        self._request("checkpoint", "A checkpoint will be written after this step.")

    def action_stop(self) -> None:
        if self.snapshot.status not in LIVE:
            self.notify(f"The run is already {self.snapshot.status}.", severity="warning")
            return

        def answered(stop: bool | None) -> None:
            if stop:
                self._request("stop", "Stopping: a checkpoint is written first.")

        self.app.push_screen(ConfirmScreen(f"Stop {self.snapshot.name}?",
                                           "It finishes the step, writes a checkpoint and exits; "
                                           "you can resume it later.", "Stop"), answered)

    def action_continue_run(self) -> None:
        def answered(steps: int | None) -> None:
            if steps is not None:
                self.launched = resume_run(self.run_dir.path, steps)
                self.app.track(self.launched)
                self.notify(f"Resuming {self.snapshot.name} until step {steps:,}.")

        self.app.push_screen(ResumeScreen(self.snapshot.name, self.snapshot.step, self.snapshot.total_steps), answered)

    def action_sample(self) -> None:
        self.app.push_screen(SampleScreen(self.run_dir))

    def action_zoom(self) -> None:
        sample = self.query_one("#run-sample", SampleImage)
        sample.whole = not sample.whole

    def action_switch_grid(self) -> None:
        self.show_raw = not self.show_raw
        self._draw(self.snapshot)

    def action_back(self) -> None:
        self.dismiss()
