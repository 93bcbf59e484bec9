"""Snapshot tests of the workbench's main screens (pytest-textual-snapshot).

The runs are recorded run folders with fixed timestamps, the clock is UTC and
the runs folder is ``runs`` under a temporary working directory, so a screen
draws the same on every machine. After an intended change of a screen, look
at the new picture and accept it with ``pytest tests/test_tui_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

import shutil
import time

import pytest

from test_tui_helpers import write_recorded_run
from workbench.tui.app import make_app
from workbench.tui.screens.compare import CompareScreen
from workbench.tui.screens.new_run import NewRunScreen
from workbench.tui.screens.run import RunScreen
from workbench.tui.widgets.curve import Curve


@pytest.fixture(scope="module")
def recorded_runs(tmp_path_factory, fashion_images):
    """Three recorded runs, written once for the module."""
    runs = tmp_path_factory.mktemp("recorded") / "runs"
    write_recorded_run(runs, "mlp_gan-fashion-mnist-test-20231114-221320", fashion_images, steps=600,
                       total_steps=600, evals=True)
    write_recorded_run(runs, "lr-half", fashion_images, steps=400, total_steps=600, phase=1.5, status="stopped")
    write_recorded_run(runs, "lr-double", fashion_images, steps=200, total_steps=600, phase=3.0, status="failed")
    return runs


@pytest.fixture
def recorded(recorded_runs, tmp_path, monkeypatch):
    """A copy of the recorded runs in ./runs, clock in UTC."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    shutil.copytree(recorded_runs, tmp_path / "runs")  # copy2 keeps the start times
    yield tmp_path / "runs"
    monkeypatch.delenv("TZ")
    time.tzset()


async def _until(pilot, condition) -> None:
    for _ in range(300):
        if condition():
            break
        await pilot.pause(0.05)
    else:
        raise AssertionError("the screen did not settle")
    await pilot.pause(0.2)


def test_runs_browser(snap_compare, recorded, plugins):
    app = make_app("runs", plugins=plugins)

    async def settle(pilot):
        await _until(pilot, lambda: app.screen.query_one("DataTable").row_count == 3)

    assert snap_compare(app, terminal_size=(80, 24), run_before=settle)


async def _open_first_run(pilot):
    """Open the newest recorded run and wait until its whole history is replayed."""
    app = pilot.app
    await _until(pilot, lambda: app.screen.query_one("DataTable").row_count == 3)
    await pilot.press("enter")
    await _until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.snapshot.step == 600
                 and len(app.screen.query("MetricLine")) == 6)


def test_finished_run(snap_compare, recorded, plugins):
    assert snap_compare(make_app("runs", plugins=plugins), terminal_size=(80, 24), run_before=_open_first_run)


def test_finished_run_on_a_large_terminal(snap_compare, recorded, plugins):
    assert snap_compare(make_app("runs", plugins=plugins), terminal_size=(140, 44), run_before=_open_first_run)


def test_new_run_form(snap_compare, recorded, plugins):
    app = make_app("runs", plugins=plugins)

    async def open_form(pilot):
        await pilot.press("n")
        await _until(pilot, lambda: isinstance(app.screen, NewRunScreen))

    assert snap_compare(app, terminal_size=(80, 24), run_before=open_form)


def test_new_run_form_refusing_a_value(snap_compare, recorded, plugins):
    app = make_app("runs", plugins=plugins)

    async def type_bad_value(pilot):
        await pilot.press("n")
        await _until(pilot, lambda: isinstance(app.screen, NewRunScreen))
        field = app.screen.query_one("#param-lr")
        field.cursor_blink = False
        field.focus()
        await pilot.press("end", "x")

    assert snap_compare(app, terminal_size=(80, 24), run_before=type_bad_value)


def test_compare_two_runs(snap_compare, recorded, plugins):
    app = make_app("runs", plugins=plugins)

    async def compare(pilot):
        await _until(pilot, lambda: app.screen.query_one("DataTable").row_count == 3)
        await pilot.press("m", "down", "m", "c")
        await _until(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.query(Curve))

    assert snap_compare(app, terminal_size=(80, 24), run_before=compare)
