"""Every way out of a run reaches ``run_end`` in events.jsonl and state.json, whatever breaks at the end."""

from __future__ import annotations

import json

import pytest

from workbench.engine.run import prepare_run
from workbench.engine.training import Run
from workbench.rundir.events import read_events
from test_core_engine import config_for


def ending(run_dir):
    events, _ = read_events(run_dir / "events.jsonl")
    return events[-1], json.loads((run_dir / "state.json").read_text())


@pytest.mark.parametrize("broken", ["save_samples", "save_checkpoint"])
def test_an_unexpected_error_while_writing_the_final_files_is_recorded(plugins, tmp_path, tiny_mnist, monkeypatch,
                                                                       broken):
    run = prepare_run(config_for(plugins, tmp_path, tiny_mnist, steps=6, sets=["checkpoint_every=4"]), plugins)
    original = getattr(Run, broken)

    def fail_at_the_end(self):
        if self.step == 6:
            raise ValueError("the plugin's generator broke")
        return original(self)

    monkeypatch.setattr(Run, broken, fail_at_the_end)
    assert run.train() == "failed"
    last, state = ending(run.dir.path)
    assert last["type"] == "run_end" and last["reason"] == "failed" and last["step"] == 6
    assert "ValueError: the plugin's generator broke" in last["message"]
    assert "the checkpoint of step 4 is intact" in last["message"]
    assert state["status"] == "failed" and state["checkpoint_step"] == 4
    assert run.lock is None  # released: the run can be resumed


def test_a_second_ctrl_c_while_writing_the_final_checkpoint_is_recorded(plugins, tmp_path, tiny_mnist, monkeypatch):
    run = prepare_run(config_for(plugins, tmp_path, tiny_mnist, steps=6, sets=["checkpoint_every=4"]), plugins)

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(Run, "save_checkpoint", lambda self: interrupted(self) if self.step == 6 else None)
    with pytest.raises(KeyboardInterrupt):
        run.train()
    last, state = ending(run.dir.path)
    assert last["type"] == "run_end" and last["reason"] == "stopped" and last["interrupted"] is True
    assert state["status"] == "stopped" and state["step"] == 6
