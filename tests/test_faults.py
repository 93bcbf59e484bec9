"""Faults a long run meets: kill -9, Ctrl-C and SIGTERM, a full disk, a folder that refuses writes.

The training process is a real ``python -m workbench run`` subprocess wherever
a signal or a process death is involved; disks are real (a small tmpfs, a file
size limit, an immutable folder), never a patched ``open``.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import install_plugin, refusing_writes, small_tmpfs
from workbench.engine.checkpoint import load_checkpoint
from workbench.engine.run import prepare_run
from workbench.host.configure import build_config
from workbench.rundir.events import read_events

# A small, fast run: 8x8 images, batch 8, one thread per process (the cores are shared).
FAST = ["--set", "image_size=8", "--set", "batch_size=8", "--set", "log_every=5", "--set", "sample_every=0"]
ENV = {"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "COLUMNS": "120"}


def start(*args: str, cwd: Path, env: dict | None = None, **popen) -> subprocess.Popen:
    """Start ``ganbench ARGS`` in the background."""
    return subprocess.Popen([sys.executable, "-m", "workbench", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **ENV, **(env or {})}, **popen)


def wait_for(predicate, timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def events_of(run_dir: Path, kind: str) -> list[dict]:
    return [e for e in read_events(run_dir / "events.jsonl")[0] if e["type"] == kind]


def state_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "state.json").read_text())


def assert_every_checkpoint_loads(run_dir: Path) -> list[int]:
    """Every file in checkpoints/ is a complete checkpoint, or a hidden temporary; return the steps."""
    steps = []
    for path in sorted((run_dir / "checkpoints").iterdir()):
        if path.name.startswith("."):  # ours (.NAME.PID.tmp) or safetensors' own (.tmpXXXXXX)
            assert path.name.endswith(".tmp") or path.name.startswith(".tmp"), path
            continue
        assert path.name == "latest.safetensors" or path.name.startswith("step-"), path
        steps.append(load_checkpoint(path).step)  # raises if torn
    return steps


def metrics_since_last_start(run_dir: Path) -> list[dict]:
    events = read_events(run_dir / "events.jsonl")[0]
    last = max((i for i, e in enumerate(events) if e["type"] == "run_start"), default=len(events))
    return [e for e in events[last:] if e["type"] == "metrics"]


@pytest.mark.slow
def test_kill_9_at_random_moments_then_resume_finishes_the_run(tmp_path, tiny_mnist):
    rng = random.Random(6)
    run_dir, total = tmp_path / "runs" / "killed", 240
    proc = start("run", "-p", "mlp_gan", "--dataset", "mnist", "--data-root", str(tiny_mnist), "--steps", str(total),
                 "--name", "killed", "--set", "checkpoint_every=7", "--set", "keep_checkpoints=2", *FAST, cwd=tmp_path)
    kills, saw_running = 0, False
    try:
        for round_ in range(4):
            if round_ == 2:  # once, die while starting up: importing, loading data, restoring the checkpoint
                time.sleep(rng.uniform(0.2, 1.5))
            else:  # otherwise a random number of steps into training, often in the middle of writing a checkpoint
                before = len(events_of(run_dir, "run_start"))
                wait_for(lambda: proc.poll() is not None or len(events_of(run_dir, "run_start")) > before,
                         what="training to start")
                if proc.poll() is not None:
                    break
                target = events_of(run_dir, "run_start")[-1]["step"] + rng.randint(5, 40)
                wait_for(lambda: proc.poll() is not None or any(m["step"] >= target
                                                                for m in metrics_since_last_start(run_dir)),
                         what=f"step {target}")
                time.sleep(rng.uniform(0, 0.1))
            if proc.poll() is not None:
                break
            proc.kill()
            proc.communicate()
            kills += 1
            assert_every_checkpoint_loads(run_dir)
            saw_running |= (run_dir / "state.json").exists() and state_of(run_dir)["status"] == "running"
            proc = start("run", "--resume", str(run_dir), cwd=tmp_path)
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert kills == 4 and saw_running, "the run finished before it could be killed four times"
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    state = state_of(run_dir)
    assert state["status"] == "completed" and state["step"] == total and state["resumes"] >= 3
    steps = assert_every_checkpoint_loads(run_dir)
    final = load_checkpoint(run_dir / "checkpoints" / "latest.safetensors")
    assert final.step == total and max(steps) == total
    assert len(list((run_dir / "checkpoints").glob("step-*"))) <= 2  # keep_checkpoints held across kills
    assert not list((run_dir / "checkpoints").glob(".*")), "a resume tidies what a kill left behind"
    starts = events_of(run_dir, "run_start")
    assert starts[-1]["resumed_from"] and starts[-1]["previous_status"] == "crashed"
    assert all(s["step"] % 7 == 0 for s in starts[1:]), "a resume starts at a checkpoint"
    assert events_of(run_dir, "run_end")[-1]["reason"] == "completed"
    assert f"step {total}/{total}" in out


def ignore_sighup():
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # what nohup does before it starts the command


@pytest.mark.slow
def test_signals_finish_the_step_checkpoint_and_stop(tmp_path, tiny_mnist):
    """SIGTERM (a scheduler; the run started under nohup), Ctrl-C, and SIGHUP with the terminal gone (SSH dropped)."""
    cases = {"term": signal.SIGTERM, "int": signal.SIGINT, "hup": signal.SIGHUP}
    procs = {}
    for name in cases:  # all at once: the processes share the wait for their imports
        procs[name] = start("run", "-p", "mlp_gan", "--dataset", "mnist", "--data-root", str(tiny_mnist),
                            "--steps", "100000", "--name", name, "--set", "checkpoint_every=100000", *FAST,
                            cwd=tmp_path, preexec_fn=ignore_sighup if name == "term" else None)
    try:
        for name, proc in procs.items():
            run_dir = tmp_path / "runs" / name
            wait_for(lambda: proc.poll() is not None or events_of(run_dir, "metrics"), what="the first metrics")
            if name == "term":  # under nohup a hang-up changes nothing
                proc.send_signal(signal.SIGHUP)
                at_hangup = events_of(run_dir, "metrics")[-1]["step"]
                wait_for(lambda: events_of(run_dir, "metrics")[-1]["step"] > at_hangup, what="nohup to carry on")
            if name == "hup":
                proc.stdout.close()  # the terminal went away with the session: every write to it fails
            proc.send_signal(cases[name])
        for name, proc in procs.items():
            out, err = proc.communicate(timeout=60)
            run_dir = tmp_path / "runs" / name
            assert proc.returncode == 128 + cases[name], (name, err)  # 143, 130, 129
            assert "Traceback" not in err and "stopping after this step and writing a checkpoint" in err
            state, end = state_of(run_dir), events_of(run_dir, "run_end")[-1]
            assert state["status"] == "stopped" and end["reason"] == "stopped"
            assert load_checkpoint(run_dir / "checkpoints" / "latest.safetensors").step == state["step"] == end["step"]
            if name == "hup":
                warnings = [w["message"] for w in events_of(run_dir, "warning")]
                assert warnings == ["A progress display failed and was turned off: BrokenPipeError: [Errno 32] "
                                    "Broken pipe"]
            else:
                assert f"Stopped at step {state['step']} of 100000." in out
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()


SLOW_STOP_PLUGIN = '''
import time
from pathlib import Path
from workbench import hookimpl

@hookimpl
def ganbench_metrics(run, metrics):
    # Once a stop was asked for, take a long time here: the user's patience runs out.
    if run.control.stop_requested:
        (Path(run.dir.path) / "slow-hook-entered").touch()
        time.sleep(60)
'''


@pytest.mark.slow
def test_a_second_ctrl_c_quits_at_once_without_damage(tmp_path, tiny_mnist):
    site = install_plugin(tmp_path / "site", "slow_stop", SLOW_STOP_PLUGIN)
    run_dir = tmp_path / "runs" / "twice"
    proc = start("run", "-p", "mlp_gan", "--dataset", "mnist", "--data-root", str(tiny_mnist), "--steps", "100000",
                 "--name", "twice", "--set", "checkpoint_every=10", *FAST, cwd=tmp_path, env={"PYTHONPATH": str(site)})
    try:
        wait_for(lambda: proc.poll() is not None or events_of(run_dir, "checkpoint"), what="a first checkpoint")
        proc.send_signal(signal.SIGINT)
        wait_for(lambda: proc.poll() is not None or (run_dir / "slow-hook-entered").exists(), what="the slow hook")
        began = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        waited = time.monotonic() - began
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert waited < 20, "the second Ctrl-C must not wait for the slow hook"
    assert "Traceback" not in err
    message = err.strip().splitlines()[-1]
    assert message.startswith("ganbench: Interrupted at step ") and "is intact" in message
    assert f"Continue with: ganbench run --resume {Path('runs') / 'twice'}" in message
    state = state_of(run_dir)
    assert state["status"] == "stopped" and state["step"] > state["checkpoint_step"]  # no checkpoint on the way out
    steps = assert_every_checkpoint_loads(run_dir)
    assert max(steps) == state["checkpoint_step"]
    assert events_of(run_dir, "run_end")[-1]["interrupted"] is True


# -- disks that refuse ------------------------------------------------------------------------------------
def small_run(plugins, runs: Path, tiny_mnist, steps: int, name: str = "disk", **kw):
    sets = ["image_size=8", "batch_size=8", "log_every=5", "sample_every=0", "checkpoint_every=5"] + kw.pop("sets", [])
    config = build_config(plugins.registry, "mlp_gan", dataset="mnist", data_root=str(tiny_mnist), sets=sets,
                          runs_dir=str(runs), device="cpu", steps=steps, name=name, **kw)
    return prepare_run(config, plugins)


def test_disk_full_while_checkpointing_keeps_the_previous_checkpoint(plugins, tmp_path, tiny_mnist):
    probe = small_run(plugins, tmp_path / "probe", tiny_mnist, steps=5)
    probe.train()
    size = probe.dir.latest.stat().st_size
    # room for one checkpoint and the logs, not for a second checkpoint beside it
    with small_tmpfs(tmp_path / "disk", int(size * 1.5)) as disk:
        run = small_run(plugins, disk / "runs", tiny_mnist, steps=40)
        assert run.train() == "failed"
        assert run.end_message.startswith("Could not write the checkpoint of step 10 to ")
        assert run.end_message.endswith("No space left on device; the checkpoint of step 5 is intact.")
        assert assert_every_checkpoint_loads(run.dir.path) == [5, 5]
        assert not list(run.dir.checkpoints.glob(".*")), "the half-written temporary file is removed"
        assert state_of(run.dir.path)["status"] == "failed"
        assert events_of(run.dir.path, "run_end")[-1]["message"] == run.end_message
        resumed = prepare_run(None, plugins, resume=run.dir.path)
        assert resumed.step == 5
        resumed.lock.release()


def test_file_size_limit_while_checkpointing_is_one_sentence(plugins, tmp_path, tiny_mnist):
    run = small_run(plugins, tmp_path / "runs", tiny_mnist, steps=5)
    run.train()
    limit = 256 * 1024  # far below a checkpoint, far above the logs

    def limit_file_size():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = start("run", "--resume", str(run.dir.path), "--steps", "20", cwd=tmp_path, preexec_fn=limit_file_size)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert "Traceback" not in err
    message = err.strip().splitlines()[-1]
    assert message.startswith("ganbench: failed: Could not write the checkpoint of step 10 to ")
    assert message.endswith("File too large; the checkpoint of step 5 is intact.")
    assert assert_every_checkpoint_loads(run.dir.path) == [5, 5]
    assert state_of(run.dir.path)["status"] == "failed"



@pytest.mark.parametrize("folder, what", [("checkpoints", "the checkpoint of step 10"),
                                          ("samples", "the sample grid")])
def test_a_folder_refusing_writes_mid_run_stops_the_run_cleanly(plugins, tmp_path, tiny_mnist, folder, what):
    run = small_run(plugins, tmp_path / "runs", tiny_mnist, steps=40, sets=["sample_every=10"])
    with contextlib.ExitStack() as stack:
        def lock_folder_after_first_checkpoint(event):
            if event["type"] == "checkpoint" and event["step"] == 5:
                stack.enter_context(refusing_writes(run.dir.path / folder))

        run.listeners.append(lock_folder_after_first_checkpoint)
        reason = run.train()
    assert reason == "failed"
    assert run.end_message.startswith(f"Could not write {what}")
    assert run.end_message.endswith("; the checkpoint of step 5 is intact.")
    assert run.step == 10
    assert 5 in assert_every_checkpoint_loads(run.dir.path)
    assert state_of(run.dir.path)["status"] == "failed"


@pytest.mark.slow
def test_a_kill_between_a_checkpoint_and_its_record_is_reconciled_on_resume(tmp_path, tiny_mnist):
    """GANBENCH_FAULT (test-only) kills the process right after step 20's file is renamed into place,
    before ``latest`` moves and before state.json and events.jsonl hear of it."""
    run_dir = tmp_path / "runs" / "torn"
    proc = start("run", "-p", "mlp_gan", "--dataset", "mnist", "--data-root", str(tiny_mnist), "--steps", "30",
                 "--name", "torn", "--set", "checkpoint_every=5", "--set", "keep_checkpoints=3", *FAST, cwd=tmp_path,
                 env={"GANBENCH_FAULT": "after_checkpoint_rename@20"})
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    names = sorted(p.name for p in (run_dir / "checkpoints").glob("step-*"))
    assert names == ["step-00000010.safetensors", "step-00000015.safetensors", "step-00000020.safetensors"], \
        "keep_checkpoints=3 holds even when a kill comes before the oldest is deleted"
    assert state_of(run_dir)["checkpoint_step"] == 15 and events_of(run_dir, "checkpoint")[-1]["step"] == 15
    assert load_checkpoint(run_dir / "checkpoints" / "latest.safetensors").step == 15

    proc = start("run", "--resume", str(run_dir), "--steps", "22", cwd=tmp_path)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    events = read_events(run_dir / "events.jsonl")[0]
    second_start = [i for i, e in enumerate(events) if e["type"] == "run_start"][1]
    found = [e for e in events[:second_start] if e["type"] == "checkpoint" and e.get("reconciled")]
    assert [(e["step"], e["file"]) for e in found] == [(20, "checkpoints/step-00000020.safetensors")]
    start_event = events[second_start]
    assert start_event["step"] == 20 and start_event["resumed_from"].endswith("step-00000020.safetensors")
    warnings = [e["message"] for e in events[second_start:] if e["type"] == "warning"]
    assert any("The checkpoint of step 20 (step-00000020.safetensors) had been written but not recorded" in w
               for w in warnings), warnings
    state = state_of(run_dir)
    assert state["status"] == "completed" and state["step"] == state["checkpoint_step"] == 22
    assert len(list((run_dir / "checkpoints").glob("step-*"))) == 3
