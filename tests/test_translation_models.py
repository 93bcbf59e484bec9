"""The pix2pix and cyclegan plugins through the real CLI: bit-exact resume (the replay buffers included), the
fixed grid inputs in checkpoints, the grids' labelled rows, and ``ganbench sample --input`` on a folder."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from conftest import run_cli
from translation_folders import cyclegan_folder, pix2pix_folder
from workbench.engine.checkpoint import load_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {"pix2pix": ["--set", "image_size=32", "--set", "ngf=4", "--set", "ndf=4", "--set", "val_pairs=4",
                     "--set", "val_every=2"],
         "cyclegan": ["--set", "image_size=32", "--set", "ngf=4", "--set", "ndf=4", "--set", "residual_blocks=1",
                      "--set", "buffer_size=3", "--set", "fd_every=2", "--set", "decay_start_kimg=0.004",
                      "--set", "decay_kimg=0.02"]}
COMMON = ["--batch-size", "2", "--set", "sample_count=9", "--set", "checkpoint_every=3", "--set", "sample_every=3",
          "--set", "log_every=1"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory, fashion_images):
    root = tmp_path_factory.mktemp("translation")
    return {"pix2pix": pix2pix_folder(root / "pairs", fashion_images, train=10, test=4),
            "cyclegan": cyclegan_folder(root / "cycle", fashion_images[:12], fashion_images[200:208], test=4)}


def events(run_dir, kind):
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["type"] == kind]


@pytest.mark.parametrize("model", ["pix2pix", "cyclegan"])
def test_a_resumed_run_ends_bit_for_bit_where_the_uninterrupted_run_ends(model, folders, tmp_path):
    common = ["run", "--plugin", model, "--data-root", str(folders[model]), *SMALL[model], *COMMON]
    whole = run_cli(*common, "--steps", "7", "--name", "whole", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    part = run_cli(*common, "--steps", "4", "--name", "part", cwd=tmp_path)
    assert part.returncode == 0, part.stderr
    resumed = run_cli("run", "--resume", str(tmp_path / "runs" / "part"), "--steps", "7", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    a = load_checkpoint(tmp_path / "runs" / "whole" / "checkpoints" / "latest.safetensors")
    b = load_checkpoint(tmp_path / "runs" / "part" / "checkpoints" / "latest.safetensors")
    assert a.tensors.keys() == b.tensors.keys()
    different = [k for k in a.tensors if not torch.equal(a.tensors[k], b.tensors[k])]
    assert not different, different[:5]
    assert {"fixed/source"} <= set(a.tensors) and a.tensors["fixed/source"].shape == (3, 3, 32, 32)
    if model == "cyclegan":  # the buffers were full and replacing when the run stopped at step 4
        assert a.tensors["state/fake_b_buffer/count"].item() == 3
        kept = b.tensors["state/fake_a_buffer/images"]
        assert kept.abs().sum() > 0
        start = events(tmp_path / "runs" / "whole", "run_start")[0]
        assert start["grid_rows"] == ["A", "A → B", "A → B → A"]
        assert {"cycle_a", "identity_b", "fd_a", "fd_b"} <= set(start["metric_keys"])
    else:
        assert a.tensors["fixed/target"].shape == (3, 3, 32, 32)
        start = events(tmp_path / "runs" / "whole", "run_start")[0]
        assert start["grid_rows"] == ["input", "output", "target"]
        assert {"l1", "val_l1", "val_psnr"} <= set(events(tmp_path / "runs" / "whole", "metrics")[-1])
    grid = Image.open(tmp_path / "runs" / "whole" / "samples" / "step-00000006.png")
    assert grid.size == (3 * 34 + 2, 3 * 34 + 2)  # three inputs a row, three rows: one group


@pytest.mark.slow
def test_sample_input_translates_every_image_of_a_folder_without_the_dataset(folders, tmp_path, fashion_images):
    from translation_folders import write_png

    done = run_cli("run", "--plugin", "pix2pix", "--data-root", str(folders["pix2pix"]), *SMALL["pix2pix"], *COMMON,
                   "--steps", "2", "--name", "p", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    mine = tmp_path / "mine"
    for i in range(3):
        write_png(fashion_images[300 + i], mine / f"photo{i}.png")
    write_png(fashion_images[400], mine / "nested" / "deep.png")
    (mine / "notes.txt").write_text("not an image")
    out = tmp_path / "translated"
    drawn = run_cli("sample", "runs/p", "--input", str(mine), "-o", str(out), cwd=tmp_path)
    assert drawn.returncode == 0, drawn.stderr
    assert "translated 4 images" in drawn.stdout
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert written == ["nested/deep.png", "photo0.png", "photo1.png", "photo2.png"]
    assert Image.open(out / "photo0.png").size == (32, 32)  # 28 px inputs resized as the model needs
    one = run_cli("sample", "runs/p", "--input", str(mine / "photo1.png"), "-o", "one.png", cwd=tmp_path)
    assert one.returncode == 0 and (tmp_path / "one.png").read_bytes() == (out / "photo1.png").read_bytes()
    no_input = run_cli("sample", "runs/p", cwd=tmp_path)
    assert no_input.returncode != 0 and "--input IMAGE_OR_FOLDER" in no_input.stderr
    assert "Traceback" not in no_input.stderr
    missing = run_cli("sample", "runs/p", "--input", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert missing.returncode != 0 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr


@pytest.mark.slow
def test_a_two_process_torchrun_job_trains_pix2pix_and_cyclegan(folders, tmp_path):
    """Each rank takes its share of every batch with its own sources (or its partners in domain B); rank 0
    alone writes. (Not compared with one process: pix2pix's dropout draws from each rank's own seed.)"""
    import os
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("WORLD_SIZE", None)
    for model in ("pix2pix", "cyclegan"):
        job = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                              "-m", "workbench", "run", "--plugin", model, "--data-root", str(folders[model]),
                              *SMALL[model], *COMMON, "--batch-size", "4", "--steps", "4", "--device", "cpu",
                              "--name", model], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert job.returncode == 0, job.stderr[-2000:]
        run_dir = tmp_path / "runs" / model
        start = events(run_dir, "run_start")[0]
        assert start["world_size"] == 2 and start["batch_per_rank"] == 2
        assert len(events(run_dir, "run_start")) == 1 and events(run_dir, "run_end")[0]["reason"] == "completed"
        checkpoint = load_checkpoint(run_dir / "checkpoints" / "latest.safetensors").tensors
        assert "fixed/source" in checkpoint
        if model == "cyclegan":
            assert checkpoint["state/fake_b_buffer/count"].item() == 3


@pytest.mark.slow
def test_a_sweep_of_each_translator_is_compared_by_its_declared_metric_and_logged_to_tensorboard(folders, tmp_path):
    """The experiment features on image-to-image models: a two-point sweep (real trial processes), ``compare``
    ranking it by a declared metric (pix2pix's val_l1, CycleGAN's fd_b), and TensorBoard's scalars of it."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for model, metric in (("pix2pix", "val_l1"), ("cyclegan", "fd_b")):
        swept = run_cli("sweep", "-p", model, "--data-root", str(folders[model]), *SMALL[model], *COMMON,
                        "--set", "lr=1e-4,2e-4", "--steps", "4", "--device", "cpu", "--name", model,
                        "--set", "eval_every=0", cwd=tmp_path, timeout=600)
        assert swept.returncode == 0, swept.stderr[-2000:]
        compared = run_cli("compare", f"runs/{model}", "--metric", metric, "--json", cwd=tmp_path)
        assert compared.returncode == 0, compared.stderr
        report = json.loads(compared.stdout)
        assert report["metric"] == metric and report["lower_is_better"] is True
        assert [s.get("rank") for s in report["settings"]] == [1, 2], report["unranked_reason"]
        assert report["settings"][0]["mean_last"] <= report["settings"][1]["mean_last"]
        if model == "pix2pix":  # declared higher-is-better: ranked highest first
            psnr = json.loads(run_cli("compare", "runs/pix2pix", "--metric", "val_psnr", "--json", cwd=tmp_path).stdout)
            assert psnr["lower_is_better"] is False
            assert psnr["settings"][0]["mean_last"] >= psnr["settings"][1]["mean_last"]
        for trial in (tmp_path / "runs" / model).glob("t*"):
            board = EventAccumulator(str(trial / "tensorboard"), size_guidance={"scalars": 0})
            board.Reload()
            assert f"train/{metric}" in board.Tags()["scalars"], board.Tags()["scalars"]
