"""The r3gan model plugin and the rpgan loss: units on the real modules, then real ``python -m workbench``
subprocesses on a real folder of PNG files (64 px, class sub-folders) for training, exact resume, sampling on
the CPU and a two-process torchrun job on gloo."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from plugins.losses import RpGANLoss
from plugins.r3gan import SPEC, build, cosine_schedule
from plugins.r3gan_networks import ResidualBlock
from workbench.base.errors import ConfigError
from workbench.engine.checkpoint import load_checkpoint
from workbench.host.registry import DataInfo
from workbench.modeling.regularization import Penalties
from workbench.rundir.events import read_events

pytestmark = pytest.mark.usefixtures("one_thread")
ENV = {"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "COLUMNS": "120"}
TINY = ["--set", "width=8", "--set", "cardinality=2", "--set", "blocks=1", "--set", "latent_dim=8",
        "--set", "log_every=1", "--set", "sample_every=0", "--device", "cpu"]


def tiny_hp(**changes) -> dict:
    hp = SPEC.defaults()
    hp.update({"width": 8, "cardinality": 2, "blocks": 1, "latent_dim": 8, "batch_size": 4, **changes})
    return hp


def test_rpgan_is_the_softplus_of_the_paired_differences_as_computed_by_hand():
    real = torch.tensor([2.0, -1.0, 0.5], requires_grad=True)
    fake = torch.tensor([1.0, 0.0, 0.5], requires_grad=True)
    loss = RpGANLoss()
    assert loss.relativistic
    by_hand_d = sum(math.log1p(math.exp(-(r - f))) for r, f in ((2, 1), (-1, 0), (0.5, 0.5))) / 3
    by_hand_g = sum(math.log1p(math.exp(-(f - r))) for r, f in ((2, 1), (-1, 0), (0.5, 0.5))) / 3
    assert loss.d_loss(real, fake).item() == pytest.approx(by_hand_d, rel=1e-6)
    assert loss.g_loss(fake, real).item() == pytest.approx(by_hand_g, rel=1e-6)
    loss.d_loss(real, fake).backward()  # d/dr softplus(f - r) = -sigmoid(f - r), over the batch of 3
    assert real.grad[0].item() == pytest.approx(-1 / (1 + math.exp(1)) / 3, rel=1e-6)
    with pytest.raises(ValueError):
        loss.g_loss(fake)


def test_refused_sizes_and_groups_are_one_sentence():
    with pytest.raises(ConfigError) as refused:
        build(tiny_hp(), DataInfo(3, 48))
    assert str(refused.value) == "r3gan builds 32, 64, 128 and 256 px images, not 48 px: set image_size to one of them."
    with pytest.raises(ConfigError, match="divisible by cardinality"):
        build(tiny_hp(cardinality=3), DataInfo(3, 32))
    done = subprocess.run([sys.executable, "-m", "workbench", "run", "-p", "r3gan", "--set", "image_size=48",
                           "--steps", "1"], capture_output=True, text=True, env={**os.environ, **ENV}, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == "ganbench: error: image_size must be one of 32, 64, 128, 256; got 48."


def test_fixup_init_makes_every_residual_block_the_identity_and_labels_steer_g_and_d():
    model = build(tiny_hp(), DataInfo(1, 32, [str(i) for i in range(3)]))
    blocks = [m for m in [*model.G.modules(), *model.D.modules()] if isinstance(m, ResidualBlock)]
    assert len(blocks) == 8  # one per stage, 4 stages from 4x4 to 32x32, in G and in D
    x = torch.randn(2, 8, 4, 4)
    assert all(torch.equal(block(x), x) for block in blocks)
    assert model.batch_fields == ("labels",) and model.n_classes == 3
    z = torch.randn(2, 8)
    images = model.G(z, torch.tensor([0, 0]))
    assert images.shape == (2, 1, 32, 32)
    assert not torch.equal(images, model.G(z, torch.tensor([1, 2])))
    assert not torch.equal(model.D(images, torch.tensor([0, 0])), model.D(images, torch.tensor([1, 2])))
    plain = build(tiny_hp(), DataInfo(3, 64))
    assert plain.batch_fields == () and plain.generate(torch.randn(2, 8)).shape == (2, 3, 64, 64)


def test_the_schedules_are_r3gans_cosines_in_images_seen():
    assert cosine_schedule(0, 2e-4, 5e-5, 10) == 2e-4
    assert cosine_schedule(5000, 2e-4, 5e-5, 10) == pytest.approx(1.25e-4)
    assert cosine_schedule(10_000, 2e-4, 5e-5, 10) == cosine_schedule(99_999, 2e-4, 5e-5, 10) == 5e-5
    model = build(tiny_hp(decay_kimg=10.0), DataInfo(1, 32))
    model.make_optimizers()
    model.penalties = Penalties(0.5, 0.5, 1)
    model.augment = type("Pipe", (), {"p": torch.tensor(0.0)})()
    model.images_seen = 5000
    model._apply_schedules()
    group = model.optimizers["discriminator"].param_groups[0]
    assert group["lr"] == pytest.approx(1.25e-4) and group["betas"] == (0.0, pytest.approx(0.945))
    assert model.penalties.gammas == {"r1": pytest.approx(0.275), "r2": pytest.approx(0.275)}
    assert model.augment.p.item() == pytest.approx(0.275)
    assert model.ema_kimg_at(5000, 5000.0) == pytest.approx(2500.0)
    assert model.ema_kimg_at(0, 5000.0) == 0.0


def write_pngs(root: Path, size: int = 72, per_class: int = 8) -> Path:
    """Real PNG files in two class sub-folders: dark left halves for "boots", dark right halves for "shirts"."""
    from PIL import Image

    gen = torch.Generator().manual_seed(0)
    for index, name in enumerate(("boots", "shirts")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = torch.randint(128, 256, (size, size + 8, 3), generator=gen, dtype=torch.uint8)
            half = slice(0, (size + 8) // 2) if index == 0 else slice((size + 8) // 2, None)
            pixels[:, half] //= 4
            Image.fromarray(pixels.numpy()).save(root / name / f"{i:03d}.png")
    return root


def test_folder_xflip_adds_a_mirrored_copy_of_every_image_with_its_label_at_256px(tmp_path):
    from plugins.celeba import load_mirrored_folder
    from workbench.host.registry import DataRequest

    folder = write_pngs(tmp_path / "images", size=256, per_class=2)
    data = load_mirrored_folder(DataRequest(root=folder, download=False, image_size=256, cache_dir=tmp_path / "c"))
    assert data.images.shape == (8, 3, 256, 256) and data.classes == ("boots", "shirts")
    assert torch.equal(data.images[4:], data.images[:4].flip(-1))
    assert data.labels.tolist() == [0, 0, 1, 1, 0, 0, 1, 1]
    left, right = data.images[0, :, :, :128].float().mean(), data.images[0, :, :, 128:].float().mean()
    assert left < right  # a "boots" image is dark on the left; its mirror (index 4) on the right
    assert data.images[4, :, :, :128].float().mean() > data.images[4, :, :, 128:].float().mean()


def run_cli(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **ENV, "GANBENCH_CACHE": str(cwd / "cache")}, timeout=300)


def events_of(run_dir: Path, kind: str) -> list[dict]:
    return [e for e in read_events(run_dir / "events.jsonl")[0] if e["type"] == kind]


@pytest.mark.slow
def test_64px_labelled_folder_trains_resumes_exactly_and_samples_on_the_cpu(tmp_path):
    folder = write_pngs(tmp_path / "images")
    common = ["run", "-p", "r3gan", "--dataset", "folder-xflip", "--data-root", str(folder), "--set", "image_size=64",
              "--batch-size", "8", *TINY, "--set", "decay_kimg=0.05", "--set", "ema_kimg=0.02"]
    whole = run_cli(*common, "--steps", "6", "--name", "whole", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    half = run_cli(*common, "--steps", "3", "--name", "resumed", cwd=tmp_path)
    assert half.returncode == 0, half.stderr
    run_dir = tmp_path / "runs" / "resumed"
    again = run_cli("run", "--resume", str(run_dir), "--steps", "6", cwd=tmp_path)
    assert again.returncode == 0, again.stderr

    start = events_of(tmp_path / "runs" / "whole", "run_start")[0]
    assert start["dataset_size"] == 32 and start["image_shape"] == [3, 64, 64]  # 16 files and their mirrors
    assert start["metric_keys"][:6] == ["d_loss", "g_loss", "d_real", "d_fake", "r1", "r2"]
    a = load_checkpoint(tmp_path / "runs" / "whole" / "checkpoints" / "latest.safetensors")
    b = load_checkpoint(run_dir / "checkpoints" / "latest.safetensors")
    assert a.meta["images_seen"] == b.meta["images_seen"] == 48 and a.tensors.keys() == b.tensors.keys()
    assert a.meta["classes"] == ["boots", "shirts"]
    for prefix in ("net/", "ema/", "opt/", "state/augment/", "rng/"):
        keys = [k for k in a.tensors if k.startswith(prefix)]
        assert keys and all(torch.equal(a.tensors[k], b.tensors[k]) for k in keys), prefix
    # p as scheduled before the last step (40 images seen of the 50 of decay_kimg), not adapted by ADA
    assert a.tensors["state/augment/p"].item() == pytest.approx(cosine_schedule(40, 0.0, 0.55, 0.05), rel=1e-6)

    out = tmp_path / "drawn.png"
    drawn = run_cli("sample", str(run_dir), "-o", str(out), "-n", "4", "--device", "cpu", cwd=tmp_path)
    assert drawn.returncode == 0, drawn.stderr
    from PIL import Image

    with Image.open(out) as grid:
        assert min(grid.size) >= 64


@pytest.mark.slow
def test_two_processes_under_torchrun_on_gloo_train_one_r3gan(tmp_path):
    folder = write_pngs(tmp_path / "images", size=32, per_class=4)
    env = {**os.environ, **ENV, "GANBENCH_CACHE": str(tmp_path / "cache")}
    env.pop("WORLD_SIZE", None)
    job = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                          "-m", "workbench", "run", "-p", "r3gan", "--dataset", "folder", "--data-root", str(folder),
                          "--batch-size", "8", *TINY, "--set", "augment=none", "--steps", "3", "--name", "two"],
                         cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert job.returncode == 0, job.stderr
    run_dir = tmp_path / "runs" / "two"
    assert json.loads((run_dir / "state.json").read_text())["world_size"] == 2
    metrics = events_of(run_dir, "metrics")
    assert [m["step"] for m in metrics] == [1, 2, 3] and all(m["r1"] > 0 and m["r2"] > 0 for m in metrics)
    written = load_checkpoint(run_dir / "checkpoints" / "latest.safetensors")
    assert written.meta["images_seen"] == 24
    assert all(torch.isfinite(v).all() for k, v in written.tensors.items() if k.startswith("net/"))
