"""Memory a run or a sample grid needs, checked against what the machine has before the big allocation.

A batch size, an image size or a forged checkpoint can ask for more memory
than the machine has; found out by allocating, that ends in the OOM killer, a
machine swapping for minutes, or a 40 GB allocation error. These checks refuse
such a request in one sentence, with the figure and the free memory, first:

- ``check_data_fits``: the dataset's cache on the training device (the images
  as loaded, and resized when the model wants another size);
- ``check_step_fits``: one training step at the configured batch size: the
  tensors autograd keeps for the backward pass, measured in two trial steps at
  a tiny batch and scaled (they grow linearly with the batch), plus the
  gradients and Adam's two moments of every weight, which the first step makes;
- ``check_fits``: any other figure (a sample grid).

"Free" is what the device has left now: on CUDA ``torch.cuda.mem_get_info``;
on the CPU the smallest of MemAvailable, the address-space limit (``ulimit -v``)
and the cgroup's limit. Where that cannot be known (MPS), nothing is refused.
"""

from __future__ import annotations

import contextlib
import copy
import resource
from pathlib import Path

import torch

from workbench.base.errors import ConfigError

_TRIAL_SIZES = (2, 4)


class OutOfMemory(ConfigError):
    """A run or a grid that cannot fit in the device's free memory; ``need`` and ``free`` are in bytes."""

    def __init__(self, message: str, need: int, free: int):
        super().__init__(message)
        self.need, self.free = need, free


def describe_bytes(count: float) -> str:
    """``1.5 GiB``, ``320 MiB``, ``12 KiB``."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= size:
            return f"{count / size:.3g} {unit}"
    return f"{int(count)} bytes"


def free_bytes(device: torch.device) -> int | None:
    """The memory a new allocation on ``device`` can still get, in bytes; None where it cannot be told."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type != "cpu":
        return None
    limits = [value for value in (_meminfo_available(), _address_space_left(), _cgroup_left()) if value is not None]
    return min(limits) if limits else None


def where(device: torch.device) -> str:
    return f"the GPU ({device})" if device.type == "cuda" else "this machine"


def check_fits(need: int, what: str, device: torch.device, advice: str = "") -> None:
    """Raise ``OutOfMemory`` ("``what`` needs about X, but ... has Y free``") when ``need`` bytes do not fit."""
    free = free_bytes(device)
    if free is not None and need > free:
        raise OutOfMemory(f"{what} needs about {describe_bytes(need)} of memory, but {where(device)} has "
                          f"{describe_bytes(free)} free{'; ' + advice if advice else ''}.", need, free)


def check_data_fits(images: torch.Tensor, image_size: int, device: torch.device, dataset: str) -> int:
    """Refuse a dataset whose cache on ``device`` cannot fit; return the bytes it takes there."""
    count, channels = int(images.shape[0]), int(images.shape[1])
    resized = count * channels * image_size * image_size if tuple(images.shape[2:]) != (image_size, image_size) else 0
    on_device = (images.numel() if images.device != device else 0) + resized
    check_fits(on_device, f'The dataset "{dataset}" ({count:,} images at {image_size}x{image_size}) on {device}',
               device, "use a smaller image_size or a subset of the data")
    return on_device


def step_bytes(model, loss, real: torch.Tensor, batch_size: int, precise: bool = True,
               fields: dict[str, torch.Tensor] | None = None) -> int:
    """The memory one training step at ``batch_size`` adds to the model's weights, in bytes (an estimate).

    Measured on copies of the model and the loss, so the run that follows is unchanged: trial steps at a
    tiny batch (``real`` holds enough images) give what autograd keeps per image.
    """
    trained, fixed, per_image = _step_profile(model, loss, real, precise, fields)
    return int(trained + fixed + per_image * batch_size)


def check_step_fits(model, loss, real: torch.Tensor, batch_size: int, device: torch.device,
                    fields: dict[str, torch.Tensor] | None = None) -> int:
    """Refuse a batch size whose training step cannot fit in the free memory; return the estimate in bytes.

    One trial step bounds the need from above; only when that bound does not fit is it measured precisely.
    ``fields``: the batch fields the model declares (``labels``), for the trial images.
    """
    free = free_bytes(device)
    need = step_bytes(model, loss, real, batch_size, precise=False, fields=fields)
    if free is None or need <= free:
        return need
    trained, fixed, per_image = _step_profile(model, loss, real, precise=True, fields=fields)
    need = int(trained + fixed + per_image * batch_size)
    if need > free:
        fitting = int((free - trained - fixed) // per_image) if per_image else 0
        advice = f"a --batch-size of at most {fitting:,} would fit" if fitting >= 2 else \
            "the model itself is too large for it"
        raise OutOfMemory(f"A training step at batch size {batch_size:,} needs about {describe_bytes(need)} of memory "
                          f"beyond the data and the weights, but {where(device)} has {describe_bytes(free)} free; "
                          f"{advice}.", need, free)
    return need


def _step_profile(model, loss, real: torch.Tensor, precise: bool = True,
                  fields: dict[str, torch.Tensor] | None = None) -> tuple[float, float, float]:
    """(gradients and optimizer moments, the part of a step's memory that does not grow with the batch, the
    part per image), in bytes. One trial step at batch 4 bounds the per-image part from above (all of it
    counted as growing); ``precise`` adds a step at batch 2 to split off the fixed part."""
    weights = sum(p.numel() * p.element_size() for net in model.networks.values() for p in net.parameters())
    trained = 3.0 * weights  # a gradient and Adam's two moments per weight, made by the first step
    sizes = [n for n in _TRIAL_SIZES if n <= real.shape[0]]
    if not precise:
        sizes = sizes[-1:]
    if not sizes:
        return trained, 0.0, 0.0
    kept = [_trial_step(model, loss, real[:n], {k: v[:n] for k, v in (fields or {}).items()}) for n in sizes]
    if len(sizes) == 1:
        return trained, 0.0, kept[0] / sizes[0]
    per_image = max(0.0, (kept[1] - kept[0]) / (sizes[1] - sizes[0]))
    return trained, max(0.0, kept[0] - per_image * sizes[0]), per_image


def _trial_step(model, loss, real: torch.Tensor, fields: dict[str, torch.Tensor]) -> int:
    """One ``train_step`` on copies of the model and the loss, eagerly; the peak bytes autograd kept."""
    with torch.random.fork_rng(devices=[real.device] if real.device.type == "cuda" else []):
        trial, trial_loss = copy.deepcopy(model), copy.deepcopy(loss)
        for module in (m for net in trial.networks.values() for m in net.modules()):
            if getattr(module, "_compiled_call_impl", None) is not None:
                module._compiled_call_impl = None  # the copy's compiled call would run the original's forward
        return _saved_for_backward(lambda: trial.train_step(real, trial_loss, **fields), weights_of=trial)


def memory_summary(need: int, device: torch.device) -> str:
    """``about 3.1 GiB estimated for this run, 75 GiB free``: the figures an out-of-memory sentence gives."""
    free = free_bytes(device)
    return f"about {describe_bytes(need)} estimated for this run" + \
        (f", {describe_bytes(free)} free" if free is not None else "")


def _saved_for_backward(step, weights_of) -> int:
    """Run ``step()``; return the peak bytes of the distinct storages autograd held for backward at one time,
    weights excluded (a tensor counts from the forward pass that saves it to the backward pass that uses it)."""
    weights = {p.untyped_storage().data_ptr() for net in weights_of.networks.values() for p in net.parameters()}
    sizes: dict[int, int] = {}  # storage address -> bytes, for the storages held now
    refs: dict[int, int] = {}
    pending: dict[int, int] = {}  # token -> storage address, until the backward pass takes the tensor
    held = peak = 0
    tokens = iter(range(1 << 62))

    def pack(tensor):
        nonlocal held, peak
        try:
            storage = tensor.untyped_storage()
        except RuntimeError:  # a tensor without storage (sparse, a wrapper subclass) counts nothing
            return None, tensor
        address = storage.data_ptr()
        if address in weights:
            return None, tensor
        if refs.get(address, 0) == 0:
            sizes[address] = storage.nbytes()
            held += sizes[address]
            peak = max(peak, held)
        refs[address] = refs.get(address, 0) + 1
        token = next(tokens)
        pending[token] = address
        return token, tensor

    def unpack(packed):
        nonlocal held
        token, tensor = packed
        address = pending.pop(token, None)
        if address is not None:
            refs[address] -= 1
            if refs[address] == 0:
                held -= sizes.pop(address)
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        step()
    return peak


def _meminfo_available() -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return None


# What a run still maps after the check, whatever its batch: the threads it starts (the grid writer, the intra-op
# team) with their stacks and malloc arenas, and libraries loaded on first use. Only ``ulimit -v`` counts them.
_LATER_MAPPINGS = 512 * 2**20


def _address_space_left() -> int | None:
    """``ulimit -v`` minus what this process has mapped already and what a run maps later (``_LATER_MAPPINGS``)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return max(0, soft - int(line.split()[1]) * 1024 - _LATER_MAPPINGS)
    return None


def _cgroup_left() -> int | None:
    """A container's memory limit (cgroup v2) minus its use."""
    root = Path("/sys/fs/cgroup")
    with contextlib.suppress(OSError, ValueError):
        limit = (root / "memory.max").read_text().strip()
        if limit != "max":
            return max(0, int(limit) - int((root / "memory.current").read_text()))
    return None
