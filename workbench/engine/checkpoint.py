"""Self-describing safetensors checkpoints: networks, optimizers, RNG state and metadata.

A checkpoint never holds pickled objects: tensors in safetensors, everything
else as JSON in the header's metadata. Opening a stranger's file is safe: the
header size and the metadata size are bounded before anything is parsed.
"""

from __future__ import annotations

import errno
import json
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from workbench import __version__
from workbench.base.atomic import atomic_write
from workbench.base.errors import CheckpointError, ConfigError
from workbench.engine.state import tensor_state

FORMAT = "ganbench-checkpoint/1"
MAX_HEADER_BYTES = 64 * 1024 * 1024
MAX_METADATA_BYTES = 1024 * 1024
MAX_CHANNELS = 4  # grey, RGB, RGBA


@dataclass
class Checkpoint:
    """A loaded checkpoint: its metadata and its tensors (on the CPU)."""

    path: Path
    meta: dict[str, Any]
    tensors: dict[str, torch.Tensor]

    @property
    def step(self) -> int:
        return int(self.meta["step"])


def save_checkpoint(path: Path, model, meta: dict[str, Any], extra: dict[str, torch.Tensor]) -> None:
    """Write the whole training state of ``model`` (``GanModel.state_parts``) plus ``extra`` tensors, atomically.

    :param meta: JSON-able description (model, hyper-parameters, step ...); the ganbench version is added.
    """
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = tensor_state(model)  # networks, averages (EMA) and buffers parts
    groups: dict[str, Any] = {}
    for name, opt in model.optimizers.items():
        state = opt.state_dict()
        groups[name] = state["param_groups"]
        for index, slots in state["state"].items():
            for slot, value in slots.items():
                tensors[f"opt/{name}/{index}/{slot}"] = torch.as_tensor(value).detach().to("cpu").contiguous()
    for key, value in extra.items():
        tensors[key] = value.detach().to("cpu").contiguous()
    full_meta = {**meta, "format": FORMAT, "ganbench_version": __version__, "optimizer_groups": groups}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        try:
            save_file(tensors, str(tmp), metadata={"format": FORMAT, "ganbench": json.dumps(full_meta)})
        except SafetensorError as exc:  # safetensors reports a full disk as its own error: make it an OSError
            raise _as_os_error(exc, tmp) from None


def _as_os_error(exc: Exception, path: Path) -> OSError:
    match = re.search(r"os error (\d+)", str(exc))
    code = int(match.group(1)) if match else errno.EIO
    return OSError(code, os.strerror(code) if match else str(exc), str(path))


def read_metadata(path: Path) -> dict[str, Any]:
    """The ganbench metadata of a checkpoint, checked for size and format before parsing."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"No checkpoint at {path}.")
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
            if len(head) < 8:
                raise CheckpointError(f"{path} is not a safetensors checkpoint (the file is too short).")
            (size,) = struct.unpack("<Q", head)
            if handle.read(1) != b"{":  # a safetensors header is a JSON object right after its 8-byte size
                _refuse_pickle(path, head)
                raise CheckpointError(f"{path} is not a safetensors file.")
            handle.seek(8)
            if size > MAX_HEADER_BYTES:
                _refuse_pickle(path, head)
                raise CheckpointError(f"{path} declares a {size}-byte header, over the {MAX_HEADER_BYTES} limit; refusing it.")
            header_bytes = handle.read(size)
    except OSError as exc:
        raise CheckpointError(f"Cannot read {path}: {exc.strerror}.") from None
    if len(header_bytes) < size:
        _refuse_pickle(path, head)
        raise CheckpointError(f"{path} is truncated (its header is incomplete).")
    try:
        header = json.loads(header_bytes)
        raw_meta = header.get("__metadata__") or {}
        fmt, text = raw_meta.get("format"), raw_meta.get("ganbench")
    except (ValueError, AttributeError, RecursionError):
        _refuse_pickle(path, head)
        raise CheckpointError(f"{path} is not a safetensors checkpoint (its header is not JSON).") from None
    if fmt != FORMAT or not isinstance(text, str):
        raise CheckpointError(f"{path} is a safetensors file but not a ganbench checkpoint.")
    if len(text) > MAX_METADATA_BYTES:
        raise CheckpointError(f"{path} has over {MAX_METADATA_BYTES} bytes of metadata; refusing it.")
    try:
        meta = json.loads(text)
    except (ValueError, RecursionError):
        raise CheckpointError(f"The metadata of {path} does not parse as JSON.") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"The metadata of {path} is not a JSON object.")
    missing = [k for k in ("model", "hyperparams", "image_shape", "step", "config") if k not in meta]
    if missing:
        raise CheckpointError(f"The metadata of {path} lacks {', '.join(missing)}.")
    _check_meta_types(meta, path)
    return meta


def match_layouts(opt) -> None:
    """Give each moment the memory layout of its parameter (channels_last ones included).

    Checkpoints store contiguous tensors; fused optimizers walk a parameter and
    its moments as flat memory, so a layout mismatch would silently pair the
    wrong elements and a resumed run would drift from an unbroken one.
    """
    for group in opt.param_groups:
        for param in group["params"]:
            slots = opt.state.get(param, {})
            for key, value in slots.items():
                if isinstance(value, torch.Tensor) and value.shape == param.shape and value.stride() != param.stride():
                    slots[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)


def _refuse_pickle(path: Path, head: bytes) -> None:
    """Name the usual suspect when a file is not safetensors: a torch.save zip archive or a bare pickle."""
    if head.startswith(b"PK\x03\x04") or (head[:1] == b"\x80" and 2 <= head[1] <= 5):
        raise CheckpointError(f"{path} is a pickle (torch.save) file; ganbench reads only safetensors "
                              f"checkpoints and never unpickles a file.")


def _check_meta_types(meta: dict[str, Any], path: Path) -> None:
    """Refuse metadata whose fields have the wrong type, so nothing downstream trips over them."""
    def is_int(value) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    shape = meta["image_shape"]
    problems = {
        "model": isinstance(meta["model"], str),
        "hyperparams": isinstance(meta["hyperparams"], dict),
        "config": isinstance(meta["config"], dict),
        "step": is_int(meta["step"]) and meta["step"] >= 0,
        "image_shape": isinstance(shape, list) and len(shape) == 3 and all(is_int(v) and v > 0 for v in shape),
        "epoch": is_int(meta.get("epoch", 0)) and meta.get("epoch", 0) >= 0,
        "batch": is_int(meta.get("batch", 0)) and meta.get("batch", 0) >= 0,
        "optimizer_groups": isinstance(meta.get("optimizer_groups", {}), dict),
        "classes": isinstance(meta.get("classes", []), list) and all(isinstance(c, str) for c in meta.get("classes", [])),
    }
    bad = [key for key, ok in problems.items() if not ok]
    if bad:
        raise CheckpointError(f"The metadata of {path} has a malformed {', '.join(bad)}.")


def load_checkpoint(path: Path) -> Checkpoint:
    """Read a checkpoint's metadata and tensors onto the CPU; raise CheckpointError if unusable."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    meta = read_metadata(path)
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path} is corrupt or truncated ({str(exc).splitlines()[0]}).") from None
    return Checkpoint(Path(path), meta, tensors)


def check_networks(checkpoint: Checkpoint, model) -> None:
    """Raise CheckpointError naming the first weight the checkpoint lacks or holds in another shape.

    ``model`` may live on the ``meta`` device: the check needs shapes only, never memory.
    """
    for name, net in model.networks.items():
        prefix = f"net/{name}/"
        state = {k[len(prefix):]: v for k, v in checkpoint.tensors.items() if k.startswith(prefix)}
        expected = net.state_dict()
        if set(state) != set(expected):
            raise CheckpointError(f"{checkpoint.path} does not hold the {name} of this model "
                                  f"(it was written by model {checkpoint.meta.get('model')!r}).")
        for key, value in state.items():
            if value.shape != expected[key].shape:
                raise CheckpointError(f"{checkpoint.path}: {name}.{key} has shape {tuple(value.shape)}, "
                                      f"this model needs {tuple(expected[key].shape)}.")


def restore_networks(checkpoint: Checkpoint, model) -> None:
    """Load every network's weights; raise CheckpointError naming the first mismatch."""
    check_networks(checkpoint, model)
    for name, net in model.networks.items():
        prefix = f"net/{name}/"
        net.load_state_dict({k[len(prefix):]: v for k, v in checkpoint.tensors.items() if k.startswith(prefix)})


def check_against_model(meta: dict[str, Any], spec, path: Path) -> None:
    """Refuse, before anything is built, metadata whose hyper-parameters lie outside the ranges the model
    declares (``spec.hyperparams``) or whose image shape disagrees with them: a stranger's checkpoint must
    not make ganbench allocate what its numbers ask for."""
    hyperparams = meta["hyperparams"]
    for param in spec.hyperparams:
        if param.name in hyperparams:
            try:
                param.check(hyperparams[param.name])
            except ConfigError as exc:
                raise CheckpointError(f"{path} holds a hyper-parameter the model {spec.name} does not allow: "
                                      f"{str(exc).rstrip('.')}.") from None
    channels, height, width = meta["image_shape"]
    size = hyperparams.get("image_size", height)
    if height != width or height != size or channels > MAX_CHANNELS:
        raise CheckpointError(f"{path} claims images of shape {tuple(meta['image_shape'])}, which its model "
                              f"{spec.name} (image_size {size}) does not make.")


def restore_optimizers(checkpoint: Checkpoint, model) -> None:
    """Load every optimizer's state (moments, step counts, learning rates)."""
    groups = checkpoint.meta.get("optimizer_groups", {})
    for name, opt in model.optimizers.items():
        prefix = f"opt/{name}/"
        if name not in groups:
            raise CheckpointError(f"{checkpoint.path} holds no state for the {name} optimizer.")
        try:
            state: dict[int, dict[str, torch.Tensor]] = {}
            for key, value in checkpoint.tensors.items():
                if key.startswith(prefix):
                    index, slot = key[len(prefix):].split("/", 1)
                    state.setdefault(int(index), {})[slot] = value
            opt.load_state_dict({"state": state, "param_groups": groups[name]})
            match_layouts(opt)
        except (ValueError, KeyError, RuntimeError, TypeError, AttributeError, IndexError) as exc:
            raise CheckpointError(f"{checkpoint.path}: the {name} optimizer state does not fit "
                                  f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}).") from None
