"""Datasets: real IDX files (gzipped or not), torchvision's layout, image folders decoded once."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import torch
from PIL import Image

import workbench.data.folder as imagefolder
from workbench.base.errors import DataError
from workbench.data.idx import read_idx, write_idx
from workbench.host.registry import DataRequest


def request(root, size=28, split="train", cache=None) -> DataRequest:
    return DataRequest(root=root, download=False, image_size=size, split=split, cache_dir=cache)


def test_idx_round_trip_plain_and_gzipped(tmp_path, fashion_images):
    for name in ("a-idx3-ubyte", "a-idx3-ubyte.gz"):
        write_idx(tmp_path / name, fashion_images[:10])
        assert torch.equal(read_idx(tmp_path / name), fashion_images[:10])


def test_truncated_idx_is_a_clear_error(tmp_path, fashion_images):
    path = tmp_path / "train-images-idx3-ubyte"
    write_idx(path, fashion_images[:10])
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match="truncated"):
        read_idx(path)


def test_mnist_reads_raw_and_torchvision_layouts(plugins, tiny_mnist, tmp_path):
    mnist = plugins.registry.dataset("mnist")
    data = mnist.load(request(tiny_mnist))
    assert data.images.shape == (512, 1, 28, 28) and data.images.dtype == torch.uint8
    assert data.labels.shape == (512,)
    test = mnist.load(request(tiny_mnist, split="test"))
    assert test.images.shape[0] == 256
    # torchvision's layout ROOT/MNIST/raw with unzipped files
    raw = tmp_path / "tv" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for gz in tiny_mnist.glob("*.gz"):
        (raw / gz.name[:-3]).write_bytes(gzip.decompress(gz.read_bytes()))
    assert torch.equal(mnist.load(request(tmp_path / "tv")).images, data.images)


def test_missing_mnist_says_which_files_go_where(plugins, tmp_path):
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz.*--download"):
        plugins.registry.dataset("mnist").load(request(tmp_path / "nothing"))


def test_shipped_fashion_mnist_works_offline(plugins):
    data = plugins.registry.dataset("fashion-mnist-test").load(request(None))
    assert data.images.shape == (10000, 1, 28, 28)
    assert len(data.classes) == 10 and int(data.labels.max()) == 9


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").exists(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_found_where_debian_installs_it(plugins, monkeypatch, tmp_path):
    monkeypatch.setenv("GANBENCH_DATA", str(tmp_path))
    data = plugins.registry.dataset("fashion-mnist").load(request(None))
    assert data.images.shape == (60000, 1, 28, 28)


def write_jpegs(folder: Path, images: torch.Tensor, size=(40, 30)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        Image.fromarray(image.numpy()).convert("RGB").resize(size).save(folder / f"{i:06d}.jpg", quality=90)


def test_celeba_folder_is_decoded_once_and_cached(plugins, tmp_path, fashion_images, monkeypatch):
    write_jpegs(tmp_path / "celeba" / "img_align_celeba", fashion_images[:20])
    (tmp_path / "celeba" / "img_align_celeba" / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    celeba = plugins.registry.dataset("celeba")
    cache = tmp_path / "cache"
    data = celeba.load(request(tmp_path / "celeba", size=16, cache=cache))
    assert data.images.shape == (20, 3, 16, 16) and data.images.dtype == torch.uint8
    assert "1 unreadable" in data.source
    assert len(list(cache.glob("*.safetensors"))) == 1

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again although the cache is valid")

    monkeypatch.setattr(imagefolder, "decode_square", no_decoding)
    again = celeba.load(request(tmp_path / "celeba", size=16, cache=cache))
    assert torch.equal(again.images, data.images)


def test_missing_celeba_explains_how_to_get_it(plugins, tmp_path):
    with pytest.raises(DataError, match="img_align_celeba"):
        plugins.registry.dataset("celeba").load(request(tmp_path))


def test_folder_dataset_of_pngs(plugins, tmp_path, fashion_images):
    folder = tmp_path / "pics" / "sub"
    folder.mkdir(parents=True)
    for i in range(5):
        Image.fromarray(fashion_images[i].numpy()).save(folder / f"{i}.png")
    data = plugins.registry.dataset("folder").load(request(tmp_path / "pics", size=32, cache=tmp_path / "c"))
    assert data.images.shape == (5, 3, 32, 32)


def test_folder_of_only_broken_images_fails(plugins, tmp_path):
    (tmp_path / "pics").mkdir()
    (tmp_path / "pics" / "a.jpg").write_bytes(b"garbage")
    with pytest.raises(DataError, match="None of the 1 image files"):
        plugins.registry.dataset("folder").load(request(tmp_path / "pics", cache=tmp_path / "c"))


DEBIAN = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture
def mirror():
    """A loopback HTTP server: ``mirror(folder)`` serves ``folder`` and returns its base URL."""
    import functools
    import http.server
    import threading

    servers = []

    def serve(folder: Path) -> str:
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
        handler.log_message = lambda *args: None
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield serve
    for server in servers:
        server.shutdown()


@pytest.mark.skipif(not (DEBIAN / "train-images-idx3-ubyte.gz").exists(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_download_goes_through_torchvision_with_checksums(plugins, tmp_path, monkeypatch, mirror):
    """The real download code, from a loopback mirror serving real files; torchvision checks their md5.

    Debian recompressed the archives, so the mirror's checksums replace the upstream ones.
    """
    import hashlib

    import torchvision.datasets as tvd

    resources = [(name, hashlib.md5((DEBIAN / name).read_bytes()).hexdigest()) for name, _ in tvd.FashionMNIST.resources]
    monkeypatch.setattr(tvd.FashionMNIST, "resources", resources)
    monkeypatch.setattr(tvd.FashionMNIST, "mirrors", [mirror(DEBIAN)])
    spec = plugins.registry.dataset("fashion-mnist")
    data = spec.load(DataRequest(root=tmp_path / "fm", download=True, image_size=28, split="test"))
    assert data.images.shape == (10000, 1, 28, 28)
    assert (tmp_path / "fm" / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").is_file()


def test_failed_download_is_one_sentence(plugins, tmp_path, monkeypatch, mirror):
    import torchvision.datasets as tvd

    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setattr(tvd.MNIST, "mirrors", [mirror(empty)])
    with pytest.raises(DataError, match="Downloading MNIST into .* failed"):
        plugins.registry.dataset("mnist").load(DataRequest(root=tmp_path / "m", download=True, image_size=28))
