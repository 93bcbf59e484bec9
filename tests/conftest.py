"""Shared fixtures: real plugins, real IDX files, the real CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from workbench.data.idx import read_idx, write_idx
from workbench.host.manager import load_plugins

SHIPPED = Path(__file__).resolve().parent.parent / "plugins" / "data"


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a module (``pytestmark = pytest.mark.usefixtures("one_thread")``): tests that
    check results, not speed, run many times slower with two spinning OpenMP threads on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def halfblock_grids(monkeypatch):
    """Sample grids in half-blocks, as the snapshots hold them, even under a shell that sets GANBENCH_IMAGES or
    runs inside tmux (which wraps Kitty commands); a test that wants pixels asks for them."""
    monkeypatch.delenv("GANBENCH_IMAGES", raising=False)
    monkeypatch.delenv("TMUX", raising=False)


@pytest.fixture(scope="session")
def plugins():
    """The installed plugins, loaded once."""
    return load_plugins()


@pytest.fixture(scope="session")
def fashion_images() -> torch.Tensor:
    """The shipped Fashion-MNIST test images, uint8 (10000, 28, 28)."""
    return read_idx(SHIPPED / "t10k-images-idx3-ubyte.gz")


@pytest.fixture
def tiny_mnist(tmp_path, fashion_images) -> Path:
    """A folder with real MNIST-format IDX files (512 train, 256 test images), gzipped like the originals."""
    labels = read_idx(SHIPPED / "t10k-labels-idx1-ubyte.gz")
    root = tmp_path / "mnist"
    root.mkdir()
    write_idx(root / "train-images-idx3-ubyte.gz", fashion_images[:512])
    write_idx(root / "train-labels-idx1-ubyte.gz", labels[:512])
    write_idx(root / "t10k-images-idx3-ubyte.gz", fashion_images[512:768])
    write_idx(root / "t10k-labels-idx1-ubyte.gz", labels[512:768])
    return root


def run_cli(*args: str, cwd: Path, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``ganbench ARGS`` in a real subprocess and capture its output."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "120", **(env or {})}
    return subprocess.run([sys.executable, "-m", "workbench", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=full_env)


@pytest.fixture
def cli(tmp_path):
    """``cli("run", "--plugin", ...)`` runs ganbench in ``tmp_path``."""

    def call(*args: str, **kwargs) -> subprocess.CompletedProcess:
        return run_cli(*args, cwd=kwargs.pop("cwd", tmp_path), **kwargs)

    return call
