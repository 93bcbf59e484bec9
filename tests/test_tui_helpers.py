"""Helpers for the workbench tests (no tests here): waiting under Pilot, headless runs, recorded run folders.

``write_recorded_run`` writes a run directory with the engine's own parts
(``create_run_dir``, ``EventLog``, ``RunDir``; real PNG grids) at fixed
timestamps, so the snapshot tests draw the same screen on every machine.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from workbench.engine.samples import save_grid
from workbench.rundir.config import RunConfig
from workbench.rundir.directory import RunDir, create_run_dir
from workbench.rundir.events import EventLog, make_event

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


async def wait_for(pilot, condition, what: str, timeout: float = 90.0) -> None:
    """Let the app run until ``condition()`` holds; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await pilot.pause(0.1)


def wait_until(condition, what: str, timeout: float = 90.0) -> None:
    """The same, outside an app."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


def quiet_env() -> dict:
    """One torch thread per training process: the tests share two cores with everything else."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def start_headless(runs: Path, name: str, *extra: str) -> subprocess.Popen:
    """``ganbench run`` in a subprocess of its own, as a user would start it in another terminal."""
    args = [sys.executable, "-m", "workbench", "run", "--plugin", "mlp_gan", "--steps", "100000", "--name", name,
            "--runs-dir", str(runs), "--set", "log_seconds=0.1", "--set", "sample_every=10", *extra]
    return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=quiet_env(), start_new_session=True)


def stop_leftovers(runs: Path) -> None:
    """SIGTERM every training process still working in ``runs`` (a test that failed half-way leaves them)."""
    import signal

    from workbench.rundir.directory import list_runs, pid_alive

    for run in list_runs(runs):
        pid = run.read_state().get("pid")
        if run.status() in ("running", "paused") and pid_alive(pid):
            os.kill(pid, signal.SIGTERM)  # the engine stops at the next step and writes a checkpoint


def status_of(runs: Path, name: str) -> str:
    return RunDir(runs / name).status()


def grid_png(path: Path, fashion_images: torch.Tensor, count: int = 64, offset: int = 0) -> Path:
    """A real sample grid PNG from Fashion-MNIST images, written by the engine's ``save_grid``."""
    images = fashion_images[offset:offset + count].float().div(127.5).sub(1).unsqueeze(1)
    save_grid(images, path)
    return path


def event_at(when: float, type_: str, **fields) -> dict:
    """An event as the engine's ``make_event`` makes it, at the fixed time ``when`` instead of now."""
    return {**make_event(type_, **fields), "time": when}


def write_recorded_run(root: Path, name: str, fashion_images: torch.Tensor, *, steps: int = 600,
                       total_steps: int = 600, status: str = "completed", phase: float = 0.0,
                       evals: bool = False, model: str = "mlp_gan") -> RunDir:
    """A run directory written with the engine's own parts (``create_run_dir``, ``EventLog``, ``RunDir``):
    the events carry the fields the engine writes, with deterministic losses and fixed times.

    Sample grids are real PNGs; no checkpoint file is written, though a finished run's events name one.
    """
    config = RunConfig(model=model, dataset="fashion-mnist-test", loss="bce",
                       hyperparams={"batch_size": 64, "lr": 0.0002, "b1": 0.5, "b2": 0.999, "epochs": 200,
                                    "latent_dim": 100, "image_size": 28},
                       steps=total_steps, runs_dir=str(root), name=name)
    config.engine.update(log_seconds=0.1, sample_every=200)
    run = create_run_dir(config)
    log = EventLog(run.events)
    log.append(event_at(T0, "run_start", step=0, epoch=0, total_steps=total_steps, steps_per_epoch=150,
                        batch_size=64, dataset_size=10000, dataset_source="shipped", device="cpu (2 threads)",
                        image_shape=[1, 28, 28], config=config.to_dict(), resumed_from=None))
    epoch = 0
    for step in range(10, steps + 1, 10):
        when = T0 + step * 0.05
        x = step / 60 + phase
        log.append(event_at(when, "metrics", step=step, epoch=epoch, batch=step - epoch * 150, images_per_s=1280.0,
                            d_loss=0.9 + 0.3 * math.sin(x) - step / 3000, g_loss=1.2 + 0.4 * math.cos(x) + step / 2000,
                            d_real=0.6 + 0.2 * math.sin(x / 2), d_fake=0.4 - 0.1 * math.sin(x / 3)))
        if step % 150 == 0:
            log.append(event_at(when, "epoch_end", epoch=epoch, step=step))
            epoch += 1
        if step % 200 == 0:
            path = grid_png(run.samples / f"step-{step:08d}.png", fashion_images, offset=step)
            log.append(event_at(when, "sample", step=step, epoch=epoch, path=str(path), file=run.relative(path)))
        if evals and step % 100 == 0:
            log.append(event_at(when, "eval", step=step, epoch=epoch, samples=2000, seconds=1.5,
                                metrics={"fd": 40.0 - step / 20, "coverage": 0.5 + step / 2000}, notes=[]))
    last = T0 + steps * 0.05
    message = ""
    if status in ("completed", "stopped"):
        path = run.checkpoints / f"step-{steps:08d}.safetensors"
        log.append(event_at(last, "checkpoint", step=steps, epoch=epoch, path=str(path), file=run.relative(path)))
        message = f"Completed {steps} steps." if status == "completed" else f"Stopped at step {steps} of {total_steps}."
        log.append(event_at(last, "run_end", reason=status, message=message, step=steps, epoch=epoch,
                            checkpoint_step=steps))
    log.close()
    run.write_state(status=status, pid=0, host="elsewhere", step=steps, total_steps=total_steps, message=message)
    os.utime(run.config, (T0, T0))
    return run
