"""The workbench app: wires the screens together; the screens do the work.

``make_app`` builds it (tests reuse it); ``run_workbench`` is what a bare
``ganbench`` calls.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from textual.app import App
from textual.binding import Binding
from textual.worker import Worker

from workbench.rundir.control import send_request
from workbench.rundir.directory import RunDir
from workbench.rundir.launch import Launched, active_runs
from workbench.sweep.launch import launch_sweep
from workbench.sweep.manifest import Sweep, list_sweeps, summarize_sweep
from workbench.tui.screens.new_run import NewRunScreen
from workbench.tui.screens.plugins import PluginsScreen
from workbench.tui.screens.quit import QuitScreen
from workbench.tui.screens.run import RunScreen
from workbench.tui.screens.runs import RunsScreen
from workbench.tui.screens.sweep import SweepScreen
from workbench.tui.widgets.pixels import DEFAULT_CELL, cell_pixels, image_mode

if TYPE_CHECKING:
    from workbench.host.manager import PluginSet


def _load_plugins() -> PluginSet:
    from workbench.host.manager import load_plugins  # imports torch: seconds, so in a worker thread

    return load_plugins()


class WorkbenchApp(App):
    """Runs browser at the bottom of the stack; run, form, compare and plugin screens above it."""

    CSS_PATH = "app.tcss"
    TITLE = "ganbench"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [Binding("q", "quit", "Quit"), Binding("ctrl+q", "quit", "Quit", show=False, priority=True)]

    def __init__(self, runs_dir: Path, plugins: PluginSet | None = None, reattach: bool = True,
                 poll_seconds: float = 0.25, images: str = "halfblock", cell: tuple[int, int] = DEFAULT_CELL):
        super().__init__()
        self.runs_dir, self.reattach, self.poll_seconds = Path(runs_dir), reattach, poll_seconds
        self.images, self.cell_pixels = images, cell  # how sample grids are drawn (widgets/pixels.py)
        self._plugins = plugins
        self._plugin_loader: Worker | None = None
        self.launched: dict[Path, Launched] = {}

    def on_mount(self) -> None:
        if self._plugins is None:  # importing torch and the plugins takes seconds: not on the event loop
            self._plugin_loader = self.run_worker(_load_plugins, thread=True, name="plugins")
        self.push_screen(RunsScreen(self.runs_dir))
        self.set_interval(1.0, self._reap)
        if self.reattach:
            running = active_runs(self.runs_dir)  # newest first
            sweeps = [s for s in list_sweeps(self.runs_dir) if summarize_sweep(s)["status"] == "running"]
            if running:
                self.open_run(running[0])
            elif sweeps:
                self.open_sweep(sweeps[0])
            if len(running) + len(sweeps) > 1:
                self.notify(f"{len(running) + len(sweeps)} runs and sweeps are training; Esc lists them all.")

    async def get_plugins(self) -> PluginSet:
        """The loaded plugins, waiting for the background load if it is still going."""
        if self._plugins is None:
            self.notify("Loading the plugins ...", timeout=2)
            await self._plugin_loader.wait()
            self._plugins = self._plugin_loader.result
        return self._plugins

    def track(self, launched: Launched) -> None:
        """Remember a process this session started, to reap it and to report why it failed."""
        self.launched[launched.run_dir.path] = launched

    def _reap(self) -> None:
        for launched in self.launched.values():
            launched.poll()

    def open_run(self, run_dir: RunDir, launched: Launched | None = None) -> None:
        """Push the run screen of ``run_dir``, replaying its history."""
        launched = launched or self.launched.get(run_dir.path)
        self.push_screen(RunScreen(run_dir, launched, poll_seconds=self.poll_seconds))

    def open_sweep(self, sweep: Sweep) -> None:
        """Push the sweep screen of ``sweep``."""
        self.push_screen(SweepScreen(sweep, poll_seconds=max(self.poll_seconds, 1.0)))

    def resume_sweep(self, sweep: Sweep) -> None:
        """Continue a stopped sweep headless (``ganbench sweep --resume``), detached, and watch it."""
        launch_sweep(["--resume", str(sweep.path)], sweep.path.parent / ".launch" / f"{sweep.path.name}.log")
        self.open_sweep(sweep)

    async def action_new_run(self) -> None:
        self.push_screen(NewRunScreen(await self.get_plugins(), self.runs_dir))

    async def action_plugins(self) -> None:
        self.push_screen(PluginsScreen(await self.get_plugins()))

    async def action_quit(self) -> None:
        """Quit; when runs are training, ask whether to stop them or leave them running."""
        if isinstance(self.screen, QuitScreen):
            return
        running = active_runs(self.runs_dir)
        if not running:
            self.exit()
            return

        def answered(choice: str | None) -> None:
            if choice == "stop":
                for run in running:
                    send_request(run.path, "stop")
            if choice in ("stop", "leave"):
                self.exit(choice)

        self.push_screen(QuitScreen(running), answered)


def make_app(runs_dir: Path | str = "runs", plugins: PluginSet | None = None, reattach: bool = True,
             poll_seconds: float = 0.25, images: str | None = None,
             cell: tuple[int, int] = DEFAULT_CELL) -> WorkbenchApp:
    """The workbench on the runs folder ``runs_dir``.

    :param plugins: already loaded plugins (tests pass theirs); None loads them in the background.
    :param reattach: open the newest run that is training when the app starts.
    :param poll_seconds: how often a run screen reads new events.
    :param images: how sample grids are drawn, "kitty", "sixel" or "halfblock"; None: ``GANBENCH_IMAGES``, else
        half-blocks (only ``run_workbench`` asks the terminal, before the app takes it over).
    :param cell: a character cell's size in pixels, for Sixel.
    """
    return WorkbenchApp(Path(runs_dir), plugins, reattach, poll_seconds, images or image_mode(), cell)


def run_workbench(args) -> int:
    """Open the workbench on ``args.runs_dir`` (default ``$GANBENCH_RUNS_DIR``, else ``runs``)."""
    from workbench.rundir.config import default_runs_dir

    runs_dir = getattr(args, "runs_dir", None) or default_runs_dir()
    images = image_mode(detect=True)  # the terminal answers on stdin: asked before Textual starts reading it
    make_app(runs_dir, images=images, cell=cell_pixels() if images != "halfblock" else DEFAULT_CELL).run()
    return 0
