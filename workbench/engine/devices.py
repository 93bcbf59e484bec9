"""Choosing the training device."""

from __future__ import annotations

import torch

from workbench.errors import ConfigError


def pick_device(requested: str = "auto") -> torch.device:
    """CUDA, then MPS, then CPU for ``auto``; otherwise the named device, checked to exist."""
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for, but PyTorch sees no CUDA GPU here.")
    if requested == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("--device mps was asked for, but this PyTorch has no MPS support here.")
    return torch.device(requested)


def describe_device(device: torch.device) -> str:
    """A human name such as ``cuda (NVIDIA H100 80GB HBM3)`` or ``cpu (2 threads)``."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type


def tune_backends(device: torch.device) -> None:
    """Backend switches that pay for fixed-shape GAN training."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
