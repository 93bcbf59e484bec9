"""Choosing the training device, and the speed settings that depend on it (amp, compile)."""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path

import torch

from workbench.base.errors import ConfigError


def pick_device(requested: str = "auto") -> torch.device:
    """CUDA, then MPS, then CPU for ``auto``; otherwise the named device, checked to exist."""
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {requested} was asked for, but PyTorch sees no CUDA GPU here.")
    if requested.startswith("cuda:") and not requested[5:].isdigit():
        raise ConfigError(f'--device must be auto, cpu, cuda, cuda:N or mps; got "{requested}".')
    if requested.startswith("cuda:") and int(requested[5:]) >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise ConfigError(f"--device {requested} was asked for, but PyTorch sees {count} CUDA GPU"
                          f"{'' if count == 1 else 's'} here (cuda:0 to cuda:{count - 1}).")
    if requested == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("--device mps was asked for, but this PyTorch has no MPS support here.")
    return torch.device(requested)


def describe_device(device: torch.device) -> str:
    """A human name such as ``cuda (NVIDIA H100 80GB HBM3)`` or ``cpu (2 threads)``."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        threads = torch.get_num_threads()
        return f"cpu ({threads} thread{'' if threads == 1 else 's'})"
    return device.type


def memory_in_use(device: torch.device) -> dict[str, float]:
    """The GPU memory in use (and its peak), in MiB, on CUDA; nothing elsewhere."""
    if device.type != "cuda":
        return {}
    return {"gpu_memory_mb": round(torch.cuda.memory_allocated(device) / 2**20, 1),
            "gpu_peak_memory_mb": round(torch.cuda.max_memory_allocated(device) / 2**20, 1)}


def usable_cpus() -> int:
    """The processors this process may run on: its affinity (a cluster job's or a container's share), not the
    whole node's count, which would give each of several processes a full team of threads."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def cpu_name() -> str:
    """The processor's model name (from /proc/cpuinfo where there is one), for benchmark reports."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def tune_backends(device: torch.device, engine: dict | None = None) -> None:
    """Backend switches that pay for fixed-shape GAN training; refuse speed settings the device cannot use."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True  # float32 matmuls on tensor cores (convolutions already are)
    amp = (engine or {}).get("amp", "none")
    if amp != "none" and device.type != "cuda":
        raise ConfigError(f"amp={amp} needs a CUDA GPU: on {device.type} {amp} autocast is slower than "
                          f"float32 (bf16 about 20x on a 2-core CPU), so train there with amp=none.")
    if (engine or {}).get("cuda_graphs") == "on" and device.type != "cuda":
        raise ConfigError(f"cuda_graphs=on needs a CUDA GPU; this run trains on {device.type}, so use "
                          f"cuda_graphs=auto or off.")
    if amp == "bf16" and not torch.cuda.is_bf16_supported():
        raise ConfigError(f"amp=bf16 needs a GPU with bfloat16 support; {torch.cuda.get_device_name(device)} "
                          f"has none, so train with amp=none.")


def autocast_context(device: torch.device, amp: str = "none", graphed: bool = False):
    """The mixed-precision context for the training step, chosen once: ``nullcontext()`` unless amp=bf16 on CUDA.

    A step replayed as a CUDA graph must not keep autocast's cache of bf16 weight copies between
    steps (PyTorch's CUDA-graph notes), so ``graphed`` turns the cache off.
    """
    if amp in ("bf16", "fp16") and device.type == "cuda":
        dtype = torch.bfloat16 if amp == "bf16" else torch.float16
        return torch.autocast(device_type="cuda", dtype=dtype, cache_enabled=not graphed)
    return contextlib.nullcontext()


def compile_networks(model, mode: str = "off", backend: str = "inductor") -> None:
    """``torch.compile`` every network of ``model`` in place (``nn.Module.compile``), so names and checkpoints
    stay the same.

    Each network is compiled on its own, not the whole step: the discriminator
    freezes its weights during G's step, and dynamo guards on ``requires_grad``,
    so the frozen and the trainable call each get a correct graph. ``backend`` is
    torch.compile's (the tests use ``aot_eager``, which needs no C++ compiler).
    """
    if mode == "off":
        return
    for net in model.networks.values():
        net.compile(backend=backend)
