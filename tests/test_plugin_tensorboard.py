"""The core observer plugin: TensorBoard event files that `tensorboard --logdir runs` reads."""

from __future__ import annotations

import sys

import pytest

from workbench.engine.run import prepare_run
from workbench.host.configure import build_config
from workbench.host.manager import load_plugins
from workbench.rundir.events import iter_events

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

SETTINGS = ["batch_size=8", "log_every=1", "sample_every=2", "checkpoint_every=2", "sample_count=4"]


def train(tmp_path, plugins, steps: int = 4):
    config = build_config(plugins.registry, "mlp_gan", sets=SETTINGS, steps=steps, device="cpu",
                          runs_dir=str(tmp_path / "runs"), name="tb")
    run = prepare_run(config, plugins)
    assert run.train() == "completed"
    return run


def read(folder) -> EventAccumulator:
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    events.Reload()
    return events


def test_a_run_writes_scalars_sample_grids_and_its_configuration(tmp_path):
    plugins = load_plugins()
    assert "tensorboard" in [p.name for p in plugins.plugins]
    run = train(tmp_path, plugins)
    board = read(run.dir.path / "tensorboard")
    logged = {e["step"]: e for e in iter_events(run.dir.events) if e["type"] == "metrics"}
    for key in ("d_loss", "g_loss", "d_real", "d_fake", "images_per_s"):
        scalars = board.Scalars(f"train/{key}")
        assert [s.step for s in scalars] == [1, 2, 3, 4]
        assert all(s.value == pytest.approx(logged[s.step][key], rel=1e-6) for s in scalars)
    grids = board.Images("samples")
    assert [g.step for g in grids] == [2, 4]
    assert (grids[0].width, grids[0].height) == (2 * 28 + 3 * 2, 2 * 28 + 3 * 2)  # 4 images in a 2x2 grid
    assert {"config/text_summary", "end/text_summary"} <= set(board.Tags()["tensors"])


def test_a_resume_replaces_what_came_after_its_checkpoint(tmp_path):
    plugins = load_plugins()
    run = train(tmp_path, plugins)
    resumed = prepare_run(None, plugins, resume=run.dir.checkpoints / "step-00000002.safetensors",
                          overrides={"steps": 4})
    assert resumed.dir.path == run.dir.path and resumed.step == 2
    assert resumed.train() == "completed"
    board = read(run.dir.path / "tensorboard")
    assert len(list((run.dir.path / "tensorboard").glob("events.out.tfevents.*"))) == 2
    assert [s.step for s in board.Scalars("train/d_loss")] == [1, 2, 3, 4]


def test_without_the_tensorboard_package_it_writes_nothing(tmp_path, monkeypatch):
    from plugins.tensorboard import summary_writer_class

    monkeypatch.setitem(sys.modules, "tensorboard", None)  # what an environment without it imports
    assert summary_writer_class() is None
    run = train(tmp_path, load_plugins(), steps=2)
    assert not (run.dir.path / "tensorboard").exists()
    assert [e for e in iter_events(run.dir.events) if e["type"] == "warning"] == []
