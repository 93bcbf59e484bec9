"""Drawing samples from a run's latest checkpoint into a PNG, and showing them."""

from __future__ import annotations

import os
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Label, Static

from workbench.base.errors import ConfigError, GanbenchError
from workbench.base.params import HyperParam
from workbench.rundir.directory import RunDir
from workbench.tui.widgets.param_form import FieldSpec, ParamForm
from workbench.tui.widgets.sample_image import SampleImage

COUNT = HyperParam("n", "int", 64, "number of images", min=1, max=1024)
SEED = HyperParam("seed", "int", 0, "noise seed", min=0)


def shown_path(path: Path) -> str:
    """``path`` relative to the working directory when it lies inside it."""
    try:
        return os.path.relpath(path) if Path(path).resolve().is_relative_to(Path.cwd().resolve()) else str(path)
    except (OSError, ValueError):
        return str(path)


def _output(text: str) -> Path:
    text = text.strip()
    if not text.lower().endswith(".png"):
        raise ConfigError("output must be a file name ending in .png.")
    return Path(text).expanduser()


class SampleScreen(ModalScreen[Path | None]):
    """Writes a grid of ``n`` samples (noise from ``seed``) to a PNG; dismisses with its path."""

    BINDINGS = [Binding("escape", "close", "Close"), Binding("ctrl+s", "draw", "Draw", priority=True)]

    def __init__(self, run_dir: RunDir):
        super().__init__()
        self.run_dir = run_dir
        self.written: Path | None = None

    def compose(self) -> ComposeResult:
        specs = [FieldSpec.from_param(COUNT), FieldSpec.from_param(SEED),
                 FieldSpec("output", shown_path(self.run_dir.path / "sample.png"), _output, "PNG file to write")]
        with Vertical(classes="dialog dialog-wide"):
            yield Label(f"Sample from {self.run_dir.path.name}", classes="dialog-title", markup=False)
            yield ParamForm("From the run's latest checkpoint; no dataset needed.", specs, "sample")
            yield Static("Enter: Draw    Esc: Close", id="sample-status", markup=False)
            yield SampleImage(id="sample-image")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#sample-image").display = False
        self.query_one(Input).focus()

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        await self.action_draw()

    async def action_draw(self) -> None:
        form = self.query_one(ParamForm)
        errors = form.errors()
        for field in form.fields():
            field.show_error(errors.get(field.spec.name))
        if errors:
            return
        values = form.values()
        self.query_one("#sample-status", Static).update("Drawing samples ...")
        plugins = await self.app.get_plugins()
        self.draw(plugins, values["n"], values["seed"], values["output"])

    @work(thread=True, exclusive=True, group="sample")
    def draw(self, plugins, n: int, seed: int, output: Path) -> None:
        from workbench.engine.inference import sample_images
        from workbench.engine.samples import save_grid

        try:
            images = sample_images(self.run_dir.path, plugins, n, seed)
            save_grid(images, output)
        except GanbenchError as exc:
            self.app.call_from_thread(self._finished, None, str(exc))
        except OSError as exc:
            self.app.call_from_thread(self._finished, None, f"Cannot write {output}: {exc.strerror or exc}.")
        except Exception as exc:  # a plugin's generator failing must not take the workbench down
            self.app.call_from_thread(self._finished, None, f"Sampling failed: {type(exc).__name__}: {exc}")
        else:
            self.app.call_from_thread(self._finished, output, f"Wrote {n} samples to {shown_path(output)}.")

    def _finished(self, path: Path | None, message: str) -> None:
        self.query_one("#sample-status", Static).update(message)
        self.set_class(path is None, "-failed")
        if path is not None:
            self.written = path
            image = self.query_one("#sample-image", SampleImage)
            image.path = path
            image.display = True
            image.refresh()

    def action_close(self) -> None:
        self.dismiss(self.written)
