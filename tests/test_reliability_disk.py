"""A disk that fills up: at the start of a run, while a sample grid or the event log is written.

Real small tmpfs file systems (skipped where mounting is not allowed) and the
real CLI in a subprocess, with the tensorboard observer plugin active.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import fill_up, small_tmpfs
from workbench.base.errors import GanbenchError
from workbench.engine.run import prepare_run
from workbench.host.configure import build_config
from workbench.rundir.events import read_events

FAST = ["--set", "image_size=8", "--set", "batch_size=8", "--set", "log_every=5"]
ENV = {"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "COLUMNS": "120"}


def ganbench(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, **ENV})


def test_a_full_disk_at_start_names_the_file_and_leaves_no_folder(tmp_path, tiny_mnist):
    with small_tmpfs(tmp_path / "disk", 1024 * 1024) as disk:
        (disk / "runs").mkdir()
        fill_up(disk)
        for name in (["--name", "named"], []):  # a chosen name, and the default model-dataset-time one
            done = ganbench("run", "-p", "mlp_gan", "--dataset", "mnist", "--data-root", str(tiny_mnist),
                            "--steps", "10", "--runs-dir", str(disk / "runs"), *name, *FAST, cwd=tmp_path)
            assert done.returncode != 0
            assert "Traceback" not in done.stderr
            lines = done.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("ganbench: error: Cannot create the run folder "), lines
            assert "No space left on device" in lines[0] and "config.json" in lines[0], lines[0]
            assert list((disk / "runs").iterdir()) == [], "a run that could not start leaves nothing behind"


def test_a_disk_with_room_for_the_config_but_not_the_events_leaves_nothing_half_made(plugins, tmp_path, tiny_mnist):
    """Room for config.json and state.json but not the event log (on a 1 MiB tmpfs this left config, state and
    an empty events.jsonl behind): for every few pages of free space, a run that cannot start leaves no folder."""
    page = os.sysconf("SC_PAGE_SIZE")
    stages = set()
    with small_tmpfs(tmp_path / "disk", 1024 * 1024) as disk:
        runs = disk / "runs"
        runs.mkdir()
        fill_up(disk)
        filler = disk / "filler"
        full = filler.stat().st_size
        for free_pages in range(0, 9):
            os.truncate(filler, full - free_pages * page)
            config = build_config(plugins.registry, "mlp_gan", dataset="mnist", data_root=str(tiny_mnist),
                                  sets=["image_size=8", "batch_size=8", "sample_every=0", "checkpoint_every=100"],
                                  runs_dir=str(runs), device="cpu", steps=2, name=f"nf{free_pages}")
            try:
                run = prepare_run(config, plugins)
                run.train()
            except GanbenchError as exc:
                stages.add(str(exc).split(" ")[1])  # "create" (the folder) or "write" (its state, its events)
                assert list(runs.iterdir()) == [], f"{free_pages} pages free: {sorted(runs.rglob('*'))} left"
            else:
                break  # the run started and ended: enough room from here on
    assert stages == {"create", "write"}, "the sweep must reach both the folder and the event log failing"


def events_of(run_dir: Path) -> list[dict]:
    return read_events(run_dir / "events.jsonl")[0]


@pytest.mark.skipif(__import__("importlib").util.find_spec("tensorboard") is None,
                    reason="the tensorboard plugin needs the tensorboard package")
def test_a_disk_filling_up_with_grids_is_one_sentence_without_a_thread_traceback(tmp_path, tiny_mnist):
    """Grids every 5 steps and TensorBoard files fill a small disk (no checkpoint is due): the console gets
    one sentence and no traceback, not even from the tensorboard plugin's writer thread; state.json and the
    event log still say how the run ended."""
    with small_tmpfs(tmp_path / "disk", 512 * 1024) as disk:
        runs = disk / "runs"
        done = ganbench("run", "-p", "mlp_gan", "--dataset", "mnist", "--data-root", str(tiny_mnist),
                        "--steps", "200000", "--runs-dir", str(runs), "--name", "full", *FAST,
                        "--set", "sample_every=5", "--set", "checkpoint_every=100000", cwd=tmp_path)
        run_dir = runs / "full"
        assert done.returncode == 1, done.stderr
        assert "Traceback" not in done.stderr and "Exception in thread" not in done.stderr, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("ganbench: failed: Could not write the sample grid "), lines
        assert lines[0].endswith(": No space left on device; no checkpoint had been written yet."), lines
        state = json.loads((run_dir / "state.json").read_text())
        events = events_of(run_dir)
        assert state["status"] == "failed" and state["message"] == lines[0][len("ganbench: failed: "):]
        assert [e["reason"] for e in events if e["type"] == "run_end"] == ["failed"]
        warnings = [e["message"] for e in events if e["type"] == "warning"]
        assert len(warnings) <= 1 and all(w.startswith('Plugin "tensorboard" failed in ') for w in warnings), warnings


FAILING_AT_END = '''
from workbench import hookimpl


@hookimpl
def ganbench_run_end(run, reason):
    raise RuntimeError("an observer that breaks at the end")
'''


def test_an_event_log_that_fills_up_is_named_and_the_end_is_still_recorded(tmp_path, tiny_mnist):
    """Metrics every step fill a small disk through events.jsonl itself; a plugin fails at the end: the console
    names the file in one sentence, and the space the run set aside at its start (``.end-reserve``, freed just
    before the end is written) still takes run_end and state.json."""
    from helpers import install_plugin

    site = install_plugin(tmp_path / "site", "failing_at_end", FAILING_AT_END)
    with small_tmpfs(tmp_path / "disk", 160 * 1024) as disk:
        runs = disk / "runs"
        done = subprocess.run([sys.executable, "-m", "workbench", "run", "-p", "mlp_gan", "--dataset", "mnist",
                               "--data-root", str(tiny_mnist), "--steps", "200000", "--runs-dir", str(runs),
                               "--name", "log", *FAST, "--set", "log_every=1", "--set", "sample_every=0",
                               "--set", "checkpoint_every=100000"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=300,
                              env={**os.environ, **ENV, "PYTHONPATH": str(site), "GANBENCH_DISABLE_PLUGINS": "tensorboard"})
        run_dir = runs / "log"
        assert done.returncode == 1, done.stderr
        assert "Traceback" not in done.stderr, done.stderr
        lines = done.stderr.strip().splitlines()
        events_file = run_dir / "events.jsonl"
        assert lines[0].startswith(f"ganbench: failed: Could not write {events_file} at step "), lines
        assert lines[0].endswith(": No space left on device; no checkpoint had been written yet."), lines
        assert lines[1:] == [], "the end's reserve gives the record of the end its room"
        state = json.loads((run_dir / "state.json").read_text())
        assert state["status"] == "failed" and state["message"] == lines[0][len("ganbench: failed: "):]
        assert [e["reason"] for e in events_of(run_dir) if e["type"] == "run_end"] == ["failed"]
        assert not (run_dir / ".end-reserve").exists()
