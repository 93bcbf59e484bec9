"""One run on two processes: real torchrun jobs (gloo on this CPU), each in a subprocess, never in pytest.

A test model plugin (installed below) draws each image's noise from the image itself, so a batch split over
two ranks gets the same noise as one process with the whole batch, and records, on every rank, its pid and
at exit its weights and how many training steps it took.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from helpers import install_plugin
from workbench.engine.checkpoint import load_checkpoint
from workbench.rundir.control import send_request
from workbench.rundir.directory import RunDir
from workbench.rundir.events import read_events

pytestmark = pytest.mark.slow  # end-to-end processes: `pytest -m slow` (CI runs it)

ENV = {"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "COLUMNS": "120"}
SMALL = ["--dataset", "mnist", "--device", "cpu", "--set", "sample_every=0", "--set", "log_every=5"]

PLUGIN = '''
import atexit, os
from pathlib import Path
import torch
from torch import nn
from safetensors.torch import save_file
from workbench import hookimpl
from workbench.base.params import HyperParam, training_params
from workbench.host.registry import ModelSpec
from workbench.modeling.model import TwoNetworkGAN

RANK = int(os.environ.get("RANK", "0"))
OUT = Path(os.environ["DDP_TEST_OUT"])
BUILT = []


class ImageNoiseGAN(TwoNetworkGAN):
    """No BatchNorm; each image's noise is a fixed projection of the image, whichever rank takes it."""

    def __init__(self, img_shape, hp):
        n, latent = img_shape[0] * img_shape[1] * img_shape[2], hp["latent_dim"]
        G = nn.Sequential(nn.Linear(latent, 32), nn.LeakyReLU(0.2), nn.Linear(32, n), nn.Tanh(),
                          nn.Unflatten(1, img_shape))
        D = nn.Sequential(nn.Flatten(), nn.Linear(n, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1))
        super().__init__(G, D, hp, latent_dim=latent)
        self.projection = torch.randn(n, latent, generator=torch.Generator().manual_seed(7)) / n ** 0.5
        self.real, self.calls = None, 0

    def draw_noise(self, n, device):
        if self.real is None:  # sample grids and checks: the run's own noise
            return super().draw_noise(n, device)
        return self.real.flatten(1) @ self.projection.to(device)

    def train_step(self, real, loss):
        self.calls += 1
        if self.calls == 1 and self is BUILT[-1]:
            (OUT / f"rank{RANK}.pid").write_text(str(os.getpid()))
        self.real = real
        try:
            return super().train_step(real, loss)
        finally:
            self.real = None


def build(hp, img_shape):
    BUILT.append(ImageNoiseGAN(img_shape, hp))
    return BUILT[-1]


@atexit.register
def record():
    if BUILT and BUILT[-1].calls:
        model = BUILT[-1]
        tensors = {f"{name}/{key}": value.contiguous() for name, net in model.networks.items()
                   for key, value in net.state_dict().items()}
        tensors["calls"] = torch.tensor(model.calls)
        save_file(tensors, str(OUT / f"rank{RANK}.safetensors"))


@hookimpl
def ganbench_register_models(register):
    register(ModelSpec(name="image_noise", description="test: noise from the images", build=build,
                       hyperparams=training_params(batch_size=32, lr=2e-4, epochs=1) + (
                           HyperParam("latent_dim", "int", 8, "noise size"),
                           HyperParam("image_size", "int", 8, "image side"))))
'''


@pytest.fixture
def job(tmp_path, tiny_mnist):
    """``job.torchrun(*args)`` / ``job.single(*args)`` start ``ganbench run ARGS`` (Popen) with the test plugin;
    ``job.out(name)`` is the folder its ranks record into."""
    site = install_plugin(tmp_path / "site", "image_noise_plugin", PLUGIN)

    class Job:
        runs = tmp_path / "runs"

        def out(self, name: str) -> Path:
            folder = tmp_path / "records" / name
            folder.mkdir(parents=True, exist_ok=True)
            return folder

        def start(self, command: list[str], record: str) -> subprocess.Popen:
            env = {**os.environ, **ENV, "PYTHONPATH": str(site), "DDP_TEST_OUT": str(self.out(record))}
            env.pop("WORLD_SIZE", None)
            return subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True)

        def torchrun(self, *args: str, record: str = "job") -> subprocess.Popen:
            return self.start([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                               "-m", "workbench", "run", "--data-root", str(tiny_mnist), *args], record)

        def single(self, *args: str, record: str = "single") -> subprocess.Popen:
            return self.start([sys.executable, "-m", "workbench", "run", "--data-root", str(tiny_mnist), *args],
                              record)

    return Job()


def finish(proc: subprocess.Popen, timeout: float = 240) -> tuple[str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
    return out, err


def wait_for(predicate, timeout: float = 180, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def events_of(run_dir: Path, kind: str) -> list[dict]:
    return [e for e in read_events(run_dir / "events.jsonl")[0] if e["type"] == kind]


def weights(path: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_file(str(path)).items() if k != "calls"}


def checkpoint_weights(path: Path) -> dict[str, torch.Tensor]:
    return {k.removeprefix("net/"): v for k, v in load_checkpoint(path).tensors.items() if k.startswith("net/")}


def test_two_ranks_train_as_one_process_with_the_whole_batch_and_only_rank_0_writes(job):
    steps = ["--steps", "6", "--set", "batch_size=32"]
    both = job.torchrun("-p", "image_noise", *SMALL, *steps, "--name", "two", "--set", "sample_every=3", record="two")
    out, err = finish(both)
    assert both.returncode == 0, err
    one = job.single("-p", "image_noise", *SMALL, *steps, "--name", "one", record="one")
    _, err_one = finish(one)
    assert one.returncode == 0, err_one

    two_dir, records = job.runs / "two", job.out("two")
    rank0, rank1 = weights(records / "rank0.safetensors"), weights(records / "rank1.safetensors")
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0), "the ranks' weights drifted apart"
    assert load_file(str(records / "rank1.safetensors"))["calls"].item() == 6
    written = checkpoint_weights(two_dir / "checkpoints" / "latest.safetensors")
    assert all(torch.equal(written[k], rank0[k]) for k in rank0)
    # 2 ranks x 16 images = 1 process x 32 images, the same images and the same noise
    alone = checkpoint_weights(job.runs / "one" / "checkpoints" / "latest.safetensors")
    worst = max((alone[k] - written[k]).abs().max().item() for k in alone)
    assert worst < 1e-5, f"2 ranks and 1 process differ by {worst}"

    # Rank 0 alone wrote: one start, one end, each metrics step once, its pid in state.json, one grid per step.
    assert len(events_of(two_dir, "run_start")) == 1 and len(events_of(two_dir, "run_end")) == 1
    logged = [e["step"] for e in events_of(two_dir, "metrics")]
    assert logged == sorted(set(logged)) and logged[-1] == 6
    state = json.loads((two_dir / "state.json").read_text())
    assert state["status"] == "completed" and state["world_size"] == 2
    assert state["pid"] == int((records / "rank0.pid").read_text())
    assert sorted(p.name for p in (two_dir / "samples").iterdir()) == ["step-00000003.png", "step-00000006.png"]
    assert sorted(p.name for p in two_dir.iterdir()) == sorted(p.name for p in (job.runs / "one").iterdir())
    assert sorted(p.name for p in (two_dir / "checkpoints").iterdir()) == ["latest.safetensors",
                                                                          "step-00000006.safetensors"]
    config = json.loads((two_dir / "config.json").read_text())
    assert config["distributed"] == {"world_size": 2, "batch_per_rank": 16}
    start = events_of(two_dir, "run_start")[0]
    assert (start["batch_size"], start["world_size"], start["batch_per_rank"]) == (32, 2, 16)
    assert "× 2 processes, batch 32 = 2 × 16" in out


def test_a_killed_rank_ends_the_job_and_its_checkpoint_resumes_on_one_process(job):
    launcher = job.single("-p", "image_noise", *SMALL, "--nproc-per-node", "2", "--steps", "100000", "--name",
                          "killed", "--set", "checkpoint_every=5", record="killed")
    run_dir, records = job.runs / "killed", job.out("killed")
    try:
        wait_for(lambda: launcher.poll() is not None or (events_of(run_dir, "checkpoint")
                                                         and (records / "rank1.pid").exists()), what="a checkpoint")
        assert launcher.poll() is None, launcher.communicate()[1]
        os.kill(int((records / "rank1.pid").read_text()), 9)
        killed_at = time.monotonic()
        _, err = finish(launcher, timeout=120)
        ended_after = time.monotonic() - killed_at
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert launcher.returncode != 0
    assert ended_after < 60, f"the job took {ended_after:.0f} s to end after a rank died"
    assert "Traceback" not in err
    status = RunDir(run_dir).status()
    assert status in ("crashed", "failed"), status
    if status == "failed":
        message = events_of(run_dir, "run_end")[-1]["message"]
        assert "lost contact with the other processes of the job" in message and "is intact" in message
    checkpoint_step = load_checkpoint(run_dir / "checkpoints" / "latest.safetensors").step

    resumed = job.single("--resume", str(run_dir), "--steps", str(checkpoint_step + 3), record="resumed")
    _, err = finish(resumed)
    assert resumed.returncode == 0, err
    state = json.loads((run_dir / "state.json").read_text())
    assert (state["status"], state["step"], state["world_size"]) == ("completed", checkpoint_step + 3, 1)
    assert events_of(run_dir, "run_start")[-1]["previous_status"] in ("crashed", "failed")


def test_a_one_process_checkpoint_resumes_on_two_ranks_and_a_stop_request_stops_both_at_one_step(job):
    first = job.single("-p", "image_noise", *SMALL, "--steps", "6", "--name", "grown", record="first")
    _, err = finish(first)
    assert first.returncode == 0, err
    run_dir = job.runs / "grown"
    both = job.torchrun("--resume", str(run_dir), "--steps", "100000", record="both")
    try:
        wait_for(lambda: both.poll() is not None or len(events_of(run_dir, "metrics")) >= 4, what="training on")
        assert both.poll() is None, both.communicate()[1]
        send_request(run_dir, "stop")
        _, err = finish(both, timeout=120)
    finally:
        if both.poll() is None:
            both.kill()
    assert both.returncode == 0, err
    state = json.loads((run_dir / "state.json").read_text())
    assert state["status"] == "stopped" and state["world_size"] == 2
    records = job.out("both")
    calls = [load_file(str(records / f"rank{r}.safetensors"))["calls"].item() for r in (0, 1)]
    assert calls[0] == calls[1] == state["step"] - 6, "both ranks stop at the same step, after step 6"
    rank0, rank1 = weights(records / "rank0.safetensors"), weights(records / "rank1.safetensors")
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0), "rank 1 did not start from rank 0's checkpoint"
    after = [e for e in events_of(run_dir, "checkpoint") if e["step"] > 6]
    assert [e["step"] for e in after] == [state["step"]], "one checkpoint, at the step both stopped at"
    assert events_of(run_dir, "run_start")[-1]["step"] == 6


def test_a_time_limit_ends_both_ranks_together_at_one_step_as_completed(job):
    """Rank 0's clock decides (3 s of training); its stop reaches rank 1 at the next sync, at the same step."""
    both = job.torchrun("-p", "image_noise", *SMALL, "--steps", "10000000", "--name", "timed", "--set",
                        "time_limit=0.05", record="timed")
    _, err = finish(both)
    assert both.returncode == 0, err
    state = json.loads((job.runs / "timed" / "state.json").read_text())
    assert state["status"] == "completed" and "time limit (0.05 min)" in state["message"], state
    records = job.out("timed")
    calls = [load_file(str(records / f"rank{r}.safetensors"))["calls"].item() for r in (0, 1)]
    assert calls[0] == calls[1] == state["step"] > 0, "both ranks stop at the step rank 0 chose"
    assert [e["step"] for e in events_of(job.runs / "timed", "checkpoint")][-1] == state["step"]


def test_a_batch_that_does_not_divide_among_the_processes_is_one_sentence_and_no_run(job):
    """Five times: the ranks leave the job together when rank 0 refuses, so the exit code is rank 0's every time
    (a rank 0 leaving its process group undestroyed aborted at exit one time in four: 134)."""
    for _ in range(5):
        launcher = job.single("-p", "image_noise", *SMALL, "--nproc-per-node", "2", "--batch-size", "31",
                              "--steps", "3", "--name", "odd")
        out, err = finish(launcher)
        assert launcher.returncode == 2, err
        assert err.strip() == ("ganbench: error: The batch size 31 does not divide among 2 processes; choose a "
                               "multiple of 2.")
        assert not (job.runs / "odd").exists()


def test_a_one_process_run_with_ema_and_ada_resumes_on_two_ranks_keeping_both(job):
    services = ["--set", "ema_kimg=0.05", "--set", "augment=ada", "--set", "augment_p=0.5", "--set", "ada_interval=4",
                "--set", "ada_kimg=1000", "--set", "log_every=1"]
    first = job.single("-p", "image_noise", *SMALL, *services, "--steps", "6", "--name", "grown", record="first")
    _, err = finish(first)
    assert first.returncode == 0, err
    run_dir = job.runs / "grown"
    at_6 = load_checkpoint(run_dir / "checkpoints" / "latest.safetensors").tensors
    both = job.torchrun("--resume", str(run_dir), "--steps", "7", record="both")
    _, err = finish(both)
    assert both.returncode == 0, err
    assert json.loads((run_dir / "state.json").read_text())["world_size"] == 2
    p_at_6 = at_6["state/augment/p"].item()
    assert p_at_6 != 0.5, "p never moved in the first process: a reset would not show"
    step_7 = [e for e in events_of(run_dir, "metrics") if e["step"] == 7]
    assert step_7[0]["aug_p"] == pytest.approx(p_at_6, abs=1e-7), "the two ranks did not start from the saved p"
    at_7 = load_checkpoint(run_dir / "checkpoints" / "latest.safetensors").tensors
    beta = 0.5 ** (32 / 50)  # the whole job's batch of 32 against a half-life of 50 images
    ema = [k for k in at_7 if k.startswith("ema/generator/")]
    assert ema
    for key in ema:  # one update on two ranks, from the EMA the one process saved
        assert torch.allclose(at_7[key], beta * at_6[key] + (1 - beta) * at_7["net/" + key[4:]], atol=1e-6), key
