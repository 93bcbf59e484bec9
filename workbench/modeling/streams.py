"""Part of a training step on a second CUDA stream, beside the rest.

A DCGAN's kernels are too small to fill a large GPU one at a time; two
independent passes (D over the real batch, G drawing the fakes) can run at
once. The engine's ``TwoNetworkGAN`` uses this when D is updated first.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TypeVar

import torch

T = TypeVar("T")

_side_streams: dict[torch.device, torch.cuda.Stream] = {}


def queue_beside(fn: Callable[[], T], device: torch.device, enabled: bool = True) -> tuple[T, Callable[[], None]]:
    """Queue ``fn()`` on a second CUDA stream, concurrently with what the caller queues next.

    Returns ``fn``'s result and ``join``: call ``join()`` before the caller's stream uses the result.
    Autograd runs the backward of ``fn``'s operations on the same second stream. Off CUDA, or with
    ``enabled`` False, ``fn()`` runs in place and ``join`` does nothing.
    """
    if device.type != "cuda" or not enabled:
        return fn(), lambda: None
    main = torch.cuda.current_stream(device)
    side = _side_streams.get(device)
    if side is None:
        side = _side_streams[device] = torch.cuda.Stream(device)
    side.wait_stream(main)
    with torch.cuda.stream(side):
        out = fn()
    return out, lambda: main.wait_stream(side)


@contextlib.contextmanager
def gradients_from_two_streams():
    """Silence PyTorch's one-time warning that a weight receives gradients from two streams.

    After ``queue_beside``, D's weights gather gradients from the real batch's pass (second stream) and
    the fakes' (first stream). That is intended: autograd makes the streams wait for each other, and
    recent PyTorch warns about it once, as if it were a leftover graph.
    """
    get = getattr(torch._C, "_warn_on_accumulate_grad_stream_mismatch", None)
    if get is None:  # a PyTorch without the warning
        yield
        return
    before = get()
    torch._C._set_warn_on_accumulate_grad_stream_mismatch(False)
    try:
        yield
    finally:
        torch._C._set_warn_on_accumulate_grad_stream_mismatch(before)
