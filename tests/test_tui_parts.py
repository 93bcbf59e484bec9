"""The workbench's parts that need no running app: folding events, drawing images, launching processes."""

from __future__ import annotations

import sys

import pytest
from PIL import Image
from rich.console import Console

from test_tui_helpers import T0, event_at, grid_png, quiet_env, write_recorded_run
from workbench.host.configure import build_config
from workbench.rundir.config import RunConfig
from workbench.rundir.events import iter_events
from workbench.rundir.launch import active_runs, launch_run
from workbench.tui.run_state import RunState, format_duration
from workbench.tui.screens.compare import scale
from workbench.tui.widgets.curve import fill_gaps, resample
from workbench.tui.widgets.sample_image import RAMP, HalfBlocks, cells_to_show


def test_replaying_a_recorded_run_gives_its_progress_metrics_and_sample(tmp_path, fashion_images):
    run = write_recorded_run(tmp_path, "done", fashion_images, steps=600, total_steps=600)
    state = RunState("done", run.path)
    assert state.feed(iter_events(run.events))
    snap = state.snapshot()
    assert (snap.status, snap.step, snap.total_steps, snap.model) == ("completed", 600, 600, "mlp_gan")
    assert snap.epochs == 4 and snap.epoch == 4 and snap.batch == snap.epoch_batches == 150
    assert len(snap.series["d_loss"]) == 60 and snap.latest["g_loss"] == snap.series["g_loss"][-1]
    assert snap.sample == run.samples / "step-00000600.png" and snap.sample_step == 600
    assert snap.elapsed == pytest.approx(30.0) and snap.eta is None
    assert snap.log[-1].text == "completed: Completed 600 steps."
    assert [line.index for line in snap.log] == list(range(len(snap.log)))


def test_eval_metrics_become_series_of_their_own(tmp_path, fashion_images):
    run = write_recorded_run(tmp_path, "ev", fashion_images, steps=300, evals=True)
    state = RunState("ev", run.path)
    state.feed(iter_events(run.events))
    snap = state.snapshot()
    assert list(snap.series)[:4] == ["d_loss", "g_loss", "d_real", "d_fake"]
    assert snap.series["fd"] == (35.0, 30.0, 25.0) and snap.latest["coverage"] == pytest.approx(0.65)
    assert any(line.text.startswith("eval at step 300: fd 25") for line in snap.log)


def test_a_resumed_run_adds_up_its_sessions_and_estimates_the_rest():
    state = RunState("r")
    start = dict(epoch=0, total_steps=1000, steps_per_epoch=100, batch_size=10, dataset_size=1000,
                 dataset_source="shipped", image_shape=[1, 28, 28], config={"model": "m"}, device="cpu")
    metrics = dict(epoch=0, d_loss=1.0, g_loss=float("nan"), d_real=0.5, d_fake=0.5, images_per_s=100.0)
    state.feed([event_at(T0, "run_start", step=0, resumed_from=None, **start),
                event_at(T0 + 10, "metrics", step=50, batch=50, **metrics),
                event_at(T0 + 12, "run_end", reason="stopped", message="Stopped.", step=50, epoch=0, checkpoint_step=50)])
    assert state.snapshot().status == "stopped" and state.snapshot().eta is None
    state.feed([event_at(T0 + 100, "run_start", step=50, resumed_from="x", **start),
                event_at(T0 + 105, "metrics", step=60, batch=60, **metrics)])
    snap = state.snapshot()
    assert snap.status == "running" and snap.elapsed == pytest.approx(17.0)
    assert snap.eta == pytest.approx((1000 - 60) * 10 / 100.0)
    assert snap.series["g_loss"][-1] != snap.series["g_loss"][-1]  # NaN kept as NaN, not dropped
    assert snap.log[-1].text.startswith("resumed at step 50")
    assert format_duration(snap.eta) == "01:34" and format_duration(3725) == "1:02:05"


def test_a_launched_run_shows_its_configuration_before_its_first_event(tmp_path, fashion_images):
    run = write_recorded_run(tmp_path, "launched", fashion_images, steps=20, model="dcgan")
    state = RunState("launched", run.path)
    state.set_config(run.read_config())
    snap = state.snapshot()
    assert (snap.status, snap.model, snap.dataset, snap.loss) == ("starting", "dcgan", "fashion-mnist-test", "bce")
    state.feed(iter_events(run.events))
    assert state.snapshot().model == "dcgan" and state.snapshot().status == "completed"


def test_a_torchrun_job_shows_its_processes_beside_the_device():
    state = RunState("job")
    state.feed([event_at(T0, "run_start", step=0, epoch=0, total_steps=10, steps_per_epoch=10, batch_size=64,
                         image_shape=[1, 28, 28], config={"model": "m"}, device="cpu (1 thread)", world_size=2,
                         batch_per_rank=32)])
    assert state.snapshot().device == "cpu (1 thread) × 2 processes"
    state.feed([event_at(T0 + 5, "run_start", step=5, epoch=0, total_steps=10, steps_per_epoch=10, batch_size=64,
                         image_shape=[1, 28, 28], config={"model": "m"}, device="cpu (2 threads)")])
    assert state.snapshot().device == "cpu (2 threads)"  # resumed as one process


def test_status_from_the_state_file_wins():
    state = RunState("x")
    assert state.set_status("crashed") and not state.set_status("crashed")
    assert state.snapshot().status == "crashed" and not state.snapshot().active


def test_half_blocks_take_colours_from_the_png(tmp_path):
    image = Image.new("RGB", (2, 2))
    image.putdata([(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)])
    console = Console(width=2, color_system="truecolor", record=True)
    lines = list(console.render_lines(HalfBlocks(image, 2, 1), pad=False))
    cells = [seg for seg in lines[0] if seg.text.strip()]
    assert [seg.text for seg in cells] == ["▀", "▀"]
    assert cells[0].style.color.triplet == (255, 0, 0) and cells[0].style.bgcolor.triplet == (0, 0, 255)
    assert cells[1].style.color.triplet == (0, 255, 0) and cells[1].style.bgcolor.triplet == (255, 255, 255)
    grey = list(console.render_lines(HalfBlocks(image, 2, 1, colour=False), pad=False))
    assert grey[0][0].text == RAMP[int((255 + 255) / (6 * 255) * len(RAMP))] and grey[0][1].style is None


def test_a_real_grid_fits_the_cells_it_is_given(tmp_path, fashion_images):
    path = grid_png(tmp_path / "grid.png", fashion_images)
    with Image.open(path) as image:
        assert image.size == (242, 242)
        blocks = HalfBlocks(image.convert("RGB"), 40, 12)
        assert blocks.fitted().size == (24, 24)
    assert [cells_to_show(242, 28, room) for room in (16, 28, 80, 400)] == [1, 2, 7, 8]


def test_curves_resample_by_step_so_runs_line_up():
    assert resample([(10, 1.0), (20, 3.0), (40, 5.0)], 40, 4) == [1.0, 3.0, None, 5.0]
    assert fill_gaps([None, 1.0, None, 2.0, None]) == [None, 1.0, 1.0, 2.0, None]
    spiky = [1.0] * 200 + [50.0, -50.0]
    assert scale(spiky) == (1.0, 1.0) and scale([3.0, 1.0, 2.0]) == (1.0, 3.0)
    assert resample([(5, 1.0), (6, float("nan"))], 0, 2) == [None, None]


def _config(plugins, runs, **fields) -> RunConfig:
    return build_config(plugins.registry, "mlp_gan", sets=["sample_every=0"], runs_dir=str(runs), **fields)


def test_launch_reports_the_error_sentence_of_a_run_that_cannot_start(tmp_path, monkeypatch, plugins):
    for key, value in quiet_env().items():
        monkeypatch.setenv(key, value)
    empty = tmp_path / "no-images"
    empty.mkdir()
    config = _config(plugins, tmp_path / "runs", dataset="folder", data_root=str(empty), steps=5, name="bad")
    launched = launch_run(config)
    assert launched.run_dir.path == tmp_path / "runs" / "bad" and launched.run_dir.config.is_file()
    assert launched.process.wait(timeout=120) == 2
    assert launched.failure() == f"The folder {empty} holds no images (.bmp, .jpeg, .jpg, .png, .webp)."
    assert not (tmp_path / "runs" / "bad").exists()  # refused before training: no folder left, as with the CLI


def test_a_launched_run_trains_the_configuration_it_was_given_and_logs_in_its_folder(tmp_path, monkeypatch,
                                                                                      plugins):
    for key, value in quiet_env().items():
        monkeypatch.setenv(key, value)
    config = _config(plugins, tmp_path / "runs", steps=3, seed=7)
    config.hyperparams["lr"] = 0.0005
    launched = launch_run(config)
    assert launched.run_dir.path.name == config.name and config.name.startswith("mlp_gan-fashion-mnist-test-")
    assert launched.process.wait(timeout=120) == 0
    assert launched.poll() == 0 and launched.failure() is None
    assert launched.log == launched.run_dir.path / "console.log" and "completed" in launched.log.read_text()
    start = next(iter_events(launched.run_dir.events))
    assert start["config"] == config.to_dict() and start["config"]["hyperparams"]["lr"] == 0.0005
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [config.name]  # no .launch folder beside it
    assert active_runs(tmp_path / "runs") == []


def test_active_runs_are_those_with_a_live_process(tmp_path, fashion_images):
    import subprocess

    write_recorded_run(tmp_path, "done", fashion_images, steps=20)
    alive = write_recorded_run(tmp_path, "alive", fashion_images, steps=20, status="running")
    dead = write_recorded_run(tmp_path, "dead", fashion_images, steps=20, status="running")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        host = __import__("os").uname().nodename
        alive.write_state(pid=sleeper.pid, host=host)
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        dead.write_state(pid=gone.pid, host=host)
        assert [run.path.name for run in active_runs(tmp_path)] == ["alive"]
        assert dead.status() == "crashed"
    finally:
        sleeper.kill()
        sleeper.wait()


def test_the_engine_and_the_cli_do_not_import_textual():
    import subprocess

    code = ("import sys, workbench.cli.main, workbench.rundir.launch, workbench.engine.run\n"
            "from workbench.cli.commands import plugins, run, runs, sample\n"
            "print('textual' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False", result.stderr
