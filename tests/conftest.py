"""Shared fixtures: real plugins, real IDX files, the real CLI in a subprocess or in this process."""

from __future__ import annotations

import contextlib
import io
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


def run_cli_here(*args: str, cwd: Path, env: dict | None = None, timeout: float | None = None
                 ) -> subprocess.CompletedProcess:
    """Run ``ganbench ARGS`` in this process (``workbench.cli.main.main``): the same parser, commands and
    one-sentence error reporting, without the seconds of a new interpreter importing torch. For what a
    process is not the point of: refusals of bad input, read-only commands. ``timeout`` is ignored."""
    from workbench.cli.main import main

    full_env = {"COLUMNS": "120", **(env or {})}
    saved = {key: os.environ.get(key) for key in full_env}
    out, err = io.StringIO(), io.StringIO()
    here = os.getcwd()
    try:
        os.environ.update(full_env)
        os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse's own refusals
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        os.chdir(here)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return subprocess.CompletedProcess(["ganbench", *args], code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli_here(tmp_path):
    """``cli_here("runs", ...)`` runs ganbench in this process, in ``tmp_path`` (see ``run_cli_here``)."""

    def call(*args: str, **kwargs) -> subprocess.CompletedProcess:
        return run_cli_here(*args, cwd=kwargs.pop("cwd", tmp_path), **kwargs)

    return call


@pytest.fixture
def cli(tmp_path):
    """``cli("run", "--plugin", ...)`` runs ganbench in ``tmp_path``."""

    def call(*args: str, **kwargs) -> subprocess.CompletedProcess:
        return run_cli(*args, cwd=kwargs.pop("cwd", tmp_path), **kwargs)

    return call
