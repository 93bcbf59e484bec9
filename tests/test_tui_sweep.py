"""The sweep screen under Pilot: reached from the runs browser, trials, leaderboard, curves, grids; a snapshot.

The sweep is recorded: its trials are run folders as the engine leaves them
(``write_recorded_run``), grouped under a ``sweep.json``, with fixed times.
"""

from __future__ import annotations

import json
import os
import time

import pytest
from textual.widgets import DataTable, Static, TabbedContent

from test_tui_helpers import write_recorded_run
from workbench.sweep.manifest import FORMAT, Sweep
from workbench.tui.app import make_app
from workbench.tui.screens.run import RunScreen
from workbench.tui.screens.sweep import SweepScreen
from workbench.tui.sweep_state import read_sweep

TRIALS = [("t000-lr0.0002-seed0", 2e-4, 0, 0.0), ("t001-lr0.0002-seed1", 2e-4, 1, 4.0),
          ("t002-lr0.1-seed0", 0.1, 0, 300.0), ("t003-lr0.1-seed1", 0.1, 1, 320.0)]


def write_recorded_sweep(root, fashion_images, name: str = "lr-sweep"):
    """A finished grid sweep of two learning rates and two seeds, 600 steps each, fd every 100."""
    folder = root / name
    trials = {}
    for number, (trial, lr, seed, offset) in enumerate(TRIALS):
        run = write_recorded_run(folder, trial, fashion_images, steps=600, total_steps=600, evals=True,
                                 phase=seed * 0.7 + (lr > 0.01) * 2)
        events = [json.loads(line) for line in run.events.read_text().splitlines()]
        for event in events:
            if event["type"] == "eval":
                event["metrics"] = {"fd": event["metrics"]["fd"] + offset}
        run.events.write_text("".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events))
        config = json.loads(run.config.read_text())
        config["hyperparams"]["lr"], config["seed"] = lr, seed
        run.config.write_text(json.dumps(config))
        trials[trial] = {"number": number, "point": {"lr": lr}, "seed": seed, "status": "completed",
                         "objective": 10.0 + offset, "objective_step": 600}
    manifest = {"format": FORMAT, "name": name, "created": 1700000000.0, "model": "mlp_gan",
                "runs_dir": str(folder), "base": {"dataset": "fashion-mnist-test", "loss": "bce", "seed": 0},
                "axes": [{"key": "lr", "type": "float", "values": [2e-4, 0.1]}], "seeds": [0, 1], "search": "grid",
                "trials_limit": None, "objective": {"metric": "fd", "lower_is_better": True}, "prune": None,
                "trials": trials}
    (folder / "sweep.json").write_text(json.dumps(manifest))
    return folder


@pytest.fixture
def recorded_sweep(tmp_path, fashion_images, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    write_recorded_sweep(tmp_path / "runs", fashion_images)
    yield tmp_path / "runs"
    monkeypatch.delenv("TZ")
    time.tzset()


def test_the_sweep_view_ranks_settings_and_lines_up_their_grids(recorded_sweep):
    view = read_sweep(Sweep(recorded_sweep / "lr-sweep"))
    assert [t["status"] for t in view.trials] == ["completed"] * 4
    assert [s["label"] for s in view.report["settings"]] == ["lr=0.0002", "lr=0.1"]
    assert view.report["settings"][0]["mean_last"] == pytest.approx(10.0 + 2.0)  # fd 10 at step 600, offsets 0, 4
    assert view.grid_step == 600 and [label for label, _ in view.grids] == ["lr=0.0002", "lr=0.1"]
    assert "4/4 trials done" in view.title


async def _open_sweep(pilot):
    app = pilot.app
    for _ in range(300):
        if app.screen.query("DataTable") and app.screen.query_one(DataTable).row_count == 1:
            break
        await pilot.pause(0.05)
    await pilot.press("enter")
    for _ in range(300):
        if isinstance(app.screen, SweepScreen) and app.screen.view is not None:
            break
        await pilot.pause(0.05)
    await pilot.pause(0.3)


async def test_the_runs_browser_opens_the_sweep_and_a_trial(recorded_sweep, plugins):
    app = make_app("runs", plugins=plugins, reattach=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await _open_sweep(pilot)
        screen = app.screen
        assert isinstance(screen, SweepScreen)
        assert screen.query_one("#sweep-trials", DataTable).row_count == 4
        board = str(screen.query_one("#sweep-leaderboard", Static).render())
        assert "lr=0.0002" in board and "12 ± 2.8" in board and "best: lr=0.0002" in board
        await pilot.press("2")
        assert screen.query_one(TabbedContent).active == "curves"
        assert screen.plotted["#sweep-objective"] == ["lr=0.0002", "lr=0.1"]  # one curve per setting, labelled
        assert len(screen.plotted["#sweep-losses"]) == 4  # one G-loss curve per trial
        await pilot.press("3")
        await pilot.pause(0.3)
        grids = screen.query(".sweep-grid")
        assert [(g.border_title, g.border_subtitle) for g in grids] == [("lr=0.0002", None), ("lr=0.1", None)]
        assert screen.query_one("#sweep-grids").styles.grid_size_columns == 2  # one row of two
        await pilot.press("1", "down", "enter")
        await pilot.pause(0.3)
        assert isinstance(app.screen, RunScreen) and app.screen.run_dir.path.name == "t001-lr0.0002-seed1"


def test_sweep_screen_snapshot(snap_compare, recorded_sweep, plugins):
    assert snap_compare(make_app("runs", plugins=plugins, reattach=False), terminal_size=(80, 24),
                        run_before=_open_sweep)


def test_sweep_curves_snapshot(snap_compare, recorded_sweep, plugins):
    async def curves(pilot):
        await _open_sweep(pilot)
        await pilot.press("2")
        await pilot.pause(0.3)

    assert snap_compare(make_app("runs", plugins=plugins, reattach=False), terminal_size=(80, 24),
                        run_before=curves)


@pytest.mark.slow
async def test_the_new_run_form_starts_a_sweep_from_a_list(tmp_path, plugins):
    from test_tui_helpers import wait_for
    from workbench.tui.screens.new_run import NewRunScreen

    async def typed(pilot, selector, text):
        widget = app.screen.query_one(selector)
        widget.focus()
        await pilot.press("ctrl+a", "ctrl+k", *text)

    runs = tmp_path / "runs"
    app = make_app(runs, plugins=plugins, reattach=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NewRunScreen), "the new-run form")
        await typed(pilot, "#param-lr", "1e-4,")
        await pilot.press("ctrl+s")  # an empty value in the list: refused at the field, nothing starts
        assert isinstance(app.screen, NewRunScreen) and not runs.exists()
        await typed(pilot, "#param-lr", "1e-4,2e-4")
        await typed(pilot, "#run-steps", "2")
        await typed(pilot, "#run-name", "from-form")
        await typed(pilot, "#engine-sample_every", "0")
        await typed(pilot, "#engine-eval_samples", "100")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen), "the sweep screen")
        await wait_for(pilot, lambda: app.screen.view is not None and len(app.screen.view.trials) == 2,
                       "the sweep's two trials", timeout=120)
    manifest = json.loads((runs / "from-form" / "sweep.json").read_text())
    assert [t["point"]["lr"] for t in manifest["trials"].values()] == [1e-4, 2e-4]
    assert manifest["base"]["steps"] == 2 and manifest["base"]["engine"]["sample_every"] == 0
    for _ in range(600):  # let the detached sweep (two 2-step trials) finish before the folder goes
        if all(t["status"] == "completed" for t in json.loads((runs / "from-form" / "sweep.json").read_text())
               ["trials"].values()):
            break
        time.sleep(0.2)


async def test_the_workbench_reattaches_to_a_sweep_that_is_training(recorded_sweep, plugins):
    from workbench.rundir.lock import acquire_run_lock

    folder = recorded_sweep / "lr-sweep"
    manifest = json.loads((folder / "sweep.json").read_text())
    manifest["trials"]["t003-lr0.1-seed1"]["status"] = "running"
    (folder / "sweep.json").write_text(json.dumps(manifest))
    state = folder / "t003-lr0.1-seed1" / "state.json"
    state.write_text(json.dumps({**json.loads(state.read_text()), "status": "running"}))
    lock = acquire_run_lock(folder / "t003-lr0.1-seed1")  # as its training process would hold it
    try:
        app = make_app("runs", plugins=plugins)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause(0.5)
            assert isinstance(app.screen, SweepScreen) and app.screen.sweep.path.name == "lr-sweep"
    finally:
        lock.release()


def test_a_trial_that_is_training_shows_the_step_it_reached_not_its_last_checkpoint(tmp_path, fashion_images):
    """The engine writes state.json at the start and at checkpoints; between them the newest metrics event says
    how far a run is. Both the sweep screen and the runs list (``ganbench runs``, the runs browser) show that."""
    from workbench.rundir.directory import summarize
    from workbench.rundir.lock import acquire_run_lock

    folder = write_recorded_sweep(tmp_path / "runs", fashion_images)
    trial = write_recorded_run(folder, "t004-lr0.05-seed0", fashion_images, steps=300, status="running")
    trial.write_state(status="running", pid=os.getpid(), host=os.uname().nodename, step=0, total_steps=600)
    manifest = json.loads((folder / "sweep.json").read_text())
    manifest["trials"]["t004-lr0.05-seed0"] = {"number": 4, "point": {"lr": 0.05}, "seed": 0, "status": "running"}
    (folder / "sweep.json").write_text(json.dumps(manifest))
    lock = acquire_run_lock(trial.path)  # as its training process holds it
    try:
        assert summarize(trial)["step"] == 300
        (live,) = [t for t in read_sweep(Sweep(folder)).trials if t["name"] == "t004-lr0.05-seed0"]
        assert (live["status"], live["step"], live["total"]) == ("running", 300, 600)
    finally:
        lock.release()
