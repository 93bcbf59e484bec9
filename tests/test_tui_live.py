"""The workbench driving real training processes, under Textual's Pilot.

Every run here is a real ``ganbench run`` process training mlp_gan on the
shipped Fashion-MNIST test split; the app watches it through its run directory.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from PIL import Image

from test_tui_helpers import quiet_env, start_headless, status_of, stop_leftovers, wait_for, wait_until
from workbench.rundir.control import send_request
from workbench.rundir.directory import RunDir, pid_alive
from workbench.tui.app import make_app
from workbench.tui.screens.new_run import NewRunScreen
from workbench.tui.screens.quit import QuitScreen
from workbench.tui.screens.run import RunScreen
from workbench.tui.screens.sample import SampleScreen
from workbench.tui.widgets.metric_line import MetricLine
from workbench.tui.widgets.sample_image import SampleImage

pytestmark = pytest.mark.slow  # end-to-end processes: `pytest -m slow` (CI runs it)


@pytest.fixture(autouse=True)
def one_thread_per_run(monkeypatch):
    """Runs the app starts inherit this environment: one torch thread each on the shared cores."""
    for key, value in quiet_env().items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def runs(tmp_path):
    """The runs folder; whatever still trains in it when the test ends is stopped."""
    yield tmp_path / "runs"
    stop_leftovers(tmp_path / "runs")


def _sparkline_data(screen, key: str) -> list[float]:
    from textual.widgets import Sparkline

    return list(screen.query_one(f"#metric-{key}", MetricLine).query_one(Sparkline).data or [])


async def test_start_from_form_watch_pause_and_leave_running_then_reattach_and_stop(runs, plugins):
    app = make_app(runs, plugins=plugins, poll_seconds=0.1)
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NewRunScreen), "the new-run form")
        form = app.screen
        assert form.query_one("#pick-model").value == "mlp_gan"
        assert form.query_one("#pick-dataset").value == "fashion-mnist-test"
        for field, text in (("#run-steps", "100000"), ("#run-name", "from-form"), ("#engine-log_seconds", "0.1"),
                            ("#engine-sample_every", "10")):
            form.query_one(field).focus()
            await pilot.press("ctrl+a", "ctrl+k", *text)  # clear the field, then type as a person would
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen), "the run screen")
        screen = app.screen
        run = RunDir(runs / "from-form")

        # progress, sparklines and a sample grid appear and advance
        await wait_for(pilot, lambda: screen.snapshot.step >= 3 and len(_sparkline_data(screen, "d_loss")) >= 3,
                       "three metrics events")
        first_step = screen.snapshot.step
        await wait_for(pilot, lambda: screen.snapshot.sample is not None and screen.snapshot.sample.is_file(),
                       "a sample grid")
        assert screen.query_one("#run-sample", SampleImage).path == screen.snapshot.sample
        await wait_for(pilot, lambda: screen.snapshot.step > first_step + 5, "more steps")
        assert screen.query_one("#batch-progress").done == screen.snapshot.batch > 0
        assert len(_sparkline_data(screen, "g_loss")) > 3
        assert screen.snapshot.status == "running" and (run.path / "console.log").is_file()

        # keys are answered at once while the run trains: the time from a key to its effect on the screen
        image, waits = screen.query_one("#run-sample", SampleImage), []
        for _ in range(5):
            before, started = image.whole, time.perf_counter()
            app.simulate_key("z")
            while image.whole == before:
                await asyncio.sleep(0.002)
            waits.append(time.perf_counter() - started)
            await pilot.pause(0.1)
        assert sorted(waits)[2] < 0.1 and max(waits) < 1.0, waits

        # pause: the process stops stepping; resume: it steps again
        await pilot.press("p")
        await wait_for(pilot, lambda: screen.snapshot.status == "paused", "the paused status")
        assert run.read_state()["status"] == "paused"
        paused_at = run.read_state()["step"]
        await pilot.pause(1.0)
        assert screen.snapshot.step == paused_at
        await pilot.press("p")
        await wait_for(pilot, lambda: screen.snapshot.status == "running" and screen.snapshot.step > paused_at,
                       "steps after resuming")

        # quit while it trains: the app asks; leave it running
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, QuitScreen), "the quit question")
        await pilot.press("l")
    assert app.return_value == "leave"
    pid = run.read_state()["pid"]
    assert pid_alive(pid) and status_of(runs, "from-form") == "running"

    # reopening re-attaches to it, replaying its history; quitting with "stop" stops it with a checkpoint
    app = make_app(runs, plugins=plugins, poll_seconds=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen), "re-attaching")
        screen = app.screen
        assert screen.run_dir.path == run.path
        await wait_for(pilot, lambda: screen.snapshot.step > paused_at and screen.snapshot.status == "running",
                       "the replayed history")
        log = screen.query_one("#run-log").lines
        assert any("paused at step" in line.text for line in log)
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, QuitScreen), "the quit question")
        await pilot.press("s")
    assert app.return_value == "stop"
    wait_until(lambda: status_of(runs, "from-form") == "stopped", "the run to stop")
    assert any(run.checkpoints.glob("step-*.safetensors")) and run.latest.is_file()


async def test_reattach_to_headless_run_stop_sample_and_resume(tmp_path, runs, plugins):
    process = start_headless(runs, "headless")
    try:
        wait_until(lambda: status_of(runs, "headless") == "running", "the headless run to start")
        app = make_app(runs, plugins=plugins, poll_seconds=0.1)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, RunScreen), "re-attaching")
            screen = app.screen
            await wait_for(pilot, lambda: screen.snapshot.step >= 2, "metrics from the headless run")
            step = screen.snapshot.step
            await wait_for(pilot, lambda: screen.snapshot.step > step, "the steps to advance")

            # stop asks first; "n" keeps it running, "y" stops it
            await pilot.press("s", "n")
            assert app.screen is screen and screen.snapshot.status == "running"
            await pilot.press("s", "y")
            await wait_for(pilot, lambda: screen.snapshot.status == "stopped", "the stopped status", timeout=60)
            assert process.wait(timeout=60) == 0
            assert "Stopped at step" in screen.snapshot.message
            stopped_at = screen.snapshot.step

            # draw samples from its checkpoint into a PNG
            await pilot.press("g")
            await wait_for(pilot, lambda: isinstance(app.screen, SampleScreen), "the sample dialog")
            dialog = app.screen
            output = tmp_path / "drawn.png"
            dialog.query_one("#sample-output").value = str(output)  # a long path: pasted rather than typed
            dialog.query_one("#sample-n").focus()
            await pilot.press("ctrl+a", "ctrl+k", "1", "6", "enter")
            await wait_for(pilot, lambda: dialog.written is not None, "the PNG", timeout=60)
            with Image.open(output) as image:
                assert image.size == (4 * 30 + 2, 4 * 30 + 2)  # 16 images of 28 px, 2 px padding
            assert dialog.query_one("#sample-image", SampleImage).path == output
            await pilot.press("escape")

            # resume it for a few more steps: a new process continues from the checkpoint
            await pilot.press("r")
            await pilot.press("ctrl+a", "ctrl+k", *str(stopped_at + 15), "enter")
            await wait_for(pilot, lambda: screen.snapshot.status == "completed", "the resumed run to finish",
                           timeout=120)
            assert screen.snapshot.step == stopped_at + 15
            assert any("resumed at step" in line.text for line in screen.snapshot.log)
    finally:
        if process.poll() is None:
            send_request(runs / "headless", "stop")
            process.wait(timeout=60)
    events = [json.loads(line) for line in (runs / "headless" / "events.jsonl").read_text().splitlines()]
    assert [e["type"] for e in events].count("run_start") == 2


async def test_a_run_that_cannot_start_says_why_on_its_screen(tmp_path, runs, plugins):
    empty = tmp_path / "no-images"
    empty.mkdir()
    app = make_app(runs, plugins=plugins, poll_seconds=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NewRunScreen), "the new-run form")
        form = app.screen
        form.query_one("#pick-dataset").value = "folder"
        form.query_one("#run-data_root").value = str(empty)  # a long path: pasted rather than typed
        form.query_one("#run-data_root").focus()
        await pilot.press("enter")  # Enter in a field starts the run too
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen), "the run screen")
        screen = app.screen
        await wait_for(pilot, lambda: screen.snapshot.status == "failed", "the failure")
        assert screen.snapshot.message == f"The folder {empty} holds no images (.bmp, .jpeg, .jpg, .png, .webp)."
        assert screen.snapshot.message in str(screen.query_one("#run-device").render())
        assert not (runs / screen.run_dir.path.name).exists()
