"""The engine's training services: generator EMA, augmentation of every D input, lazy R1/R2, declared metrics.

Units on real modules for what each service computes; real ``python -m workbench`` subprocesses for what a run
leaves behind (the EMA's grids and checkpoint, ``ganbench sample --raw``) and for kill -9 and resume.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import pytest
import torch
from torch import nn

from test_faults import ENV, events_of, metrics_since_last_start, start, wait_for
from workbench.engine.augment import AdaptiveAugment, build_augmenter
from workbench.engine.checkpoint import load_checkpoint
from workbench.engine.services import GeneratorEMA
from workbench.modeling.model import GanModel, TwoNetworkGAN
from workbench.modeling.regularization import Penalties, gradient_penalty

# mlp_gan at 8x8 with every service on, p and the EMA moving fast enough to matter within a few dozen steps
SERVICES = ["--set", "augment=ada", "--set", "ada_interval=2", "--set", "ada_kimg=2", "--set", "ada_target=0.1",
            "--set", "ema_kimg=0.1", "--set", "ema_rampup=0.05", "--set", "r1_gamma=1", "--set", "r2_gamma=0.5",
            "--set", "reg_every=4"]
FAST = ["--set", "image_size=8", "--set", "batch_size=8", "--set", "log_every=5", "--set", "sample_every=0"]


class Shift(nn.Module):
    """An augmentation anyone can recognise: every image moved to values above 50."""

    def forward(self, images):
        return images + 100

    def observe(self, real_logits):
        self.seen = real_logits.detach()

    def metrics(self):
        return {}


def tiny_gan(**kw) -> TwoNetworkGAN:
    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Unflatten(1, (1, 4, 4)))
    D = nn.Sequential(nn.Flatten(), nn.Linear(16, 1))
    model = TwoNetworkGAN(G, D, {"lr": 1e-3, "b1": 0.5, "b2": 0.999}, latent_dim=4, **kw)
    model.make_optimizers()
    model.noise = torch.Generator().manual_seed(0)
    return model


@pytest.mark.parametrize("reuse", [True, False], ids=["reusing-g-logits", "separate-passes"])
def test_every_image_d_sees_goes_through_the_augmentation_penalties_included(reuse):
    from plugins.losses import BCELoss

    model = tiny_gan(reuse_fake_logits=reuse)
    model.augment = Shift()
    model.penalties = Penalties(r1_gamma=1.0, r2_gamma=1.0, every=1)
    seen = []
    model.D.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().min().item()))
    metrics = model.train_step(torch.rand(8, 1, 4, 4) * 2 - 1, BCELoss())
    assert len(seen) >= 5, "G's pass, D's real and fake passes, R1's and R2's passes"
    assert min(seen) > 50, "D judged an image the augmentation never touched"
    assert model.augment.seen.shape[0] == 8, "ADA's statistic is D's view of the real batch"
    assert {"r1", "r2"} <= set(metrics) and model.metric_keys == ("r1", "r2")


def test_r1_applies_every_nth_step_with_the_lazy_gain():
    weight = torch.tensor([[1.0, -2.0, 3.0, 0.5]])

    def critic(x):  # a linear critic: its gradient at any image is the weight itself
        return x.flatten(1) @ weight.t()

    real = torch.randn(5, 4)
    penalties = Penalties(r1_gamma=2.0, every=4)
    terms = [penalties.term(step, real, real, critic) for step in range(8)]
    assert [t is not None for t in terms] == [True, False, False, False] * 2
    squared_norm = float(weight.square().sum())
    assert torch.allclose(terms[0], torch.tensor(2.0 / 2 * 4 * squared_norm))  # gamma/2 * N * ||grad||^2
    assert torch.allclose(gradient_penalty(critic, real), torch.full((5,), squared_norm))
    assert torch.allclose(penalties.latest["r1"], torch.tensor(squared_norm))


def test_the_ema_follows_its_network_with_the_nvlabs_beta_and_ramp_up():
    net = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    model = GanModel({"generator": net}, {}, latent_dim=3)
    ema = GeneratorEMA(model, "generator", kimg=0.01, rampup=0.5, batch_size=4)
    before = {k: v.clone() for k, v in ema.average.state_dict().items()}
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
        net[1].running_mean.fill_(2.0)
    ema.update(images_seen=8)  # ramp-up: half-life min(10, 8 * 0.5) = 4 images, beta = 0.5 ** (4 / 4)
    beta = 0.5
    live = net.state_dict()
    after = ema.average.state_dict()
    for key in ("0.weight", "0.bias", "1.weight", "1.running_mean"):
        assert torch.allclose(after[key], beta * before[key] + (1 - beta) * live[key]), key
    assert torch.equal(after["1.num_batches_tracked"], live["1.num_batches_tracked"])  # integers copied
    assert model.averages["generator"] is ema.average and not any(p.requires_grad for p in ema.average.parameters())
    assert [part.kind for part in model.state_parts()] == ["network", "average"]


def test_ada_p_moves_towards_the_target_from_the_job_wide_sign_of_d_real():
    ada = AdaptiveAugment(0.0, target=0.6, interval=4, kimg=1.0, batch_size=50)  # 0.2 of p per adjustment
    summed = []

    def over_two_ranks(signs):  # what all_reduce_sum does when the other rank saw the same
        summed.append(signs.clone())
        signs.mul_(2)

    ada.observe(torch.ones(10))
    ada.observe(-torch.ones(2))
    ada.adjust(over_two_ranks)  # E[sign] = 8/12 > 0.6: more augmentation
    assert torch.equal(summed[0], torch.tensor([8.0, 12.0], dtype=torch.float64))
    assert ada.p.item() == pytest.approx(0.2)
    ada.observe(-torch.ones(4))
    ada.adjust()
    ada.adjust()  # nothing observed since: p stays
    assert ada.p.item() == pytest.approx(0.0) and ada.metrics()["aug_p"].item() == pytest.approx(0.0)


@pytest.mark.parametrize("kind", ["diffaug", "ada"])
def test_augmentations_are_identity_at_p_0_and_reproducible_from_the_run_generator(kind):
    images = torch.rand(16, 3, 12, 12) * 2 - 1

    def augmenter(p, seed):
        made = build_augmenter(kind, p=p, target=0.6, interval=4, kimg=500, batch_size=16,
                               generator=torch.Generator().manual_seed(seed))
        made.p.fill_(p)
        return made

    assert torch.equal(augmenter(0.0, 1)(images), images) if kind == "diffaug" else \
        torch.allclose(augmenter(0.0, 1)(images), images, atol=1e-5)
    changed = augmenter(1.0, 1)(images)
    assert (changed - images).abs().flatten(1).amax(1).gt(0.05).all(), "an image went through unchanged at p = 1"
    assert torch.equal(changed, augmenter(1.0, 1)(images)) and not torch.equal(changed, augmenter(1.0, 2)(images))
    grey = augmenter(1.0, 1)(images[:, :1])
    assert grey.shape == (16, 1, 12, 12) and torch.isfinite(grey).all()


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "workbench", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **ENV}, timeout=300)


def test_a_run_with_the_ema_draws_its_grids_and_samples_from_the_average(tmp_path, tiny_mnist):
    done = run_cli("run", "-p", "mlp_gan", "--dataset", "mnist", "--data-root", str(tiny_mnist), "--steps", "12",
                   "--name", "ema", *SERVICES, *FAST[:4], "--set", "sample_every=6",
                   "--set", "checkpoint_every=6", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    run_dir = tmp_path / "runs" / "ema"
    start_event = events_of(run_dir, "run_start")[0]
    assert start_event["metric_keys"] == ["d_loss", "g_loss", "d_real", "d_fake", "r1", "r2", "aug_p"]
    metrics = events_of(run_dir, "metrics")
    assert all({"r1", "r2", "aug_p", "kimg"} <= set(m) for m in metrics) and metrics[-1]["kimg"] == 0.096
    samples = events_of(run_dir, "sample")
    assert [s["file"] for s in samples] == ["samples/step-00000006.png", "samples/step-00000012.png"]
    assert all((run_dir / s["raw_file"]).is_file() for s in samples)
    assert (run_dir / "samples" / "step-00000012.png").read_bytes() != (run_dir / samples[-1]["raw_file"]).read_bytes()
    checkpoint = load_checkpoint(run_dir / "checkpoints" / "latest.safetensors")
    ema = {k for k in checkpoint.tensors if k.startswith("ema/generator/")}
    assert ema and {"state/augment/p", "state/augment/signs"} <= set(checkpoint.tensors)
    assert checkpoint.meta["images_seen"] == 96
    earlier = load_checkpoint(run_dir / "checkpoints" / "step-00000006.safetensors").tensors
    assert not all(torch.equal(earlier[k], checkpoint.tensors[k]) for k in ema), "the EMA never moved"
    for flag in ([], ["--raw"]):
        out = tmp_path / f"grid{len(flag)}.png"
        drawn = run_cli("sample", str(run_dir), "-o", str(out), "-n", "16", *flag, cwd=tmp_path)
        assert drawn.returncode == 0, drawn.stderr
    assert (tmp_path / "grid0.png").read_bytes() != (tmp_path / "grid1.png").read_bytes(), "--raw drew the EMA"
    listed = json.loads(run_cli("runs", "--runs-dir", str(tmp_path / "runs"), "--json", cwd=tmp_path).stdout)
    assert {"r1", "r2", "aug_p"} <= set(listed[0]["metrics"]) and listed[0]["kimg"] == 0.096


@pytest.mark.slow
def test_kill_9_with_every_service_on_then_resume_reaches_the_uninterrupted_state(tmp_path, tiny_mnist):
    common = ["run", "-p", "mlp_gan", "--dataset", "mnist", "--data-root", str(tiny_mnist), "--steps", "90",
              *SERVICES, *FAST, "--set", "checkpoint_every=6"]
    whole = run_cli(*common, "--name", "whole", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    rng, run_dir = random.Random(4), tmp_path / "runs" / "killed"
    proc = start(*common, "--name", "killed", cwd=tmp_path)
    try:
        for _ in range(2):
            before = len(events_of(run_dir, "run_start")) if (run_dir / "events.jsonl").exists() else 0
            wait_for(lambda: proc.poll() is not None or ((run_dir / "events.jsonl").exists()
                                                         and len(events_of(run_dir, "run_start")) > before),
                     what="training to start")
            target = events_of(run_dir, "run_start")[-1]["step"] + rng.randint(8, 25)
            wait_for(lambda: proc.poll() is not None or any(m["step"] >= target
                                                            for m in metrics_since_last_start(run_dir)),
                     what=f"step {target}")
            assert proc.poll() is None, "the run ended before it was killed"
            proc.kill()
            proc.communicate()
            proc = start("run", "--resume", str(run_dir), cwd=tmp_path)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert len(events_of(run_dir, "run_start")) == 3
    a = load_checkpoint(tmp_path / "runs" / "whole" / "checkpoints" / "latest.safetensors")
    b = load_checkpoint(run_dir / "checkpoints" / "latest.safetensors")
    assert a.tensors.keys() == b.tensors.keys()
    for prefix in ("net/", "ema/", "opt/", "state/augment/", "rng/"):
        keys = [k for k in a.tensors if k.startswith(prefix)]
        assert keys and all(torch.equal(a.tensors[k], b.tensors[k]) for k in keys), prefix
    assert 0 < a.tensors["state/augment/p"].item() < 1, "p never moved: the test would not see it reset"
    assert a.meta["images_seen"] == b.meta["images_seen"] == 90 * 8


def test_fp16_scalers_step_like_plain_steps_skip_overflows_and_checkpoint_their_scale():
    from plugins.losses import BCELoss
    from workbench.engine.precision import Scalers

    plain, scaled = tiny_gan(), tiny_gan()
    scaled.precision = Scalers(["generator", "discriminator"], torch.device("cpu"))
    real = torch.rand(8, 1, 4, 4) * 2 - 1
    for _ in range(3):  # a power-of-two scale and its inverse change no float32 gradient: the same weights
        plain.train_step(real, BCELoss())
        scaled.train_step(real, BCELoss())
    assert all(torch.equal(a, b) for a, b in zip(plain.D.parameters(), scaled.D.parameters()))
    assert [p.key for p in scaled.state_parts()][-1] == "state/scalers"
    before = [p.detach().clone() for p in scaled.D.parameters()]
    scaled.precision.start_step()
    scaled.backward(scaled.D(real).sum() * float("inf"), "discriminator")
    scaled.optimizer_step("discriminator")
    assert bool(scaled.precision.overflowed), "the overflow was not told to the loop"
    assert all(torch.equal(a, b) for a, b in zip(before, scaled.D.parameters())), "an overflowed step was taken"
    saved = scaled.precision.state_dict()
    assert saved["discriminator/scale"].item() == saved["generator/scale"].item() / 2
    fresh = Scalers(["generator", "discriminator"], torch.device("cpu"))
    fresh.load_state_dict(saved)
    assert fresh.state_dict()["discriminator/scale"].item() == saved["discriminator/scale"].item()


def test_the_workbench_folds_declared_metrics_and_kimg_from_the_events():
    from test_tui_helpers import T0, event_at
    from workbench.tui.run_state import RunState

    state = RunState("r")
    start = dict(step=0, epoch=0, total_steps=100, steps_per_epoch=50, batch_size=64, dataset_size=3200,
                 dataset_source="shipped", image_shape=[1, 32, 32], config={"model": "dcgan"}, device="cpu",
                 resumed_from=None, images_seen=0, total_kimg=6.4,
                 metric_keys=["d_loss", "g_loss", "d_real", "d_fake", "r1", "aug_p"])
    metrics = dict(epoch=0, d_loss=1.0, g_loss=2.0, d_real=0.5, d_fake=0.4, images_per_s=100.0)
    state.feed([event_at(T0, "run_start", **start),
                event_at(T0 + 1, "metrics", step=10, batch=10, kimg=0.64, r1=0.25, aug_p=0.0, **metrics),
                event_at(T0 + 2, "metrics", step=20, batch=20, kimg=1.28, r1=0.5, aug_p=0.125, **metrics)])
    snap = state.snapshot()
    assert list(snap.series) == ["d_loss", "g_loss", "d_real", "d_fake", "r1", "aug_p"]
    assert snap.series["aug_p"] == (0.0, 0.125) and snap.latest["r1"] == 0.5
    assert (snap.kimg, snap.total_kimg) == (1.28, 6.4)


def test_kimg_sets_the_length_in_images_and_refuses_steps_beside_it(tmp_path, tiny_mnist):
    base = ["run", "-p", "mlp_gan", "--dataset", "mnist", "--data-root", str(tiny_mnist), *FAST]
    done = run_cli(*base, "--kimg", "0.1", "--name", "k", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    start_event = events_of(tmp_path / "runs" / "k", "run_start")[0]
    assert (start_event["total_steps"], start_event["total_kimg"]) == (13, 0.104)  # ceil(100 / 8) steps of 8
    assert "1.0 kimg" not in done.stdout and "0.1 kimg" in done.stdout
    both = run_cli(*base, "--kimg", "0.1", "--steps", "5", cwd=tmp_path)
    assert both.returncode == 2 and "Traceback" not in both.stderr


@pytest.mark.parametrize("d_first", [True, False], ids=["d-first", "g-first"])
def test_a_relativistic_loss_trains_either_order_of_the_updates(d_first):
    from plugins.losses import RpGANLoss

    model = tiny_gan(d_first=d_first)
    metrics = model.train_step(torch.rand(8, 1, 4, 4) * 2 - 1, RpGANLoss())
    assert all(torch.isfinite(metrics[k]) for k in ("d_loss", "g_loss"))
