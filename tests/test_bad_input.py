"""Bad input: one sentence, a non-zero exit, no traceback, and the runs already on disk untouched.

Most cases call ``workbench.cli.main.main`` in process (the same code the console
script runs) so that many cases stay fast; one case runs the real subprocess.
Files are real: IDX files, JPEGs, safetensors checkpoints written by the engine
and then damaged or forged.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torchvision.io import encode_jpeg

import workbench.cli.commands.runs
from helpers import refusing_writes
from workbench.cli.main import main as ganbench_main
from workbench.data.idx import write_idx
from workbench.engine.checkpoint import FORMAT, MAX_HEADER_BYTES, save_checkpoint
from workbench.engine.run import prepare_run
from workbench.host.configure import build_config

SMALL = ["--set", "image_size=8", "--batch-size", "8", "--set", "sample_every=0", "--steps", "5"]


@pytest.fixture(scope="module")
def place(tmp_path_factory, plugins, fashion_images):
    """A folder with MNIST files (512 images) and a runs folder holding one finished 5-step run, "earlier"."""
    root = tmp_path_factory.mktemp("bad-input")
    mnist = root / "mnist"
    mnist.mkdir()
    write_idx(mnist / "train-images-idx3-ubyte.gz", fashion_images[:512])
    write_idx(mnist / "train-labels-idx1-ubyte.gz", torch.zeros(512, dtype=torch.uint8))
    config = build_config(plugins.registry, "mlp_gan", dataset="mnist", data_root=str(mnist), device="cpu", steps=5,
                          sets=["image_size=8", "batch_size=8", "sample_every=0"], runs_dir=str(root / "runs"),
                          name="earlier")
    run = prepare_run(config, plugins)
    assert run.train() == "completed"
    return root


def fingerprint(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(autouse=True)
def earlier_runs_untouched(place):
    before = fingerprint(place / "runs")
    yield
    assert fingerprint(place / "runs") == before, "bad input must never change the runs already on disk"


def refused(capsys, *args, fragments=()) -> str:
    """Run ``ganbench ARGS`` in process; check it failed with one sentence; return the sentence."""
    code = ganbench_main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert code != 0, out + err
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert lines and lines[-1].startswith("ganbench: error: "), err
    message = lines[-1][len("ganbench: error: "):]
    assert message.endswith((".", "?", ")")), message
    for fragment in fragments:
        assert fragment in message, message
    return message


@pytest.mark.parametrize("args, fragment", [
    (["--set", "lr=fast"], "lr must be a number, not 'fast'."),
    (["--set", "batch_size=2.5"], "batch_size must be a whole number, not '2.5'."),
    (["--set", "image_size=3"], "image_size must be at least 4; got 3."),
    (["--steps", "0"], "--steps must be at least 1; got 0."),
    (["--seed", "-1"], "--seed must be between 0 and 4294967295; got -1."),
    (["--set", "on_nan=ignore"], "on_nan must be one of stop, skip; got 'ignore'."),
    (["--set", "checkpoint_every=0"], "checkpoint_every must be at least 1; got 0."),
    (["--set", "keep_checkpoints=-2"], "keep_checkpoints must be at least 1; got -2."),
    (["--device", "tpu"], '--device must be auto, cpu, cuda, cuda:N or mps; got "tpu".'),
    (["--name", "a/b"], "no path separators or '..'"),
    (["--name", ".."], "no path separators or '..'"),
    (["--name", "a..b"], "no path separators or '..'"),
    (["--name", "/tmp/elsewhere"], "no path separators or '..'"),
])
def test_settings_out_of_range_or_of_the_wrong_type(capsys, place, args, fragment):
    refused(capsys, "run", "-p", "mlp_gan", "--runs-dir", place / "runs", *args, fragments=[fragment])


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_asking_for_a_gpu_that_is_not_there(capsys, place):
    refused(capsys, "run", "-p", "mlp_gan", "--runs-dir", place / "runs", "--device", "cuda",
            fragments=["--device cuda was asked for, but PyTorch sees no CUDA GPU here."])


def test_a_batch_larger_than_the_dataset(capsys, place):
    refused(capsys, "run", "-p", "mlp_gan", "--dataset", "mnist", "--data-root", place / "mnist", "--batch-size", "600",
            "--runs-dir", place / "runs", fragments=["The batch size 600 is larger than the dataset (512 images)."])


def test_an_existing_run_name_is_never_overwritten(capsys, place):
    refused(capsys, "run", "-p", "mlp_gan", "--dataset", "mnist", "--data-root", place / "mnist", *SMALL,
            "--runs-dir", place / "runs", "--name", "earlier",
            fragments=['A run named "earlier" already exists in', f"--resume {place / 'runs' / 'earlier'}"])


# -- resuming -------------------------------------------------------------------------------------------
def test_resuming_a_finished_run(capsys, place):
    refused(capsys, "run", "--resume", place / "runs" / "earlier",
            fragments=["already has 5 of 5 steps; pass a larger --steps or --epochs to train further."])


def test_resume_with_settings_of_its_own(capsys, place):
    refused(capsys, "run", "--resume", place / "runs" / "earlier", "--plugin", "dcgan", "--lr", "0.1",
            fragments=["--plugin, --lr cannot be given with it; only --steps, --kimg, --epochs, --device and --data-root can."])


def test_resuming_what_is_not_a_run(capsys, place):
    refused(capsys, "run", "--resume", place / "nowhere", fragments=[f"No checkpoint at {place / 'nowhere'}."])
    refused(capsys, "run", "--resume", place / "mnist", fragments=["is not a run directory (it has no config.json)"])


# -- data -----------------------------------------------------------------------------------------------
def mnist_copy(place: Path, where: Path) -> Path:
    shutil.copytree(place / "mnist", where)
    return where


def run_on(capsys, place, dataset, root, fragments):
    return refused(capsys, "run", "-p", "mlp_gan", "--dataset", dataset, "--data-root", root, *SMALL,
                   "--runs-dir", place / "runs", fragments=fragments)


def test_idx_files_that_are_not_idx_truncated_or_mismatched(capsys, place, tmp_path):
    root = mnist_copy(place, tmp_path / "garbage")
    (root / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"<html>404 Not Found</html>"))
    run_on(capsys, place, "mnist", root, ["train-images-idx3-ubyte.gz is not an IDX file (bad magic number)."])

    root = mnist_copy(place, tmp_path / "cut")
    images = root / "train-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[:5000])  # an interrupted download
    run_on(capsys, place, "mnist", root, ["train-images-idx3-ubyte.gz is not a valid gzip file", "download it again."])

    root = mnist_copy(place, tmp_path / "labels")
    write_idx(root / "train-labels-idx1-ubyte.gz", torch.zeros(10, dtype=torch.uint8))
    run_on(capsys, place, "mnist", root, ["train-labels-idx1-ubyte.gz has 10 labels for 512 images."])


def jpeg(image: torch.Tensor) -> bytes:
    return encode_jpeg(image.expand(3, -1, -1).contiguous()).numpy().tobytes()


def test_unreadable_jpegs_are_skipped_and_counted(plugins, place, tmp_path, fashion_images, monkeypatch):
    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(16):
        (folder / f"{i:02d}.jpg").write_bytes(jpeg(fashion_images[i][None]))
    whole = (folder / "00.jpg").read_bytes()
    (folder / "cut.jpg").write_bytes(whole[: len(whole) // 2])
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.jpg").write_text("not a picture")
    config = build_config(plugins.registry, "mlp_gan", dataset="folder", data_root=str(folder), device="cpu", steps=2,
                          sets=["image_size=8", "batch_size=8", "sample_every=0"], runs_dir=str(tmp_path / "runs"))
    run = prepare_run(config, plugins)
    assert run.data.images.shape[0] == 16
    assert run.dataset_source == f"{folder} (3 unreadable files skipped)"
    assert run.train() == "completed"


def test_image_folders_with_nothing_usable(capsys, place, tmp_path, monkeypatch):
    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path / "cache"))
    run_on(capsys, place, "folder", tmp_path / "missing", [f"The image folder {tmp_path / 'missing'} does not exist."])
    (tmp_path / "empty").mkdir()
    run_on(capsys, place, "folder", tmp_path / "empty", [f"The folder {tmp_path / 'empty'} holds no images"])
    (tmp_path / "broken").mkdir()
    for name in ("a.jpg", "b.jpeg", "c.png"):
        (tmp_path / "broken" / name).write_bytes(b"\xff\xd8\xff\xe0 truncated")
    run_on(capsys, place, "folder", tmp_path / "broken",
           [f"None of the 3 image files in {tmp_path / 'broken'} could be decoded."])


# -- checkpoints ----------------------------------------------------------------------------------------
def forge(plugins, path: Path, weights_of: tuple[str, dict], claims: tuple[str, dict], **meta_changes) -> Path:
    """A checkpoint written by the engine's own writer: the weights of one model, the metadata of another.

    :param weights_of: (model, hyper-parameters) whose networks and optimizers are stored.
    :param claims: (model, hyper-parameters) the metadata describes.
    """
    model, hp = weights_of
    spec = plugins.registry.model(model)
    net = spec.build({**spec.defaults(), **hp}, (1, 8, 8))
    net.make_optimizers()
    name, claimed = claims
    config = build_config(plugins.registry, name, dataset="fashion-mnist-test", steps=10, device="cpu",
                          sets=[f"{k}={v}" for k, v in claimed.items()])
    meta = {"model": name, "hyperparams": config.hyperparams, "image_shape": [1, 8, 8], "step": 3, "epoch": 0,
            "batch": 3, "config": config.to_dict(), **meta_changes}
    save_checkpoint(path, net, meta, {})
    return path


def write_raw_checkpoint(path: Path, ganbench_meta: str) -> Path:
    save_file({"net/generator/w": torch.zeros(2)}, str(path), metadata={"format": FORMAT, "ganbench": ganbench_meta})
    return path


def test_damaged_and_forged_checkpoints(capsys, plugins, place, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a checkpoint outside a run directory would start a run in ./runs
    good = place / "runs" / "earlier" / "checkpoints" / "latest.safetensors"
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[:-5000])
    huge = tmp_path / "huge.safetensors"
    huge.write_bytes(struct.pack("<Q", MAX_HEADER_BYTES + 1) + b"{}")
    plain = tmp_path / "plain.safetensors"
    save_file({"weight": torch.zeros(3)}, str(plain))
    pickled = tmp_path / "model.pt"
    torch.save({"generator": torch.zeros(3)}, pickled)
    garbled = write_raw_checkpoint(tmp_path / "garbled.safetensors", '{"model": "mlp_gan", "step": ')
    small = ("mlp_gan", {"image_size": 8})
    wrong_types = forge(plugins, tmp_path / "types.safetensors", small, small, step="three")
    no_config = forge(plugins, tmp_path / "noconfig.safetensors", small, small, config={"x": 1})
    other_model = forge(plugins, tmp_path / "other.safetensors", ("aae", {"image_size": 8}), small)
    other_shape = forge(plugins, tmp_path / "shape.safetensors", ("mlp_gan", {"image_size": 8, "latent_dim": 64}),
                        small)
    rgb = forge(plugins, tmp_path / "rgb.safetensors", small, small, image_shape=[3, 8, 8])  # the data is grey
    cases = [
        (cut, "cut.safetensors is corrupt or truncated"),
        (huge, f"declares a {MAX_HEADER_BYTES + 1}-byte header, over the {MAX_HEADER_BYTES} limit; refusing it."),
        (plain, "plain.safetensors is a safetensors file but not a ganbench checkpoint."),
        (pickled, "model.pt is a pickle (torch.save) file; ganbench reads only safetensors checkpoints and never "
                  "unpickles a file."),
        (garbled, "The metadata of"),
        (wrong_types, "types.safetensors has a malformed step."),
        (no_config, "noconfig.safetensors does not hold a run configuration."),
        (other_model, "other.safetensors does not hold the generator of this model (it was written by model "
                      "'mlp_gan')."),
        (other_shape, "has shape (128, 64), this model needs (128, 100)."),
        (rgb, "rgb.safetensors holds images of shape (3, 8, 8), but the dataset now gives (1, 8, 8)."),
    ]
    for path, fragment in cases:
        refused(capsys, "run", "--resume", path, fragments=[fragment])
        if path not in (no_config, rgb):  # drawing samples needs neither the run configuration nor the data
            refused(capsys, "sample", path, "-o", tmp_path / "out.png", fragments=[fragment])
    assert not (tmp_path / "out.png").exists() and not (tmp_path / "runs").exists()
    assert "does not parse as JSON" in refused(capsys, "run", "--resume", garbled)


# -- folders that refuse writes -------------------------------------------------------------------------
def test_a_read_only_runs_folder(capsys, place):
    with refusing_writes(place / "runs"):
        refused(capsys, "run", "-p", "mlp_gan", "--dataset", "mnist", "--data-root", place / "mnist", *SMALL,
                "--runs-dir", place / "runs", "--name", "new", fragments=["Cannot create the run folder"])
    with refusing_writes(place / "runs" / "earlier"):
        refused(capsys, "run", "--resume", place / "runs" / "earlier", "--steps", "6",
                fragments=[f"Cannot write to the run directory {place / 'runs' / 'earlier'}"])


# -- the last line of defence ---------------------------------------------------------------------------
def test_an_unexpected_exception_is_one_line_unless_debugging(capsys, monkeypatch, place):
    def broken(args):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(workbench.cli.commands.runs, "main", broken)
    message = refused(capsys, "runs")
    assert message == "unexpected ZeroDivisionError: division by zero (set GANBENCH_DEBUG=1 to see the traceback)."
    monkeypatch.setenv("GANBENCH_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        ganbench_main(["runs"])


def test_a_damaged_checkpoint_in_a_real_subprocess(cli, tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(struct.pack("<Q", 400) + b'{"__metadata__": {"format": "ganbench-checkpoint/1"')
    result = cli("run", "--resume", str(bad))
    assert result.returncode == 2
    assert result.stderr.strip() == f"ganbench: error: {bad} is truncated (its header is incomplete)."
    assert result.stdout == ""


# -- sentences that say what is wrong -------------------------------------------------------------------
def test_an_idx_file_holding_no_images(capsys, place, tmp_path):
    root = mnist_copy(place, tmp_path / "none")
    write_idx(root / "train-images-idx3-ubyte.gz", torch.zeros(0, 28, 28, dtype=torch.uint8))
    write_idx(root / "train-labels-idx1-ubyte.gz", torch.zeros(0, dtype=torch.uint8))
    run_on(capsys, place, "mnist", root, [f"{root / 'train-images-idx3-ubyte.gz'} holds no data (its shape is "
                                          f"(0, 28, 28))."])


def test_a_text_file_given_as_a_checkpoint(capsys, tmp_path):
    notes = tmp_path / "notes.safetensors"
    notes.write_text("my training notes: lr 2e-4 worked best\n")
    refused(capsys, "sample", notes, "-o", tmp_path / "out.png", fragments=[f"{notes} is not a safetensors file."])
    refused(capsys, "run", "--resume", notes, fragments=[f"{notes} is not a safetensors file."])


@pytest.mark.skipif(torch.cuda.device_count() > 3, reason="this machine has a fourth GPU")
def test_a_gpu_index_is_reported_as_given(capsys, place):
    refused(capsys, "run", "-p", "mlp_gan", "--runs-dir", place / "runs", "--device", "cuda:3",
            fragments=["--device cuda:3 was asked for, but "])


def test_runs_of_a_file_is_one_sentence_and_exit_2(capsys, place):
    file = place / "runs" / "earlier" / "config.json"
    assert ganbench_main(["runs", "--runs-dir", str(file)]) == 2
    assert capsys.readouterr().err.strip() == f"ganbench: error: {file} is a file, not a runs folder."
