"""A model's whole training state, walked in one place (``GanModel.state_parts``).

Checkpoints, resume, the torchrun broadcast, the divergence guard, the memory estimate and inference all
go through these functions, so a new kind of state (an EMA copy, an augmentation's p, a replay buffer, fp16
scalers) is declared once by the model or the engine service that owns it and reaches all of them.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

from workbench.base.errors import CheckpointError
from workbench.modeling.model import StatePart

TENSOR_KINDS = ("network", "average", "buffers")  # parts whose state_dict() is tensors only


def parts(model, *kinds: str) -> list[StatePart]:
    """The model's state parts of the given kinds (all of them when none is named), in their one order."""
    every = model.state_parts() if hasattr(model, "state_parts") else \
        [StatePart(f"net/{n}", "network", m) for n, m in model.networks.items()] + \
        [StatePart(f"opt/{n}", "optimizer", o) for n, o in model.optimizers.items()]
    return [part for part in every if not kinds or part.kind in kinds]


def tensor_state(model) -> dict[str, torch.Tensor]:
    """Every tensor of the networks, averages and buffers parts under ``<prefix>/<name>``, on the CPU."""
    tensors = {}
    for part in parts(model, *TENSOR_KINDS):
        for key, value in part.obj.state_dict().items():
            tensors[f"{part.key}/{key}"] = value.detach().to("cpu").contiguous()
    return tensors


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    prefix = prefix + "/"
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def restore_tensor_state(tensors: dict[str, torch.Tensor], model, path) -> list[str]:
    """Load the averages and buffers parts from checkpoint tensors (the networks are ``restore_networks``'s).

    A part the checkpoint lacks (a service switched on when resuming an older run) starts fresh: an EMA from
    its network's weights. Returns what started fresh, as sentences.
    """
    fresh = []
    for part in parts(model, "average", "buffers"):
        state = _prefixed(tensors, part.key)
        if not state:
            if part.kind == "average":
                source = model.networks[part.key.split("/", 1)[1]]
                part.obj.load_state_dict(source.state_dict())
            fresh.append(f"{path} holds no {part.key}; it starts fresh from here.")
            continue
        try:
            part.obj.load_state_dict(state)
        except (RuntimeError, KeyError, ValueError, TypeError) as exc:
            raise CheckpointError(f"{path}: its {part.key} does not fit this run "
                                  f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}).") from None
    return fresh


def live_tensors(model) -> list[torch.Tensor]:
    """Every tensor a training step may change: trained weights and buffers, optimizer moments and the
    buffers parts (an augmentation's accumulators, a replay buffer); for the divergence guard's undo."""
    tensors = [t for part in parts(model, "network") for t in (*part.obj.parameters(), *part.obj.buffers())]
    for part in parts(model, "optimizer"):
        opt = part.obj
        for group in opt.param_groups:
            for p in group["params"]:
                tensors += [v for v in opt.state.get(p, {}).values() if isinstance(v, torch.Tensor)]
    for part in parts(model, "buffers"):
        tensors += [t for t in part.obj.state_dict(keep_vars=True).values()] if isinstance(part.obj, nn.Module) \
            else []
    return [t.detach() for t in tensors]


def broadcast_tensors(model) -> list[torch.Tensor]:
    """What rank 0 gives every other rank at the start: weights and buffers of the networks and averages, and
    the tensors of module-held buffers parts (others travel as objects)."""
    tensors = [t for part in parts(model, "network", "average") for t in (*part.obj.parameters(), *part.obj.buffers())]
    tensors += [t for part in parts(model, "buffers") if isinstance(part.obj, nn.Module) for t in part.obj.buffers()]
    return tensors


def object_states(model) -> dict[str, dict[str, torch.Tensor]]:
    """The state of buffers parts that are not modules (tensor dicts on the CPU), for the broadcast."""
    return {part.key: {k: v.detach().cpu() for k, v in part.obj.state_dict().items()}
            for part in parts(model, "buffers") if not isinstance(part.obj, nn.Module)}


def load_object_states(model, states: dict[str, dict[str, torch.Tensor]]) -> None:
    for part in parts(model, "buffers"):
        if part.key in states:
            part.obj.load_state_dict(states[part.key])


def weight_bytes(model, *kinds: str) -> int:
    """Bytes of the parameters of the parts of ``kinds`` (default: the trained networks)."""
    return sum(p.numel() * p.element_size() for part in parts(model, *(kinds or ("network",)))
               for p in part.obj.parameters())


def state_bytes(model) -> int:
    """Bytes the model's state outside the trained weights holds: averages (inference-only) and buffers."""
    total = sum(t.numel() * t.element_size() for part in parts(model, "average") for t in part.obj.state_dict().values())
    return total + sum(t.numel() * t.element_size() for part in parts(model, "buffers")
                       for t in part.obj.state_dict().values() if isinstance(t, torch.Tensor))


@contextlib.contextmanager
def averaged_weights(model, use: bool = True) -> Iterator[bool]:
    """Within the block, the averaged network (the generator EMA) stands in for its network: ``generate``
    draws from it. Swaps tensor storage both ways (nothing is copied); yields whether an average was used."""
    pairs = []
    if use:
        for name, average in getattr(model, "averages", {}).items():
            net = model.networks[name]
            pairs += list(zip((*net.parameters(), *net.buffers()), (*average.parameters(), *average.buffers())))
    for live, avg in pairs:
        live.data, avg.data = avg.data, live.data
    try:
        yield bool(pairs)
    finally:
        for live, avg in pairs:
            live.data, avg.data = avg.data, live.data
