"""The workbench's screens under Pilot, on run folders in the engine's formats (no training needed)."""

from __future__ import annotations

import shutil
import types
from pathlib import Path

from textual.widgets import DataTable, Sparkline

from conftest import run_cli
from test_tui_helpers import T0, event_at, wait_for, write_recorded_run
from workbench import hookimpl
from workbench.host.manager import load_plugins
from workbench.rundir.events import EventLog
from workbench.tui.app import make_app
from workbench.tui.screens.compare import CompareScreen
from workbench.tui.screens.confirm import ConfirmScreen
from workbench.tui.screens.new_run import NewRunScreen
from workbench.tui.screens.plugins import PluginsScreen
from workbench.tui.screens.resume import ResumeScreen
from workbench.tui.screens.run import RunScreen
from workbench.tui.widgets.curve import Curve
from workbench.tui.widgets.metric_line import MetricLine
from workbench.tui.widgets.param_form import ParamField
from workbench.tui.widgets.sample_image import RAMP, SampleImage


async def _open_form(pilot, app) -> NewRunScreen:
    await pilot.press("n")
    await wait_for(pilot, lambda: isinstance(app.screen, NewRunScreen), "the new-run form")
    return app.screen


async def _type(pilot, widget, text: str) -> None:
    widget.focus()
    await pilot.press("ctrl+a", "ctrl+k", *text)


async def test_form_refuses_a_bad_value_at_the_field_and_cannot_start(tmp_path, plugins):
    runs = tmp_path / "runs"
    app = make_app(runs, plugins=plugins)
    async with app.run_test(size=(80, 24)) as pilot:
        form = await _open_form(pilot, app)
        field = form.query_one("#param-batch_size").parent.parent
        assert isinstance(field, ParamField) and not form.query_one("#start").disabled

        await _type(pilot, form.query_one("#param-batch_size"), "abc")
        assert field.has_class("-invalid")
        assert str(field.query_one(".param-error").render()) == "batch_size must be a whole number, not 'abc'."
        assert form.query_one("#start").disabled
        await pilot.press("ctrl+s")
        assert app.screen is form and not runs.exists()
        assert "Fix batch_size first" in str(form.query_one("#start-error").render())

        await _type(pilot, form.query_one("#param-batch_size"), "1")
        assert str(field.query_one(".param-error").render()) == "batch_size must be at least 2; got 1."
        await _type(pilot, form.query_one("#param-batch_size"), "32")
        assert not field.has_class("-invalid") and not form.query_one("#start").disabled

        await _type(pilot, form.query_one("#run-steps"), "0")
        assert form.query_one("#start").disabled
        await _type(pilot, form.query_one("#run-steps"), "")
        await _type(pilot, form.query_one("#run-name"), "a/b")
        assert "must be letters, digits" in str(form.query_one("#run-name").parent.parent
                                                .query_one(".param-error").render())
        assert form.query_one("#start").disabled


async def test_choosing_another_model_rebuilds_the_form_from_its_settings(tmp_path, plugins):
    app = make_app(tmp_path / "runs", plugins=plugins)
    async with app.run_test(size=(80, 24)) as pilot:
        form = await _open_form(pilot, app)
        assert not form.query("#param-ngf")
        form.query_one("#pick-model").value = "dcgan"
        await wait_for(pilot, lambda: form.query("#param-ngf"), "the dcgan settings")
        assert form.query_one("#param-ngf").value == "64" and form.query_one("#param-image_size").value == "32"
        await _type(pilot, form.query_one("#param-image_size"), "48")
        error = form.query_one("#param-image_size").parent.parent.query_one(".param-error").render()
        assert str(error) == "image_size must be one of 32, 64; got 48."
        assert "DCGAN" in str(form.query_one("#help-model").render())


async def test_runs_browser_lists_compares_and_deletes(tmp_path, plugins, fashion_images):
    runs = tmp_path / "runs"
    for index, name in enumerate(("alpha", "beta", "gamma")):
        write_recorded_run(runs, name, fashion_images, steps=200 + 100 * index, total_steps=600, phase=index,
                           status="stopped")
    app = make_app(runs, plugins=plugins)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == 3, "three rows")
        assert {table.get_row_at(i)[2] for i in range(3)} == {"stopped"}

        await pilot.press("c")
        assert not isinstance(app.screen, CompareScreen)  # fewer than two runs marked
        await pilot.press("m", "down", "space")
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.query(Curve),
                       "the comparison")
        curves = app.screen.query(Curve)
        assert len(curves) == 2 * 4  # two runs, four losses
        assert curves[0].max_step == curves[1].max_step and curves[0].low == curves[1].low
        await pilot.press("escape")

        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        doomed = Path(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)  # the run under the cursor
        assert app.screen.question == f"Delete {doomed.name}?"
        await pilot.press("n")
        assert sorted(p.name for p in runs.iterdir()) == ["alpha", "beta", "gamma"]
        await pilot.press("d", "y")
        await wait_for(pilot, lambda: table.row_count == 2, "the row to go")
        kept = sorted({"alpha", "beta", "gamma"} - {doomed.name})
        assert sorted(p.name for p in runs.iterdir()) == kept and len(kept) == 2
        assert sorted(table.get_row_at(i)[1] for i in range(2)) == kept


async def test_a_training_run_cannot_be_deleted(tmp_path, plugins, fashion_images):
    runs = tmp_path / "runs"
    write_recorded_run(runs, "elsewhere", fashion_images, steps=100, total_steps=600, status="running")
    app = make_app(runs, plugins=plugins, reattach=False)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == 1, "the row")
        await pilot.press("d")
        assert not isinstance(app.screen, ConfirmScreen) and (runs / "elsewhere").is_dir()


async def test_finished_run_replays_and_new_eval_metrics_get_sparklines(tmp_path, plugins, fashion_images):
    runs = tmp_path / "runs"
    run = write_recorded_run(runs, "evals", fashion_images, steps=300, total_steps=300, evals=True)
    app = make_app(runs, plugins=plugins, poll_seconds=0.05)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == 1, "the row")  # Enter before the rows load opens nothing
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.snapshot.step == 300,
                       "the replayed run")
        screen = app.screen
        await wait_for(pilot, lambda: len(screen.query(MetricLine)) == 6, "lines for the eval metrics")
        labels = [str(line.query_one("Label").render()) for line in screen.query(MetricLine)]
        assert labels[4].startswith("fd ") and labels[5].startswith("coverage")
        assert list(screen.query(MetricLine)[4].query_one(Sparkline).data) == [35.0, 30.0, 25.0]
        assert screen.query_one("#run-sample", SampleImage).path == run.samples / "step-00000200.png"

        log = EventLog(run.events)  # a metric plugin writes a new kind of eval later on
        log.append(event_at(T0 + 20, "eval", step=300, epoch=2, metrics={"precision": 0.7}, samples=2000,
                            seconds=1.0, notes=[]))
        log.close()
        await wait_for(pilot, lambda: len(screen.query(MetricLine)) == 7, "a line for the new metric")
        assert str(screen.query(MetricLine)[6].query_one("Label").render()).startswith("precision  0.7000")
        assert "r" in {key for key, b in screen.active_bindings.items() if b.enabled} - {"p", "c", "s"}


async def test_plugins_screen_shows_what_failed_to_load(tmp_path):
    broken = types.ModuleType("broken_plugin")

    @hookimpl
    def ganbench_register_models(register):
        raise RuntimeError("no weights here")

    broken.ganbench_register_models = ganbench_register_models
    plugins = load_plugins(extra_modules=[broken])
    app = make_app(tmp_path, plugins=plugins)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, PluginsScreen), "the plugins screen")
        rows = [app.screen.query_one(DataTable).get_row_at(i) for i in range(app.screen.query_one(DataTable).row_count)]
        assert ["model", "mlp_gan"] == rows[[r[1] for r in rows].index("mlp_gan")][:2]
        errors = str(app.screen.query_one("#plugins-errors").render())
        assert "broken_plugin" in errors and "RuntimeError: no weights here" in errors


async def test_without_colour_the_sample_grid_is_drawn_in_shades(tmp_path, plugins, fashion_images, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    runs = tmp_path / "runs"
    write_recorded_run(runs, "grey", fashion_images, steps=200, total_steps=200)
    app = make_app(runs, plugins=plugins)
    assert app.no_color
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == 1, "the row")  # Enter before the rows load opens nothing
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.snapshot.sample, "the sample")
        await pilot.pause(0.2)
        image = app.screen.query_one("#run-sample", SampleImage)
        text = "".join(image.render_line(y).text for y in range(1, image.size.height - 1))
        assert "▀" not in text and len(set(text) & set(RAMP[1:])) >= 4


async def test_a_run_copied_elsewhere_still_shows_its_sample_grid(tmp_path, plugins, fashion_images):
    first = (tmp_path / "first" / "runs").absolute()  # started with an absolute runs folder: events hold absolute paths
    write_recorded_run(first, "moved", fashion_images, steps=200, total_steps=200)
    runs = tmp_path / "elsewhere" / "runs"
    shutil.copytree(first, runs)
    shutil.rmtree(tmp_path / "first")
    app = make_app(runs, plugins=plugins)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == 1, "the row")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.snapshot.sample, "the sample")
        image = app.screen.query_one("#run-sample", SampleImage)
        assert image.path == runs / "moved" / "samples" / "step-00000200.png" and image.path.is_file()
        await pilot.pause(0.2)
        assert "▀" in "".join(image.render_line(y).text for y in range(1, image.size.height - 1))


async def test_runs_browser_resumes_only_a_run_with_a_checkpoint(tmp_path, plugins, fashion_images):
    runs = tmp_path / "runs"
    write_recorded_run(runs, "no-file", fashion_images, steps=100, total_steps=600, status="stopped")  # event, no file
    done = run_cli("run", "--plugin", "mlp_gan", "--steps", "2", "--runs-dir", str(runs), "--name", "saved",
                   "--set", "sample_every=0", cwd=tmp_path, env={"OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    app = make_app(runs, plugins=plugins, reattach=False)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == 2, "two rows")
        names = [table.get_row_at(i)[1] for i in range(2)]
        table.move_cursor(row=names.index("no-file"))
        await pilot.press("r")
        assert not isinstance(app.screen, ResumeScreen)
        assert [n.message for n in app._notifications] == ["no-file has no checkpoint to resume from."]
        table.move_cursor(row=names.index("saved"))
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ResumeScreen), "the resume question")
        assert app.screen.run_name == "saved"


async def test_e_switches_the_run_screen_between_the_ema_grid_and_the_raw_one(tmp_path, plugins, fashion_images):
    from test_tui_helpers import grid_png

    runs = tmp_path / "runs"
    run = write_recorded_run(runs, "ema", fashion_images, steps=200, total_steps=200)
    raw = grid_png(run.samples / "raw" / "step-00000200.png", fashion_images, offset=500)
    EventLog(run.events).append(event_at(T0 + 11, "sample", step=200, epoch=1, path=str(run.samples / "step-00000200.png"),
                                         file="samples/step-00000200.png", raw_path=str(raw), raw_file=run.relative(raw)))
    app = make_app(runs, plugins=plugins)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == 1, "the row")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.snapshot.raw_sample, "the grids")
        image = app.screen.query_one("#run-sample", SampleImage)
        assert image.path == run.samples / "step-00000200.png" and image.border_title.endswith("· EMA")
        await pilot.press("e")
        await pilot.pause(0.1)
        assert image.path == raw and image.border_title.endswith("· raw")
        await pilot.press("e")
        await pilot.pause(0.1)
        assert image.path == run.samples / "step-00000200.png"
