"""``time_limit``: a run that trains for so many minutes, its evaluations not counted, and ends completed."""

from __future__ import annotations

import json

from safetensors import safe_open

from test_core_engine import config_for
from workbench.engine.run import prepare_run
from workbench.engine.schedule import TimeLimit
from workbench.rundir.events import read_events


def test_the_limit_counts_training_time_only():
    limit = TimeLimit(1.0, now=100.0)
    assert not limit.over(159.0)
    limit.exclude(30.0)  # an evaluation of 30 s
    assert not limit.over(189.0) and limit.over(190.0)
    assert limit.over(150.0)  # once reached, it stays reached
    assert not TimeLimit(0.0, now=0.0).over(1e9)  # 0: no limit


def test_a_run_ends_completed_at_its_time_limit_with_a_checkpoint_of_its_last_step(plugins, tmp_path, tiny_mnist):
    run = prepare_run(config_for(plugins, tmp_path, tiny_mnist, steps=10**7, sets=["time_limit=0.01"]), plugins)
    assert run.train() == "completed"
    root = run.dir.path
    events, _ = read_events(root / "events.jsonl")
    end = events[-1]
    assert end["type"] == "run_end" and end["reason"] == "completed" and "time limit (0.01 min)" in end["message"]
    assert 0 < end["step"] < 10**7 and end["checkpoint_step"] == end["step"]
    assert json.loads((root / "state.json").read_text())["status"] == "completed"
    with safe_open(str(root / "checkpoints" / "latest.safetensors"), "pt") as handle:
        assert json.loads(handle.metadata()["ganbench"])["step"] == end["step"]


def test_a_pause_does_not_use_up_the_time_limit(plugins, tmp_path, tiny_mnist):
    """A run limited to 3 s of training and paused for about 4 s: it still trains its 3 s."""
    import threading

    from workbench.rundir.control import send_request

    run = prepare_run(config_for(plugins, tmp_path, tiny_mnist, steps=10**7, sets=["time_limit=0.05"]), plugins)
    send_request(run.dir.path, "pause")  # read at the first step
    threading.Timer(4.0, send_request, (run.dir.path, "resume")).start()
    assert run.train() == "completed"
    when = {e["type"]: e["time"] for e in read_events(run.dir.path / "events.jsonl")[0]}
    paused = when["resumed"] - when["paused"]
    assert paused > 2.0
    # counted as training, the pause would have ended the run at its first step after the resume (~1.5 s)
    assert when["run_end"] - when["run_start"] - paused >= 2.85
