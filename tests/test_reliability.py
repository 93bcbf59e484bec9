"""Divergence, resuming after trouble, and the pieces that make files survive: the real engine, in process.

Losses that go wrong on purpose are registered the way a third-party plugin
registers its own (a module with ``hookimpl`` functions); the CLI test installs
the same module as a real distribution with an entry point.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import types

import pytest
import torch

from helpers import install_plugin
from workbench.base.atomic import atomic_write
from workbench.base.errors import GanbenchError
from workbench.engine.checkpoint import load_checkpoint
from workbench.engine.divergence import FailureWatch, LossWindow, StepGuard
from workbench.engine.run import prepare_run
from workbench.host.configure import build_config
from workbench.host.manager import load_plugins
from workbench.rundir.events import EventLog, read_events

BAD_LOSSES = '''
"""Losses that go wrong on purpose, to test what the engine does about it."""
from workbench import hookimpl
from plugins.losses import BCELoss
from workbench.host.registry import LossSpec


class NanAfter(BCELoss):
    """BCE, until G's loss has been computed ``after`` times in training; then NaN (up to call ``until``)."""

    after, until = 12, None

    def __init__(self):
        self.calls = 0

    def g_loss(self, fake_logits):
        self.calls += 1
        loss = super().g_loss(fake_logits)
        bad = self.calls > self.after and (self.until is None or self.calls <= self.until)
        return loss * float("nan") if bad else loss


class NanBurst(NanAfter):
    """NaN at steps 8, 9 and 10 only."""

    after, until = 7, 10


class DiscriminatorWins(BCELoss):
    """BCE's gradients, but the values a won game shows: D's loss near 0, G's loss high."""

    def d_loss(self, real_logits, fake_logits):
        loss = super().d_loss(real_logits, fake_logits)
        return loss - loss.detach() + 1e-4

    def g_loss(self, fake_logits):
        loss = super().g_loss(fake_logits)
        return loss - loss.detach() + 12.0


@hookimpl
def ganbench_register_losses(register):
    register(LossSpec("nan-after", "NaN from step 13 on", NanAfter))
    register(LossSpec("nan-burst", "NaN at steps 8-10", NanBurst))
    register(LossSpec("d-wins", "the failure signature", DiscriminatorWins))


@hookimpl
def ganbench_run_start(run):
    run.loss.calls = 0  # count training steps only, not the engine's check before training
'''


@pytest.fixture(scope="module")
def bad_plugins():
    module = types.ModuleType("bad_losses")
    exec(compile(BAD_LOSSES, "bad_losses.py", "exec"), module.__dict__)
    return load_plugins(extra_modules=[module])


def small_config(plugins, tmp_path, data_root, steps, loss="bce", sets=(), name=None):
    base = ["image_size=8", "batch_size=8", "log_every=5", "log_seconds=1000", "sample_every=0", "checkpoint_every=5"]
    return build_config(plugins.registry, "mlp_gan", dataset="mnist", loss=loss, sets=base + list(sets),
                        data_root=str(data_root), runs_dir=str(tmp_path / "runs"), device="cpu", steps=steps,
                        name=name)


def events(run, kind):
    return [e for e in read_events(run.dir.events)[0] if e["type"] == kind]


def finite(checkpoint) -> bool:
    return all(torch.isfinite(t).all() for k, t in checkpoint.tensors.items() if k.startswith("net/"))


# -- divergence -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("log_every, checkpoint_every, stops_at", [(50, 5, 15), (4, 1000, 16)])
def test_nan_is_caught_within_a_bounded_number_of_steps_and_no_bad_checkpoint_is_written(
        bad_plugins, tmp_path, tiny_mnist, log_every, checkpoint_every, stops_at):
    config = small_config(bad_plugins, tmp_path, tiny_mnist, steps=60, loss="nan-after",
                          sets=[f"log_every={log_every}", f"checkpoint_every={checkpoint_every}", "keep_checkpoints=2"])
    run = prepare_run(config, bad_plugins)
    assert run.train() == "diverged"
    # found at the next logging interval, or earlier: before the checkpoint that would have saved NaN weights
    assert run.step == stops_at
    assert run.end_message.startswith("Training diverged at step 13: a loss became NaN or infinite; ")
    good = [load_checkpoint(p) for p in run.dir.checkpoints.glob("*.safetensors")]
    assert all(c.step < 13 and finite(c) for c in good)
    if checkpoint_every == 5:
        assert run.end_message.endswith("the checkpoint of step 10 is intact (--set on_nan=skip skips such steps "
                                        "instead).")
        assert load_checkpoint(run.dir.latest).step == 10
    state = json.loads(run.dir.state.read_text())
    assert state["status"] == "diverged" and events(run, "run_end")[-1]["reason"] == "diverged"


def test_on_nan_skip_undoes_the_bad_steps_and_carries_on(bad_plugins, tmp_path, tiny_mnist):
    run = prepare_run(small_config(bad_plugins, tmp_path, tiny_mnist, steps=20, loss="nan-burst",
                                   sets=["on_nan=skip"]), bad_plugins)
    assert run.train() == "completed"
    warnings = [w for w in events(run, "warning") if w["message"].startswith("Skipped")]
    assert len(warnings) == 1 and warnings[0]["steps"] == [8, 9, 10]
    assert "the first at step 8" in warnings[0]["message"]
    assert all(math.isfinite(m["g_loss"]) and math.isfinite(m["d_loss"]) for m in events(run, "metrics"))
    final = load_checkpoint(run.dir.latest)
    assert final.step == 20 and finite(final)


def test_on_nan_skip_still_stops_a_run_that_stays_broken(bad_plugins, tmp_path, tiny_mnist):
    run = prepare_run(small_config(bad_plugins, tmp_path, tiny_mnist, steps=60, loss="nan-after",
                                   sets=["on_nan=skip"]), bad_plugins)
    assert run.train() == "diverged"
    assert run.end_message.startswith("Training diverged at step 32: 20 steps in a row gave NaN or infinite values")
    assert finite(load_checkpoint(run.dir.latest))


def test_step_guard_restores_weights_buffers_and_optimizer_moments(bad_plugins, tiny_mnist):
    spec = bad_plugins.registry.model("mlp_gan")
    model = spec.build({**spec.defaults(), "image_size": 8}, (1, 8, 8))
    model.make_optimizers()
    good, nan = bad_plugins.registry.loss("bce").build(), bad_plugins.registry.loss("nan-after").build()
    nan.after = 0
    real = torch.rand(8, 1, 8, 8) * 2 - 1
    guard = StepGuard(model)

    def snapshot():
        nets = {f"{n}.{k}": v.clone() for n, net in model.networks.items() for k, v in net.state_dict().items()}
        opts = {n: {i: {k: v.clone() for k, v in s.items()} for i, s in o.state_dict()["state"].items()}
                for n, o in model.optimizers.items()}
        return nets, opts

    guard.save()  # the very first step goes wrong: the optimizers had no moments yet
    metrics = model.train_step(real, nan)
    assert not guard.accept(torch.stack([metrics["g_loss"], metrics["d_loss"]]))
    assert all(len(o.state) == 0 for o in model.optimizers.values())
    for _ in range(2):
        guard.save()
        metrics = model.train_step(real, good)
        assert guard.accept(torch.stack([metrics["g_loss"], metrics["d_loss"]]))
    before = snapshot()
    guard.save()
    metrics = model.train_step(real, nan)
    assert not guard.accept(torch.stack([metrics["g_loss"], metrics["d_loss"]]))
    after = snapshot()
    assert all(torch.equal(before[0][k], after[0][k]) for k in before[0])
    for name in before[1]:
        for index, slots in before[1][name].items():
            assert all(torch.equal(value, after[1][name][index][slot]) for slot, value in slots.items())


def test_weights_gone_nan_are_reported_even_when_the_losses_look_fine(plugins):
    spec = plugins.registry.model("mlp_gan")
    model = spec.build({**spec.defaults(), "image_size": 8}, (1, 8, 8))
    window = LossWindow(4, 2, torch.device("cpu"))
    window.add(torch.tensor([0.5, 0.7]))
    assert window.summarize(model).weights_finite
    with torch.no_grad():
        next(model.G.parameters())[0, 0] = float("inf")
    window.add(torch.tensor([0.5, 0.7]))
    summary = window.summarize(model)
    assert summary.first_bad is None and not summary.weights_finite


def test_failure_watch_warns_once_when_d_wins_and_again_only_after_recovery():
    watch = FailureWatch("bce", patience=3)
    collapse = [watch.update(step, 0.001, 9.0) for step in (10, 20, 30, 40)]
    assert collapse[:2] == [None, None] and collapse[3] is None
    assert collapse[2].startswith("At step 30 D's loss is 0.0010 while G's loss is 9.00: the discriminator has won")
    assert watch.update(50, 0.6, 0.8) is None  # healthy again
    assert [watch.update(s, 0.01, 7.0) for s in (60, 70, 80)][-1] is not None
    assert FailureWatch("wgan-gp").update(10, -50.0, 80.0) is None  # its losses have no such floor


def test_the_failure_signature_is_warned_about_during_a_run(bad_plugins, tmp_path, tiny_mnist):
    run = prepare_run(small_config(bad_plugins, tmp_path, tiny_mnist, steps=20, loss="d-wins",
                                   sets=["log_every=2", "checkpoint_every=1000"]), bad_plugins)
    assert run.train() == "completed"
    warnings = [w["message"] for w in events(run, "warning")]
    assert len(warnings) == 1 and "the discriminator has won" in warnings[0] and "At step 6 " in warnings[0]


def test_divergence_on_the_command_line_is_one_sentence_and_exit_code_3(cli, tmp_path, tiny_mnist):
    site = install_plugin(tmp_path / "site", "bad_losses", BAD_LOSSES)
    result = cli("run", "-p", "mlp_gan", "--dataset", "mnist", "--data-root", str(tiny_mnist), "--loss", "nan-after",
                 "--steps", "100", "--name", "nan", "--set", "image_size=8", "--batch-size", "8",
                 "--set", "log_every=5", "--set", "sample_every=0", "--set", "checkpoint_every=5",
                 env={"PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"})
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "ganbench: diverged: Training diverged at step 13: a loss became NaN or infinite; the checkpoint of step 10 "
        "is intact (--set on_nan=skip skips such steps instead).")
    assert load_checkpoint(tmp_path / "runs" / "nan" / "checkpoints" / "latest.safetensors").step == 10


# -- resuming after trouble -----------------------------------------------------------------------------
def test_a_torn_last_event_line_does_not_hide_the_events_of_the_resumed_run(plugins, tmp_path, tiny_mnist):
    run = prepare_run(small_config(plugins, tmp_path, tiny_mnist, steps=5, name="torn"), plugins)
    run.train()
    with open(run.dir.events, "ab") as handle:
        handle.write(b'{"type":"metrics","time":17953651')  # a kill in the middle of a write
    resumed = prepare_run(None, plugins, resume=run.dir.path, overrides={"steps": 10})
    assert resumed.train() == "completed"
    lines = run.dir.events.read_bytes().splitlines()
    unreadable = []
    for line in lines:
        try:
            json.loads(line)
        except ValueError:
            unreadable.append(line)
    assert unreadable == [b'{"type":"metrics","time":17953651']
    starts = events(resumed, "run_start")
    assert len(starts) == 2 and starts[1]["step"] == 5 and starts[1]["previous_status"] == "completed"
    assert events(resumed, "run_end")[-1]["step"] == 10


def test_resume_after_a_crash_when_state_still_says_running(plugins, tmp_path, tiny_mnist):
    run = prepare_run(small_config(plugins, tmp_path, tiny_mnist, steps=10, name="crash"), plugins)
    run.train()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    state = json.loads(run.dir.state.read_text())
    state.update(status="running", pid=int(dead.stdout), step=7)  # what kill -9 at step 7 leaves behind
    run.dir.state.write_text(json.dumps(state))
    (run.dir.checkpoints / ".step-00000015.safetensors.999.tmp").write_bytes(b"half a checkpoint")
    assert run.dir.status() == "crashed"
    resumed = prepare_run(None, plugins, resume=run.dir.path, overrides={"steps": 15})
    assert resumed.previous_status == "crashed" and resumed.step == 10
    assert not list(run.dir.checkpoints.glob(".*.tmp"))
    assert resumed.train() == "completed"
    assert json.loads(run.dir.state.read_text())["resumes"] == 1


def test_a_run_killed_before_its_first_checkpoint_starts_over(plugins, tmp_path, tiny_mnist):
    run = prepare_run(small_config(plugins, tmp_path, tiny_mnist, steps=6, name="early"), plugins)
    run.lock.release()  # the process died here, before training
    resumed = prepare_run(None, plugins, resume=run.dir.path)
    assert resumed.step == 0 and resumed.resumed_from is None
    assert resumed.train() == "completed"
    assert any("had no checkpoint yet; starting over from step 0" in w["message"] for w in events(resumed, "warning"))
    assert load_checkpoint(run.dir.latest).step == 6


def test_resume_falls_back_past_damaged_checkpoints(plugins, tmp_path, tiny_mnist):
    run = prepare_run(small_config(plugins, tmp_path, tiny_mnist, steps=15, name="damaged"), plugins)
    run.train()
    newest = run.dir.checkpoints / "step-00000015.safetensors"
    os.truncate(newest, newest.stat().st_size - 1000)  # a disk error: latest is the same file, so both are cut
    resumed = prepare_run(None, plugins, resume=run.dir.path, overrides={"steps": 20})
    assert resumed.step == 10
    resumed.train()
    skipped = [w["message"] for w in events(resumed, "warning") if w["message"].startswith("Skipped an unusable")]
    assert len(skipped) == 1 and "step-00000015.safetensors is corrupt or truncated" in skipped[0]  # latest is it
    assert resumed.resumed_from.endswith("step-00000010.safetensors")


def test_resume_takes_the_newest_checkpoint_when_a_kill_came_before_latest_moved(plugins, tmp_path, tiny_mnist):
    run = prepare_run(small_config(plugins, tmp_path, tiny_mnist, steps=15, name="unlinked"), plugins)
    run.train()
    older = run.dir.checkpoints / "step-00000010.safetensors"
    os.link(older, run.dir.checkpoints / "relink")
    os.replace(run.dir.checkpoints / "relink", run.dir.latest)  # latest still names step 10; step 15 is whole
    resumed = prepare_run(None, plugins, resume=run.dir.path, overrides={"steps": 16})
    assert resumed.step == 15 and resumed.resumed_from.endswith("step-00000015.safetensors")
    resumed.lock.release()


def test_a_run_is_trained_by_one_process_at_a_time(plugins, tmp_path, tiny_mnist):
    first = prepare_run(small_config(plugins, tmp_path, tiny_mnist, steps=5, name="busy"), plugins)
    with pytest.raises(GanbenchError, match="is being trained by another process right now"):
        prepare_run(None, plugins, resume=first.dir.path)
    first.train()  # releases the lock at the end
    assert prepare_run(None, plugins, resume=first.dir.path, overrides={"steps": 6}).train() == "completed"


def test_the_last_checkpoint_is_written_once(plugins, tmp_path, tiny_mnist):
    run = prepare_run(small_config(plugins, tmp_path, tiny_mnist, steps=10), plugins)
    run.train()
    assert [c["step"] for c in events(run, "checkpoint")] == [5, 10]


# -- the pieces ------------------------------------------------------------------------------------------
def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "state.json"
    target.write_text("old")
    with pytest.raises(OSError):
        with atomic_write(target) as tmp:
            tmp.write_text("half")
            raise OSError(28, "No space left on device")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_event_log_ends_a_torn_line_before_appending(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"type":"a"}\n{"type":"b","ti')
    log = EventLog(path)
    log.write("c", step=1, loss=float("nan"))
    log.close()
    events_, _ = read_events(path)
    assert [e["type"] for e in events_] == ["a", "c"] and events_[1]["loss"] == "nan"
