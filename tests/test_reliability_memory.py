"""Sizes that would exhaust memory are refused in one sentence before they are allocated.

Real subprocesses under an address-space limit (``ulimit -v``, set with
``resource.setrlimit`` in the child), forged checkpoints written with
``safetensors.save_file``, and the engine's own estimate checked against the
memory a real training step keeps.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from workbench.engine import memory
from workbench.engine.checkpoint import FORMAT
from workbench.engine.inference import sample_images
from workbench.engine.run import prepare_run
from workbench.engine.samples import save_grid
from workbench.host.configure import build_config

ENV = {"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "COLUMNS": "120"}
HEADROOM = 1536 * 2**20  # address space beyond what the imports map: room for a small run, not a large one


@pytest.fixture(scope="module")
def mapped_after_imports() -> int:
    """The address space a ganbench process maps once torch and the plugins are imported."""
    probe = ("import workbench.engine.run, workbench.cli.commands.sample\nfrom workbench.host.manager import load_plugins\n"
             "load_plugins()\nprint(open('/proc/self/status').read().split('VmSize:')[1].split()[0])")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env={**os.environ, **ENV})
    return int(done.stdout.strip()) * 1024


def limited(*args: str, cwd: Path, address_space: int) -> subprocess.CompletedProcess:
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))

    return subprocess.run([sys.executable, "-m", "workbench", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, **ENV}, preexec_fn=limit)


def one_sentence(done: subprocess.CompletedProcess, exit_code: int = 2) -> str:
    assert done.returncode == exit_code, done.stderr
    assert "Traceback" not in done.stderr and "unexpected" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ganbench: error: "), lines
    return lines[0][len("ganbench: error: "):]


def test_a_batch_that_cannot_fit_is_refused_with_the_figures(tmp_path, tiny_mnist, mapped_after_imports):
    limit = mapped_after_imports + HEADROOM
    done = limited("run", "-p", "dcgan", "--dataset", "mnist", "--data-root", str(tiny_mnist), "--set",
                   "image_size=64", "--batch-size", "500", "--steps", "2", "--device", "cpu", "--name", "big",
                   cwd=tmp_path, address_space=limit)
    message = one_sentence(done)
    assert message.startswith("A training step at batch size 500 needs about "), message
    assert "beyond the data and the weights, but this machine has " in message and " free; a --batch-size of at " \
        "most " in message and message.endswith(" would fit."), message
    assert not (tmp_path / "runs" / "big").exists()
    fitting = int(message.split("at most ")[1].split()[0].replace(",", ""))
    assert 8 <= fitting < 500
    smaller = limited("run", "-p", "dcgan", "--dataset", "mnist", "--data-root", str(tiny_mnist), "--set",
                      "image_size=64", "--batch-size", str(min(fitting, 16)), "--steps", "1", "--device", "cpu",
                      "--set", "sample_every=0", cwd=tmp_path, address_space=limit)
    assert smaller.returncode == 0, smaller.stderr  # the figure it gives does fit under the same limit


def test_the_estimate_covers_what_a_real_step_keeps(plugins, tmp_path, tiny_mnist):
    """The estimate at batch 64 against the bytes autograd really holds in one step at batch 64."""
    config = build_config(plugins.registry, "dcgan", dataset="mnist", data_root=str(tiny_mnist), device="cpu",
                          steps=1, sets=["image_size=32", "batch_size=64", "sample_every=0"],
                          runs_dir=str(tmp_path / "runs"))
    run = prepare_run(config, plugins)
    real = run.data.take(run.data.order(0)[:64])
    measured = memory._saved_for_backward(lambda: run.model.train_step(real, run.loss), weights_of=run.model)
    estimate = memory.step_bytes(run.model, run.loss, real[:4], 64)
    weights = sum(p.numel() * 4 for net in run.model.networks.values() for p in net.parameters())
    assert measured <= estimate - 3 * weights <= 1.2 * measured, (measured, estimate)
    run.lock.release() if run.lock else None


def forged(path: Path, model: str, hyperparams: dict, image_shape: list[int]) -> Path:
    """A checkpoint a stranger made: tiny tensors, and metadata that claims whatever it likes."""
    config = {"model": model, "dataset": "fashion-mnist-test", "loss": "bce", "hyperparams": hyperparams}
    meta = {"model": model, "hyperparams": hyperparams, "image_shape": image_shape, "step": 1, "config": config}
    save_file({"net/generator/w": torch.zeros(4)}, str(path), metadata={"format": FORMAT, "ganbench": json.dumps(meta)})
    return path


@pytest.mark.parametrize("model, hyperparams, image_shape, fragment", [
    ("mlp_gan", {"latent_dim": 10**9, "image_size": 28}, [1, 28, 28],
     "holds a hyper-parameter the model mlp_gan does not allow: latent_dim must be at most 4096; got 1000000000."),
    ("mlp_gan", {"latent_dim": 100, "image_size": 1500}, [1, 1500, 1500],
     "holds a hyper-parameter the model mlp_gan does not allow: image_size must be at most 256; got 1500."),
    ("mlp_gan", {"latent_dim": 100, "image_size": 28}, [1, 1500, 1500],
     "claims images of shape (1, 1500, 1500), which its model mlp_gan (image_size 28) does not make."),
    ("dcgan", {"latent_dim": 100, "image_size": 64, "ngf": 1024, "ndf": 1024}, [3, 64, 64],
     "does not hold the generator of this model"),
])
def test_a_forged_checkpoint_is_refused_before_anything_is_built(tmp_path, mapped_after_imports, model,
                                                                  hyperparams, image_shape, fragment):
    path = forged(tmp_path / "forged.safetensors", model, hyperparams, image_shape)
    done = limited("sample", str(path), "-o", str(tmp_path / "out.png"), "--device", "cpu", cwd=tmp_path,
                   address_space=mapped_after_imports + HEADROOM)
    assert fragment in one_sentence(done)
    assert not (tmp_path / "out.png").exists()


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory, plugins, fashion_images) -> Path:
    from workbench.data.idx import write_idx

    root = tmp_path_factory.mktemp("memory")
    (root / "mnist").mkdir()
    write_idx(root / "mnist" / "train-images-idx3-ubyte.gz", fashion_images[:256])
    write_idx(root / "mnist" / "train-labels-idx1-ubyte.gz", torch.zeros(256, dtype=torch.uint8))
    config = build_config(plugins.registry, "mlp_gan", dataset="mnist", data_root=str(root / "mnist"), device="cpu",
                          steps=2, sets=["image_size=8", "batch_size=8", "sample_every=0"], runs_dir=str(root / "runs"))
    run = prepare_run(config, plugins)
    assert run.train() == "completed"
    return run.dir.latest


def test_sample_n_has_a_bound_and_a_large_grid_is_drawn_in_chunks(tmp_path, small_checkpoint, mapped_after_imports):
    limit = mapped_after_imports + HEADROOM
    done = limited("sample", str(small_checkpoint), "-n", "100000000", "-o", str(tmp_path / "huge.png"),
                   cwd=tmp_path, address_space=limit)
    assert one_sentence(done) == "-n must be between 1 and 10,000; got 100,000,000."
    done = limited("sample", str(small_checkpoint), "-n", "10000", "-o", str(tmp_path / "big.png"), "--device",
                   "cpu", cwd=tmp_path, address_space=limit)
    assert done.returncode == 0, done.stderr
    with Image.open(tmp_path / "big.png") as grid:
        assert grid.size == (100 * 10 + 2, 100 * 10 + 2)


def test_the_chunked_grid_is_the_grid_torchvision_makes(tmp_path, plugins, small_checkpoint):
    from workbench.cli.main import main as ganbench_main

    assert ganbench_main(["sample", str(small_checkpoint), "-n", "30", "-o", str(tmp_path / "chunked.png"),
                          "--seed", "3", "--device", "cpu"]) == 0
    save_grid(sample_images(small_checkpoint, plugins, 30, 3, "cpu"), tmp_path / "whole.png")
    with Image.open(tmp_path / "chunked.png") as chunked, Image.open(tmp_path / "whole.png") as whole:
        a, b = torch.tensor(list(chunked.getdata())), torch.tensor(list(whole.getdata()))
        assert chunked.size == whole.size and (a - b).abs().max() <= 1
